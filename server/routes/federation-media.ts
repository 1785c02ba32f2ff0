/**
 * server-server "Content Repository" (v1.11+, content_repository.yaml), this server's own media only:
 *   GET /_matrix/federation/v1/media/download/{mediaId}
 *   GET /_matrix/federation/v1/media/thumbnail/{mediaId}
 * X-Matrix authenticated. The answer is multipart/mixed: a JSON metadata part (empty), then
 * the bytes with their Content-Type and Content-Disposition (never a redirect).
 *
 * Servers from before v1.11 (Synapse 1.67 among them) fetch media at the deprecated client
 * path on the federation listener instead, signed with X-Matrix like any server request:
 *   GET /_matrix/media/r0/download/{serverName}/{mediaId}[/{fileName}]
 *   GET /_matrix/media/r0/thumbnail/{serverName}/{mediaId}
 * served here for this server's media only, as plain bytes. Being signed by a server, they
 * are authenticated requests: media frozen to authenticated reads is served to them too.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import { encodeMultipartMixed } from '../../protocol/multipart.js';
import type { MediaBlob } from '../../storage/media-store.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, type Route, rawResponse, reply } from '../http/route.js';
import { contentDisposition } from '../media/content-type.js';

const TAGS = ['Federation media'];
const DEFAULT_WAIT_MS = 20_000;
const MAX_WAIT_MS = 60_000;
const MediaIdParams = Type.Object({
  mediaId: Type.String({ description: 'The media ID of an mxc:// URI of this server.' }),
});
const TimeoutQuery = Type.Optional(
  Type.Integer({
    minimum: 0,
    description: 'How long to wait for media not uploaded yet (default 20000, at most 60000).',
  }),
);
const responses = {
  200: rawResponse(
    'multipart/mixed',
    'A JSON metadata part, then the content with its Content-Type and Content-Disposition.',
  ),
  400: MatrixErrorBody,
  404: MatrixErrorBody,
  413: MatrixErrorBody,
  502: MatrixErrorBody,
};

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function multipartReply(
  hs: HomeserverContext,
  blob: MediaBlob,
  contentType: string,
  fileName: string | null,
) {
  const bytes = await readAll(await hs.media.open(blob));
  const { contentType: multipartType, body } = encodeMultipartMixed(
    [
      { headers: { 'Content-Type': 'application/json' }, body: '{}' },
      {
        headers: {
          'Content-Type': contentType,
          'Content-Disposition': contentDisposition(contentType, fileName),
        },
        body: bytes,
      },
    ],
    randomBytes(16).toString('hex'),
  );
  return reply(200 as const, body, { 'Content-Type': multipartType, 'Content-Length': String(body.length) });
}

/** This server's media for a peer, waiting a while (at most MAX_WAIT_MS) for an upload under way. */
function ownMedia(hs: HomeserverContext, mediaId: string, timeoutMs: number | undefined) {
  return hs.media.resolve(hs.config.server_name, mediaId, {
    authenticated: true,
    waitMs: Math.min(timeoutMs ?? DEFAULT_WAIT_MS, MAX_WAIT_MS),
  });
}

/** A thumbnail of this server's media at the size a peer asks (scaled, still, unless told). */
async function ownThumbnail(
  hs: HomeserverContext,
  mediaId: string,
  query: {
    width: number;
    height: number;
    method?: 'crop' | 'scale' | undefined;
    animated?: boolean | undefined;
    timeout_ms?: number | undefined;
  },
) {
  return hs.media.thumbnail(await ownMedia(hs, mediaId, query.timeout_ms), {
    width: query.width,
    height: query.height,
    method: query.method ?? 'scale',
    animated: query.animated ?? false,
  });
}

/** The thumbnail size a peer asks for, on the current and the deprecated path alike. */
const thumbnailSizeQuery = {
  width: Type.Integer({ minimum: 1, description: 'The desired width.' }),
  height: Type.Integer({ minimum: 1, description: 'The desired height.' }),
  method: Type.Optional(
    Type.Union([Type.Literal('crop'), Type.Literal('scale')], {
      description: 'crop or scale (default scale).',
    }),
  ),
  animated: Type.Optional(Type.Boolean({ description: 'Prefer an animated thumbnail.' })),
};

