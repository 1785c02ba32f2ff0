/**
 * Content hashes, reference hashes, event IDs and room IDs per room version, and
 * the hashing and signing of events (spec: server-server "Signing Events",
 * "Calculating the reference hash/content hash for an event"; rooms/fragments
 * v1-event-ids, v4-event-ids, v12-event-format; appendices "Room IDs").
 */
import { hash } from 'node:crypto';
import { decodeBase64, encodeUnpaddedBase64 } from './base64.js';
import { encodeCanonicalJsonWithout } from './canonical-json.js';
import { isProtocolError, ProtocolError } from './errors.js';
import type { Pdu, RoomEvent } from './events.js';
import { redactEvent } from './redaction.js';
import type { RoomVersionRules } from './room-versions.js';
import { type SigningKey, signBytes, verifyBytes, withSignature } from './signing.js';

/** An event before it is hashed and signed: `hashes` and `signatures` may be missing. */
export type UnsignedPdu = Omit<Pdu, 'hashes' | 'signatures'> & Partial<Pick<Pdu, 'hashes' | 'signatures'>>;

/** What the caller's key ring knows of a server's key. */
export interface VerifyKey {
  /** Unpadded base64 ed25519 public key. */
  readonly publicKey: string;
  /** For room versions that enforce key validity: the key only covers events up to this time. */
  readonly validUntilTs?: number;
}
export type VerifyKeyLookup = (serverName: string, keyId: string) => VerifyKey | undefined;

export type EventSignatureVerdict =
  | {
      readonly ok: true /** The servers whose signatures were required and checked. */;
      readonly servers: string[];
    }
  | {
      readonly ok: false;
      readonly reason:
        | 'malformed_event' // cannot tell who must sign, or cannot encode the event
        | 'missing_signature' // a required server did not sign with any ed25519 key
        | 'no_known_key' // it signed, but with no key we know (or only with expired ones)
        | 'bad_signature'; // a signature by a known, valid key does not match
      readonly serverName?: string;
      readonly keyId?: string;
      readonly message: string;
    };

const CONTENT_HASH_OMITS = ['unsigned', 'signatures', 'hashes'] as const;
const SIGNATURE_OMITS = ['signatures', 'unsigned'] as const;

function sha256(text: string): Buffer {
  return hash('sha256', text, 'buffer');
}

/** SHA-256 straight to unpadded base64: the one-shot `hash` is several times faster than `createHash` here. */
function sha256Base64(text: string, encoding: 'base64' | 'base64url'): string {
  const encoded = hash('sha256', text, encoding);
  return encoded.endsWith('=') ? encoded.slice(0, encoded.indexOf('=')) : encoded;
}

function strictness(rules: RoomVersionRules | undefined): { strict: boolean } {
  return { strict: rules?.strictCanonicalJson === true };
}

/** Callers may hand over unchecked JSON: fail with a ProtocolError, never a TypeError. */
function requireEventObject(pdu: unknown): void {
  if (typeof pdu !== 'object' || pdu === null || Array.isArray(pdu)) {
    throw new ProtocolError('BAD_EVENT', 'An event must be a JSON object');
  }
}

/** The server part of a user, event or room ID (`sigil localpart ':' server`). */
function serverNameOf(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const colon = id.indexOf(':');
  return colon > 0 && colon < id.length - 1 ? id.slice(colon + 1) : undefined;
}

/**
 * SHA-256 of the event without `unsigned`, `signatures` and `hashes`
 * (spec: server-server "Calculating the content hash for an event").
 * Pass the room version's rules to enforce its canonical JSON strictness.
 */
export function computeContentHashBytes(pdu: UnsignedPdu, rules?: RoomVersionRules): Buffer {
  return sha256(encodeCanonicalJsonWithout(pdu, CONTENT_HASH_OMITS, strictness(rules)));
}

/** The content hash as it goes in `hashes.sha256`: unpadded base64. */
export function computeContentHash(pdu: UnsignedPdu, rules?: RoomVersionRules): string {
  return sha256Base64(encodeCanonicalJsonWithout(pdu, CONTENT_HASH_OMITS, strictness(rules)), 'base64');
}

