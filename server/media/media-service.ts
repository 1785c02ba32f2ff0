/**
 * The content repository (client-server "Content repository"): uploads
 * (direct and asynchronous), lookups for download, thumbnails, quarantine.
 * Uploads stream: body -> size limit -> metadata stripping -> hash ->
 * (encryption) -> temporary file; then the bytes are sniffed, images
 * described (blurhash) and perhaps re-encoded, audio and video perhaps
 * transcoded, and the smallest form is committed under its hash.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { JsonObject } from '../../protocol/events.js';
import type { MediaBlob, MediaRecord, ThumbnailMethod } from '../../storage/media-store.js';
import type { Storage } from '../../storage/storage.js';
import type { MyelinConfig } from '../config/index.js';
import { MatrixError } from '../errors.js';
import type { BlobStore, ByteRange, PendingBlob } from './blob-store.js';
import { sniffContentType } from './content-type.js';
import {
  describeImage,
  type ImageSource,
  ImageTooLargeError,
  isDecodableImage,
  makeThumbnail,
  reencodeImage,
} from './image-processing.js';
import { createMetadataStripper } from './metadata-stripper.js';
import type { Transcoder } from './transcoder.js';

/** The namespaced key of the upload response (and of GET .../preview) carrying what we learnt of the file. */
export const PREVIEW_KEY = 'io.myelin.preview';

/**
 * The seam for media of other servers: federation fetches and caches them
 * (federation/remote-media.ts). Without federation every remote media ID is
 * unknown (404 M_NOT_FOUND).
 */
export interface RemoteMediaSource {
  fetch(serverName: string, mediaId: string): Promise<MediaRecord | null>;
  /** A thumbnail made by the origin server (federation media/thumbnail); null when it gives none. */
  fetchThumbnail?(
    serverName: string,
    mediaId: string,
    size: { width: number; height: number; method: ThumbnailMethod; animated: boolean },
  ): Promise<{ bytes: Buffer; contentType: string } | null>;
}

export const noRemoteMedia: RemoteMediaSource = {
  async fetch() {
    return null;
  },
};

/** content_repo "Thumbnails": the sizes servers should pre-compute; requests snap up to one of these. */
export const RECOMMENDED_THUMBNAILS: readonly { width: number; height: number; method: ThumbnailMethod }[] = [
  { width: 32, height: 32, method: 'crop' },
  { width: 96, height: 96, method: 'crop' },
  { width: 320, height: 240, method: 'scale' },
  { width: 640, height: 480, method: 'scale' },
  { width: 800, height: 600, method: 'scale' },
];

export interface UploadRequest {
  readonly userId: string;
  readonly body: Readable;
  readonly claimedType: string | undefined;
  readonly fileName: string | null;
  readonly contentLength: number | undefined;
}

export interface MediaServiceDeps {
  readonly config: MyelinConfig;
  readonly storage: Storage;
  readonly blobs: BlobStore;
  readonly transcoder: Transcoder;
  readonly remote: RemoteMediaSource;
  readonly log: Logger;
}

export class MediaService {
  private readonly uploaded = new EventEmitter();
  /** Commits and the clean-up's deletions of blob files take turns (see removeBlob). */
  private blobLock: Promise<unknown> = Promise.resolve();
  private noteStored!: () => void;
  /** Settles when this service first stores anything (the clean-up job waits for it: retention.ts). */
  readonly firstStored = new Promise<void>((resolve) => {
    this.noteStored = resolve;
  });

  constructor(private readonly deps: MediaServiceDeps) {
    this.uploaded.setMaxListeners(0);
  }

  private get media() {
    return this.deps.config.media;
  }

  private get serverName() {
    return this.deps.config.server_name;
  }

  /** POST /_matrix/media/v1/create: an ID to upload into later. */
  async create(userId: string): Promise<{ mediaId: string; unusedExpiresTs: number }> {
    const now = Date.now();
    const pending = await this.deps.storage.media.pendingUploadCount(userId, now);
    if (pending >= this.media.max_pending_uploads) throw MatrixError.limitExceeded(60_000);
    const mediaId = newMediaId();
    const unusedExpiresTs = now + this.media.unused_id_lifetime_ms;
    await this.deps.storage.media.reserveMedia({
      serverName: this.serverName,
      mediaId,
      userId,
      createdTs: now,
      unusedExpiresTs,
      authenticatedOnly: this.media.unauthenticated_reads !== 'open',
    });
    this.noteStored();
    return { mediaId, unusedExpiresTs };
  }

