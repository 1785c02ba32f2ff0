/**
 * Raw ed25519 signing and verification, by one of two implementations of the same
 * interface. libsodium (sodium-native, a prebuilt native addon) signs in about half
 * the time of node:crypto's OpenSSL and verifies in half the time too
 * (bench/crypto.bench.ts): signing is on every local event's path, verifying on every
 * federated one's. It is also what Synapse verifies with (PyNaCl), so its stricter
 * checks (small-order keys and R values refused) are the ones peers already apply.
 * Where the addon cannot be loaded (a platform without a prebuilt binary), node:crypto
 * does the same work.
 */
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { createRequire } from 'node:module';

export const SEED_LENGTH = 32;
export const PUBLIC_KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;

/** A private key made ready for signing once: building it costs more than a signature. */
export interface Ed25519PrivateKey {
  /** The raw 32-byte public key. */
  readonly publicKey: Buffer;
  sign(message: Uint8Array): Buffer;
}

/** A public key made ready for verifying (what it holds depends on the implementation). */
export interface Ed25519PublicKey {
  readonly verify: (message: Uint8Array, signature: Uint8Array) => boolean;
}

export interface Ed25519 {
  readonly name: 'libsodium' | 'node:crypto';
  /** The signing key of a 32-byte seed. */
  privateKeyFromSeed(seed: Uint8Array): Ed25519PrivateKey;
  /** A raw 32-byte public key prepared for verifying; null if it cannot be one. */
  publicKeyFromRaw(raw: Uint8Array): Ed25519PublicKey | null;
}

/** The part of sodium-native used here. */
interface Sodium {
  crypto_sign_seed_keypair(publicKey: Buffer, secretKey: Buffer, seed: Uint8Array): void;
  crypto_sign_detached(signature: Buffer, message: Uint8Array, secretKey: Buffer): void;
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/** DER prefixes wrapping a raw seed as PKCS#8 and a raw public key as SPKI (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export const nodeCryptoEd25519: Ed25519 = {
  name: 'node:crypto',
  privateKeyFromSeed(seed) {
    const keyObject = createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
      format: 'der',
      type: 'pkcs8',
    });
    const spki = createPublicKey(keyObject).export({ format: 'der', type: 'spki' });
    return {
      publicKey: spki.subarray(SPKI_ED25519_PREFIX.length),
      sign: (message) => sign(null, message, keyObject),
    };
  },
  publicKeyFromRaw(raw) {
    if (raw.length !== PUBLIC_KEY_LENGTH) return null;
    // As libsodium (and so Synapse): a non-canonical or small-order key verifies nothing.
    if (!isCanonicalPoint(raw) || hasSmallOrder(raw)) return { verify: () => false };
    let keyObject: KeyObject;
    try {
      keyObject = createPublicKey({
        key: Buffer.concat([SPKI_ED25519_PREFIX, raw]),
        format: 'der',
        type: 'spki',
      });
    } catch {
      return null;
    }
    return {
      verify: (message, signature) =>
        signature.length === SIGNATURE_LENGTH &&
        !hasSmallOrder(signature.subarray(0, PUBLIC_KEY_LENGTH)) &&
        verify(null, message, keyObject, signature),
    };
  },
};

const FIELD_PRIME = (1n << 255n) - 19n;
/** The y-coordinate of the order-8 points (the other is FIELD_PRIME minus it). */
const ORDER_8_Y = 0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n;
/**
 * The y-coordinates of the points of order 1, 2, 4 and 8, with the non-canonical encodings of
 * 0 and 1: libsodium's list (ge25519_has_small_order), compared with the sign bit ignored.
 */
const SMALL_ORDER_Y = new Set([
  0n,
  1n,
  ORDER_8_Y,
  FIELD_PRIME - ORDER_8_Y,
  FIELD_PRIME - 1n,
  FIELD_PRIME,
  FIELD_PRIME + 1n,
]);

/** A point encoding's y-coordinate (little-endian, the top bit being the sign of x). */
function encodedY(point: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(point).reverse().toString('hex')}`) & ((1n << 255n) - 1n);
}

function isCanonicalPoint(point: Uint8Array): boolean {
  return encodedY(point) < FIELD_PRIME;
}

function hasSmallOrder(point: Uint8Array): boolean {
  return SMALL_ORDER_Y.has(encodedY(point));
}

function libsodiumOf(sodium: Sodium): Ed25519 {
  return {
    name: 'libsodium',
    privateKeyFromSeed(seed) {
      const publicKey = Buffer.alloc(PUBLIC_KEY_LENGTH);
      // libsodium's secret key is the seed followed by the public key.
      const secretKey = Buffer.alloc(SEED_LENGTH + PUBLIC_KEY_LENGTH);
      sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
      return {
        publicKey,
        sign(message) {
          const signature = Buffer.allocUnsafe(SIGNATURE_LENGTH);
          sodium.crypto_sign_detached(signature, message, secretKey);
          return signature;
        },
      };
    },
    publicKeyFromRaw(raw) {
      if (raw.length !== PUBLIC_KEY_LENGTH) return null;
      const key = Buffer.from(raw);
      return {
        verify: (message, signature) =>
          signature.length === SIGNATURE_LENGTH &&
          sodium.crypto_sign_verify_detached(signature, message, key),
      };
    },
  };
}

function loadLibsodium(): { readonly loaded: Ed25519 | null; readonly error?: string } {
  try {
    return { loaded: libsodiumOf(createRequire(import.meta.url)('sodium-native') as Sodium) };
  } catch (error) {
    return { loaded: null, error: error instanceof Error ? error.message : String(error) };
  }
}

const libsodium = loadLibsodium();

/** libsodium's implementation, or null where the addon cannot be loaded. */
export const libsodiumEd25519: Ed25519 | null = libsodium.loaded;

/**
 * Why libsodium could not be loaded (the server warns of it at start-up: node:crypto then
 * signs and verifies, at about half the speed).
 */
export const libsodiumLoadError: string | undefined = libsodium.error;

/** The implementation this process signs and verifies with. */
export const ed25519: Ed25519 = libsodiumEd25519 ?? nodeCryptoEd25519;
