/**
 * Server-side key backups (client-server "Server-side key backups"): per user,
 * numbered backup versions, the newest undeleted one current; each holds
 * encrypted Megolm session keys by (room, session). The server never reads
 * `auth_data` or `session_data`; it only ranks keys by their metadata.
 */
import type { JsonObject } from '../protocol/events.js';
import type { BackedUpKeyRank } from '../protocol/key-backup.js';

export interface KeyBackupVersion {
  readonly version: number;
  readonly algorithm: string;
  readonly authData: JsonObject;
  /** Changes whenever the version's keys change. */
  readonly etag: number;
  /** How many keys the version holds. */
  readonly count: number;
}

export interface BackedUpKey extends BackedUpKeyRank {
  readonly roomId: string;
  readonly sessionId: string;
  readonly sessionData: JsonObject;
}

/** Which keys a read or delete covers: the whole version, one room, or one session. */
export interface BackedUpKeyScope {
  readonly roomId?: string;
  /** Only with roomId. */
  readonly sessionId?: string;
}

export type KeyBackupWriteResult =
  | { readonly outcome: 'written'; readonly etag: number; readonly count: number }
  /** The version is not the current one (or the user has no backup: `currentVersion` null). */
  | { readonly outcome: 'not-current'; readonly currentVersion: number | null };

export interface KeyBackupStore {
  /** A new version, numbered after every version the user ever had; it becomes current. */
  createBackupVersion(userId: string, algorithm: string, authData: JsonObject): Promise<number>;
  /** An undeleted version; without `version`, the current one. */
  getBackupVersion(userId: string, version?: number): Promise<KeyBackupVersion | null>;
  /** Replaces auth_data of an undeleted version; false when there is none. */
  updateBackupAuthData(userId: string, version: number, authData: JsonObject): Promise<boolean>;
  /** Deletes the version and its keys: 'deleted', 'already-deleted' or 'unknown' (never existed). */
  deleteBackupVersion(userId: string, version: number): Promise<'deleted' | 'already-deleted' | 'unknown'>;
  /**
   * Stores keys in the version if it is the current one, each replacing the key
   * stored for its session only where the spec's rule says so; the etag changes
   * when any key does.
   */
  putBackedUpKeys(
    userId: string,
    version: number,
    keys: readonly BackedUpKey[],
  ): Promise<KeyBackupWriteResult>;
  /** The version's keys within the scope, ordered by room and session. */
  backedUpKeys(userId: string, version: number, scope: BackedUpKeyScope): Promise<BackedUpKey[]>;
  /** Deletes the version's keys within the scope; null when the version does not exist (or was deleted). */
  deleteBackedUpKeys(
    userId: string,
    version: number,
    scope: BackedUpKeyScope,
  ): Promise<{ etag: number; count: number } | null>;
}
