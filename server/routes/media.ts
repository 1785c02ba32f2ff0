/**
 * client-server "Content repository" (content-repo.yaml, authed-content-repo.yaml):
 *   POST /_matrix/media/v3/upload
 *   POST /_matrix/media/v1/create
 *   PUT  /_matrix/media/v3/upload/{serverName}/{mediaId}
 *   GET  /_matrix/client/v1/media/config                 (and deprecated /_matrix/media/v3/config)
 *   GET  /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}]
 *   GET  /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}
 *   GET  /_matrix/client/v1/media/preview_url           (and deprecated /_matrix/media/v3/preview_url)
 *   GET  /_matrix/media/v3/download/..., /thumbnail/...  (deprecated, unauthenticated: see
 *        media.unauthenticated_reads, the spec's "freeze")
 *   GET  /_matrix/client/unstable/io.myelin/media/preview/{serverName}/{mediaId}  (what we learnt at upload)
 * Every piece of media is served with its sniffed type, a safe
 * Content-Disposition, the spec's Content-Security-Policy, an ETag and ranges.
 */
import type { Readable } from 'node:stream';
import { type TSchema, Type } from '@sinclair/typebox';
import type { MediaBlob } from '../../storage/media-store.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, type Route, rawResponse, reply } from '../http/route.js';
import { contentDisposition, MEDIA_CONTENT_SECURITY_POLICY } from '../media/content-type.js';
import { PREVIEW_KEY } from '../media/media-service.js';

const TAGS = ['Content repository'];
const MAX_WAIT_MS = 60_000;
const DEFAULT_WAIT_MS = 20_000;

const ServerNameParam = Type.String({ description: 'The server name from the mxc:// URI (the authority).' });
const MediaIdParam = Type.String({ description: 'The media ID from the mxc:// URI (the path).' });
const FileNameParam = Type.String({ description: 'A file name to give in Content-Disposition.' });
const TimeoutQuery = Type.Optional(
  Type.Integer({
    minimum: 0,
    description: 'How long to wait for media that is not uploaded yet (default 20000, at most 60000).',
  }),
);

const UploadQuery = Type.Object({
  filename: Type.Optional(Type.String({ description: 'The name of the file being uploaded.' })),
});

const Preview = Type.Record(Type.String(), Type.Unknown(), {
  description: `What the server learnt of the file: mimetype, size, and for images w, h and blurhash; for audio and video duration (ms).`,
});

const UploadResponse = Type.Object(
  {
    content_uri: Type.String({ description: 'The mxc:// URI of the uploaded content.' }),
    [PREVIEW_KEY]: Type.Optional(Preview),
  },
  { description: 'The content was uploaded.' },
);

const MEDIA_HEADERS_DESCRIPTION =
  'The content, with its sniffed Content-Type, Content-Disposition, Content-Security-Policy and ETag.';
const mediaResponses = {
  200: rawResponse('application/octet-stream', MEDIA_HEADERS_DESCRIPTION),
  206: rawResponse('application/octet-stream', 'The requested byte range (Range header).'),
  304: rawResponse('application/octet-stream', 'Not modified (If-None-Match matched the ETag).'),
  404: MatrixErrorBody,
};

function streamBody(description: string) {
  return { contentType: 'application/octet-stream', description };
}

function uploadRequestOf(
  req: { headers: Record<string, string | string[] | undefined>; bodyStream(): Readable },
  userId: string,
  fileName: string | undefined,
) {
  const length = req.headers['content-length'];
  const claimed = req.headers['content-type'];
  return {
    userId,
    body: req.bodyStream(),
    claimedType: typeof claimed === 'string' ? claimed : undefined,
    fileName: fileName ?? null,
    contentLength: typeof length === 'string' && /^\d+$/.test(length) ? Number(length) : undefined,
  };
}