  /** PUT /_matrix/media/v3/upload/{serverName}/{mediaId}: fills an ID from /create. */
  async uploadInto(serverName: string, mediaId: string, upload: UploadRequest): Promise<JsonObject | null> {
    const record =
      serverName === this.serverName ? await this.deps.storage.media.getMedia(serverName, mediaId) : null;
    if (!record || (record.blob === null && (record.unusedExpiresTs ?? 0) <= Date.now())) {
      throw MatrixError.notFound('Unknown media ID');
    }
    if (record.userId !== upload.userId) throw MatrixError.forbidden('This media ID belongs to someone else');
    if (record.blob !== null) throw MatrixError.of('M_CANNOT_OVERWRITE_MEDIA', 'Media already uploaded');
    return this.store(mediaId, upload, record.createdTs, record.authenticatedOnly);
  }

  /** POST /_matrix/media/v3/upload: a new ID with the content; resolves the mxc URI and the preview facts. */
  async upload(upload: UploadRequest): Promise<{ contentUri: string; preview: JsonObject | null }> {
    const mediaId = newMediaId();
    const preview = await this.store(
      mediaId,
      upload,
      Date.now(),
      this.media.unauthenticated_reads !== 'open',
    );
    return { contentUri: `mxc://${this.serverName}/${mediaId}`, preview };
  }

  private async store(
    mediaId: string,
    upload: UploadRequest,
    createdTs: number,
    authenticatedOnly: boolean,
  ): Promise<JsonObject | null> {
    const used = await this.checkQuota(upload.userId, upload.contentLength ?? 0);
    if (upload.contentLength !== undefined && upload.contentLength > this.media.max_upload_bytes) {
      throw MatrixError.tooLarge(`Upload too large (limit ${this.media.max_upload_bytes} bytes)`);
    }
    const { pending, contentType } = await this.receive(upload);
    let kept = pending;
    let keptType = contentType;
    try {
      if (this.media.user_quota_bytes > 0 && used + pending.blob.size > this.media.user_quota_bytes) {
        throw MatrixError.tooLarge('Media quota exceeded');
      }
      ({ pending: kept, contentType: keptType } = await this.compress(pending, contentType, this.deps.log));
      const preview = await this.describe(kept, keptType);
      const stored = await this.commit(kept, async () =>
        this.deps.storage.media.putMediaContent(
          {
            serverName: this.serverName,
            mediaId,
            userId: upload.userId,
            createdTs,
            blob: kept.blob,
            contentType: keptType,
            uploadName: upload.fileName,
            originalSize: pending.receivedBytes,
            authenticatedOnly,
            preview,
          },
          Date.now(),
        ),
      );
      if (!stored) throw MatrixError.of('M_CANNOT_OVERWRITE_MEDIA', 'Media already uploaded');
      this.uploaded.emit(mediaId);
      return preview;
    } finally {
      await this.deps.blobs.discard(pending);
      if (kept !== pending) await this.deps.blobs.discard(kept);
    }
  }

  private async checkQuota(userId: string, incoming: number): Promise<number> {
    if (this.media.user_quota_bytes === 0) return 0;
    const used = await this.deps.storage.media.userUsageBytes(userId);
    if (used + incoming > this.media.user_quota_bytes) throw MatrixError.tooLarge('Media quota exceeded');
    return used;
  }

  /** Streams the body to a temporary blob, stripping metadata when the first bytes say JPEG or PNG. */
  private async receive(upload: UploadRequest): Promise<{ pending: PendingBlob; contentType: string }> {
    const pending = await this.deps.blobs.write(upload.body, {
      limit: this.media.max_upload_bytes,
      transform: this.media.compression.strip_image_metadata ? createMetadataStripper() : undefined,
    });
    return { pending, contentType: await sniffContentType(pending.head, upload.claimedType) };
  }