/** Whether `hashes.sha256` matches the event's content; false when it is missing or malformed. */
export function checkContentHash(pdu: Pdu, rules?: RoomVersionRules): boolean {
  requireEventObject(pdu);
  const claimed = (pdu as { hashes?: { sha256?: unknown } }).hashes?.sha256;
  if (typeof claimed !== 'string') return false;
  try {
    return decodeBase64(claimed).equals(computeContentHashBytes(pdu, rules));
  } catch (e) {
    if (isProtocolError(e)) return false;
    throw e;
  }
}

/**
 * SHA-256 of the redacted event without `signatures` and `unsigned`
 * (spec: server-server "Calculating the reference hash for an event", steps 1-4).
 */
export function computeReferenceHash(pdu: Pdu, rules: RoomVersionRules): Buffer {
  return sha256(referenceHashInput(pdu, rules));
}

function referenceHashInput(pdu: Pdu, rules: RoomVersionRules): string {
  // 1. Redact (this also drops `unsigned`, `age_ts` and any other unlisted key).
  const redacted = redactEvent(pdu, rules);
  // 2-3. Without signatures, canonical JSON (4, SHA-256, is the caller's).
  return encodeCanonicalJsonWithout(redacted, SIGNATURE_OMITS, strictness(rules));
}

/**
 * The event ID: carried in `event_id` in room versions 1-2; `$` + the reference hash
 * in standard unpadded base64 in v3, URL-safe unpadded base64 from v4.
 */
export function computeEventId(pdu: Pdu, rules: RoomVersionRules): string {
  requireEventObject(pdu);
  switch (rules.eventIdFormat) {
    case 'server-generated': {
      const eventId = (pdu as { event_id?: unknown }).event_id;
      if (typeof eventId !== 'string') {
        throw new ProtocolError('BAD_EVENT', `Room version ${rules.id} events carry an event_id`, 'event_id');
      }
      return eventId;
    }
    case 'reference-hash':
    case 'reference-hash-url-safe':
      return eventIdFromReferenceInput(referenceHashInput(pdu, rules), rules);
  }
}

/** `$` + the SHA-256 of the reference-hash input, in the room version's base64 (v3+). */
function eventIdFromReferenceInput(text: string, rules: RoomVersionRules): string {
  return `$${sha256Base64(text, rules.eventIdFormat === 'reference-hash' ? 'base64' : 'base64url')}`;
}

function isRoomIdDefiningCreateEvent(pdu: Pdu, rules: RoomVersionRules): boolean {
  return rules.roomIdIsCreateEventHash && pdu.type === 'm.room.create' && pdu.state_key === '';
}

function carriedRoomId(pdu: Pdu): string {
  requireEventObject(pdu);
  const roomId = (pdu as { room_id?: unknown }).room_id;
  if (typeof roomId !== 'string') throw new ProtocolError('BAD_EVENT', 'The event has no room_id', 'room_id');
  return roomId;
}

/**
 * The room ID a create event founds: from room version 12 `!` + its URL-safe
 * reference hash (its event ID with `!` for `$`); before that, its `room_id`.
 */
export function roomIdFromCreateEvent(createPdu: Pdu, rules: RoomVersionRules): string {
  if (!rules.roomIdIsCreateEventHash) return carriedRoomId(createPdu);
  return `!${sha256Base64(referenceHashInput(createPdu, rules), 'base64url')}`;
}

/** Pairs a PDU with its computed event ID and room ID, computing each once. */
export function toRoomEvent(pdu: Pdu, rules: RoomVersionRules): RoomEvent {
  return roomEventWithId(pdu, computeEventId(pdu, rules), rules);
}

function roomEventWithId(pdu: Pdu, eventId: string, rules: RoomVersionRules): RoomEvent {
  const roomId = isRoomIdDefiningCreateEvent(pdu, rules) ? `!${eventId.slice(1)}` : carriedRoomId(pdu);
  return { eventId, roomId, pdu };
}

