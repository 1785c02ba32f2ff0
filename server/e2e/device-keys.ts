/**
 * Device keys, one-time and fallback keys, cross-signing keys and signatures
 * (client-server "End-to-End Encryption": "Key management API", "Cross-signing",
 * "Extensions to /sync"), for local users. Keys of users on other servers are
 * asked through `RemoteKeyQueries`, which federation (#7) supplies; without it
 * those servers are reported in `failures`.
 *
 * Whoever changes a user's devices or keys calls `devicesChanged`, which wakes
 * the syncs of the user and of everyone sharing a room with them; what each
 * sync then reports comes from the device-list stream (`deviceListChanges`).
 */
import type { Logger } from 'pino';
import { encodeCanonicalJson } from '../../protocol/canonical-json.js';
import {
  type CrossSigningUsage,
  checkCrossSigningKey,
  checkDeviceKeys,
  checkOneTimeKey,
  sameSignedContent,
  verifySignature,
} from '../../protocol/e2e-keys.js';
import type { JsonObject, JsonValue } from '../../protocol/events.js';
import { isValidUserId } from '../../protocol/identifiers.js';
import type {
  ClaimRequest,
  CrossSigningKeyRecord,
  KeySignature,
  OneTimeKeyUpload,
} from '../../storage/e2e-key-store.js';
import type { Storage } from '../../storage/storage.js';
import { MatrixError } from '../errors.js';
import type { SyncNotifier } from '../sync/notifier.js';
import { type DeviceListChanges, deviceListChangesFor } from './device-list-changes.js';

export type { DeviceListChanges } from './device-list-changes.js';

/** The body of /keys/upload. */
export interface KeysUpload {
  readonly device_keys?: unknown;
  readonly one_time_keys?: Record<string, unknown>;
  readonly fallback_keys?: Record<string, unknown>;
}

/** Per-server failures of /keys/query and /keys/claim (spec: servers that could not be reached). */
export type KeyFailures = Record<string, JsonObject>;

export interface KeysQueryResult {
  device_keys: Record<string, Record<string, JsonObject>>;
  master_keys: Record<string, JsonObject>;
  self_signing_keys: Record<string, JsonObject>;
  user_signing_keys: Record<string, JsonObject>;
  failures: KeyFailures;
}

export interface KeysClaimResult {
  one_time_keys: Record<string, Record<string, Record<string, string | JsonObject>>>;
  failures: KeyFailures;
}

/** The body of /keys/device_signing/upload (without `auth`). */
export interface CrossSigningUpload {
  readonly master_key?: unknown;
  readonly self_signing_key?: unknown;
  readonly user_signing_key?: unknown;
}

/**
 * Keys of users on other servers (server-server "End-to-End Encryption":
 * /user/keys/query and /user/keys/claim). Federation (#7) implements it.
 */
export interface RemoteKeyQueries {
  queryKeys(
    serverName: string,
    deviceKeys: Record<string, string[]>,
    timeoutMs: number,
  ): Promise<Pick<KeysQueryResult, 'device_keys' | 'master_keys' | 'self_signing_keys'>>;
  claimKeys(
    serverName: string,
    oneTimeKeys: Record<string, Record<string, string>>,
    timeoutMs: number,
  ): Promise<Pick<KeysClaimResult, 'one_time_keys'>>;
}

export interface DeviceKeysService {
  /** POST /keys/upload for the requester's device; resolves to the one-time key counts after it. */
  uploadKeys(userId: string, deviceId: string, upload: KeysUpload): Promise<Record<string, number>>;
  /** POST /keys/query: device keys with display names, cross-signing keys, the signatures the requester may see. */
  queryKeys(requester: string, query: Record<string, string[]>, timeoutMs: number): Promise<KeysQueryResult>;
  /** POST /keys/claim: one key per device, one-time first, then the fallback key. */
  claimKeys(
    requester: string,
    claims: Record<string, Record<string, string>>,
    timeoutMs: number,
  ): Promise<KeysClaimResult>;
  /**
   * Whether /keys/device_signing/upload must pass user-interactive auth: only
   * when a master key exists and the upload would change any key (spec v1.11+).
   */
  crossSigningUploadNeedsAuth(userId: string, upload: CrossSigningUpload): Promise<boolean>;
  /** POST /keys/device_signing/upload once authorised. */
  uploadCrossSigningKeys(userId: string, upload: CrossSigningUpload): Promise<void>;
  /** POST /keys/signatures/upload: each signature checked; the failures per user and key. */
  uploadSignatures(
    requester: string,
    signed: Record<string, Record<string, unknown>>,
  ): Promise<Record<string, Record<string, JsonObject>>>;