  /** Re-encoded image or transcoded audio/video (a new type), when smaller; else the upload itself. */
  private async compress(
    pending: PendingBlob,
    contentType: string,
    log: Logger,
  ): Promise<{ pending: PendingBlob; contentType: string }> {
    const unchanged = { pending, contentType };
    const compression = this.media.compression;
    const source = this.sourceOf(pending);
    try {
      let bytes: Buffer | Readable | undefined;
      if (
        isDecodableImage(contentType) &&
        compression.reencode_images_over_bytes > 0 &&
        pending.blob.size > compression.reencode_images_over_bytes
      ) {
        bytes = await reencodeImage(source, contentType, {
          maxPixels: this.media.max_image_pixels,
          quality: compression.jpeg_quality,
        });
      } else if (
        contentType.startsWith('audio/') &&
        compression.transcode_audio_over_bytes > 0 &&
        pending.blob.size > compression.transcode_audio_over_bytes
      ) {
        bytes = await this.deps.transcoder.audio(source, compression.audio_bitrate, log);
      } else if (
        contentType.startsWith('video/') &&
        compression.transcode_video_over_bytes > 0 &&
        pending.blob.size > compression.transcode_video_over_bytes
      ) {
        bytes = await this.deps.transcoder.video(source, compression.video_bitrate, log);
      }
      if (bytes === undefined) return unchanged;
      const candidate = Buffer.isBuffer(bytes)
        ? await this.deps.blobs.writeBuffer(bytes)
        : await this.deps.blobs.write(bytes, { limit: pending.blob.size });
      const candidateType = await sniffContentType(candidate.head, undefined);
      // An image stays the same type; a transcode must give audio or video of any type.
      const acceptable = isDecodableImage(contentType)
        ? candidateType === contentType
        : candidateType.split('/')[0] === contentType.split('/')[0];
      if (candidate.blob.size > 0 && candidate.blob.size < pending.blob.size && acceptable) {
        return { pending: candidate, contentType: candidateType };
      }
      await this.deps.blobs.discard(candidate);
    } catch (error) {
      // Keeping the upload as sent is always correct; compression is a bonus.
      if (!(error instanceof ImageTooLargeError) && !isTooLarge(error)) {
        log.warn({ err: error, contentType }, 'Could not compress an upload; keeping it as sent');
      }
    }
    return unchanged;
  }

  private async describe(pending: PendingBlob, contentType: string): Promise<JsonObject | null> {
    const preview: JsonObject = { mimetype: contentType, size: pending.blob.size };
    if (isDecodableImage(contentType)) {
      try {
        const facts = await describeImage(this.sourceOf(pending), this.media.max_image_pixels);
        preview.w = facts.width;
        preview.h = facts.height;
        if (facts.blurhash) preview.blurhash = facts.blurhash;
        if (facts.animated) preview.animated = true;
      } catch (error) {
        if (!(error instanceof ImageTooLargeError)) {
          this.deps.log.debug({ err: error }, 'Could not describe an image upload');
        }
      }
    }
    if (contentType.startsWith('audio/') || contentType.startsWith('video/')) {
      const duration = await this.deps.transcoder.durationMs(this.sourceOf(pending)).catch(() => undefined);
      if (duration !== undefined) preview.duration = duration;
    }
    return preview;
  }

  private sourceOf(pending: PendingBlob): ImageSource {
    return async () => (pending.blob.encrypted ? this.deps.blobs.openPending(pending) : pending.tmpPath);
  }

  private commit<T>(pending: PendingBlob, record: () => Promise<T>): Promise<T> {
    return this.withBlobLock(async () => {
      await this.deps.blobs.commit(pending);
      const recorded = await record();
      this.noteStored();
      return recorded;
    });
  }

  private withBlobLock<T>(work: () => Promise<T>): Promise<T> {
    const run = this.blobLock.then(work, work);
    this.blobLock = run.catch(() => undefined);
    return run;
  }

