import type { Statement } from 'better-sqlite3';
import type { JsonObject } from '../../protocol/events.js';
import { incomingKeyReplaces } from '../../protocol/key-backup.js';
import type {
  BackedUpKey,
  BackedUpKeyScope,
  KeyBackupStore,
  KeyBackupVersion,
  KeyBackupWriteResult,
} from '../key-backup-store.js';
import type { SqliteConnection } from './connection.js';
import type { EnqueueWrite } from './write-queue.js';

interface VersionRow {
  version: number;
  algorithm: string;
  auth_data: string;
  etag: number;
  count: number;
}

interface KeyRow {
  room_id: string;
  session_id: string;
  first_message_index: number;
  forwarded_count: number;
  is_verified: number;
  session_data: string;
}

const VERSION_COLUMNS = `v.version, v.algorithm, v.auth_data, v.etag,
  (SELECT count(*) FROM room_key_backup_keys k WHERE k.user_id = v.user_id AND k.version = v.version) AS count`;

const KEY_COLUMNS = 'room_id, session_id, first_message_index, forwarded_count, is_verified, session_data';

/** The scope as SQL: room and session are matched only when given. */
const IN_SCOPE = `user_id = @userId AND version = @version
  AND (@roomId IS NULL OR room_id = @roomId) AND (@sessionId IS NULL OR session_id = @sessionId)`;

interface ScopeParams {
  userId: string;
  version: number;
  roomId: string | null;
  sessionId: string | null;
}

export class SqliteKeyBackupStore implements KeyBackupStore {
  private readonly s: {
    readonly nextVersion: Statement<[string], { next: number }>;
    readonly insertVersion: Statement<[string, number, string, string]>;
    readonly version: Statement<[string, number], VersionRow>;
    readonly current: Statement<[string], VersionRow>;
    readonly currentNumber: Statement<[string], { version: number }>;
    readonly deletedFlag: Statement<[string, number], { deleted: number }>;
    readonly updateAuthData: Statement<[string, string, number]>;
    readonly markDeleted: Statement<[string, number]>;
    readonly deleteAllKeys: Statement<[string, number]>;
    readonly bumpEtag: Statement<[string, number], { etag: number }>;
    readonly etag: Statement<[string, number], { etag: number }>;
    readonly count: Statement<[string, number], { count: number }>;
    readonly key: Statement<[string, number, string, string], KeyRow>;
    readonly upsertKey: Statement<[string, number, string, string, number, number, number, string]>;
    readonly keysInScope: Statement<[ScopeParams], KeyRow>;
    readonly deleteKeysInScope: Statement<[ScopeParams]>;
  };

  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {
    const db = this.connection.sqlite;
    this.s = {
      nextVersion: db.prepare(
        'SELECT coalesce(max(version), 0) + 1 AS next FROM room_key_backup_versions WHERE user_id = ?',
      ),
      insertVersion: db.prepare(
        'INSERT INTO room_key_backup_versions (user_id, version, algorithm, auth_data) VALUES (?, ?, ?, ?)',
      ),
      version: db.prepare(
        `SELECT ${VERSION_COLUMNS} FROM room_key_backup_versions v
          WHERE v.user_id = ? AND v.version = ? AND v.deleted = 0`,
      ),
      current: db.prepare(
        `SELECT ${VERSION_COLUMNS} FROM room_key_backup_versions v
          WHERE v.user_id = ? AND v.deleted = 0 ORDER BY v.version DESC LIMIT 1`,
      ),
      currentNumber: db.prepare(
        `SELECT version FROM room_key_backup_versions
          WHERE user_id = ? AND deleted = 0 ORDER BY version DESC LIMIT 1`,
      ),
      deletedFlag: db.prepare(
        'SELECT deleted FROM room_key_backup_versions WHERE user_id = ? AND version = ?',
      ),
      updateAuthData: db.prepare(
        'UPDATE room_key_backup_versions SET auth_data = ? WHERE user_id = ? AND version = ? AND deleted = 0',
      ),
      markDeleted: db.prepare(
        'UPDATE room_key_backup_versions SET deleted = 1 WHERE user_id = ? AND version = ?',
      ),
      deleteAllKeys: db.prepare('DELETE FROM room_key_backup_keys WHERE user_id = ? AND version = ?'),
      bumpEtag: db.prepare(
        'UPDATE room_key_backup_versions SET etag = etag + 1 WHERE user_id = ? AND version = ? RETURNING etag',
      ),
      etag: db.prepare('SELECT etag FROM room_key_backup_versions WHERE user_id = ? AND version = ?'),
      count: db.prepare(
        'SELECT count(*) AS count FROM room_key_backup_keys WHERE user_id = ? AND version = ?',
      ),
      key: db.prepare(
        `SELECT ${KEY_COLUMNS} FROM room_key_backup_keys
          WHERE user_id = ? AND version = ? AND room_id = ? AND session_id = ?`,
      ),
      upsertKey: db.prepare(
        `INSERT INTO room_key_backup_keys (user_id, version, ${KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET
           first_message_index = excluded.first_message_index, forwarded_count = excluded.forwarded_count,
           is_verified = excluded.is_verified, session_data = excluded.session_data`,
      ),
      keysInScope: db.prepare(
        `SELECT ${KEY_COLUMNS} FROM room_key_backup_keys
          WHERE ${IN_SCOPE} ORDER BY room_id, session_id`,
      ),
      deleteKeysInScope: db.prepare(`DELETE FROM room_key_backup_keys WHERE ${IN_SCOPE}`),
    };
  }