/**
 * Adds the content hash and this server's signature to an outgoing event
 * (spec: server-server "Adding hashes and signatures to outgoing events").
 * Returns a new event; existing signatures by other servers and `unsigned` are kept.
 * @throws ProtocolError('BAD_JSON') if the event cannot be encoded as the room version's canonical JSON.
 */
export function hashAndSignEvent(
  pdu: UnsignedPdu,
  serverName: string,
  key: SigningKey,
  rules: RoomVersionRules,
): Pdu {
  return hashAndSignWithText(pdu, serverName, key, rules).hashed;
}

/** hashAndSignEvent, also returning the canonical text it signed (the redacted event without signatures). */
function hashAndSignWithText(
  pdu: UnsignedPdu,
  serverName: string,
  key: SigningKey,
  rules: RoomVersionRules,
): { hashed: Pdu; text: string } {
  // 1. The content hash covers the whole event.
  const hashed = { ...pdu, hashes: { sha256: computeContentHash(pdu, rules) } } as Pdu;
  // 2. Redact, then 3. sign the redacted form, so the signature survives redaction.
  const text = encodeCanonicalJsonWithout(redactEvent(hashed, rules), SIGNATURE_OMITS, strictness(rules));
  const signature = encodeUnpaddedBase64(signBytes(Buffer.from(text, 'utf8'), key));
  // 4. Copy the signature back to the full event.
  hashed.signatures = withSignature(pdu.signatures, serverName, key.keyId, signature);
  return { hashed, text };
}

/**
 * `toRoomEvent(hashAndSignEvent(...))` for an event this server builds, with one canonical
 * encoding less: the reference hash covers the redacted event without `signatures` and
 * `unsigned`, which are exactly the bytes just signed (adding the signature changes only
 * the omitted `signatures`).
 * @throws ProtocolError('BAD_JSON') as hashAndSignEvent.
 */
export function hashSignAndIdentifyEvent(
  pdu: UnsignedPdu,
  serverName: string,
  key: SigningKey,
  rules: RoomVersionRules,
): RoomEvent {
  const { hashed, text } = hashAndSignWithText(pdu, serverName, key, rules);
  if (rules.eventIdFormat === 'server-generated') return toRoomEvent(hashed, rules);
  return roomEventWithId(hashed, eventIdFromReferenceInput(text, rules), rules);
}

/**
 * The servers whose signatures an event needs (spec: server-server "Validating hashes
 * and signatures on received events"): the sender's server, except for an invite made
 * from a third-party invite (as Synapse does); in room versions 1-2 also the server of
 * the event ID; with restricted joins (v8+) also the server of
 * `join_authorised_via_users_server`.
 * Returns undefined if an ID that decides it has no server part.
 */
export function requiredSignatories(pdu: Pdu, rules: RoomVersionRules): string[] | undefined {
  requireEventObject(pdu);
  const servers = new Set<string>();
  const content: unknown = pdu.content;
  const contentObject =
    typeof content === 'object' && content !== null ? (content as Record<string, unknown>) : {};
  const isMember = pdu.type === 'm.room.member';
  const isThirdPartyInvite =
    isMember && contentObject.membership === 'invite' && Object.hasOwn(contentObject, 'third_party_invite');
  if (!isThirdPartyInvite) {
    const senderServer = serverNameOf(pdu.sender);
    if (!senderServer) return undefined;
    servers.add(senderServer);
  }
  if (rules.eventIdFormat === 'server-generated') {
    const eventServer = serverNameOf(pdu.event_id);
    if (!eventServer) return undefined;
    servers.add(eventServer);
  }
  if (rules.restrictedJoinAllowed && isMember && contentObject.membership === 'join') {
    const via = contentObject.join_authorised_via_users_server;
    if (via !== undefined) {
      const viaServer = serverNameOf(via);
      if (!viaServer) return undefined;
      servers.add(viaServer);
    }
  }
  return [...servers];
}