const upload = defineRoute({
  method: 'POST',
  path: '/_matrix/media/v3/upload',
  operationId: 'uploadContent',
  summary: 'Upload some content to the content repository.',
  description: `The response carries, under \`${PREVIEW_KEY}\`, what the server learnt of the file (dimensions, blurhash...).`,
  tags: TAGS,
  resource: 'media',
  auth: 'access-token',
  rateLimit: 'client',
  request: { query: UploadQuery, streamBody: streamBody('The content to be uploaded.') },
  responses: { 200: UploadResponse, 413: MatrixErrorBody },
  async handler(req, hs) {
    const result = await hs.media.upload(uploadRequestOf(req, req.requester.userId, req.query.filename));
    return reply(200, {
      content_uri: result.contentUri,
      ...(result.preview ? { [PREVIEW_KEY]: result.preview } : {}),
    });
  },
});

const create = defineRoute({
  method: 'POST',
  path: '/_matrix/media/v1/create',
  operationId: 'createContent',
  summary: 'Create a content URI without content, to upload into later.',
  tags: TAGS,
  resource: 'media',
  auth: 'access-token',
  rateLimit: 'client',
  responses: {
    200: Type.Object(
      {
        content_uri: Type.String({ description: 'The mxc:// URI to upload into.' }),
        unused_expires_at: Type.Integer({ description: 'When the URI expires if nothing is uploaded (ms).' }),
      },
      { description: 'The URI was created.' },
    ),
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { mediaId, unusedExpiresTs } = await hs.media.create(req.requester.userId);
    return reply(200, {
      content_uri: `mxc://${hs.config.server_name}/${mediaId}`,
      unused_expires_at: unusedExpiresTs,
    });
  },
});

const uploadInto = defineRoute({
  method: 'PUT',
  path: '/_matrix/media/v3/upload/{serverName}/{mediaId}',
  operationId: 'uploadContentToMXC',
  summary: 'Upload content to an mxc:// URI created earlier.',
  tags: TAGS,
  resource: 'media',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({ serverName: ServerNameParam, mediaId: MediaIdParam }),
    query: UploadQuery,
    streamBody: streamBody('The content to be uploaded.'),
  },
  responses: {
    200: Type.Object({ [PREVIEW_KEY]: Type.Optional(Preview) }, { description: 'The content was uploaded.' }),
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    409: MatrixErrorBody,
    413: MatrixErrorBody,
  },
  async handler(req, hs) {
    const preview = await hs.media.uploadInto(
      req.params.serverName,
      req.params.mediaId,
      uploadRequestOf(req, req.requester.userId, req.query.filename),
    );
    return reply(200, preview ? { [PREVIEW_KEY]: preview } : {});
  },
});

function configRoute(path: string, operationId: string, deprecated: boolean): Route {
  return defineRoute({
    method: 'GET',
    path,
    operationId,
    summary: deprecated
      ? 'Get the configuration for the content repository (deprecated).'
      : 'Get the configuration for the content repository.',
    tags: TAGS,
    resource: deprecated ? 'media' : 'client',
    auth: 'access-token',
    rateLimit: 'client',
    responses: {
      200: Type.Object(
        { 'm.upload.size': Type.Optional(Type.Integer({ description: 'The largest upload, in bytes.' })) },
        { description: 'The public content repository configuration.' },
      ),
    },
    async handler(_req, hs) {
      return reply(200, { 'm.upload.size': hs.config.media.max_upload_bytes });
    },
  }) as Route;
}

