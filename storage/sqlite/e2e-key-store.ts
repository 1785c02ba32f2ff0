import type Database from 'better-sqlite3';
import { encodeCanonicalJson } from '../../protocol/canonical-json.js';
import type { JsonObject, JsonValue } from '../../protocol/events.js';
import type {
  ClaimedKey,
  ClaimRequest,
  CrossSigningKeyRecord,
  CrossSigningUsage,
  DeviceListChange,
  E2eKeyStore,
  KeySignature,
  OneTimeKeyUpload,
  OutboundDeviceList,
} from '../e2e-key-store.js';
import type { SqliteConnection } from './connection.js';
import { type DeviceKeyCountsCache, deviceKeyCountsOf } from './device-key-counts.js';
import { parameterChunks } from './parameter-chunks.js';
import { latestStreamPosition, nextStreamPosition } from './stream-positions.js';
import type { EnqueueWrite } from './write-queue.js';

interface SignatureRow {
  target_user_id: string;
  target_key_id: string;
  signer_user_id: string;
  signer_key_id: string;
  signature: string;
}

/** Statements prepared once per store: claims of 100 devices run 100 of them in one write. */
class E2eStatements {
  readonly deviceKeys: Database.Statement<[string], { device_id: string; key_json: string }>;
  readonly deviceKeysOf: Database.Statement<[string, string], { device_id: string; key_json: string }>;
  readonly upsertDeviceKeys: Database.Statement<[string, string, string]>;
  readonly dropSignaturesOn: Database.Statement<[string, string]>;
  readonly oneTimeKeyCounts: Database.Statement<[string, string], { algorithm: string; count: number }>;
  readonly oneTimeKey: Database.Statement<[string, string, string, string], { key_json: string }>;
  readonly nextUploadSeq: Database.Statement<[string, string], { seq: number }>;
  readonly insertOneTimeKey: Database.Statement<[string, string, string, string, string, number]>;
  readonly fallbackKey: Database.Statement<
    [string, string, string],
    { key_id: string; key_json: string; used: number }
  >;
  readonly upsertFallbackKey: Database.Statement<[string, string, string, string, string]>;
  readonly unusedFallbackTypes: Database.Statement<[string, string], { algorithm: string }>;
  readonly takeOneTimeKey: Database.Statement<
    [string, string, string, string, string, string],
    { key_id: string; key_json: string }
  >;
  readonly useFallbackKey: Database.Statement<[string, string, string], { key_id: string; key_json: string }>;
  readonly crossSigningKeys: Database.Statement<
    [string],
    { usage: CrossSigningUsage; public_key: string; key_json: string }
  >;
  readonly upsertCrossSigningKey: Database.Statement<[string, string, string, string]>;
  readonly signaturesOn: Database.Statement<[string], SignatureRow>;
  readonly upsertSignature: Database.Statement<[string, string, string, string, string]>;
  readonly changesBetween: Database.Statement<
    [number, number],
    { position: number; user_id: string; change: DeviceListChange['change']; room_id: string | null }
  >;
  readonly insertChange: Database.Statement<[number, string]>;

