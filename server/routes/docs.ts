/**
 * API documentation, served from this server (Swagger UI from the installed
 * swagger-ui-dist package; no CDN):
 *   GET /_matrix/docs                 the Swagger UI page
 *   GET /_matrix/docs/openapi.json    the OpenAPI document of every declared route
 *   GET /_matrix/docs/{asset}         Swagger UI's scripts and styles
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, rawResponse, reply } from '../http/route.js';

const DOCS_PATH = '/_matrix/docs';

const CONTENT_TYPES = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
} as const;

const INITIALIZER = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: '${DOCS_PATH}/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: 'StandaloneLayout',
  });
};
`;

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Myelin API</title>
    <link rel="stylesheet" href="${DOCS_PATH}/swagger-ui.css">
    <link rel="icon" type="image/png" href="${DOCS_PATH}/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${DOCS_PATH}/swagger-ui-bundle.js" charset="utf-8"></script>
    <script src="${DOCS_PATH}/swagger-ui-standalone-preset.js" charset="utf-8"></script>
    <script src="${DOCS_PATH}/swagger-initializer.js" charset="utf-8"></script>
  </body>
</html>
`;

export const getDocsPage = defineRoute({
  method: 'GET',
  path: DOCS_PATH,
  operationId: 'getDocsPage',
  summary: 'The API documentation (Swagger UI).',
  tags: ['Documentation'],
  resource: 'docs',
  auth: 'none',
  rateLimit: 'none',
  responses: { 200: rawResponse('text/html; charset=utf-8', 'The Swagger UI page.') },
  async handler() {
    return reply(200, PAGE);
  },
});

export const getOpenApiDocument = defineRoute({
  method: 'GET',
  path: `${DOCS_PATH}/openapi.json`,
  operationId: 'getOpenApiDocument',
  summary: 'The OpenAPI 3.1 document describing every endpoint this server declares.',
  tags: ['Documentation'],
  resource: 'docs',
  auth: 'none',
  rateLimit: 'none',
  responses: {
    200: Type.Object(
      { openapi: Type.String(), paths: Type.Record(Type.String(), Type.Unknown()) },
      { description: 'An OpenAPI 3.1 document.', additionalProperties: true },
    ),
  },
  async handler(_req, hs) {
    return reply(200, hs.openApiDocument());
  },
});

export const getDocsAsset = defineRoute({
  method: 'GET',
  path: `${DOCS_PATH}/{asset}`,
  operationId: 'getDocsAsset',
  summary: 'A Swagger UI script, style sheet or icon.',
  tags: ['Documentation'],
  resource: 'docs',
  auth: 'none',
  rateLimit: 'none',
  hidden: true,
  request: { params: Type.Object({ asset: Type.String() }) },
  responses: { 200: rawResponse('application/octet-stream', 'The asset.'), 404: MatrixErrorBody },
  async handler(req) {
    const cache = { 'Cache-Control': 'public, max-age=3600' };
    const asset = req.params.asset;
    if (asset === 'swagger-initializer.js') {
      return reply(200, INITIALIZER, { ...cache, 'Content-Type': CONTENT_TYPES['swagger-ui-bundle.js'] });
    }
    if (!Object.hasOwn(CONTENT_TYPES, asset)) throw MatrixError.notFound(`No documentation asset '${asset}'`);
    const contentType = CONTENT_TYPES[asset as keyof typeof CONTENT_TYPES];
    const bytes = await readFile(path.join(swaggerUiDirectory(), asset));
    return reply(200, bytes, { ...cache, 'Content-Type': contentType });
  },
});

function swaggerUiDirectory(): string {
  return path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
}

export const docsRoutes = [getDocsPage, getOpenApiDocument, getDocsAsset];