/** Range: bytes=a-b | a- | -n; one range only (several: the whole file). Undefined: serve it all. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) {
    throw new MatrixError(
      416,
      'M_UNKNOWN',
      'Requested range not satisfiable',
      {},
      {
        'Content-Range': `bytes */${size}`,
      },
    );
  }
  return { start, end };
}

/** The headers every piece of media carries (content_repo: CSP, CORP), plus type, name and caching. */
async function serve(
  hs: HomeserverContext,
  headers: Record<string, string | string[] | undefined>,
  blob: MediaBlob,
  contentType: string,
  fileName: string | null,
) {
  const etag = `"${blob.sha256}"`;
  const common: Record<string, string> = {
    'Content-Type': contentType,
    'Content-Disposition': contentDisposition(contentType, fileName),
    'Content-Security-Policy': MEDIA_CONTENT_SECURITY_POLICY,
    'Cross-Origin-Resource-Policy': 'cross-origin',
    'X-Content-Type-Options': 'nosniff',
    ETag: etag,
    // Content behind an mxc:// URI never changes; authenticated, so private caches only.
    'Cache-Control': 'private, max-age=31536000, immutable',
    'Accept-Ranges': 'bytes',
  };
  const ifNoneMatch = headers['if-none-match'];
  if (typeof ifNoneMatch === 'string' && ifNoneMatch.split(',').some((tag) => tag.trim() === etag)) {
    return reply(304 as const, '', common);
  }
  const rangeHeader = headers.range;
  const range = parseRange(typeof rangeHeader === 'string' ? rangeHeader : undefined, blob.size);
  const body = await hs.media.open(blob, range);
  if (range) {
    return reply(206 as const, body, {
      ...common,
      'Content-Length': String(range.end - range.start + 1),
      'Content-Range': `bytes ${range.start}-${range.end}/${blob.size}`,
    });
  }
  return reply(200 as const, body, { ...common, 'Content-Length': String(blob.size) });
}

function waitOf(timeoutMs: number | undefined): number {
  return Math.min(timeoutMs ?? DEFAULT_WAIT_MS, MAX_WAIT_MS);
}

function downloadRoutes(prefix: string, authenticated: boolean): Route[] {
  const auth = authenticated ? ('access-token' as const) : ('none' as const);
  const resource = authenticated ? ('client' as const) : ('media' as const);
  const deprecated = authenticated ? '' : ' (deprecated, unauthenticated)';
  const suffix = authenticated ? 'Authed' : '';
  const query = Type.Object({
    timeout_ms: TimeoutQuery,
    allow_redirect: Type.Optional(Type.Boolean({ description: 'Ignored: this server never redirects.' })),
    ...(authenticated
      ? {}
      : { allow_remote: Type.Optional(Type.Boolean({ description: 'Ignored until federation.' })) }),
  });
  const download = (withName: boolean) =>
    defineRoute({
      method: 'GET',
      path: `${prefix}/download/{serverName}/{mediaId}${withName ? '/{fileName}' : ''}`,
      operationId: `getContent${withName ? 'OverrideName' : ''}${suffix}`,
      summary: `Download content from the content repository${withName ? ', with a file name' : ''}${deprecated}.`,
      tags: TAGS,
      resource,
      auth,
      rateLimit: 'client',
      request: {
        params: Type.Object({
          serverName: ServerNameParam,
          mediaId: MediaIdParam,
          ...(withName ? { fileName: FileNameParam } : {}),
        }) as TSchema,
        query,
      },
      responses: mediaResponses,
      async handler(req, hs) {
        const params = req.params as { serverName: string; mediaId: string; fileName?: string };
        const record = await hs.media.resolve(params.serverName, params.mediaId, {
          authenticated,
          waitMs: waitOf((req.query as { timeout_ms?: number }).timeout_ms),
        });
        return serve(hs, req.headers, record.blob, record.contentType, params.fileName ?? record.uploadName);
      },
    }) as Route;

  const thumbnail = defineRoute({
    method: 'GET',
    path: `${prefix}/thumbnail/{serverName}/{mediaId}`,
    operationId: `getContentThumbnail${suffix}`,
    summary: `Download a thumbnail of the content${deprecated}.`,
    description:
      'The size snaps up to the nearest recommended size (32x32 and 96x96 crop, 320x240, 640x480 and 800x600 scale); thumbnails are made on first request and cached.',
    tags: TAGS,
    resource,
    auth,
    rateLimit: 'client',
    request: {
      params: Type.Object({ serverName: ServerNameParam, mediaId: MediaIdParam }),
      query: Type.Object({
        width: Type.Integer({ minimum: 1, description: 'The desired width of the thumbnail.' }),
        height: Type.Integer({ minimum: 1, description: 'The desired height of the thumbnail.' }),
        method: Type.Optional(
          Type.Union([Type.Literal('crop'), Type.Literal('scale')], {
            description: 'crop fills the size exactly, scale fits inside it (default scale).',
          }),
        ),
        animated: Type.Optional(
          Type.Boolean({ description: 'Prefer an animated thumbnail for GIF and WebP.' }),
        ),
        timeout_ms: TimeoutQuery,
        allow_redirect: Type.Optional(Type.Boolean({ description: 'Ignored: this server never redirects.' })),
        ...(authenticated
          ? {}
          : { allow_remote: Type.Optional(Type.Boolean({ description: 'Ignored until federation.' })) }),
      }),
    },
    responses: { ...mediaResponses, 400: MatrixErrorBody, 413: MatrixErrorBody },
    async handler(req, hs) {
      const { serverName, mediaId } = req.params;
      const options = { authenticated, waitMs: waitOf(req.query.timeout_ms) };
      const size = {
        width: req.query.width,
        height: req.query.height,
        method: req.query.method ?? 'scale',
        animated: req.query.animated ?? false,
      };
      // Another server's media: its thumbnail is asked of that server, not made from the whole file.
      const thumbnail =
        serverName === hs.config.server_name
          ? await hs.media.thumbnail(await hs.media.resolve(serverName, mediaId, options), size)
          : await hs.media.remoteThumbnail(serverName, mediaId, size, options);
      return serve(hs, req.headers, thumbnail.blob, thumbnail.contentType, null);
    },
  }) as Route;
  return [download(false), download(true), thumbnail];
}

function previewUrlRoute(path: string, operationId: string, deprecated: boolean): Route {
  return defineRoute({
    method: 'GET',
    path,
    operationId,
    summary: `Get information about a URL for a client${deprecated ? ' (deprecated)' : ''}.`,
    description:
      'OpenGraph data of the page; og:image is fetched and stored as media. Loopback, private, link-local and multicast addresses are refused (403) unless allowlisted in media.url_preview.',
    tags: TAGS,
    resource: deprecated ? 'media' : 'client',
    auth: 'access-token',
    rateLimit: 'client',
    request: {
      query: Type.Object({
        url: Type.String({ description: 'The URL to get a preview of.' }),
        ts: Type.Optional(
          Type.Integer({ description: 'Preferred point in time (ignored: the newest is served).' }),
        ),
      }),
    },
    responses: {
      200: Type.Record(Type.String(), Type.Unknown(), {
        description: 'The OpenGraph data for the URL, which may be empty.',
      }),
      403: MatrixErrorBody,
      502: MatrixErrorBody,
    },
    async handler(req, hs) {
      return reply(200, await hs.urlPreviews.preview(req.query.url, req.requester.userId));
    },
  }) as Route;
}

const previewOf = defineRoute({
  method: 'GET',
  path: '/_matrix/client/unstable/io.myelin/media/preview/{serverName}/{mediaId}',
  operationId: 'getMediaPreviewFacts',
  summary: `What the server learnt of uploaded media (the upload response's ${PREVIEW_KEY}).`,
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ serverName: ServerNameParam, mediaId: MediaIdParam }) },
  responses: { 200: Preview, 404: MatrixErrorBody },
  async handler(req, hs) {
    const record = await hs.media.resolve(req.params.serverName, req.params.mediaId, {
      authenticated: true,
      waitMs: 0,
    });
    return reply(200, record.preview ?? { mimetype: record.contentType, size: record.blob.size });
  },
});

export const mediaRoutes: readonly Route[] = [
  upload as Route,
  create as Route,
  uploadInto as Route,
  configRoute('/_matrix/client/v1/media/config', 'getConfigAuthed', false),
  configRoute('/_matrix/media/v3/config', 'getConfig', true),
  ...downloadRoutes('/_matrix/client/v1/media', true),
  ...downloadRoutes('/_matrix/media/v3', false),
  previewUrlRoute('/_matrix/client/v1/media/preview_url', 'getUrlPreviewAuthed', false),
  previewUrlRoute('/_matrix/media/v3/preview_url', 'getUrlPreview', true),
  previewOf as Route,
];
