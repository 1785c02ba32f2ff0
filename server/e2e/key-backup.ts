/**
 * Server-side key backups (client-server "Server-side key backups",
 * key_backup.yaml): backup versions and the session keys in them, with the
 * Matrix errors each endpoint answers. Keys are written to the current version
 * only (403 M_WRONG_ROOM_KEYS_VERSION with `current_version` otherwise); reads
 * and deletes work on any version that exists.
 */
import type { JsonObject } from '../../protocol/events.js';
import type {
  BackedUpKey,
  BackedUpKeyScope,
  KeyBackupStore,
  KeyBackupVersion,
} from '../../storage/key-backup-store.js';
import { MatrixError } from '../errors.js';

/** A version as the API shows it (GET /room_keys/version). */
export interface BackupVersionInfo {
  readonly version: string;
  readonly algorithm: string;
  readonly auth_data: JsonObject;
  readonly etag: string;
  readonly count: number;
}

/** KeyBackupData as the API carries it. */
export interface KeyBackupData {
  readonly first_message_index: number;
  readonly forwarded_count: number;
  readonly is_verified: boolean;
  readonly session_data: JsonObject;
}

export type RoomKeyBackup = { sessions: Record<string, KeyBackupData> };

export interface RoomKeysUpdate {
  readonly etag: string;
  readonly count: number;
}

const UNKNOWN_VERSION = 'Unknown backup version';

export class KeyBackupService {
  constructor(private readonly store: KeyBackupStore) {}

  async createVersion(userId: string, algorithm: string, authData: JsonObject): Promise<string> {
    return String(await this.store.createBackupVersion(userId, algorithm, authData));
  }

  /** @throws MatrixError 404 M_NOT_FOUND when there is no such version (or, without one, no backup). */
  async getVersion(userId: string, version?: string): Promise<BackupVersionInfo> {
    const number = version === undefined ? undefined : versionNumber(version);
    const found =
      number === null
        ? null
        : await this.store.getBackupVersion(userId, ...(number === undefined ? [] : [number]));
    if (found === null) {
      throw MatrixError.notFound(version === undefined ? 'No current backup version' : UNKNOWN_VERSION);
    }
    return versionInfo(found);
  }

  /**
   * Only `auth_data` changes.
   * @throws MatrixError 400 M_INVALID_PARAM when the body's version or algorithm differs; 404 for an unknown version.
   */
  async updateVersion(
    userId: string,
    version: string,
    body: { algorithm: string; auth_data: JsonObject; version?: string },
  ): Promise<void> {
    if (body.version !== undefined && body.version !== version) {
      throw MatrixError.invalidParam('The version in the body does not match the version in the path');
    }
    const current = await this.getVersion(userId, version);
    if (body.algorithm !== current.algorithm) throw MatrixError.invalidParam('Algorithm does not match');
    if (!(await this.store.updateBackupAuthData(userId, Number(current.version), body.auth_data))) {
      throw MatrixError.notFound(UNKNOWN_VERSION);
    }
  }

  /** Deleting a version deleted before succeeds (spec); one that never existed is 404. */
  async deleteVersion(userId: string, version: string): Promise<void> {
    const number = versionNumber(version);
    const outcome = number === null ? 'unknown' : await this.store.deleteBackupVersion(userId, number);
    if (outcome === 'unknown') throw MatrixError.notFound(UNKNOWN_VERSION);
  }

  /**
   * @throws MatrixError 403 M_WRONG_ROOM_KEYS_VERSION (with current_version) when `version` is not the current
   * backup; 404 M_NOT_FOUND when the user has no backup at all.
   */
  async putKeys(userId: string, version: string, keys: readonly BackedUpKey[]): Promise<RoomKeysUpdate> {
    const number = versionNumber(version);
    const result = await this.store.putBackedUpKeys(userId, number ?? 0, keys);
    if (result.outcome === 'written') return { etag: String(result.etag), count: result.count };
    if (result.currentVersion === null) throw MatrixError.notFound(UNKNOWN_VERSION);
    throw MatrixError.of('M_WRONG_ROOM_KEYS_VERSION', 'Wrong backup version.', {
      current_version: String(result.currentVersion),
    });
  }

  /** @throws MatrixError 404 M_NOT_FOUND for an unknown version. */
  async getKeys(userId: string, version: string, scope: BackedUpKeyScope): Promise<BackedUpKey[]> {
    const number = await this.existingVersion(userId, version);
    return this.store.backedUpKeys(userId, number, scope);
  }

  /** @throws MatrixError 404 M_NOT_FOUND for an unknown version. */
  async deleteKeys(userId: string, version: string, scope: BackedUpKeyScope): Promise<RoomKeysUpdate> {
    const number = versionNumber(version);
    const result = number === null ? null : await this.store.deleteBackedUpKeys(userId, number, scope);
    if (result === null) throw MatrixError.notFound(UNKNOWN_VERSION);
    return { etag: String(result.etag), count: result.count };
  }

  private async existingVersion(userId: string, version: string): Promise<number> {
    const number = versionNumber(version);
    if (number === null || (await this.store.getBackupVersion(userId, number)) === null) {
      throw MatrixError.notFound(UNKNOWN_VERSION);
    }
    return number;
  }
}

/** Versions are opaque strings to clients; ours are decimal numbers, so anything else names no version. */
function versionNumber(version: string): number | null {
  if (!/^[1-9]\d{0,14}$/.test(version)) return null;
  return Number(version);
}

function versionInfo(version: KeyBackupVersion): BackupVersionInfo {
  return {
    version: String(version.version),
    algorithm: version.algorithm,
    auth_data: version.authData,
    etag: String(version.etag),
    count: version.count,
  };
}

export function keyBackupData(key: BackedUpKey): KeyBackupData {
  return {
    first_message_index: key.firstMessageIndex,
    forwarded_count: key.forwardedCount,
    is_verified: key.isVerified,
    session_data: key.sessionData,
  };
}

export function backedUpKey(roomId: string, sessionId: string, data: KeyBackupData): BackedUpKey {
  return {
    roomId,
    sessionId,
    firstMessageIndex: data.first_message_index,
    forwardedCount: data.forwarded_count,
    isVerified: data.is_verified,
    sessionData: data.session_data,
  };
}

/** `{rooms: {roomId: {sessions: {sessionId: KeyBackupData}}}}` from a flat list. */
export function keysByRoom(keys: readonly BackedUpKey[]): Record<string, RoomKeyBackup> {
  const rooms: Record<string, RoomKeyBackup> = {};
  for (const key of keys) {
    // Session IDs are the client's choice: a prototype-less map takes any of them as a plain key.
    rooms[key.roomId] ??= { sessions: Object.create(null) as Record<string, KeyBackupData> };
    rooms[key.roomId]!.sessions[key.sessionId] = keyBackupData(key);
  }
  return rooms;
}
