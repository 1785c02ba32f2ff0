/**
 * Server signing keys as published (server-server "Retrieving server keys"):
 * building this server's self-signed key object, and checking one received
 * from a server or a notary.
 */
import { type Signatures, type SigningKey, signJson, verifyJsonSignature } from './signing.js';

/** The body of GET /_matrix/key/v2/server (and each entry of a notary's server_keys). */
export interface ServerKeysObject {
  server_name: string;
  valid_until_ts: number;
  verify_keys: Record<string, { key: string }>;
  old_verify_keys: Record<string, { key: string; expired_ts: number }>;
  signatures?: Signatures;
}

/** A key this server no longer signs with, still published so old signatures verify. */
export interface OldVerifyKey {
  readonly keyId: string;
  readonly publicKey: string;
  readonly expiredTs: number;
}

/** One key of a server as a key ring keeps it. */
export interface PublishedKey {
  readonly serverName: string;
  readonly keyId: string;
  readonly publicKey: string;
  /** For a current key: the response's valid_until_ts. For an old key: its expired_ts. */
  readonly validUntilTs: number;
  /** True for a key from old_verify_keys. */
  readonly expired: boolean;
}

export function buildServerKeys(input: {
  serverName: string;
  key: SigningKey;
  oldKeys: readonly OldVerifyKey[];
  validUntilTs: number;
}): ServerKeysObject & { signatures: Signatures } {
  const oldVerifyKeys: ServerKeysObject['old_verify_keys'] = {};
  for (const old of input.oldKeys) {
    if (old.keyId !== input.key.keyId) {
      oldVerifyKeys[old.keyId] = { key: old.publicKey, expired_ts: old.expiredTs };
    }
  }
  return signJson(
    {
      server_name: input.serverName,
      valid_until_ts: input.validUntilTs,
      verify_keys: { [input.key.keyId]: { key: input.key.publicKey } },
      old_verify_keys: oldVerifyKeys,
    },
    input.serverName,
    input.key,
  );
}

export type ServerKeysVerdict =
  | { readonly ok: true; readonly keys: PublishedKey[]; readonly validUntilTs: number }
  | { readonly ok: false; readonly message: string };

/**
 * The checks of "Retrieving server keys": the object names the expected
 * server, has a numeric valid_until_ts and well-formed keys, and every key in
 * verify_keys has signed it. (Notary responses carry the notary's signature
 * too; the caller checks that one with the notary's key.)
 */
export function checkServerKeys(object: unknown, expectedServerName: string): ServerKeysVerdict {
  if (!isRecord(object)) return fail('The key response is not an object');
  if (object.server_name !== expectedServerName) {
    return fail(`The key response names ${String(object.server_name)}, not ${expectedServerName}`);
  }
  const validUntilTs = object.valid_until_ts;
  if (typeof validUntilTs !== 'number' || !Number.isSafeInteger(validUntilTs)) {
    return fail('valid_until_ts is missing or not an integer');
  }
  if (!isRecord(object.verify_keys) || Object.keys(object.verify_keys).length === 0) {
    return fail('verify_keys is missing or empty');
  }
  const keys: PublishedKey[] = [];
  for (const [keyId, entry] of Object.entries(object.verify_keys)) {
    if (!keyId.startsWith('ed25519:')) continue;
    if (!isRecord(entry) || typeof entry.key !== 'string') return fail(`verify_keys.${keyId} is malformed`);
    let verdict: ReturnType<typeof verifyJsonSignature>;
    try {
      verdict = verifyJsonSignature(object, expectedServerName, keyId, entry.key);
    } catch {
      return fail(`verify_keys.${keyId} is not a valid ed25519 key`);
    }
    if (!verdict.ok) return fail(`The key response is not signed with ${keyId}: ${verdict.message}`);
    keys.push({ serverName: expectedServerName, keyId, publicKey: entry.key, validUntilTs, expired: false });
  }
  if (keys.length === 0) return fail('verify_keys holds no ed25519 key');
  const old = object.old_verify_keys;
  if (old !== undefined) {
    if (!isRecord(old)) return fail('old_verify_keys is not an object');
    for (const [keyId, entry] of Object.entries(old)) {
      if (!keyId.startsWith('ed25519:') || object.verify_keys[keyId] !== undefined) continue;
      if (!isRecord(entry) || typeof entry.key !== 'string' || typeof entry.expired_ts !== 'number') {
        return fail(`old_verify_keys.${keyId} is malformed`);
      }
      keys.push({
        serverName: expectedServerName,
        keyId,
        publicKey: entry.key,
        validUntilTs: entry.expired_ts,
        expired: true,
      });
    }
  }
  return { ok: true, keys, validUntilTs };
}

function fail(message: string): ServerKeysVerdict {
  return { ok: false, message };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