/**
 * Checks the signatures an event needs on its redacted form, so that a redacted copy
 * verifies as well as the full event. For each required server, signatures by keys the
 * lookup does not know, or (with `enforceKeyValidity`) keys whose `validUntilTs` is before
 * the event's `origin_server_ts`, are skipped; at least one must remain and all that remain
 * must be valid. The content hash is a separate check (`checkContentHash`).
 * @throws ProtocolError('BAD_KEY') if the lookup returns a malformed public key.
 */
export function verifyEventSignatures(
  pdu: Pdu,
  rules: RoomVersionRules,
  lookupKey: VerifyKeyLookup,
): EventSignatureVerdict {
  let servers: string[] | undefined;
  let redacted: Pdu;
  let bytes: Buffer;
  try {
    servers = requiredSignatories(pdu, rules);
    if (!servers)
      return { ok: false, reason: 'malformed_event', message: 'Cannot tell which servers must sign' };
    redacted = redactEvent(pdu, rules);
    bytes = Buffer.from(encodeCanonicalJsonWithout(redacted, SIGNATURE_OMITS, strictness(rules)), 'utf8');
  } catch (e) {
    if (!isProtocolError(e)) throw e;
    return { ok: false, reason: 'malformed_event', message: e.message };
  }
  const signatures: unknown = redacted.signatures;
  const originServerTs = redacted.origin_server_ts;
  for (const serverName of servers) {
    const byServer =
      typeof signatures === 'object' && signatures !== null
        ? (signatures as Record<string, unknown>)[serverName]
        : undefined;
    // Checking for a signature, step 1.
    if (typeof byServer !== 'object' || byServer === null) {
      return {
        ok: false,
        reason: 'missing_signature',
        serverName,
        message: `${serverName} has not signed the event`,
      };
    }
    let ed25519Signatures = 0;
    let checked = 0;
    for (const [keyId, signature] of Object.entries(byServer as Record<string, unknown>)) {
      // Step 2: only algorithms we understand.
      if (!keyId.startsWith('ed25519:')) continue;
      ed25519Signatures++;
      // Step 3: unknown keys, and keys known to have expired before the event, are skipped.
      const key = lookupKey(serverName, keyId);
      if (!key) continue;
      if (
        rules.enforceKeyValidity &&
        key.validUntilTs !== undefined &&
        !(key.validUntilTs >= originServerTs)
      ) {
        continue;
      }
      // Steps 4-7.
      if (typeof signature !== 'string' || !verifyBytes(bytes, signature, key.publicKey)) {
        return {
          ok: false,
          reason: 'bad_signature',
          serverName,
          keyId,
          message: `The ${keyId} signature of ${serverName} does not match`,
        };
      }
      checked++;
    }
    if (ed25519Signatures === 0) {
      return {
        ok: false,
        reason: 'missing_signature',
        serverName,
        message: `${serverName} has not signed the event`,
      };
    }
    if (checked === 0) {
      return {
        ok: false,
        reason: 'no_known_key',
        serverName,
        message: `No known, unexpired key of ${serverName} signed the event`,
      };
    }
  }
  return { ok: true, servers };
}

export type ReceivedEventCheck =
  | { readonly outcome: 'accept'; readonly pdu: Pdu }
  /** Signatures valid but the content hash does not match: keep only the redacted copy. */
  | { readonly outcome: 'redact'; readonly pdu: Pdu }
  | { readonly outcome: 'reject'; readonly verdict: EventSignatureVerdict & { ok: false } };

/**
 * Both checks on an event received over federation, in the spec's order: signatures
 * first (reject if they fail), then the content hash (use the redacted copy if it fails).
 */
export function checkReceivedEvent(
  pdu: Pdu,
  rules: RoomVersionRules,
  lookupKey: VerifyKeyLookup,
): ReceivedEventCheck {
  const verdict = verifyEventSignatures(pdu, rules, lookupKey);
  if (!verdict.ok) return { outcome: 'reject', verdict };
  return checkContentHash(pdu, rules)
    ? { outcome: 'accept', pdu }
    : { outcome: 'redact', pdu: redactEvent(pdu, rules) };
}