export const federationDownload = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/media/download/{mediaId}',
  operationId: 'getFederationContent',
  summary: 'Download content of this server for another server.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: { params: MediaIdParams, query: Type.Object({ timeout_ms: TimeoutQuery }) },
  responses,
  async handler(req, hs) {
    const record = await ownMedia(hs, req.params.mediaId, req.query.timeout_ms);
    return multipartReply(hs, record.blob, record.contentType, record.uploadName);
  },
});

export const federationThumbnail = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/media/thumbnail/{mediaId}',
  operationId: 'getFederationContentThumbnail',
  summary: 'Download a thumbnail of content of this server for another server.',
  description: 'The size snaps up to the nearest recommended size, as for the client endpoint.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    params: MediaIdParams,
    query: Type.Object({
      ...thumbnailSizeQuery,
      timeout_ms: TimeoutQuery,
    }),
  },
  responses,
  async handler(req, hs) {
    const thumbnail = await ownThumbnail(hs, req.params.mediaId, req.query);
    return multipartReply(hs, thumbnail.blob, thumbnail.contentType, null);
  },
});

const LEGACY_PREFIX = '/_matrix/media/r0';
const LegacyParams = Type.Object({
  serverName: Type.String({ description: "This server (other servers' media is not relayed)." }),
  mediaId: Type.String({ description: 'The media ID.' }),
});
const legacyResponses = {
  200: rawResponse('application/octet-stream', 'The content with its Content-Type and Content-Disposition.'),
  400: MatrixErrorBody,
  401: MatrixErrorBody,
  404: MatrixErrorBody,
};

/** Only our own media: a peer asking us for a third server's media gets a 404 (allow_remote=false). */
function checkOwnMedia(hs: HomeserverContext, serverName: string): void {
  if (serverName !== hs.config.server_name) throw MatrixError.notFound('Media not found');
}

async function plainReply(
  hs: HomeserverContext,
  blob: MediaBlob,
  contentType: string,
  fileName: string | null,
) {
  return reply(200 as const, await hs.media.open(blob), {
    'Content-Type': contentType,
    'Content-Disposition': contentDisposition(contentType, fileName),
    'Content-Length': String(blob.size),
  });
}

const legacyDownload = (withName: boolean) =>
  defineRoute({
    method: 'GET',
    path: `${LEGACY_PREFIX}/download/{serverName}/{mediaId}${withName ? '/{fileName}' : ''}`,
    operationId: `getLegacyFederationContent${withName ? 'OverrideName' : ''}`,
    summary: 'Download content of this server for a server from before v1.11 (deprecated path).',
    tags: TAGS,
    resource: 'federation',
    auth: 'x-matrix',
    rateLimit: 'federation',
    request: {
      params: withName
        ? Type.Composite([
            LegacyParams,
            Type.Object({ fileName: Type.String({ description: 'A file name.' }) }),
          ])
        : LegacyParams,
      query: Type.Object({
        allow_remote: Type.Optional(Type.Boolean({ description: 'Ignored: only our own media is served.' })),
        timeout_ms: TimeoutQuery,
      }),
    },
    responses: legacyResponses,
    async handler(req, hs) {
      const params = req.params as { serverName: string; mediaId: string; fileName?: string };
      checkOwnMedia(hs, params.serverName);
      const record = await ownMedia(hs, params.mediaId, req.query.timeout_ms);
      return plainReply(hs, record.blob, record.contentType, params.fileName ?? record.uploadName);
    },
  }) as Route;

export const legacyFederationThumbnail = defineRoute({
  method: 'GET',
  path: `${LEGACY_PREFIX}/thumbnail/{serverName}/{mediaId}`,
  operationId: 'getLegacyFederationContentThumbnail',
  summary: 'Download a thumbnail of content of this server for a server from before v1.11 (deprecated path).',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    params: LegacyParams,
    query: Type.Object({
      ...thumbnailSizeQuery,
      allow_remote: Type.Optional(Type.Boolean({ description: 'Ignored: only our own media is served.' })),
      timeout_ms: TimeoutQuery,
    }),
  },
  responses: legacyResponses,
  async handler(req, hs) {
    checkOwnMedia(hs, req.params.serverName);
    const thumbnail = await ownThumbnail(hs, req.params.mediaId, req.query);
    return plainReply(hs, thumbnail.blob, thumbnail.contentType, null);
  },
});

export const federationMediaRoutes = [
  federationDownload,
  federationThumbnail,
  legacyDownload(false),
  legacyDownload(true),
  legacyFederationThumbnail,
];
