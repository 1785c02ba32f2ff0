/**
 * The identity server's signature on a third-party invite's `signed` block (auth rule
 * 4.4.1.7, "any signature in signed matches any public key in the m.room.third_party_invite
 * event"). One check for the auth rules and for the inviter's server when it accepts an
 * exchange (server-server "Third-party invites"), so both read the keys and signatures alike.
 */
import { ProtocolError } from './errors.js';
import type { JsonObject, JsonValue } from './events.js';
import { verifyJsonSignature } from './signing.js';

/**
 * Checks that `object` (a third-party invite's `signed` block) carries a valid signature by
 * `signingName`/`keyId` under the ed25519 public key `publicKeyBase64` (unpadded base64).
 */
export type JsonSignatureVerifier = (
  object: JsonObject,
  signingName: string,
  keyId: string,
  publicKeyBase64: string,
) => boolean;

/** ed25519 over canonical JSON; a malformed public key matches nothing. */
export const verifyEd25519JsonSignature: JsonSignatureVerifier = (
  object,
  signingName,
  keyId,
  publicKeyBase64,
) => {
  try {
    return verifyJsonSignature(object, signingName, keyId, publicKeyBase64).ok;
  } catch (e) {
    if (e instanceof ProtocolError) return false;
    throw e;
  }
};

function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The invite's public keys: the legacy `public_key` and each `public_keys[].public_key`. */
export function thirdPartyInvitePublicKeys(inviteContent: JsonObject): string[] {
  const keys: string[] = [];
  if (typeof inviteContent.public_key === 'string') keys.push(inviteContent.public_key);
  if (Array.isArray(inviteContent.public_keys)) {
    for (const entry of inviteContent.public_keys) {
      if (isJsonObject(entry) && typeof entry.public_key === 'string') keys.push(entry.public_key);
    }
  }
  return keys;
}

/** Whether any signature on `signed` verifies with any public key of the m.room.third_party_invite content. */
export function isSignedByInviteKey(
  signed: JsonObject,
  inviteContent: JsonObject,
  verify: JsonSignatureVerifier = verifyEd25519JsonSignature,
): boolean {
  const keys = thirdPartyInvitePublicKeys(inviteContent);
  const signatures = signed.signatures;
  if (!isJsonObject(signatures)) return false;
  for (const signingName in signatures) {
    const byKeyId = signatures[signingName];
    if (!isJsonObject(byKeyId)) continue;
    for (const keyId in byKeyId) {
      if (typeof byKeyId[keyId] !== 'string') continue;
      if (keys.some((key) => verify(signed, signingName, keyId, key))) return true;
    }
  }
  return false;
}
