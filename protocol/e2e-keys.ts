/**
 * End-to-end encryption key objects (client-server "End-to-End Encryption":
 * "Key management API", "Cross-signing"): the checks a server makes on device
 * keys, signed one-time and fallback keys and cross-signing keys before it
 * stores them. Pure: each check returns a typed verdict; the caller maps it
 * onto an error.
 */

import { isProtocolError } from './errors.js';
import type { JsonObject, JsonValue } from './events.js';
import { type SignatureVerdict, verifyJsonSignature } from './signing.js';

export const CROSS_SIGNING_USAGES = ['master', 'self_signing', 'user_signing'] as const;
export type CrossSigningUsage = (typeof CROSS_SIGNING_USAGES)[number];

export type KeyVerdict<T> =
  | ({ readonly ok: true } & T)
  | { readonly ok: false; readonly reason: 'invalid' | 'bad_signature'; readonly message: string };

/**
 * Device identity keys (definitions/device_keys.yaml): they must name the
 * uploading user and device, carry an `ed25519:<device_id>` key, and be
 * signed by the user with that key (the device's self-signature).
 */
export function checkDeviceKeys(
  value: unknown,
  userId: string,
  deviceId: string,
): KeyVerdict<{ readonly ed25519: string; readonly keys: JsonObject }> {
  if (!isObject(value)) return invalid('device_keys must be an object');
  if (value.user_id !== userId) return invalid('device_keys.user_id does not match the access token');
  if (value.device_id !== deviceId) return invalid('device_keys.device_id does not match the access token');
  if (!Array.isArray(value.algorithms) || !value.algorithms.every((a) => typeof a === 'string'))
    return invalid('device_keys.algorithms must be a list of strings');
  if (!isObject(value.keys) || !Object.values(value.keys).every((k) => typeof k === 'string'))
    return invalid('device_keys.keys must map key IDs to strings');
  if (!isObject(value.signatures)) return invalid('device_keys.signatures must be an object');
  const ed25519 = value.keys[`ed25519:${deviceId}`];
  if (typeof ed25519 !== 'string') return invalid(`device_keys.keys has no ed25519:${deviceId} key`);
  const verdict = verifySignature(value, userId, `ed25519:${deviceId}`, ed25519);
  if (!verdict.ok) return badSignature(`device_keys: ${verdict.message}`);
  return { ok: true, ed25519, keys: value };
}

/**
 * A one-time or fallback key (`<algorithm>:<key_id>` -> key). A signed key
 * (an object) must be signed by the device's ed25519 key when that key is
 * known; an unsigned one is a plain string (the old `curve25519` algorithm).
 */
export function checkOneTimeKey(
  name: string,
  value: unknown,
  signer: { readonly userId: string; readonly deviceId: string; readonly ed25519: string | null },
): KeyVerdict<{ readonly algorithm: string; readonly keyId: string }> {
  const colon = name.indexOf(':');
  if (colon <= 0 || colon === name.length - 1)
    return invalid(`Key name '${name}' is not of the form <algorithm>:<key_id>`);
  const algorithm = name.slice(0, colon);
  const keyId = name.slice(colon + 1);
  if (typeof value === 'string') return { ok: true, algorithm, keyId };
  if (!isObject(value) || typeof value.key !== 'string')
    return invalid(`Key ${name} must be a string or an object with a string 'key'`);
  if (signer.ed25519 !== null) {
    const verdict = verifySignature(value, signer.userId, `ed25519:${signer.deviceId}`, signer.ed25519);
    if (!verdict.ok) return badSignature(`Key ${name}: ${verdict.message}`);
  }
  return { ok: true, algorithm, keyId };
}

/**
 * A cross-signing key (definitions/cross_signing_key.yaml): the user's own,
 * with the expected usage, and exactly one key `ed25519:<public key>` whose
 * value is that public key.
 */
export function checkCrossSigningKey(
  value: unknown,
  userId: string,
  usage: CrossSigningUsage,
): KeyVerdict<{ readonly publicKey: string; readonly key: JsonObject }> {
  if (!isObject(value)) return invalid(`The ${usage} key must be an object`);
  if (value.user_id !== userId) return invalid(`The ${usage} key's user_id is not yours`);
  if (!Array.isArray(value.usage) || !value.usage.includes(usage))
    return invalid(`The ${usage} key's usage must include '${usage}'`);
  if (!isObject(value.keys)) return invalid(`The ${usage} key has no keys`);
  const entries = Object.entries(value.keys);
  if (entries.length !== 1) return invalid(`The ${usage} key must have exactly one public key`);
  const [keyId, publicKey] = entries[0]!;
  if (typeof publicKey !== 'string' || keyId !== `ed25519:${publicKey}`)
    return invalid(`The ${usage} key must be named ed25519:<public key>`);
  if (value.signatures !== undefined && !isObject(value.signatures))
    return invalid(`The ${usage} key's signatures must be an object`);
  return { ok: true, publicKey, key: value };
}

/** Whether `object` carries a valid signature by `signer` with `keyId` (an ed25519 public key); a malformed key is a bad signature. */
export function verifySignature(
  object: JsonObject,
  signer: string,
  keyId: string,
  publicKey: string,
): SignatureVerdict {
  try {
    return verifyJsonSignature(object, signer, keyId, publicKey);
  } catch (error) {
    if (!isProtocolError(error)) throw error;
    return { ok: false, reason: 'bad_signature', message: `The key ${keyId} is not a valid ed25519 key` };
  }
}

/**
 * The signed parts of two copies of a key object are the same (everything
 * but `signatures` and `unsigned`): /keys/signatures/upload may only add
 * signatures to the key the server holds.
 */
export function sameSignedContent(a: JsonObject, b: JsonObject): boolean {
  return canonicalEqual(withoutSignatures(a), withoutSignatures(b));
}

function withoutSignatures(object: JsonObject): JsonObject {
  const { signatures: _signatures, unsigned: _unsigned, ...rest } = object;
  return rest;
}

function canonicalEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, index) => canonicalEqual(item, b[index]));
  }
  const keysA = Object.keys(a);
  if (keysA.length !== Object.keys(b).length) return false;
  return keysA.every((key) => Object.hasOwn(b, key) && canonicalEqual(a[key], b[key]));
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): { ok: false; reason: 'invalid'; message: string } {
  return { ok: false, reason: 'invalid', message };
}

function badSignature(message: string): { ok: false; reason: 'bad_signature'; message: string } {
  return { ok: false, reason: 'bad_signature', message };
}