  createBackupVersion(userId: string, algorithm: string, authData: JsonObject): Promise<number> {
    const json = JSON.stringify(authData);
    return this.enqueue(() => {
      const version = this.s.nextVersion.get(userId)!.next;
      this.s.insertVersion.run(userId, version, algorithm, json);
      return version;
    });
  }

  async getBackupVersion(userId: string, version?: number): Promise<KeyBackupVersion | null> {
    const row = version === undefined ? this.s.current.get(userId) : this.s.version.get(userId, version);
    return row === undefined ? null : toVersion(row);
  }

  updateBackupAuthData(userId: string, version: number, authData: JsonObject): Promise<boolean> {
    const json = JSON.stringify(authData);
    return this.enqueue(() => this.s.updateAuthData.run(json, userId, version).changes > 0);
  }

  deleteBackupVersion(userId: string, version: number): Promise<'deleted' | 'already-deleted' | 'unknown'> {
    return this.enqueue(() => {
      const row = this.s.deletedFlag.get(userId, version);
      if (row === undefined) return 'unknown';
      if (row.deleted === 1) return 'already-deleted';
      this.s.deleteAllKeys.run(userId, version);
      this.s.markDeleted.run(userId, version);
      return 'deleted';
    });
  }

  putBackedUpKeys(
    userId: string,
    version: number,
    keys: readonly BackedUpKey[],
  ): Promise<KeyBackupWriteResult> {
    const rows = keys.map((key) => ({ ...key, sessionDataJson: JSON.stringify(key.sessionData) }));
    return this.enqueue((): KeyBackupWriteResult => {
      // Checked in the write itself, so that a backup replaced meanwhile cannot take keys meant for the old one.
      const current = this.s.currentNumber.get(userId)?.version ?? null;
      if (current !== version) return { outcome: 'not-current', currentVersion: current };
      let changed = false;
      for (const key of rows) {
        const existing = this.s.key.get(userId, version, key.roomId, key.sessionId);
        if (existing !== undefined && !incomingKeyReplaces(toKey(existing), key)) continue;
        this.s.upsertKey.run(
          userId,
          version,
          key.roomId,
          key.sessionId,
          key.firstMessageIndex,
          key.forwardedCount,
          key.isVerified ? 1 : 0,
          key.sessionDataJson,
        );
        changed = true;
      }
      const etag = changed
        ? this.s.bumpEtag.get(userId, version)!.etag
        : this.s.etag.get(userId, version)!.etag;
      return { outcome: 'written', etag, count: this.s.count.get(userId, version)!.count };
    });
  }

  async backedUpKeys(userId: string, version: number, scope: BackedUpKeyScope): Promise<BackedUpKey[]> {
    return this.s.keysInScope.all(scopeParams(userId, version, scope)).map(toKey);
  }

  deleteBackedUpKeys(
    userId: string,
    version: number,
    scope: BackedUpKeyScope,
  ): Promise<{ etag: number; count: number } | null> {
    const params = scopeParams(userId, version, scope);
    return this.enqueue(() => {
      if (this.s.deletedFlag.get(userId, version)?.deleted !== 0) return null;
      const deleted = this.s.deleteKeysInScope.run(params).changes;
      const etag =
        deleted > 0 ? this.s.bumpEtag.get(userId, version)!.etag : this.s.etag.get(userId, version)!.etag;
      return { etag, count: this.s.count.get(userId, version)!.count };
    });
  }
}

function scopeParams(userId: string, version: number, scope: BackedUpKeyScope): ScopeParams {
  const roomId = scope.roomId ?? null;
  return { userId, version, roomId, sessionId: roomId === null ? null : (scope.sessionId ?? null) };
}

function toVersion(row: VersionRow): KeyBackupVersion {
  return {
    version: row.version,
    algorithm: row.algorithm,
    authData: JSON.parse(row.auth_data) as JsonObject,
    etag: row.etag,
    count: row.count,
  };
}

function toKey(row: KeyRow): BackedUpKey {
  return {
    roomId: row.room_id,
    sessionId: row.session_id,
    firstMessageIndex: row.first_message_index,
    forwardedCount: row.forwarded_count,
    isVerified: row.is_verified === 1,
    sessionData: JSON.parse(row.session_data) as JsonObject,
  };
}
