/**
 * Shape checks for an incoming PDU against its room version (spec: server-server
 * "PDUs" and "Size limits", client-server "Size limits", the `pdu_v*` schemas,
 * per-version event formats in rooms/v*.md). This is the edge where a PDU's JSON
 * becomes a typed `Pdu`; hashes, signatures and authorisation are checked elsewhere.
 */
import { encodeCanonicalJson } from './canonical-json.js';
import { ProtocolError, type ProtocolErrorCode } from './errors.js';
import type { JsonObject, JsonValue, Pdu } from './events.js';
import { eventIdProblem, MAX_IDENTIFIER_BYTES, roomIdProblem, userIdProblem } from './identifiers.js';
import type { RoomVersionRules } from './room-versions.js';

/** The whole event as canonical JSON, signatures and `unsigned` included. */
export const MAX_PDU_BYTES = 65_536;
/** `type` and `state_key`, in UTF-8 bytes (IDs share the identifier limit, also 255). */
export const MAX_EVENT_KEY_BYTES = 255;
export const MAX_PREV_EVENTS = 20;
export const MAX_AUTH_EVENTS = 10;
/**
 * Deepest array/object nesting accepted. The spec names no limit, but a 64 KiB event
 * can nest ~32,000 levels, deeper than any recursive encoder's stack (Synapse's JSON
 * parser stops near 1,000 too), so we refuse such events before encoding them.
 */
export const MAX_JSON_NESTING = 1000;

const SIZE_LIMITED_KEYS = ['type', 'state_key', 'sender', 'room_id', 'event_id'] as const;
const SIZE_LIMIT_OF_KEY: Record<(typeof SIZE_LIMITED_KEYS)[number], number> = {
  type: MAX_EVENT_KEY_BYTES,
  state_key: MAX_EVENT_KEY_BYTES,
  sender: MAX_IDENTIFIER_BYTES,
  room_id: MAX_IDENTIFIER_BYTES,
  event_id: MAX_IDENTIFIER_BYTES,
};

function reject(code: ProtocolErrorCode, message: string, field?: string): never {
  throw new ProtocolError(code, message, field);
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Iterative, so that the depth check itself cannot overflow the stack. */
function checkNesting(root: JsonObject): void {
  const pending: [value: unknown, depth: number][] = [[root, 1]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [value, depth] = next;
    if (depth > MAX_JSON_NESTING) {
      reject('BAD_JSON', `Event nests arrays and objects deeper than ${MAX_JSON_NESTING} levels`);
    }
    const children = Array.isArray(value) ? value : Object.values(value as object);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) pending.push([child, depth + 1]);
    }
  }
}

/**
 * Size limits (client-server and server-server "Size limits"): the canonical JSON of the
 * whole event at most 65,536 bytes; `type`, `state_key`, `sender`, `room_id` and
 * `event_id` at most 255 bytes each. Returns the event's canonical size in bytes.
 * @throws ProtocolError EVENT_TOO_LARGE, or BAD_JSON if the event is not canonical JSON
 *   (strict rules from room version 6).
 */
export function checkEventSize(
  pdu: Pdu | JsonObject,
  rules?: Pick<RoomVersionRules, 'strictCanonicalJson'>,
): number {
  const event = pdu as Record<string, unknown>;
  for (const key of SIZE_LIMITED_KEYS) {
    const value = event[key];
    if (typeof value === 'string' && utf8Length(value) > SIZE_LIMIT_OF_KEY[key]) {
      reject('EVENT_TOO_LARGE', `'${key}' is longer than ${SIZE_LIMIT_OF_KEY[key]} bytes`, key);
    }
  }
  const size = utf8Length(encodeCanonicalJson(event, { strict: rules?.strictCanonicalJson === true }));
  if (size > MAX_PDU_BYTES) {
    reject('EVENT_TOO_LARGE', `Event is ${size} bytes as canonical JSON; the limit is ${MAX_PDU_BYTES}`);
  }
  return size;
}

function requireString(event: JsonObject, key: string, field = key): string {
  const value = event[key];
  if (typeof value !== 'string') reject('BAD_EVENT', `'${field}' must be a string`, field);
  return value;
}

function optionalString(event: JsonObject, key: string): void {
  if (key in event && typeof event[key] !== 'string') reject('BAD_EVENT', `'${key}' must be a string`, key);
}

function requireObject(event: JsonObject, key: string, field = key): JsonObject {
  const value = event[key];
  if (!isJsonObject(value)) reject('BAD_EVENT', `'${field}' must be an object`, field);
  return value;
}

function requireInteger(event: JsonObject, key: string, min: number): number {
  const value = event[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    const range = min === 0 ? '[0, 2^53-1]' : '[-(2^53)+1, 2^53-1]';
    reject('BAD_EVENT', `'${key}' must be an integer in ${range}`, key);
  }
  return value;
}

function checkEventId(value: JsonValue | undefined, field: string, rules: RoomVersionRules): void {
  if (typeof value !== 'string') reject('BAD_EVENT', `'${field}' must be an event ID string`, field);
  const problem = eventIdProblem(value, rules);
  if (problem !== undefined) reject('BAD_IDENTIFIER', problem, field);
}

