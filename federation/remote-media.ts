/**
 * Media of other servers for our clients (client-server "Content repository": the
 * server fetches remote media and caches it): fetched once over federation
 * (server-server GET /_matrix/federation/v1/media/download, multipart/mixed), kept
 * under the origin's server name and media ID, and served from the copy after.
 * Thumbnails are asked of the origin (GET /_matrix/federation/v1/media/thumbnail) and kept
 * as thumbnails, without downloading the whole file.
 * Requests go through the signed federation client only (its resolver, TLS checks,
 * allow list and size cap), never to a URL a remote server names: a part that
 * redirects with Location is not followed.
 */
import type { Logger } from 'pino';
import { decodeMultipart, type MultipartPart, multipartBoundary } from '../protocol/multipart.js';
import type { MediaService, RemoteMediaSource } from '../server/media/media-service.js';
import type { MediaRecord } from '../storage/media-store.js';
import type { Storage } from '../storage/storage.js';
import { type FederationClient, FederationRequestError, isUnrecognizedEndpoint } from './federation.js';

/** Room for the multipart framing around the largest media accepted. */
const FRAMING_BYTES = 64 * 1024;
const REMOTE_MEDIA_TIMEOUT_MS = 30_000;

type BytesAnswer = Awaited<ReturnType<NonNullable<FederationClient['requestBytes']>>>;

export function createRemoteMediaSource(deps: {
  readonly client: FederationClient;
  readonly storage: Pick<Storage, 'media'>;
  readonly media: () => MediaService;
  readonly maxBytes: number;
  readonly log: Logger;
}): RemoteMediaSource {
  /** One fetch per media at a time: concurrent downloads of the same media wait for it. */
  const inFlight = new Map<string, Promise<MediaRecord | null>>();

  /** GET /_matrix/federation/v1/media/{download,thumbnail}/{mediaId}: the multipart answer, framing allowed for. */
  const federationMedia = (
    serverName: string,
    endpoint: 'download' | 'thumbnail',
    mediaId: string,
    query: Record<string, string | number | boolean | undefined>,
  ): Promise<BytesAnswer> =>
    deps.client.requestBytes!({
      destination: serverName,
      method: 'GET',
      path: `/_matrix/federation/v1/media/${endpoint}/${encodeURIComponent(mediaId)}`,
      query: { ...query, timeout_ms: 20_000 },
      timeoutMs: REMOTE_MEDIA_TIMEOUT_MS,
      maxResponseBytes: deps.maxBytes + FRAMING_BYTES,
    });

  /**
   * Servers older than v1.11 (Synapse before 1.107 among them) do not know the federation
   * media endpoint: they answer M_UNRECOGNIZED (404, or 400 as Synapse 1.67 does) and serve
   * their media at the deprecated client download path, which the spec says to fall back to.
   */
  const legacyDownload = async (serverName: string, mediaId: string): Promise<MediaRecord | null> => {
    const answer = await deps.client.requestBytes!({
      destination: serverName,
      method: 'GET',
      path: `/_matrix/media/v3/download/${encodeURIComponent(serverName)}/${encodeURIComponent(mediaId)}`,
      query: { allow_remote: false, timeout_ms: 20_000 },
      timeoutMs: REMOTE_MEDIA_TIMEOUT_MS,
      maxResponseBytes: deps.maxBytes,
    });
    const contentType = answer.headers['content-type'];
    const disposition = answer.headers['content-disposition'];
    return deps.media().storeRemote(serverName, mediaId, {
      bytes: answer.body,
      contentType: typeof contentType === 'string' ? contentType : 'application/octet-stream',
      fileName: fileNameOf(typeof disposition === 'string' ? disposition : undefined),
    });
  };

  const download = async (serverName: string, mediaId: string): Promise<MediaRecord | null> => {
    if (deps.client.requestBytes === undefined) return null;
    let answer: BytesAnswer;
    try {
      answer = await federationMedia(serverName, 'download', mediaId, {});
    } catch (firstError) {
      let error = firstError;
      if (isUnrecognizedEndpoint(firstError)) {
        try {
          return await legacyDownload(serverName, mediaId);
        } catch (legacyError) {
          error = legacyError;
        }
      }
      if (!(error instanceof FederationRequestError && error.status === 404)) {
        deps.log.info({ err: error, serverName, mediaId }, 'Could not fetch remote media');
      }
      return null;
    }
    const content = inlineContentPart(answer);
    if (content === null) return null;
    return deps.media().storeRemote(serverName, mediaId, {
      bytes: content.body,
      contentType: content.headers['content-type'] ?? 'application/octet-stream',
      fileName: fileNameOf(content.headers['content-disposition']),
    });
  };

  /** GET /_matrix/federation/v1/media/thumbnail: the thumbnail the origin makes; null when it has none. */
  const thumbnail: NonNullable<RemoteMediaSource['fetchThumbnail']> = async (serverName, mediaId, size) => {
    if (deps.client.requestBytes === undefined) return null;
    let answer: BytesAnswer;
    try {
      answer = await federationMedia(serverName, 'thumbnail', mediaId, {
        width: size.width,
        height: size.height,
        method: size.method,
        animated: size.animated,
      });
    } catch (error) {
      if (!(error instanceof FederationRequestError && error.status === 404)) {
        deps.log.info({ err: error, serverName, mediaId }, 'Could not fetch a remote thumbnail');
      }
      return null;
    }
    const content = inlineContentPart(answer);
    if (content === null) return null;
    const type = (content.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    // Only images are served as thumbnails: anything else from the origin is not one.
    if (!type.startsWith('image/')) return null;
    return { bytes: content.body, contentType: type };
  };

  return {
    fetchThumbnail: thumbnail,
    async fetch(serverName, mediaId) {
      const cached = await deps.storage.media.getMedia(serverName, mediaId);
      if (cached !== null && cached.blob !== null) return cached;
      const key = `${serverName}/${mediaId}`;
      let pending = inFlight.get(key);
      if (pending === undefined) {
        pending = download(serverName, mediaId).finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      return pending;
    },
  };
}

/** The file name of a Content-Disposition header (filename*=utf-8'' first, then filename). */
export function fileNameOf(disposition: string | undefined): string | null {
  if (disposition === undefined) return null;
  const extended = /filename\*\s*=\s*utf-8''([^;]+)/i.exec(disposition);
  if (extended) {
    try {
      return decodeURIComponent(extended[1]!.trim());
    } catch {
      return null;
    }
  }
  const plain = /filename\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(disposition);
  return plain?.[1] ?? plain?.[2] ?? null;
}

/**
 * The content part of a federation media answer (multipart/mixed: JSON metadata, then the
 * bytes); null when it is not multipart or the origin redirects (a `Location` part).
 */
function inlineContentPart(answer: {
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}): MultipartPart | null {
  const contentType = answer.headers['content-type'];
  const boundary = multipartBoundary(typeof contentType === 'string' ? contentType : undefined);
  if (boundary === undefined) return null;
  const content = decodeMultipart(answer.body, boundary)[1];
  return content === undefined || content.headers.location !== undefined ? null : content;
}