  oneTimeKeyCounts(userId: string, deviceId: string): Promise<Record<string, number>>;
  unusedFallbackKeyTypes(userId: string, deviceId: string): Promise<string[]>;
  /** Both, as the two calls above give them, when known without a read (sync's fan-out); else undefined. */
  keyCountsIfCached(
    userId: string,
    deviceId: string,
  ): { readonly oneTimeKeys: Record<string, number>; readonly fallbackTypes: string[] } | undefined;
  /** device_lists for a sync or /keys/changes between two device-list positions. */
  deviceListChanges(userId: string, afterPosition: number, upToPosition: number): Promise<DeviceListChanges>;
  latestDeviceListPosition(): Promise<number>;
  /** The user's devices or keys changed (already recorded on the stream): wakes the syncs that may report it. */
  devicesChanged(userId: string): void;
}

export interface DeviceKeysDeps {
  readonly storage: Pick<Storage, 'e2eKeys' | 'devices' | 'memberships'>;
  readonly serverName: string;
  readonly notifier: () => SyncNotifier;
  readonly log: Logger;
  /** Federation (#7); absent, other servers' users are reported as failures. */
  readonly remote?: () => RemoteKeyQueries | undefined;
  /**
   * Told when a local user's devices or device keys change, or their cross-signing keys
   * (federation sends m.device_list_update or m.signing_key_update).
   */
  readonly onLocalChange?: () => ((userId: string, what: 'devices' | 'signing_keys') => void) | undefined;
}

/** The algorithm clients count on being reported, even at zero (Synapse does the same; Element relies on it). */
const SIGNED_CURVE25519 = 'signed_curve25519';

