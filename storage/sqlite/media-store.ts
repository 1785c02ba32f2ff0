import type Database from 'better-sqlite3';
import type { JsonObject } from '../../protocol/events.js';
import { StorageError } from '../errors.js';
import type {
  MediaBlob,
  MediaContent,
  MediaRecord,
  MediaReservation,
  MediaStore,
  ThumbnailKey,
  ThumbnailRecord,
} from '../media-store.js';
import type { SqliteConnection } from './connection.js';
import type { EnqueueWrite } from './write-queue.js';

interface MediaRow {
  server_name: string;
  media_id: string;
  user_id: string | null;
  created_ts: number;
  unused_expires_ts: number | null;
  blob_sha256: string | null;
  blob_size: number | null;
  blob_encrypted: number | null;
  content_type: string | null;
  upload_name: string | null;
  original_size: number | null;
  authenticated_only: number;
  quarantined: number;
  preview: string | null;
  last_access_ts: number;
}

interface ThumbnailRow {
  blob_sha256: string;
  size: number;
  encrypted: number;
  content_type: string;
}

const NOT_REFERENCED = `NOT EXISTS (SELECT 1 FROM media WHERE blob_sha256 = b.sha256)
   AND NOT EXISTS (SELECT 1 FROM media_thumbnails WHERE blob_sha256 = b.sha256)`;