/** v1-2: `[[eventId, {sha256}], ...]`; v3+: `[eventId, ...]`. */
function checkEventReferences(event: JsonObject, key: string, max: number, rules: RoomVersionRules): void {
  const refs = event[key];
  if (!Array.isArray(refs)) reject('BAD_EVENT', `'${key}' must be an array`, key);
  if (refs.length > max) {
    reject('BAD_EVENT', `'${key}' lists ${refs.length} events; at most ${max} allowed`, key);
  }
  refs.forEach((ref, i) => {
    const field = `${key}.${i}`;
    if (!rules.eventReferencesIncludeHashes) {
      checkEventId(ref, field, rules);
      return;
    }
    if (!Array.isArray(ref) || ref.length !== 2) {
      reject('BAD_EVENT', `'${field}' must be an [event ID, {sha256}] pair`, field);
    }
    checkEventId(ref[0], `${field}.0`, rules);
    const hashes = ref[1];
    if (!isJsonObject(hashes) || typeof hashes.sha256 !== 'string') {
      reject('BAD_EVENT', `'${field}.1.sha256' must be a string`, `${field}.1.sha256`);
    }
  });
}

function checkSignatures(event: JsonObject): void {
  const signatures = requireObject(event, 'signatures');
  for (const [server, keys] of Object.entries(signatures)) {
    const field = `signatures.${server}`;
    if (!isJsonObject(keys)) reject('BAD_EVENT', `'${field}' must be an object`, field);
    for (const [keyId, signature] of Object.entries(keys)) {
      if (typeof signature !== 'string') {
        reject('BAD_EVENT', `'${field}.${keyId}' must be a string`, `${field}.${keyId}`);
      }
    }
  }
}

function checkRoomId(event: JsonObject, type: string, rules: RoomVersionRules): void {
  // v12: the room ID is the create event's reference hash, so the create event cannot carry it.
  if (rules.roomIdIsCreateEventHash && type === 'm.room.create') {
    if ('room_id' in event)
      reject('BAD_EVENT', `An m.room.create event in room version ${rules.id} has no room_id`, 'room_id');
    return;
  }
  const roomId = requireString(event, 'room_id');
  const problem = roomIdProblem(roomId, rules);
  if (problem !== undefined) reject('BAD_IDENTIFIER', problem, 'room_id');
}

function checkRedacts(event: JsonObject, content: JsonObject, type: string, rules: RoomVersionRules): void {
  optionalString(event, 'redacts');
  if (type !== 'm.room.redaction') return;
  if (rules.redactsInContent) {
    // v11+: `content.redacts` survives redaction, so every redaction event must have it.
    checkEventId(content.redacts, 'content.redacts', rules);
  } else if ('redacts' in event) {
    // v1-10: a redacted redaction event has lost its top-level `redacts`; only check it when present.
    checkEventId(event.redacts, 'redacts', rules);
  }
}

/**
 * Checks an incoming PDU's shape for its room version and returns it typed.
 * Not checked here: hashes, signatures, authorisation rules, power levels.
 * @throws ProtocolError with `field` set to the offending key's dotted path:
 *   EVENT_TOO_LARGE (size limits), BAD_JSON (not canonical JSON for the version),
 *   BAD_EVENT (missing key or wrong JSON type), BAD_IDENTIFIER (ID grammar).
 */
export function validateEvent(json: unknown, rules: RoomVersionRules): Pdu {
  if (!isJsonObject(json)) reject('BAD_EVENT', 'Event is not a JSON object');
  checkNesting(json);
  checkEventSize(json, rules);

  const type = requireString(json, 'type');
  const sender = requireString(json, 'sender');
  // Historical user IDs: events from such senders must still be accepted over federation.
  const senderProblem = userIdProblem(sender, { historical: true });
  if (senderProblem !== undefined) reject('BAD_IDENTIFIER', senderProblem, 'sender');
  checkRoomId(json, type, rules);
  requireInteger(json, 'origin_server_ts', Number.MIN_SAFE_INTEGER);
  const content = requireObject(json, 'content');
  optionalString(json, 'state_key');
  requireInteger(json, 'depth', 0);
  checkEventReferences(json, 'prev_events', MAX_PREV_EVENTS, rules);
  checkEventReferences(json, 'auth_events', MAX_AUTH_EVENTS, rules);
  const hashes = requireObject(json, 'hashes');
  requireString(hashes, 'sha256', 'hashes.sha256');
  checkSignatures(json);
  if ('unsigned' in json) requireObject(json, 'unsigned');
  optionalString(json, 'origin');

  // v1-2 carry their (server-chosen) event ID; from v3 it is computed and any carried value is ignored.
  if (rules.eventIdFormat === 'server-generated') checkEventId(json.event_id, 'event_id', rules);
  else optionalString(json, 'event_id');

  checkRedacts(json, content, type, rules);
  return json as unknown as Pdu;
}
