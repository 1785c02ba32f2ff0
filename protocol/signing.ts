/**
 * ed25519 signing keys and JSON signatures (spec: appendices "Signing JSON",
 * "Signing Details", "Checking for a Signature").
 * Keys are prepared once (ed25519.ts): preparing one costs more than a signature.
 */
import { randomBytes } from 'node:crypto';
import { decodeBase64, encodeUnpaddedBase64 } from './base64.js';
import { encodeCanonicalJsonWithout } from './canonical-json.js';
import {
  type Ed25519PrivateKey,
  type Ed25519PublicKey,
  ed25519,
  PUBLIC_KEY_LENGTH,
  SEED_LENGTH,
  SIGNATURE_LENGTH,
} from './ed25519.js';
import { isProtocolError, ProtocolError } from './errors.js';

export interface SigningKey {
  /** `ed25519:<version>`, e.g. `ed25519:a_AbCd`. */
  readonly keyId: string;
  /** The 32-byte ed25519 seed (the private key). */
  readonly seed: Buffer;
  /** The public key, unpadded base64. */
  readonly publicKey: string;
  /** The seed prepared for signing. */
  readonly privateKey: Ed25519PrivateKey;
}

/** `signatures`: signing entity -> key ID -> unpadded base64 signature. */
export type Signatures = Record<string, Record<string, string>>;

export type SignatureVerdict =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reason:
        | 'missing_signature' // no signature by that entity with that key ID
        | 'malformed_signature' // not base64, or not 64 bytes
        | 'unencodable' // the object cannot be encoded as canonical JSON
        | 'bad_signature'; // the signature does not match
      readonly message: string;
    };

const KEY_VERSION = /^[A-Za-z0-9_]+$/;
const VERSION_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Splits `ed25519:abc` into algorithm and version, checking the version grammar. */
export function parseKeyId(keyId: string): { algorithm: string; version: string } {
  const colon = typeof keyId === 'string' ? keyId.indexOf(':') : -1;
  const version = colon > 0 ? keyId.slice(colon + 1) : '';
  if (!KEY_VERSION.test(version)) {
    throw new ProtocolError('BAD_KEY', `Key ID '${keyId}' is not of the form algorithm:version`);
  }
  return { algorithm: keyId.slice(0, colon), version };
}

export function signingKeyFromSeed(keyId: string, seed: Uint8Array): SigningKey {
  const { algorithm } = parseKeyId(keyId);
  if (algorithm !== 'ed25519')
    throw new ProtocolError('BAD_KEY', `Unsupported signing algorithm '${algorithm}'`);
  if (seed.length !== SEED_LENGTH) {
    throw new ProtocolError('BAD_KEY', `An ed25519 seed has ${SEED_LENGTH} bytes, not ${seed.length}`);
  }
  const seedBuffer = Buffer.from(seed);
  const privateKey = ed25519.privateKeyFromSeed(seedBuffer);
  return { keyId, seed: seedBuffer, publicKey: encodeUnpaddedBase64(privateKey.publicKey), privateKey };
}

/** A fresh key; the version defaults to `a_` and four random characters, as Synapse names them. */
export function generateSigningKey(version?: string): SigningKey {
  const chosen =
    version ??
    `a_${Array.from(randomBytes(4), (b) => VERSION_ALPHABET[b % VERSION_ALPHABET.length]).join('')}`;
  return signingKeyFromSeed(`ed25519:${chosen}`, randomBytes(SEED_LENGTH));
}

/** Synapse's signing key file: one line per key, `ed25519 <version> <unpadded base64 seed>`. */
export function formatSigningKeyFile(key: SigningKey): string {
  const { algorithm, version } = parseKeyId(key.keyId);
  return `${algorithm} ${version} ${encodeUnpaddedBase64(key.seed)}\n`;
}

/** Every key in a signing key file (blank lines ignored). */
export function parseSigningKeys(text: string): SigningKey[] {
  const keys: SigningKey[] = [];
  for (const [index, rawLine] of text.split('\n').entries()) {
    const line = rawLine.trim();
    if (line === '') continue;
    const parts = line.split(/\s+/);
    if (parts.length !== 3) {
      throw new ProtocolError(
        'BAD_KEY',
        `Signing key file line ${index + 1}: expected 'ed25519 <version> <seed>'`,
      );
    }
    const [algorithm, version, seed] = parts as [string, string, string];
    let seedBytes: Buffer;
    try {
      seedBytes = decodeBase64(seed);
    } catch (e) {
      if (!isProtocolError(e)) throw e;
      throw new ProtocolError('BAD_KEY', `Signing key file line ${index + 1}: the seed is not base64`);
    }
    keys.push(signingKeyFromSeed(`${algorithm}:${version}`, seedBytes));
  }
  return keys;
}

/** The first key of a signing key file. */
export function parseSigningKeyFile(text: string): SigningKey {
  const [first] = parseSigningKeys(text);
  if (!first) throw new ProtocolError('BAD_KEY', 'The signing key file holds no key');
  return first;
}

/** Raw ed25519 signature of some bytes. */
export function signBytes(bytes: Uint8Array, key: SigningKey): Buffer {
  return key.privateKey.sign(bytes);
}

