/**
 * The content repository's records: media IDs (reserved by /create or made by
 * an upload), the content-addressed blobs their bytes live in (identical
 * uploads share one blob), and cached thumbnails. The bytes themselves are
 * files (server/media/blob-store.ts); only their names and sizes are here.
 */
import type { JsonObject } from '../protocol/events.js';

/** A stored file, named by the SHA-256 of its plaintext. */
export interface MediaBlob {
  readonly sha256: string;
  /** Plaintext bytes. */
  readonly size: number;
  /** Stored as AES-256-GCM chunks (server/media/encryption.ts). */
  readonly encrypted: boolean;
}

export interface MediaRecord {
  readonly serverName: string;
  readonly mediaId: string;
  /** The local uploader; null for remote media. */
  readonly userId: string | null;
  readonly createdTs: number;
  /** Set while a /create ID waits for its bytes; the ID is void after it. */
  readonly unusedExpiresTs: number | null;
  /** Null until uploaded. */
  readonly blob: MediaBlob | null;
  /** Sniffed from the bytes, never the uploader's claim. */
  readonly contentType: string | null;
  readonly uploadName: string | null;
  /** Bytes as the client sent them (before metadata stripping or re-encoding). */
  readonly originalSize: number | null;
  /** Uploaded during the freeze of the unauthenticated endpoints: served only by the authenticated ones. */
  readonly authenticatedOnly: boolean;
  readonly quarantined: boolean;
  /** Dimensions, duration, blurhash... (the io.myelin.preview object of the upload response). */
  readonly preview: JsonObject | null;
  readonly lastAccessTs: number;
}

export interface MediaReservation {
  readonly serverName: string;
  readonly mediaId: string;
  readonly userId: string;
  readonly createdTs: number;
  readonly unusedExpiresTs: number;
  readonly authenticatedOnly: boolean;
}

export interface MediaContent {
  readonly serverName: string;
  readonly mediaId: string;
  readonly userId: string | null;
  readonly createdTs: number;
  readonly blob: MediaBlob;
  readonly contentType: string;
  readonly uploadName: string | null;
  readonly originalSize: number;
  readonly authenticatedOnly: boolean;
  readonly preview: JsonObject | null;
}

export type ThumbnailMethod = 'crop' | 'scale';

export interface ThumbnailKey {
  readonly serverName: string;
  readonly mediaId: string;
  readonly width: number;
  readonly height: number;
  readonly method: ThumbnailMethod;
  readonly animated: boolean;
}

export interface ThumbnailRecord extends ThumbnailKey {
  readonly blob: MediaBlob;
  readonly contentType: string;
}

export interface MediaReader {
  getMedia(serverName: string, mediaId: string): Promise<MediaRecord | null>;
  /** Reserved IDs of the user still waiting for their upload at `now`. */
  pendingUploadCount(userId: string, now: number): Promise<number>;
  /** Plaintext bytes of everything the user has uploaded (their quota use). */
  userUsageBytes(userId: string): Promise<number>;
  getThumbnail(key: ThumbnailKey): Promise<ThumbnailRecord | null>;
  /** Media whose last access is before `ts` (the retention job), oldest first. */
  mediaNotAccessedSince(ts: number, limit: number): Promise<{ serverName: string; mediaId: string }[]>;
  /** Blobs no media or thumbnail uses any more, last used before `ts`. */
  unreferencedBlobs(ts: number, limit: number): Promise<MediaBlob[]>;
}

export interface MediaWriter {
  /** A /create ID; CONFLICT when the ID exists. */
  reserveMedia(reservation: MediaReservation): Promise<void>;
  /**
   * Stores uploaded content under its ID (new, or reserved and still empty) and
   * records its blob. Resolves false when the ID already has content
   * (M_CANNOT_OVERWRITE_MEDIA), leaving it as it was.
   */
  putMediaContent(content: MediaContent, now: number): Promise<boolean>;
  putThumbnail(thumbnail: ThumbnailRecord, now: number): Promise<void>;
  /** Resolves false when there is no such media. */
  setQuarantined(serverName: string, mediaId: string, quarantined: boolean): Promise<boolean>;
  touchMedia(serverName: string, mediaId: string, ts: number): Promise<void>;
  /** Removes reserved IDs whose upload never came by `now`; resolves how many. */
  deleteExpiredReservations(now: number): Promise<number>;
  /** Removes the media and its thumbnails (their blobs become unreferenced). */
  deleteMedia(serverName: string, mediaId: string): Promise<void>;
  /** Forgets the blob if nothing uses it; resolves whether it did (then its file may go). */
  deleteBlobIfUnreferenced(sha256: string): Promise<boolean>;
}

export interface MediaStore extends MediaReader, MediaWriter {}