export function createDeviceKeysService(deps: DeviceKeysDeps): DeviceKeysService {
  const { storage, serverName, log } = deps;
  const keys = storage.e2eKeys;
  const isLocal = (userId: string) => userId.slice(userId.indexOf(':') + 1) === serverName;
  /** Malformed user IDs in a query or claim are left out, as unknown users are. */
  const validUsers = (userIds: string[]) => userIds.filter((userId) => isValidUserId(userId));

  const withCurve25519 = (counts: Record<string, number>) => ({ [SIGNED_CURVE25519]: 0, ...counts });
  const oneTimeKeyCounts = async (userId: string, deviceId: string) =>
    withCurve25519(await keys.oneTimeKeyCounts(userId, deviceId));
  /** What keyCountsIfCached reports per stored counts object (frozen, replaced when they change): made once each. */
  const reportedCounts = new WeakMap<
    Record<string, number>,
    { readonly oneTimeKeys: Record<string, number>; readonly fallbackTypes: string[] }
  >();

  const devicesChanged = (userId: string, what: 'devices' | 'signing_keys' = 'devices'): void => {
    const notifier = deps.notifier();
    notifier.notifyUsers([userId], 'device_lists');
    if (isLocal(userId)) deps.onLocalChange?.()?.(userId, what);
    storage.memberships.membershipsOfUser(userId, ['join']).then(
      (rooms) =>
        notifier.notifyRooms(
          rooms.map((room) => room.roomId),
          'device_lists',
        ),
      (error: unknown) => log.warn({ err: error, userId }, 'Waking syncs for a device-list change failed'),
    );
  };

  /** Signatures on a user's keys the requester may see: the owner's own, and the requester's. */
  const visibleSignatures = async (requester: string, userIds: readonly string[]) => {
    const byKey = new Map<string, KeySignature[]>();
    for (const signature of await keys.signaturesOn(userIds)) {
      if (signature.signerUserId !== signature.targetUserId && signature.signerUserId !== requester) continue;
      const key = `${signature.targetUserId}\n${signature.targetKeyId}`;
      const list = byKey.get(key);
      if (list === undefined) byKey.set(key, [signature]);
      else list.push(signature);
    }
    return (userId: string, keyId: string, object: JsonObject): JsonObject => {
      const extra = byKey.get(`${userId}\n${keyId}`);
      if (extra === undefined) return object;
      const signatures = structuredClone(isObject(object.signatures) ? object.signatures : {});
      for (const s of extra) {
        const bySigner = isObject(signatures[s.signerUserId])
          ? (signatures[s.signerUserId] as JsonObject)
          : {};
        bySigner[s.signerKeyId] = s.signature;
        signatures[s.signerUserId] = bySigner;
      }
      return { ...object, signatures };
    };
  };

  const remoteFailure = (): JsonObject => ({ status: 503, message: 'Federation is not available' });

  /** Runs `ask` per remote server with the timeout; a server that fails or is too slow goes into `failures`. */
  const askRemote = async <T>(
    byServer: Map<string, T>,
    timeoutMs: number,
    failures: KeyFailures,
    ask: (remote: RemoteKeyQueries, server: string, request: T) => Promise<void>,
  ): Promise<void> => {
    const remote = deps.remote?.();
    await Promise.all(
      [...byServer].map(async ([server, request]) => {
        if (remote === undefined) {
          failures[server] = remoteFailure();
          return;
        }
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
        });
        try {
          await Promise.race([ask(remote, server, request), timeout]);
        } catch (error) {
          log.info({ err: error, server }, 'Asking a server for keys failed');
          failures[server] = { status: 503, message: `Could not reach ${server}` };
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  };

  return {
    oneTimeKeyCounts,
    unusedFallbackKeyTypes: (userId, deviceId) => keys.unusedFallbackKeyTypes(userId, deviceId),
    keyCountsIfCached(userId, deviceId) {
      const cached = keys.cachedKeyCounts?.(userId, deviceId);
      if (cached === undefined) return undefined;
      let reported = reportedCounts.get(cached.oneTimeKeys);
      if (reported?.fallbackTypes !== cached.fallbackTypes) {
        reported = { oneTimeKeys: withCurve25519(cached.oneTimeKeys), fallbackTypes: cached.fallbackTypes };
        reportedCounts.set(cached.oneTimeKeys, reported);
      }
      return reported;
    },
    latestDeviceListPosition: () => keys.latestDeviceListPosition(),
    devicesChanged: (userId) => devicesChanged(userId),
    deviceListChanges: (userId, afterPosition, upToPosition) =>
      deviceListChangesFor(storage, userId, afterPosition, upToPosition),

    async uploadKeys(userId, deviceId, upload) {
      // 1. Device keys: the token's user and device, self-signed with the device's ed25519 key.
      let ed25519: string | null = null;
      let deviceKeys: JsonObject | undefined;
      if (upload.device_keys !== undefined) {
        const verdict = checkDeviceKeys(upload.device_keys, userId, deviceId);
        if (!verdict.ok) throw keyError(verdict);
        ed25519 = verdict.ed25519;
        deviceKeys = verdict.keys;
      } else {
        const stored = (await keys.deviceKeys(userId, [deviceId])).get(deviceId);
        const key = stored && isObject(stored.keys) ? stored.keys[`ed25519:${deviceId}`] : undefined;
        ed25519 = typeof key === 'string' ? key : null;
      }
      const signer = { userId, deviceId, ed25519 };

      // 2. One-time keys: signed by the device; an ID already held must come with the same key.
      const oneTime = checkKeys(upload.one_time_keys, signer);
      if (oneTime.length > 0) {
        const names = oneTime.map((key) => `${key.algorithm}:${key.keyId}`);
        const existing = await keys.oneTimeKeysNamed(userId, deviceId, names);
        for (const key of oneTime) {
          const held = existing.get(`${key.algorithm}:${key.keyId}`);
          if (held !== undefined && encodeCanonicalJson(held) !== encodeCanonicalJson(key.key)) {
            throw MatrixError.invalidParam(`One-time key ${key.algorithm}:${key.keyId} already exists`);
          }
        }
      }

      // 3. Fallback keys: at most one per algorithm.
      const fallback = checkKeys(upload.fallback_keys, signer);
      const algorithms = new Set(fallback.map((key) => key.algorithm));
      if (algorithms.size !== fallback.length) {
        throw MatrixError.invalidParam('Only one fallback key per algorithm may be uploaded');
      }

      const [changed] = await Promise.all([
        deviceKeys === undefined ? false : keys.setDeviceKeys(userId, deviceId, deviceKeys),
        oneTime.length > 0 ? keys.addOneTimeKeys(userId, deviceId, oneTime) : undefined,
        fallback.length > 0 ? keys.setFallbackKeys(userId, deviceId, fallback) : undefined,
      ]);
      if (changed) devicesChanged(userId);
      return oneTimeKeyCounts(userId, deviceId);
    },

    async queryKeys(requester, query, timeoutMs) {
      const result: KeysQueryResult = {
        device_keys: {},
        master_keys: {},
        self_signing_keys: {},
        user_signing_keys: {},
        failures: {},
      };
      const localUsers = validUsers(Object.keys(query)).filter(isLocal);
      const withSignatures = await visibleSignatures(requester, localUsers);
      for (const userId of localUsers) {
        const deviceIds = query[userId] ?? [];
        const [deviceKeys, devices, crossSigning] = await Promise.all([
          keys.deviceKeys(userId, deviceIds),
          storage.devices.listDevices(userId),
          keys.crossSigningKeys(userId),
        ]);
        const displayNames = new Map(devices.map((device) => [device.deviceId, device.displayName]));
        const byDevice: Record<string, JsonObject> = {};
        for (const [deviceId, object] of deviceKeys) {
          const displayName = displayNames.get(deviceId);
          byDevice[deviceId] = {
            ...withSignatures(userId, deviceId, object),
            unsigned: displayName ? { device_display_name: displayName } : {},
          };
        }
        result.device_keys[userId] = byDevice;
        const master = crossSigning.get('master');
        if (master) result.master_keys[userId] = withSignatures(userId, master.publicKey, master.key);
        const selfSigning = crossSigning.get('self_signing');
        if (selfSigning) {
          result.self_signing_keys[userId] = withSignatures(userId, selfSigning.publicKey, selfSigning.key);
        }
        // The user-signing key is shown to its owner only (spec "Cross-signing").
        const userSigning = crossSigning.get('user_signing');
        if (userSigning && userId === requester) result.user_signing_keys[userId] = userSigning.key;
      }

      const byServer = groupByServer(validUsers(Object.keys(query)).filter((userId) => !isLocal(userId)));
      const requests = new Map(
        [...byServer].map(([server, users]) => [
          server,
          Object.fromEntries(users.map((userId) => [userId, query[userId] ?? []])),
        ]),
      );
      await askRemote(requests, timeoutMs, result.failures, async (remote, server, request) => {
        const answer = await remote.queryKeys(server, request, timeoutMs);
        for (const userId of Object.keys(request)) {
          if (answer.device_keys?.[userId]) result.device_keys[userId] = answer.device_keys[userId];
          if (answer.master_keys?.[userId]) result.master_keys[userId] = answer.master_keys[userId];
          if (answer.self_signing_keys?.[userId])
            result.self_signing_keys[userId] = answer.self_signing_keys[userId];
        }
      });
      return result;
    },

    async claimKeys(_requester, claims, timeoutMs) {
      const result: KeysClaimResult = { one_time_keys: {}, failures: {} };
      const requests: ClaimRequest[] = [];
      for (const userId of validUsers(Object.keys(claims))) {
        if (!isLocal(userId)) continue;
        const devices = claims[userId] ?? {};
        for (const [deviceId, algorithm] of Object.entries(devices))
          requests.push({ userId, deviceId, algorithm });
      }
      for (const claimed of requests.length > 0 ? await keys.claimKeys(requests) : []) {
        result.one_time_keys[claimed.userId] ??= {};
        const byDevice = result.one_time_keys[claimed.userId]!;
        byDevice[claimed.deviceId] = {
          [`${claimed.algorithm}:${claimed.keyId}`]: claimed.key as string | JsonObject,
        };
      }

      const byServer = groupByServer(validUsers(Object.keys(claims)).filter((userId) => !isLocal(userId)));
      const remoteRequests = new Map(
        [...byServer].map(([server, users]) => [
          server,
          Object.fromEntries(users.map((userId) => [userId, claims[userId] ?? {}])),
        ]),
      );
      await askRemote(remoteRequests, timeoutMs, result.failures, async (remote, server, request) => {
        const answer = await remote.claimKeys(server, request, timeoutMs);
        for (const userId of Object.keys(request)) {
          const claimed = answer.one_time_keys?.[userId];
          if (claimed) result.one_time_keys[userId] = claimed;
        }
      });
      return result;
    },

    async crossSigningUploadNeedsAuth(userId, upload) {
      const stored = await keys.crossSigningKeys(userId);
      if (!stored.has('master')) return false;
      return USAGES.some(([usage, field]) => {
        const given = upload[field];
        if (given === undefined) return false;
        const held = stored.get(usage);
        return held === undefined || !isObject(given) || !sameKeyObject(held.key, given);
      });
    },

    async uploadCrossSigningKeys(userId, upload) {
      const given: CrossSigningKeyRecord[] = [];
      for (const [usage, field] of USAGES) {
        if (upload[field] === undefined) continue;
        const verdict = checkCrossSigningKey(upload[field], userId, usage);
        if (!verdict.ok) throw MatrixError.invalidParam(verdict.message);
        given.push({ userId, usage, publicKey: verdict.publicKey, key: verdict.key });
      }
      if (given.length === 0) return;
      const stored = await keys.crossSigningKeys(userId);
      const master = given.find((key) => key.usage === 'master') ?? stored.get('master');
      if (master === undefined) throw MatrixError.missingParam('No master key available');
      // Self-signing and user-signing keys must be signed by the (new or current) master key.
      for (const key of given) {
        if (key.usage === 'master') continue;
        const verdict = verifySignature(key.key, userId, `ed25519:${master.publicKey}`, master.publicKey);
        if (!verdict.ok)
          throw MatrixError.of(
            'M_INVALID_SIGNATURE',
            `Invalid ${key.usage} key signature: ${verdict.message}`,
          );
      }
      // A cross-signing public key is used like a device ID in verification (spec "Cross-signing").
      const deviceIds = new Set((await storage.devices.listDevices(userId)).map((device) => device.deviceId));
      if (given.some((key) => deviceIds.has(key.publicKey))) throw MatrixError.forbidden('Key ID in use');
      await keys.setCrossSigningKeys(userId, given);
      devicesChanged(userId, 'signing_keys');
    },

    async uploadSignatures(requester, signed) {
      const failures: Record<string, Record<string, JsonObject>> = {};
      const fail = (userId: string, keyId: string, errcode: string, error: string) => {
        failures[userId] ??= {};
        failures[userId]![keyId] = { errcode, error };
      };
      const accepted: KeySignature[] = [];
      const changedUsers = new Set<string>();
      const own = await keys.crossSigningKeys(requester);

      for (const [targetUserId, byKey] of Object.entries(signed)) {
        if (!isObject(byKey)) continue;
        if (!isLocal(targetUserId)) {
          for (const keyId of Object.keys(byKey)) {
            fail(targetUserId, keyId, 'M_UNRECOGNIZED', 'Signing keys of other servers is not available yet');
          }
          continue;
        }
        const targetCrossSigning =
          targetUserId === requester ? own : await keys.crossSigningKeys(targetUserId);
        const targetDevices = targetUserId === requester ? await keys.deviceKeys(requester) : new Map();
        for (const [keyId, object] of Object.entries(byKey)) {
          const outcome = checkUploadedSignature({
            requester,
            targetUserId,
            keyId,
            object,
            own,
            targetMaster: targetCrossSigning.get('master'),
            ownDevices: targetDevices,
          });
          if (!outcome.ok) {
            fail(targetUserId, keyId, outcome.errcode, outcome.error);
            continue;
          }
          accepted.push(...outcome.signatures);
          changedUsers.add(targetUserId);
        }
      }
      if (accepted.length > 0) {
        await keys.addSignatures(accepted, [...changedUsers]);
        for (const userId of changedUsers) devicesChanged(userId);
      }
      return failures;
    },
  };
}

const USAGES: readonly [CrossSigningUsage, keyof CrossSigningUpload][] = [
  ['master', 'master_key'],
  ['self_signing', 'self_signing_key'],
  ['user_signing', 'user_signing_key'],
];

type SignatureOutcome =
  | { readonly ok: true; readonly signatures: KeySignature[] }
  | { readonly ok: false; readonly errcode: string; readonly error: string };

/**
 * One entry of /keys/signatures/upload (spec "Cross-signing"): the requester
 * signs their own device key with their self-signing key, their own master key
 * with a device key, or another user's master key with their user-signing key.
 * The object must be the key the server holds, plus the new signatures.
 */
function checkUploadedSignature(input: {
  requester: string;
  targetUserId: string;
  keyId: string;
  object: unknown;
  own: Map<CrossSigningUsage, CrossSigningKeyRecord>;
  targetMaster: CrossSigningKeyRecord | undefined;
  ownDevices: Map<string, JsonObject>;
}): SignatureOutcome {
  const { requester, targetUserId, keyId, object, own, targetMaster, ownDevices } = input;
  if (!isObject(object)) return failed('M_INVALID_PARAM', 'The signed key must be an object');
  const bySigner = isObject(object.signatures) ? object.signatures[requester] : undefined;
  const given = isObject(bySigner) ? Object.entries(bySigner) : [];

  let held: JsonObject;
  /** The keys the requester may sign this object with: key ID -> public key. */
  const signers = new Map<string, string>();
  if (targetMaster !== undefined && keyId === targetMaster.publicKey) {
    held = targetMaster.key;
    if (targetUserId === requester) {
      // The own master key, signed by one of the user's devices.
      for (const [deviceId, device] of ownDevices) {
        const ed25519 = isObject(device.keys) ? device.keys[`ed25519:${deviceId}`] : undefined;
        if (typeof ed25519 === 'string') signers.set(`ed25519:${deviceId}`, ed25519);
      }
    } else {
      const userSigning = own.get('user_signing');
      if (userSigning === undefined) return failed('M_INVALID_SIGNATURE', 'You have no user-signing key');
      signers.set(`ed25519:${userSigning.publicKey}`, userSigning.publicKey);
    }
  } else if (targetUserId === requester && ownDevices.has(keyId)) {
    held = ownDevices.get(keyId)!;
    const selfSigning = own.get('self_signing');
    if (selfSigning === undefined) return failed('M_INVALID_SIGNATURE', 'You have no self-signing key');
    signers.set(`ed25519:${selfSigning.publicKey}`, selfSigning.publicKey);
  } else {
    return failed('M_NOT_FOUND', targetUserId === requester ? 'Unknown device or key' : 'Unknown master key');
  }

  if (!sameSignedContent(held, object)) {
    return failed('M_INVALID_PARAM', 'The signed object does not match the key held by the server');
  }
  const signatures: KeySignature[] = [];
  for (const [signerKeyId, signature] of given) {
    const publicKey = signers.get(signerKeyId);
    if (publicKey === undefined || typeof signature !== 'string') continue;
    const verdict = verifySignature(object, requester, signerKeyId, publicKey);
    if (!verdict.ok) return failed('M_INVALID_SIGNATURE', `Invalid signature: ${verdict.message}`);
    signatures.push({ targetUserId, targetKeyId: keyId, signerUserId: requester, signerKeyId, signature });
  }
  if (signatures.length === 0)
    return failed('M_INVALID_SIGNATURE', 'No signature by a key you may sign this with');
  return { ok: true, signatures };
}

function failed(errcode: string, error: string): SignatureOutcome {
  return { ok: false, errcode, error };
}

function checkKeys(
  given: Record<string, unknown> | undefined,
  signer: { userId: string; deviceId: string; ed25519: string | null },
): OneTimeKeyUpload[] {
  if (given === undefined) return [];
  return Object.entries(given).map(([name, value]) => {
    const verdict = checkOneTimeKey(name, value, signer);
    if (!verdict.ok) throw keyError(verdict);
    return { algorithm: verdict.algorithm, keyId: verdict.keyId, key: value as JsonValue };
  });
}

function keyError(verdict: { reason: 'invalid' | 'bad_signature'; message: string }): MatrixError {
  return verdict.reason === 'bad_signature'
    ? MatrixError.of('M_INVALID_SIGNATURE', verdict.message)
    : MatrixError.invalidParam(verdict.message);
}

/** The same key: everything the owner signed, and the owner's own signatures (re-uploading the same keys needs no UIA). */
function sameKeyObject(held: JsonObject, given: JsonObject): boolean {
  return sameSignedContent(held, given);
}

function groupByServer(userIds: readonly string[]): Map<string, string[]> {
  const byServer = new Map<string, string[]>();
  for (const userId of userIds) {
    const server = userId.slice(userId.indexOf(':') + 1);
    const users = byServer.get(server);
    if (users) users.push(userId);
    else byServer.set(server, [userId]);
  }
  return byServer;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
