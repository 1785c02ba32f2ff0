/**
 * How a local user's action becomes a signed, authorised room event (ARCHITECTURE
 * "The send path", steps 2-3): prev_events from the forward extremities, auth_events
 * from current state, depth, hashes and signature, size limit, authorisation rules.
 * Nothing here stores anything; a thrown MatrixError means the event is refused.
 */
import { randomBytes } from 'node:crypto';
import { selectAuthEventKeys } from '../../protocol/auth-events-selection.js';
import { checkAuthRules } from '../../protocol/auth-rules.js';
import { isProtocolError } from '../../protocol/errors.js';
import { checkEventSize, MAX_EVENT_KEY_BYTES, MAX_PDU_BYTES } from '../../protocol/event-validation.js';
import type { EventReference, JsonObject, Pdu, RoomEvent } from '../../protocol/events.js';
import { hashSignAndIdentifyEvent, type UnsignedPdu } from '../../protocol/hashing.js';
import type { RoomVersionRules } from '../../protocol/room-versions.js';
import type { SigningKey } from '../../protocol/signing.js';
import { MatrixError, matrixErrorFromProtocolError } from '../errors.js';
import type { RoomDraft } from './room-draft.js';
import { eventReference, extremitiesToCite } from './room-head.js';

/** What the sender decides about an event; the server fills in the rest. */
export interface EventTemplate {
  readonly sender: string;
  readonly type: string;
  /** Taken over as is (not copied): the caller must not change it afterwards. */
  readonly content: JsonObject;
  /** Present for state events. */
  readonly stateKey?: string;
  /** m.room.redaction: the redacted event (top-level before v11, `content.redacts` from v11 on). */
  readonly redacts?: string;
}

export interface EventSigner {
  readonly serverName: string;
  readonly key: SigningKey;
}

export interface BuiltEvent {
  readonly event: RoomEvent;
  /** The JSON text stored for the event. */
  readonly json: string;
}

const OPAQUE_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Random letters for the opaque part of server-chosen IDs (Synapse uses 18). */
export function randomOpaqueId(length = 18): string {
  return Array.from(randomBytes(length), (b) => OPAQUE_ID_ALPHABET[b % OPAQUE_ID_ALPHABET.length]).join('');
}

/** A room ID for versions 1-11: `!opaque:server`. */
export function generateRoomId(serverName: string): string {
  return `!${randomOpaqueId()}:${serverName}`;
}

/** The next event of a room, built on the draft's extremities and state. */
export function buildRoomEvent(
  draft: RoomDraft,
  template: EventTemplate,
  signer: EventSigner,
  originServerTs: number,
): BuiltEvent {
  const { rules } = draft;
  if (template.type === 'm.room.create') {
    throw MatrixError.forbidden('A room has exactly one m.room.create event');
  }
  const shape = {
    type: template.type,
    sender: template.sender,
    state_key: template.stateKey,
    content: template.content,
  };
  // spec: server-server "Auth events selection", from the current state.
  const authEvents: EventReference[] = [];
  for (const [type, stateKey] of selectAuthEventKeys(shape, rules)) {
    const authEvent = draft.lookup(type, stateKey);
    if (authEvent !== undefined) authEvents.push(eventReference(authEvent, rules));
  }
  const cited = extremitiesToCite(draft.extremities);
  let maxDepth = 0;
  for (const extremity of cited) if (extremity.depth > maxDepth) maxDepth = extremity.depth;
  const unsigned: UnsignedPdu = {
    auth_events: authEvents,
    content: template.content,
    depth: maxDepth + 1,
    origin_server_ts: originServerTs,
    prev_events: cited.map((extremity) => extremity.reference),
    room_id: draft.roomId,
    sender: template.sender,
    type: template.type,
  };
  if (template.stateKey !== undefined) unsigned.state_key = template.stateKey;
  if (template.redacts !== undefined) {
    if (rules.redactsInContent) unsigned.content = { ...template.content, redacts: template.redacts };
    else unsigned.redacts = template.redacts;
  }
  return finishEvent(unsigned, rules, signer, draft.lookup);
}

/**
 * The `m.room.create` event of a new room. In room version 12 it has no room_id (the room
 * ID is its reference hash); before, `roomId` must be a fresh `!opaque:server`.
 */
export function buildCreateEvent(
  rules: RoomVersionRules,
  creator: string,
  content: JsonObject,
  signer: EventSigner,
  originServerTs: number,
  roomId: string | undefined,
): BuiltEvent {
  const unsigned: UnsignedPdu = {
    auth_events: [],
    content,
    depth: 1,
    origin_server_ts: originServerTs,
    prev_events: [],
    sender: creator,
    state_key: '',
    type: 'm.room.create',
  };
  if (!rules.roomIdIsCreateEventHash) {
    if (roomId === undefined)
      throw new Error(`room version ${rules.id} needs a room ID for its create event`);
    unsigned.room_id = roomId;
  }
  return finishEvent(unsigned, rules, signer, () => undefined);
}

function finishEvent(
  unsigned: UnsignedPdu,
  rules: RoomVersionRules,
  signer: EventSigner,
  lookup: (type: string, stateKey: string) => RoomEvent | undefined,
): BuiltEvent {
  // v1-2: the origin names the event itself.
  if (rules.eventIdFormat === 'server-generated')
    unsigned.event_id = `$${randomOpaqueId()}:${signer.serverName}`;
  let event: RoomEvent;
  let json: string;
  try {
    event = hashSignAndIdentifyEvent(unsigned, signer.serverName, signer.key, rules);
    const { pdu } = event;
    json = JSON.stringify(pdu);
    // spec: client-server "Size limits": 65,536 bytes of canonical JSON, signatures included.
    if (mayExceedSizeLimits(pdu, json)) checkEventSize(pdu, rules);
  } catch (e) {
    // As Synapse: an event over the size limits is 413 M_TOO_LARGE, like an oversized request.
    if (isProtocolError(e) && e.code === 'EVENT_TOO_LARGE') throw MatrixError.tooLarge(e.message);
    if (isProtocolError(e)) throw matrixErrorFromProtocolError(e);
    throw e;
  }
  const verdict = checkAuthRules(event, lookup, rules);
  if (!verdict.allowed) throw MatrixError.forbidden(verdict.reason);
  return { event, json };
}

/** A UTF-16 code unit takes at most 3 UTF-8 bytes, so 85 of them fit any 255-byte limit. */
const SURELY_SHORT_KEY = Math.floor(MAX_EVENT_KEY_BYTES / 3);
/**
 * JSON.stringify and canonical JSON write the same keys and values, differing only in key
 * order (the hashing has already refused what canonical JSON cannot encode); the margin
 * covers any escaping difference.
 */
const SURELY_SMALL_JSON = MAX_PDU_BYTES - 1024;

/** Whether the full size check must run: skipped, as the hot path wants, for events clearly within limits. */
function mayExceedSizeLimits(pdu: Pdu, json: string): boolean {
  return (
    (json.length * 3 > SURELY_SMALL_JSON && Buffer.byteLength(json, 'utf8') > SURELY_SMALL_JSON) ||
    pdu.type.length > SURELY_SHORT_KEY ||
    (pdu.state_key?.length ?? 0) > SURELY_SHORT_KEY ||
    pdu.sender.length > SURELY_SHORT_KEY ||
    (pdu.room_id?.length ?? 0) > SURELY_SHORT_KEY ||
    (pdu.event_id?.length ?? 0) > SURELY_SHORT_KEY
  );
}
