/**
 * End-to-end encryption keys of local devices and users (client-server
 * "Key management API", "Cross-signing") and the device-list stream that
 * tells other users to fetch them again.
 *
 * Keys of a device go with it: deleting a device (DeviceWriter.deleteDevices)
 * removes its device keys, one-time and fallback keys and the signatures
 * made on it. The device-list stream gets an entry, in the same transaction,
 * whenever a device is created, deleted or renamed, whenever keys change
 * (the writers below), and whenever a user starts or stops being joined to a
 * room (derived from the memberships, like them, by persistEvent).
 */
import type { JsonObject, JsonValue } from '../protocol/events.js';

export type CrossSigningUsage = 'master' | 'self_signing' | 'user_signing';

export interface OneTimeKeyUpload {
  readonly algorithm: string;
  readonly keyId: string;
  /** The key as uploaded: an object for a signed key, a string for an unsigned one. */
  readonly key: JsonValue;
}

export interface ClaimRequest {
  readonly userId: string;
  readonly deviceId: string;
  readonly algorithm: string;
}

export interface ClaimedKey extends ClaimRequest {
  readonly keyId: string;
  readonly key: JsonValue;
  /** The device had no one-time key left for the algorithm: this is its fallback key. */
  readonly fallback: boolean;
}

export interface CrossSigningKeyRecord {
  readonly userId: string;
  readonly usage: CrossSigningUsage;
  /** Unpadded base64 ed25519 public key (the key ID is `ed25519:<publicKey>`). */
  readonly publicKey: string;
  /** The key object as uploaded, its own signatures included. */
  readonly key: JsonObject;
}

/** A signature uploaded through /keys/signatures/upload onto a device key or a cross-signing key. */
export interface KeySignature {
  readonly targetUserId: string;
  /** A device ID, or the public key of a cross-signing key. */
  readonly targetKeyId: string;
  readonly signerUserId: string;
  /** e.g. `ed25519:<self-signing public key>`. */
  readonly signerKeyId: string;
  readonly signature: string;
}

/**
 * One entry of the device-list stream. `keys`: the user's devices or keys
 * changed. `joined`/`left`: the user started or stopped being joined to
 * `roomId`, so who shares a room with them may have changed.
 */
export interface DeviceListChange {
  readonly position: number;
  readonly userId: string;
  readonly change: 'keys' | 'joined' | 'left';
  readonly roomId: string | null;
}

export interface E2eKeyReader {
  /** Device keys (as uploaded) of the user's devices, all of them when `deviceIds` is empty; keyed by device ID. */
  deviceKeys(userId: string, deviceIds?: readonly string[]): Promise<Map<string, JsonObject>>;
  /** Unclaimed one-time keys per algorithm. */
  oneTimeKeyCounts(userId: string, deviceId: string): Promise<Record<string, number>>;
  /** The stored one-time keys with these IDs (`<algorithm>:<key_id>` -> key), for duplicate checks. */
  oneTimeKeysNamed(
    userId: string,
    deviceId: string,
    names: readonly string[],
  ): Promise<Map<string, JsonValue>>;
  /** Algorithms for which the device has a fallback key no claim has returned yet. */
  unusedFallbackKeyTypes(userId: string, deviceId: string): Promise<string[]>;
  /**
   * Both of the above when the backend has them in memory (a sync woken with a thousand
   * others asks without a promise); undefined when they would have to be read.
   */
  cachedKeyCounts?(
    userId: string,
    deviceId: string,
  ): { readonly oneTimeKeys: Record<string, number>; readonly fallbackTypes: string[] } | undefined;
  crossSigningKeys(userId: string): Promise<Map<CrossSigningUsage, CrossSigningKeyRecord>>;
  /** Uploaded signatures on the users' keys. */
  signaturesOn(targetUserIds: readonly string[]): Promise<KeySignature[]>;
  /** Entries in (afterPosition, upToPosition], oldest first. */
  deviceListChangesBetween(afterPosition: number, upToPosition: number): Promise<DeviceListChange[]>;
  latestDeviceListPosition(): Promise<number>;
  /**
   * What other servers were last told of the user's devices (m.device_list_update out): the
   * stream ID of the last update (0: none) and a hash of each device's content as sent.
   */
  outboundDeviceList(userId: string): Promise<OutboundDeviceList>;
}

export interface OutboundDeviceList {
  readonly lastStreamId: number;
  readonly hashes: Map<string, string>;
}

export interface E2eKeyWriter {
  /**
   * Stores the device's keys (replacing earlier ones); a change of the signed
   * content drops the signatures uploaded for the old keys and records a
   * device-list change. Resolves to whether anything changed.
   */
  setDeviceKeys(userId: string, deviceId: string, keys: JsonObject): Promise<boolean>;
  /** Adds one-time keys; an ID already stored is kept as it is (the caller refuses a different key). */
  addOneTimeKeys(userId: string, deviceId: string, keys: readonly OneTimeKeyUpload[]): Promise<void>;
  /** Sets the fallback key per algorithm; a new key is unused, the same key again keeps its used flag. */
  setFallbackKeys(userId: string, deviceId: string, keys: readonly OneTimeKeyUpload[]): Promise<void>;
  /**
   * Hands out one key per request, atomically: the oldest one-time key of the
   * algorithm (removed, so no other claim gets it), else the fallback key
   * (marked used). Requests with no key are left out.
   */
  claimKeys(requests: readonly ClaimRequest[]): Promise<ClaimedKey[]>;
  /** Replaces the user's cross-signing keys of these usages; records one device-list change. */
  setCrossSigningKeys(userId: string, keys: readonly CrossSigningKeyRecord[]): Promise<void>;
  /** Stores signatures (replacing one by the same signer and key); records a device-list change for each user named in `changedUsers`. */
  addSignatures(signatures: readonly KeySignature[], changedUsers: readonly string[]): Promise<void>;
  /** Records that the user's devices or keys changed (e.g. a device was renamed elsewhere); resolves to its position. */
  recordDeviceListChange(userId: string): Promise<number>;
  /** Records updates sent for the user: the last stream ID, and each device's new hash (null: deleted). */
  recordOutboundDeviceList(
    userId: string,
    lastStreamId: number,
    changes: ReadonlyMap<string, string | null>,
  ): Promise<void>;
}

export interface E2eKeyStore extends E2eKeyReader, E2eKeyWriter {}
