/**
 * Shapes of room events (PDUs) as they travel and are stored. Fields are typed
 * as the spec declares them; a value that arrived from outside is only trusted
 * to have this shape after `validateEvent` (protocol/event-validation.ts).
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Room versions 1 and 2 reference events as `[eventId, {sha256}]`; 3+ by bare ID. */
export type EventReference = string | [string, { sha256: string }];

export interface Pdu {
  type: string;
  /** Absent only on the `m.room.create` event of room version 12+ (the room ID is derived from it). */
  room_id?: string;
  sender: string;
  origin_server_ts: number;
  content: JsonObject;
  state_key?: string;
  depth: number;
  prev_events: EventReference[];
  auth_events: EventReference[];
  hashes: { sha256: string };
  signatures: Record<string, Record<string, string>>;
  unsigned?: JsonObject;
  /** Top-level before room version 11; in `content.redacts` from 11 on. */
  redacts?: string;
  /** Present (and authoritative) only in room versions 1 and 2. */
  event_id?: string;
  origin?: string;
}

/**
 * An event with the identifiers that are computed rather than carried
 * (event ID from the reference hash in v3+, room ID from the create event in v12+).
 * Algorithms below take this, never a bare Pdu, so IDs are computed once.
 */
export interface RoomEvent {
  readonly eventId: string;
  readonly roomId: string;
  readonly pdu: Pdu;
}

/** Map key for a piece of state: type and state key joined by a NUL (neither may contain one). */
export type StateTupleKey = string;
export function stateTupleKey(type: string, stateKey: string): StateTupleKey {
  return `${type}\u0000${stateKey}`;
}
export function splitStateTupleKey(key: StateTupleKey): [type: string, stateKey: string] {
  const i = key.indexOf('\u0000');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** A room state: (type, state_key) -> event ID. */
export type StateMap = Map<StateTupleKey, string>;

export function referencedEventId(ref: EventReference): string {
  return typeof ref === 'string' ? ref : ref[0];
}
export function referencedEventIds(refs: readonly EventReference[]): string[] {
  return refs.map(referencedEventId);
}

export function isStateEvent(pdu: Pdu): boolean {
  return typeof pdu.state_key === 'string';
}