  /**
   * Media for download. Unknown, not yet uploaded (after `waitMs`),
   * quarantined, frozen (legacy endpoint) or remote: errors as the spec says.
   */
  async resolve(
    serverName: string,
    mediaId: string,
    options: { authenticated: boolean; waitMs: number },
  ): Promise<MediaRecord & { blob: MediaBlob; contentType: string }> {
    let record =
      serverName === this.serverName
        ? await this.deps.storage.media.getMedia(serverName, mediaId)
        : await this.deps.remote.fetch(serverName, mediaId);
    if (record && record.blob === null && options.waitMs > 0) {
      record = await this.waitForUpload(serverName, mediaId, options.waitMs);
    }
    if (!record || record.quarantined) throw MatrixError.notFound('Media not found');
    if (!options.authenticated) {
      const reads = this.media.unauthenticated_reads;
      if (reads === 'disabled' || (reads === 'frozen' && record.authenticatedOnly)) {
        throw MatrixError.notFound('Media not found');
      }
    }
    if (record.blob === null || record.contentType === null) {
      if ((record.unusedExpiresTs ?? 0) <= Date.now()) throw MatrixError.notFound('Media not found');
      throw MatrixError.of('M_NOT_YET_UPLOADED', 'The media has not been uploaded yet');
    }
    if (record.lastAccessTs < Date.now() - 3_600_000) {
      // Once an hour at most: the retention job's "not downloaded for N days" needs no finer clock.
      void this.deps.storage.media
        .touchMedia(serverName, mediaId, Date.now())
        .catch((err: unknown) => this.deps.log.warn({ err }, 'Could not record a media access'));
    }
    return record as MediaRecord & { blob: MediaBlob; contentType: string };
  }

  private async waitForUpload(serverName: string, mediaId: string, waitMs: number) {
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const timer = setTimeout(wake, waitMs);
    this.uploaded.on(mediaId, wake);
    try {
      // Read again once listening: an upload that finished in between is not waited for.
      const again = await this.deps.storage.media.getMedia(serverName, mediaId);
      if (again === null || again.blob !== null) return again;
      await woken;
      return await this.deps.storage.media.getMedia(serverName, mediaId);
    } finally {
      clearTimeout(timer);
      this.uploaded.off(mediaId, wake);
    }
  }

  open(blob: MediaBlob, range?: ByteRange): Promise<Readable> {
    return this.deps.blobs.open(blob, range);
  }

  /** A thumbnail of the media, made on first request and cached. */
  async thumbnail(
    record: MediaRecord & { blob: MediaBlob; contentType: string },
    request: { width: number; height: number; method: ThumbnailMethod; animated: boolean },
  ): Promise<{ blob: MediaBlob; contentType: string }> {
    if (!this.media.thumbnails.enabled) throw MatrixError.notFound('Thumbnails are turned off');
    if (!isDecodableImage(record.contentType)) {
      throw MatrixError.invalidParam('This media cannot be thumbnailed');
    }
    const size = snapToRecommended(request.width, request.height, request.method);
    const animated = request.animated && this.media.thumbnails.animated;
    const key = { serverName: record.serverName, mediaId: record.mediaId, ...size, animated };
    const cached = await this.deps.storage.media.getThumbnail(key);
    if (cached) return cached;
    let thumbnail: Awaited<ReturnType<typeof makeThumbnail>>;
    try {
      thumbnail = await makeThumbnail(
        async () => (record.blob.encrypted ? this.open(record.blob) : this.deps.blobs.pathOf(record.blob)),
        record.contentType,
        { ...size, animated, maxPixels: this.media.max_image_pixels },
      );
    } catch (error) {
      if (error instanceof ImageTooLargeError) {
        throw MatrixError.tooLarge('The image is too large for the server to thumbnail');
      }
      this.deps.log.info({ err: error, mediaId: record.mediaId }, 'Could not thumbnail media');
      throw MatrixError.invalidParam('This media cannot be thumbnailed');
    }
    const pending = await this.deps.blobs.writeBuffer(thumbnail.bytes);
    try {
      await this.commit(pending, () =>
        this.deps.storage.media.putThumbnail(
          { ...key, blob: pending.blob, contentType: thumbnail.contentType },
          Date.now(),
        ),
      );
    } finally {
      await this.deps.blobs.discard(pending);
    }
    return { blob: pending.blob, contentType: thumbnail.contentType };
  }