/** Statements prepared once per connection: media reads sit on the download path. */
function prepare(sqlite: Database.Database) {
  return {
    getMedia: sqlite.prepare<[string, string], MediaRow>(
      `SELECT m.*, b.size AS blob_size, b.encrypted AS blob_encrypted
         FROM media m LEFT JOIN media_blobs b ON b.sha256 = m.blob_sha256
        WHERE m.server_name = ? AND m.media_id = ?`,
    ),
    pendingCount: sqlite.prepare<[string, number], { n: number }>(
      `SELECT count(*) AS n FROM media
        WHERE user_id = ? AND blob_sha256 IS NULL AND unused_expires_ts > ?`,
    ),
    usage: sqlite.prepare<[string], { total: number | null }>(
      `SELECT sum(b.size) AS total FROM media m JOIN media_blobs b ON b.sha256 = m.blob_sha256
        WHERE m.user_id = ?`,
    ),
    getThumbnail: sqlite.prepare<[string, string, number, number, string, number], ThumbnailRow>(
      `SELECT t.blob_sha256, b.size, b.encrypted, t.content_type
         FROM media_thumbnails t JOIN media_blobs b ON b.sha256 = t.blob_sha256
        WHERE t.server_name = ? AND t.media_id = ? AND t.width = ? AND t.height = ? AND t.method = ?
          AND t.animated = ?`,
    ),
    notAccessedSince: sqlite.prepare<[number, number], { server_name: string; media_id: string }>(
      `SELECT server_name, media_id FROM media WHERE last_access_ts < ? ORDER BY last_access_ts LIMIT ?`,
    ),
    unreferencedBlobs: sqlite.prepare<[number, number], { sha256: string; size: number; encrypted: number }>(
      `SELECT sha256, size, encrypted FROM media_blobs b WHERE last_used_ts < ? AND ${NOT_REFERENCED} LIMIT ?`,
    ),
    reserve: sqlite.prepare(
      `INSERT INTO media (server_name, media_id, user_id, created_ts, unused_expires_ts, authenticated_only,
                          last_access_ts)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
    upsertBlob: sqlite.prepare(
      `INSERT INTO media_blobs (sha256, size, encrypted, last_used_ts) VALUES (?, ?, ?, ?)
       ON CONFLICT (sha256) DO UPDATE SET last_used_ts = excluded.last_used_ts`,
    ),
    insertMedia: sqlite.prepare(
      `INSERT INTO media (server_name, media_id, user_id, created_ts, unused_expires_ts, blob_sha256, content_type,
                          upload_name, original_size, authenticated_only, preview, last_access_ts)
       VALUES (@serverName, @mediaId, @userId, @createdTs, NULL, @sha256, @contentType, @uploadName,
               @originalSize, @authenticatedOnly, @preview, @now)
       ON CONFLICT (server_name, media_id) DO UPDATE SET
         unused_expires_ts = NULL, blob_sha256 = excluded.blob_sha256, content_type = excluded.content_type,
         upload_name = excluded.upload_name, original_size = excluded.original_size, preview = excluded.preview,
         last_access_ts = excluded.last_access_ts
       WHERE media.blob_sha256 IS NULL`,
    ),
    upsertThumbnail: sqlite.prepare(
      `INSERT INTO media_thumbnails (server_name, media_id, width, height, method, animated, blob_sha256,
                                     content_type)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT DO UPDATE SET blob_sha256 = excluded.blob_sha256, content_type = excluded.content_type`,
    ),
    quarantine: sqlite.prepare('UPDATE media SET quarantined = ? WHERE server_name = ? AND media_id = ?'),
    touch: sqlite.prepare('UPDATE media SET last_access_ts = ? WHERE server_name = ? AND media_id = ?'),
    deleteExpired: sqlite.prepare(
      'DELETE FROM media WHERE blob_sha256 IS NULL AND unused_expires_ts IS NOT NULL AND unused_expires_ts <= ?',
    ),
    deleteThumbnails: sqlite.prepare('DELETE FROM media_thumbnails WHERE server_name = ? AND media_id = ?'),
    deleteMedia: sqlite.prepare('DELETE FROM media WHERE server_name = ? AND media_id = ?'),
    deleteBlob: sqlite.prepare(`DELETE FROM media_blobs AS b WHERE sha256 = ? AND ${NOT_REFERENCED}`),
  };
}

export class SqliteMediaStore implements MediaStore {
  private readonly statements: ReturnType<typeof prepare>;

  constructor(
    connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {
    this.statements = prepare(connection.sqlite);
  }

  async getMedia(serverName: string, mediaId: string): Promise<MediaRecord | null> {
    const row = this.statements.getMedia.get(serverName, mediaId);
    return row ? toRecord(row) : null;
  }

  async pendingUploadCount(userId: string, now: number): Promise<number> {
    return this.statements.pendingCount.get(userId, now)!.n;
  }

  async userUsageBytes(userId: string): Promise<number> {
    return this.statements.usage.get(userId)!.total ?? 0;
  }

  async getThumbnail(key: ThumbnailKey): Promise<ThumbnailRecord | null> {
    const row = this.statements.getThumbnail.get(
      key.serverName,
      key.mediaId,
      key.width,
      key.height,
      key.method,
      key.animated ? 1 : 0,
    );
    if (!row) return null;
    return {
      ...key,
      blob: { sha256: row.blob_sha256, size: row.size, encrypted: row.encrypted === 1 },
      contentType: row.content_type,
    };
  }

  async mediaNotAccessedSince(ts: number, limit: number): Promise<{ serverName: string; mediaId: string }[]> {
    return this.statements.notAccessedSince
      .all(ts, limit)
      .map((row) => ({ serverName: row.server_name, mediaId: row.media_id }));
  }

  async unreferencedBlobs(ts: number, limit: number): Promise<MediaBlob[]> {
    return this.statements.unreferencedBlobs
      .all(ts, limit)
      .map((row) => ({ sha256: row.sha256, size: row.size, encrypted: row.encrypted === 1 }));
  }

  reserveMedia(r: MediaReservation): Promise<void> {
    return this.enqueue(() => {
      const result = this.statements.reserve.run(
        r.serverName,
        r.mediaId,
        r.userId,
        r.createdTs,
        r.unusedExpiresTs,
        r.authenticatedOnly ? 1 : 0,
        r.createdTs,
      );
      if (result.changes === 0) throw new StorageError('CONFLICT', `media ${r.mediaId} exists`);
    });
  }

  putMediaContent(content: MediaContent, now: number): Promise<boolean> {
    return this.enqueue(() => {
      this.statements.upsertBlob.run(
        content.blob.sha256,
        content.blob.size,
        content.blob.encrypted ? 1 : 0,
        now,
      );
      const result = this.statements.insertMedia.run({
        serverName: content.serverName,
        mediaId: content.mediaId,
        userId: content.userId,
        createdTs: content.createdTs,
        sha256: content.blob.sha256,
        contentType: content.contentType,
        uploadName: content.uploadName,
        originalSize: content.originalSize,
        authenticatedOnly: content.authenticatedOnly ? 1 : 0,
        preview: content.preview === null ? null : JSON.stringify(content.preview),
        now,
      });
      return result.changes > 0;
    });
  }

  putThumbnail(t: ThumbnailRecord, now: number): Promise<void> {
    return this.enqueue(() => {
      this.statements.upsertBlob.run(t.blob.sha256, t.blob.size, t.blob.encrypted ? 1 : 0, now);
      this.statements.upsertThumbnail.run(
        t.serverName,
        t.mediaId,
        t.width,
        t.height,
        t.method,
        t.animated ? 1 : 0,
        t.blob.sha256,
        t.contentType,
      );
    });
  }

  setQuarantined(serverName: string, mediaId: string, quarantined: boolean): Promise<boolean> {
    return this.enqueue(
      () => this.statements.quarantine.run(quarantined ? 1 : 0, serverName, mediaId).changes > 0,
    );
  }

  touchMedia(serverName: string, mediaId: string, ts: number): Promise<void> {
    return this.enqueue(() => {
      this.statements.touch.run(ts, serverName, mediaId);
    });
  }

  deleteExpiredReservations(now: number): Promise<number> {
    return this.enqueue(() => this.statements.deleteExpired.run(now).changes);
  }

  deleteMedia(serverName: string, mediaId: string): Promise<void> {
    return this.enqueue(() => {
      this.statements.deleteThumbnails.run(serverName, mediaId);
      this.statements.deleteMedia.run(serverName, mediaId);
    });
  }

  deleteBlobIfUnreferenced(sha256: string): Promise<boolean> {
    return this.enqueue(() => this.statements.deleteBlob.run(sha256).changes > 0);
  }
}

function toRecord(row: MediaRow): MediaRecord {
  return {
    serverName: row.server_name,
    mediaId: row.media_id,
    userId: row.user_id,
    createdTs: row.created_ts,
    unusedExpiresTs: row.unused_expires_ts,
    blob:
      row.blob_sha256 === null
        ? null
        : { sha256: row.blob_sha256, size: row.blob_size!, encrypted: row.blob_encrypted === 1 },
    contentType: row.content_type,
    uploadName: row.upload_name,
    originalSize: row.original_size,
    authenticatedOnly: row.authenticated_only === 1,
    quarantined: row.quarantined === 1,
    preview: row.preview === null ? null : (JSON.parse(row.preview) as JsonObject),
    lastAccessTs: row.last_access_ts,
  };
}
