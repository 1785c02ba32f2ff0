/**
 * The checks of server-server "Checks performed on receipt of a PDU", each returning a
 * typed verdict so that the caller can drop, redact, reject or soft-fail as the spec says:
 *   1. valid event for its room version (format and size) ...... parseReceivedPdu
 *   2. signatures .............................................. checkPduIntegrity
 *   3. content hash (redact on mismatch) ........................ checkPduIntegrity
 *   4. auth against its auth events ............................. checkAgainstAuthEvents
 *   5. auth against the state before it ......................... checkAgainstState
 *   6. auth against the current state (soft-fail) .............. checkAgainstState
 * No I/O here: keys and events are handed in.
 */
import {
  type AuthStateLookup,
  type AuthVerdict,
  checkAuthEventsList,
  checkAuthRules,
} from '../protocol/auth-rules.js';
import { isProtocolError } from '../protocol/errors.js';
import { validateEvent } from '../protocol/event-validation.js';
import {
  type Pdu,
  type RoomEvent,
  referencedEventIds,
  type StateTupleKey,
  stateTupleKey,
} from '../protocol/events.js';
import {
  checkReceivedEvent,
  type ReceivedEventCheck,
  requiredSignatories,
  toRoomEvent,
  type VerifyKeyLookup,
} from '../protocol/hashing.js';
import type { RoomVersionRules } from '../protocol/room-versions.js';

export type ParsedPdu = { ok: true; event: RoomEvent } | { ok: false; reason: string };

/** Step 1: the PDU is a valid event of the room version, within the size limits; its IDs computed. */
export function parseReceivedPdu(json: unknown, rules: RoomVersionRules): ParsedPdu {
  try {
    const pdu = validateEvent(json, rules);
    return { ok: true, event: toRoomEvent(pdu, rules) };
  } catch (error) {
    if (isProtocolError(error)) return { ok: false, reason: `invalid event: ${error.message}` };
    throw error;
  }
}

/** The (server, key ID) pairs whose keys verifying the event's signatures needs. */
export function signingKeysNeeded(pdu: Pdu, rules: RoomVersionRules): Array<[server: string, keyId: string]> {
  const needed: Array<[string, string]> = [];
  let servers: string[] | undefined;
  try {
    servers = requiredSignatories(pdu, rules);
  } catch (error) {
    if (isProtocolError(error)) return needed;
    throw error;
  }
  for (const server of servers ?? []) {
    const byServer = pdu.signatures?.[server];
    if (typeof byServer !== 'object' || byServer === null) continue;
    for (const keyId of Object.keys(byServer)) if (keyId.startsWith('ed25519:')) needed.push([server, keyId]);
  }
  return needed;
}

export type IntegrityVerdict =
  | { ok: true; event: RoomEvent; redacted: boolean }
  | { ok: false; reason: string };

/**
 * Steps 2 and 3: the required servers' signatures verify (else the event is dropped),
 * and the content hash matches (else only the redacted event is kept, same event ID).
 */
export function checkPduIntegrity(
  event: RoomEvent,
  rules: RoomVersionRules,
  lookupKey: VerifyKeyLookup,
): IntegrityVerdict {
  return integrityVerdict(event, checkReceivedEvent(event.pdu, rules, lookupKey));
}

/** The verdict of steps 2-3 from a signature and hash check done elsewhere (the key ring). */
export function integrityVerdict(event: RoomEvent, check: ReceivedEventCheck): IntegrityVerdict {
  if (check.outcome === 'reject')
    return { ok: false, reason: `signature check failed: ${check.verdict.message}` };
  if (check.outcome === 'redact') return { ok: true, event: { ...event, pdu: check.pdu }, redacted: true };
  return { ok: true, event, redacted: false };
}

/** A lookup over a set of state events keyed by (type, state_key). */
export function lookupOver(events: Iterable<RoomEvent>): AuthStateLookup {
  const byKey = new Map<StateTupleKey, RoomEvent>();
  for (const event of events) {
    if (typeof event.pdu.state_key === 'string')
      byKey.set(stateTupleKey(event.pdu.type, event.pdu.state_key), event);
  }
  return (type, stateKey) => byKey.get(stateTupleKey(type, stateKey));
}

/**
 * Step 4: the event is allowed by the auth events it cites (rule 2's checks on the list
 * itself, then the rules against those events). `createEvent` is the room's create event,
 * implied in v12 where auth_events do not list it.
 */
export function checkAgainstAuthEvents(
  event: RoomEvent,
  authEvents: ReadonlyMap<string, RoomEvent>,
  createEvent: RoomEvent | undefined,
  rules: RoomVersionRules,
  isRejected: (eventId: string) => boolean,
): AuthVerdict {
  const cited: RoomEvent[] = [];
  for (const id of referencedEventIds(event.pdu.auth_events)) {
    const authEvent = authEvents.get(id);
    if (authEvent === undefined) return { allowed: false, rule: '2', reason: `auth event ${id} is unknown` };
    cited.push(authEvent);
  }
  const listVerdict = checkAuthEventsList(event, cited, rules, isRejected);
  if (!listVerdict.allowed) return listVerdict;
  const withCreate =
    createEvent !== undefined && !rules.createEventInAuthEvents ? [createEvent, ...cited] : cited;
  return checkAuthRules(event, lookupOver(withCreate), rules);
}

/** Steps 5 and 6: the auth rules against a state (the state before the event, or the current state). */
export function checkAgainstState(
  event: RoomEvent,
  state: AuthStateLookup,
  rules: RoomVersionRules,
): AuthVerdict {
  return checkAuthRules(event, state, rules);
}

export function describeVerdict(verdict: AuthVerdict): string {
  return verdict.allowed ? 'allowed' : `auth rule ${verdict.rule}: ${verdict.reason}`;
}