  /**
   * A thumbnail of another server's media: from the cache, else asked of the origin server
   * (kept under the snapped size), else made here from the whole file as for local media
   * (an origin without thumbnails, or one that refuses).
   */
  async remoteThumbnail(
    serverName: string,
    mediaId: string,
    request: { width: number; height: number; method: ThumbnailMethod; animated: boolean },
    options: { authenticated: boolean; waitMs: number },
  ): Promise<{ blob: MediaBlob; contentType: string }> {
    if (!this.media.thumbnails.enabled) throw MatrixError.notFound('Thumbnails are turned off');
    if (!options.authenticated && this.media.unauthenticated_reads === 'disabled') {
      throw MatrixError.notFound('Media not found');
    }
    const known = await this.deps.storage.media.getMedia(serverName, mediaId);
    if (known?.quarantined) throw MatrixError.notFound('Media not found');
    const size = snapToRecommended(request.width, request.height, request.method);
    const animated = request.animated && this.media.thumbnails.animated;
    const key = { serverName, mediaId, ...size, animated };
    const cached = await this.deps.storage.media.getThumbnail(key);
    if (cached) return cached;
    const fetched = await this.deps.remote.fetchThumbnail?.(serverName, mediaId, { ...size, animated });
    if (fetched === null || fetched === undefined || fetched.bytes.length > this.media.max_upload_bytes) {
      return this.thumbnail(await this.resolve(serverName, mediaId, options), request);
    }
    const pending = await this.deps.blobs.writeBuffer(fetched.bytes);
    try {
      await this.commit(pending, () =>
        this.deps.storage.media.putThumbnail(
          { ...key, blob: pending.blob, contentType: fetched.contentType },
          Date.now(),
        ),
      );
    } finally {
      await this.deps.blobs.discard(pending);
    }
    return { blob: pending.blob, contentType: fetched.contentType };
  }

  /**
   * Keeps a copy of another server's media, fetched over federation, under that
   * server's name and media ID: later downloads are served from it.
   */
  async storeRemote(
    serverName: string,
    mediaId: string,
    content: { bytes: Buffer; contentType: string; fileName: string | null },
  ): Promise<MediaRecord | null> {
    if (content.bytes.length > this.media.max_upload_bytes)
      throw MatrixError.tooLarge('Remote media too large');
    const pending = await this.deps.blobs.writeBuffer(content.bytes);
    try {
      await this.commit(pending, () =>
        this.deps.storage.media.putMediaContent(
          {
            serverName,
            mediaId,
            userId: null,
            createdTs: Date.now(),
            blob: pending.blob,
            contentType: content.contentType,
            uploadName: content.fileName,
            originalSize: content.bytes.length,
            authenticatedOnly: false,
            preview: null,
          },
          Date.now(),
        ),
      );
    } finally {
      await this.deps.blobs.discard(pending);
    }
    return this.deps.storage.media.getMedia(serverName, mediaId);
  }

  /** Admin: quarantined media is never served. */
  async setQuarantined(serverName: string, mediaId: string, quarantined: boolean): Promise<void> {
    if (!(await this.deps.storage.media.setQuarantined(serverName, mediaId, quarantined))) {
      throw MatrixError.notFound('Media not found');
    }
  }

  /** Forgets a blob nothing uses and deletes its file, taking turns with commits so a new upload never loses it. */
  removeBlobIfUnreferenced(sha256: string): Promise<boolean> {
    return this.withBlobLock(async () => {
      const removed = await this.deps.storage.media.deleteBlobIfUnreferenced(sha256);
      if (removed) await this.deps.blobs.remove(sha256);
      return removed;
    });
  }
}

/** Opaque, unguessable, and only [A-Za-z0-9_-] (content_repo "Matrix Content URIs"). */
function newMediaId(): string {
  return randomBytes(18).toString('base64url');
}

/** The smallest recommended size that covers the request (same method first); the largest when none does. */
export function snapToRecommended(
  width: number,
  height: number,
  method: ThumbnailMethod,
): { width: number; height: number; method: ThumbnailMethod } {
  const covers = (s: { width: number; height: number }) => s.width >= width && s.height >= height;
  const sameMethod = RECOMMENDED_THUMBNAILS.filter((s) => s.method === method);
  const found = sameMethod.find(covers) ?? RECOMMENDED_THUMBNAILS.find(covers);
  return found ? { ...found, method: found.method } : RECOMMENDED_THUMBNAILS.at(-1)!;
}

function isTooLarge(error: unknown): boolean {
  return error instanceof MatrixError && error.errcode === 'M_TOO_LARGE';
}