  constructor(sqlite: Database.Database) {
    this.deviceKeys = sqlite.prepare(
      'SELECT device_id, key_json FROM e2e_device_keys WHERE user_id = ? ORDER BY device_id',
    );
    this.deviceKeysOf = sqlite.prepare(
      'SELECT device_id, key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?',
    );
    this.upsertDeviceKeys = sqlite.prepare(
      `INSERT INTO e2e_device_keys (user_id, device_id, key_json) VALUES (?, ?, ?)
       ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = excluded.key_json`,
    );
    this.dropSignaturesOn = sqlite.prepare(
      'DELETE FROM e2e_signatures WHERE target_user_id = ? AND target_key_id = ?',
    );
    this.oneTimeKeyCounts = sqlite.prepare(
      `SELECT algorithm, COUNT(*) AS count FROM e2e_one_time_keys
        WHERE user_id = ? AND device_id = ? GROUP BY algorithm`,
    );
    this.oneTimeKey = sqlite.prepare(
      `SELECT key_json FROM e2e_one_time_keys
        WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?`,
    );
    this.nextUploadSeq = sqlite.prepare(
      `SELECT COALESCE(MAX(upload_seq), 0) + 1 AS seq FROM e2e_one_time_keys
        WHERE user_id = ? AND device_id = ?`,
    );
    this.insertOneTimeKey = sqlite.prepare(
      `INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json, upload_seq)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.fallbackKey = sqlite.prepare(
      `SELECT key_id, key_json, used FROM e2e_fallback_keys
        WHERE user_id = ? AND device_id = ? AND algorithm = ?`,
    );
    this.upsertFallbackKey = sqlite.prepare(
      `INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used)
       VALUES (?, ?, ?, ?, ?, 0)
       ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET
         key_id = excluded.key_id, key_json = excluded.key_json, used = 0`,
    );
    this.unusedFallbackTypes = sqlite.prepare(
      `SELECT algorithm FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ? AND used = 0
        ORDER BY algorithm`,
    );
    // The oldest upload first (spec: keys are handed out in upload order).
    this.takeOneTimeKey = sqlite.prepare(
      `DELETE FROM e2e_one_time_keys
        WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = (
          SELECT key_id FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?
           ORDER BY upload_seq, key_id LIMIT 1)
       RETURNING key_id, key_json`,
    );
    this.useFallbackKey = sqlite.prepare(
      `UPDATE e2e_fallback_keys SET used = 1 WHERE user_id = ? AND device_id = ? AND algorithm = ?
       RETURNING key_id, key_json`,
    );
    this.crossSigningKeys = sqlite.prepare(
      'SELECT usage, public_key, key_json FROM e2e_cross_signing_keys WHERE user_id = ?',
    );
    this.upsertCrossSigningKey = sqlite.prepare(
      `INSERT INTO e2e_cross_signing_keys (user_id, usage, public_key, key_json) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id, usage) DO UPDATE SET public_key = excluded.public_key, key_json = excluded.key_json`,
    );
    this.signaturesOn = sqlite.prepare(
      `SELECT target_user_id, target_key_id, signer_user_id, signer_key_id, signature FROM e2e_signatures
        WHERE target_user_id IN (SELECT value FROM json_each(?))`,
    );
    this.upsertSignature = sqlite.prepare(
      `INSERT INTO e2e_signatures (target_user_id, target_key_id, signer_user_id, signer_key_id, signature)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id)
       DO UPDATE SET signature = excluded.signature`,
    );
    this.changesBetween = sqlite.prepare(
      `SELECT position, user_id, change, room_id FROM device_list_changes
        WHERE position > ? AND position <= ? ORDER BY position`,
    );
    this.insertChange = sqlite.prepare(
      `INSERT INTO device_list_changes (position, user_id, change, room_id) VALUES (?, ?, 'keys', NULL)`,
    );
  }
}

/** Statements of the outbound device-list state (migration 17). */
class OutboundDeviceListStatements {
  readonly lastStreamId: Database.Statement<[string], { last_stream_id: number }>;
  readonly hashes: Database.Statement<[string], { device_id: string; content_hash: string }>;
  readonly setLastStreamId: Database.Statement<[string, number]>;
  readonly setHash: Database.Statement<[string, string, string]>;
  readonly dropDevice: Database.Statement<[string, string]>;

  constructor(sqlite: Database.Database) {
    this.lastStreamId = sqlite.prepare(
      'SELECT last_stream_id FROM device_list_outbound_streams WHERE user_id = ?',
    );
    this.hashes = sqlite.prepare(
      'SELECT device_id, content_hash FROM device_list_outbound_devices WHERE user_id = ?',
    );
    this.setLastStreamId = sqlite.prepare(
      `INSERT INTO device_list_outbound_streams (user_id, last_stream_id) VALUES (?, ?)
       ON CONFLICT (user_id) DO UPDATE SET last_stream_id = excluded.last_stream_id`,
    );
    this.setHash = sqlite.prepare(
      `INSERT INTO device_list_outbound_devices (user_id, device_id, content_hash) VALUES (?, ?, ?)
       ON CONFLICT (user_id, device_id) DO UPDATE SET content_hash = excluded.content_hash`,
    );
    this.dropDevice = sqlite.prepare(
      'DELETE FROM device_list_outbound_devices WHERE user_id = ? AND device_id = ?',
    );
  }
}

export class SqliteE2eKeyStore implements E2eKeyStore {
  private readonly statements: E2eStatements;
  private readonly outbound: OutboundDeviceListStatements;
  private readonly counts: DeviceKeyCountsCache;

  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {
    this.statements = new E2eStatements(connection.sqlite);
    this.outbound = new OutboundDeviceListStatements(connection.sqlite);
    this.counts = deviceKeyCountsOf(connection.sqlite);
  }

  async outboundDeviceList(userId: string): Promise<OutboundDeviceList> {
    return {
      lastStreamId: this.outbound.lastStreamId.get(userId)?.last_stream_id ?? 0,
      hashes: new Map(this.outbound.hashes.all(userId).map((row) => [row.device_id, row.content_hash])),
    };
  }

  recordOutboundDeviceList(
    userId: string,
    lastStreamId: number,
    changes: ReadonlyMap<string, string | null>,
  ): Promise<void> {
    return this.enqueue(() => {
      this.outbound.setLastStreamId.run(userId, lastStreamId);
      for (const [deviceId, hash] of changes) {
        if (hash === null) this.outbound.dropDevice.run(userId, deviceId);
        else this.outbound.setHash.run(userId, deviceId, hash);
      }
    });
  }

  async deviceKeys(userId: string, deviceIds: readonly string[] = []): Promise<Map<string, JsonObject>> {
    const rows =
      deviceIds.length === 0
        ? this.statements.deviceKeys.all(userId)
        : deviceIds.flatMap((deviceId) => this.statements.deviceKeysOf.all(userId, deviceId));
    return new Map(rows.map((row) => [row.device_id, JSON.parse(row.key_json) as JsonObject]));
  }

  /** Cached per device (device-key-counts.ts); frozen, as the same object is handed to every caller. */
  async oneTimeKeyCounts(userId: string, deviceId: string): Promise<Record<string, number>> {
    const cached = this.counts.entry(userId, deviceId);
    if (cached.oneTimeKeys === undefined) {
      const counts: Record<string, number> = {};
      for (const row of this.statements.oneTimeKeyCounts.all(userId, deviceId))
        counts[row.algorithm] = row.count;
      cached.oneTimeKeys = Object.freeze(counts);
    }
    return cached.oneTimeKeys as Record<string, number>;
  }

  async oneTimeKeysNamed(
    userId: string,
    deviceId: string,
    names: readonly string[],
  ): Promise<Map<string, JsonValue>> {
    const found = new Map<string, JsonValue>();
    for (const name of names) {
      const colon = name.indexOf(':');
      const row = this.statements.oneTimeKey.get(
        userId,
        deviceId,
        name.slice(0, colon),
        name.slice(colon + 1),
      );
      if (row) found.set(name, JSON.parse(row.key_json) as JsonValue);
    }
    return found;
  }

  cachedKeyCounts(
    userId: string,
    deviceId: string,
  ): { readonly oneTimeKeys: Record<string, number>; readonly fallbackTypes: string[] } | undefined {
    const cached = this.counts.entry(userId, deviceId);
    if (cached.oneTimeKeys === undefined || cached.fallbackTypes === undefined) return undefined;
    return cached as { oneTimeKeys: Record<string, number>; fallbackTypes: string[] };
  }

  /** Cached per device like the one-time-key counts; frozen too. */
  async unusedFallbackKeyTypes(userId: string, deviceId: string): Promise<string[]> {
    const cached = this.counts.entry(userId, deviceId);
    cached.fallbackTypes ??= Object.freeze(
      this.statements.unusedFallbackTypes.all(userId, deviceId).map((row) => row.algorithm),
    );
    return cached.fallbackTypes as string[];
  }

  async crossSigningKeys(userId: string): Promise<Map<CrossSigningUsage, CrossSigningKeyRecord>> {
    return new Map(
      this.statements.crossSigningKeys.all(userId).map((row) => [
        row.usage,
        {
          userId,
          usage: row.usage,
          publicKey: row.public_key,
          key: JSON.parse(row.key_json) as JsonObject,
        },
      ]),
    );
  }

  async signaturesOn(targetUserIds: readonly string[]): Promise<KeySignature[]> {
    const found: KeySignature[] = [];
    for (const chunk of parameterChunks([...new Set(targetUserIds)])) {
      for (const row of this.statements.signaturesOn.all(JSON.stringify(chunk))) {
        found.push({
          targetUserId: row.target_user_id,
          targetKeyId: row.target_key_id,
          signerUserId: row.signer_user_id,
          signerKeyId: row.signer_key_id,
          signature: row.signature,
        });
      }
    }
    return found;
  }

  async deviceListChangesBetween(afterPosition: number, upToPosition: number): Promise<DeviceListChange[]> {
    if (upToPosition <= afterPosition) return [];
    return this.statements.changesBetween.all(afterPosition, upToPosition).map((row) => ({
      position: row.position,
      userId: row.user_id,
      change: row.change,
      roomId: row.room_id,
    }));
  }

  async latestDeviceListPosition(): Promise<number> {
    return latestStreamPosition(this.connection.db, 'device_lists');
  }

  setDeviceKeys(userId: string, deviceId: string, keys: JsonObject): Promise<boolean> {
    const json = JSON.stringify(keys);
    return this.enqueue(() => {
      const previous = this.statements.deviceKeysOf.get(userId, deviceId);
      if (previous?.key_json === json) return false;
      this.statements.upsertDeviceKeys.run(userId, deviceId, json);
      // Signatures made on other identity keys do not sign these.
      if (previous !== undefined && !sameIdentity(previous.key_json, keys)) {
        this.statements.dropSignaturesOn.run(userId, deviceId);
      }
      this.recordChange(userId);
      return true;
    });
  }

  addOneTimeKeys(userId: string, deviceId: string, keys: readonly OneTimeKeyUpload[]): Promise<void> {
    const rows = keys.map((key) => [key.algorithm, key.keyId, JSON.stringify(key.key)] as const);
    return this.enqueue(() => {
      const seq = this.statements.nextUploadSeq.get(userId, deviceId)?.seq ?? 1;
      for (const [algorithm, keyId, json] of rows) {
        this.statements.insertOneTimeKey.run(userId, deviceId, algorithm, keyId, json, seq);
      }
      this.counts.forget(userId, deviceId);
    });
  }

  setFallbackKeys(userId: string, deviceId: string, keys: readonly OneTimeKeyUpload[]): Promise<void> {
    const rows = keys.map((key) => [key.algorithm, key.keyId, JSON.stringify(key.key)] as const);
    return this.enqueue(() => {
      for (const [algorithm, keyId, json] of rows) {
        const current = this.statements.fallbackKey.get(userId, deviceId, algorithm);
        if (current?.key_id === keyId && current.key_json === json) continue;
        this.statements.upsertFallbackKey.run(userId, deviceId, algorithm, keyId, json);
      }
      this.counts.forget(userId, deviceId);
    });
  }

  claimKeys(requests: readonly ClaimRequest[]): Promise<ClaimedKey[]> {
    // One synchronous write: concurrent claims run one after the other, so each key goes to one claimer.
    return this.enqueue(() => {
      const claimed: ClaimedKey[] = [];
      for (const request of requests) {
        const { userId, deviceId, algorithm } = request;
        const oneTime = this.statements.takeOneTimeKey.get(
          userId,
          deviceId,
          algorithm,
          userId,
          deviceId,
          algorithm,
        );
        const row = oneTime ?? this.statements.useFallbackKey.get(userId, deviceId, algorithm);
        if (row === undefined) continue;
        this.counts.forget(userId, deviceId);
        claimed.push({
          ...request,
          keyId: row.key_id,
          key: JSON.parse(row.key_json) as JsonValue,
          fallback: oneTime === undefined,
        });
      }
      return claimed;
    });
  }

  setCrossSigningKeys(userId: string, keys: readonly CrossSigningKeyRecord[]): Promise<void> {
    const rows = keys.map((key) => [key.usage, key.publicKey, JSON.stringify(key.key)] as const);
    return this.enqueue(() => {
      for (const [usage, publicKey, json] of rows) {
        this.statements.upsertCrossSigningKey.run(userId, usage, publicKey, json);
      }
      this.recordChange(userId);
    });
  }

  addSignatures(signatures: readonly KeySignature[], changedUsers: readonly string[]): Promise<void> {
    return this.enqueue(() => {
      for (const s of signatures) {
        this.statements.upsertSignature.run(
          s.targetUserId,
          s.targetKeyId,
          s.signerUserId,
          s.signerKeyId,
          s.signature,
        );
      }
      for (const userId of new Set(changedUsers)) this.recordChange(userId);
    });
  }

  recordDeviceListChange(userId: string): Promise<number> {
    return this.enqueue(() => this.recordChange(userId));
  }

  /** Inside a write only. */
  private recordChange(userId: string): number {
    const position = nextStreamPosition(this.connection.db, 'device_lists');
    this.statements.insertChange.run(position, userId);
    return position;
  }
}

/** The same identity keys (a re-upload that only adds signatures or algorithms keeps signatures made on them). */
function sameIdentity(previousJson: string, keys: JsonObject): boolean {
  const previous = JSON.parse(previousJson) as JsonObject;
  return encodeCanonicalJson(previous.keys ?? null) === encodeCanonicalJson(keys.keys ?? null);
}