const preparedPublicKeys = new Map<string, Ed25519PublicKey>();
const PUBLIC_KEY_CACHE_LIMIT = 4096;

/**
 * An unpadded base64 ed25519 public key prepared for verifying, memoised: servers
 * verify many events against few keys.
 * @throws ProtocolError('BAD_KEY') if the key is not 32 bytes of base64.
 */
export function preparedPublicKey(publicKeyBase64: string): Ed25519PublicKey {
  const cached = preparedPublicKeys.get(publicKeyBase64);
  if (cached) return cached;
  let raw: Buffer;
  try {
    raw = decodeBase64(publicKeyBase64);
  } catch (e) {
    if (!isProtocolError(e)) throw e;
    throw new ProtocolError('BAD_KEY', 'The public key is not base64');
  }
  if (raw.length !== PUBLIC_KEY_LENGTH) {
    throw new ProtocolError(
      'BAD_KEY',
      `An ed25519 public key has ${PUBLIC_KEY_LENGTH} bytes, not ${raw.length}`,
    );
  }
  const prepared = ed25519.publicKeyFromRaw(raw);
  if (prepared === null) throw new ProtocolError('BAD_KEY', 'Not a valid ed25519 public key');
  if (preparedPublicKeys.size >= PUBLIC_KEY_CACHE_LIMIT) preparedPublicKeys.clear();
  preparedPublicKeys.set(publicKeyBase64, prepared);
  return prepared;
}

/** Raw ed25519 verification of an unpadded base64 signature; false for any malformed signature. */
export function verifyBytes(bytes: Uint8Array, signatureBase64: string, publicKeyBase64: string): boolean {
  const publicKey = preparedPublicKey(publicKeyBase64);
  let signature: Buffer;
  try {
    signature = decodeBase64(signatureBase64);
  } catch (e) {
    if (isProtocolError(e)) return false;
    throw e;
  }
  return publicKey.verify(bytes, signature);
}

/** Adds one signature to a `signatures` object without modifying it. */
export function withSignature(
  signatures: Signatures | undefined,
  signingName: string,
  keyId: string,
  signature: string,
): Signatures {
  const existing = signatures && typeof signatures === 'object' ? signatures : {};
  return { ...existing, [signingName]: { ...existing[signingName], [keyId]: signature } };
}

/**
 * Signs a JSON object (spec: appendices "Signing Details"): the signature covers the
 * canonical JSON of the object without `signatures` and `unsigned`, and is added under
 * `signatures[signingName][keyId]` beside any existing signatures. Returns a new object.
 * @throws ProtocolError('BAD_JSON') if the object cannot be encoded as canonical JSON.
 */
export function signJson<T extends object>(
  object: T,
  signingName: string,
  key: SigningKey,
): T & { signatures: Signatures } {
  const bytes = Buffer.from(encodeCanonicalJsonWithout(object, ['signatures', 'unsigned']), 'utf8');
  const signature = encodeUnpaddedBase64(signBytes(bytes, key));
  const existing = (object as { signatures?: Signatures }).signatures;
  return { ...object, signatures: withSignature(existing, signingName, key.keyId, signature) };
}

/**
 * Checks one signature on a JSON object (spec: appendices "Checking for a Signature",
 * steps 1, 4-7; choosing keys, steps 2-3, is the caller's). Never throws for a bad or
 * missing signature.
 * @throws ProtocolError('BAD_KEY') only if the public key itself is malformed.
 */
export function verifyJsonSignature(
  object: object,
  signingName: string,
  keyId: string,
  publicKeyBase64: string,
): SignatureVerdict {
  const publicKey = preparedPublicKey(publicKeyBase64);
  // 1. The entity must have signed, with this key.
  const signatures = (object as { signatures?: unknown }).signatures;
  const byEntity = isRecord(signatures) ? signatures[signingName] : undefined;
  const signatureBase64 = isRecord(byEntity) ? byEntity[keyId] : undefined;
  if (typeof signatureBase64 !== 'string') {
    return {
      ok: false,
      reason: 'missing_signature',
      message: `No signature from ${signingName} with ${keyId}`,
    };
  }
  // 4. Decode the signature.
  let signature: Buffer;
  try {
    signature = decodeBase64(signatureBase64);
  } catch {
    return { ok: false, reason: 'malformed_signature', message: `The ${keyId} signature is not base64` };
  }
  if (signature.length !== SIGNATURE_LENGTH) {
    return { ok: false, reason: 'malformed_signature', message: `The ${keyId} signature is not 64 bytes` };
  }
  // 5-6. Canonical JSON without `signatures` and `unsigned`.
  let bytes: Buffer;
  try {
    bytes = Buffer.from(encodeCanonicalJsonWithout(object, ['signatures', 'unsigned']), 'utf8');
  } catch (e) {
    if (!isProtocolError(e)) throw e;
    return { ok: false, reason: 'unencodable', message: e.message };
  }
  // 7. Check the signature.
  if (!publicKey.verify(bytes, signature)) {
    return {
      ok: false,
      reason: 'bad_signature',
      message: `The ${keyId} signature from ${signingName} does not match`,
    };
  }
  return { ok: true };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
