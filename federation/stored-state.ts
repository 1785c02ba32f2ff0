/**
 * Room state computed from stored events for events received over federation: the state
 * before an event from its prev events (state resolution where they fork), the room's
 * state after a set of forward extremities, and the delta that turns one state into another.
 */
import type { AuthStateLookup } from '../protocol/auth-rules.js';
import type { RoomEvent, StateMap } from '../protocol/events.js';
import { referencedEventIds, stateTupleKey } from '../protocol/events.js';
import type { RoomVersionRules } from '../protocol/room-versions.js';
import { resolveState } from '../protocol/state-resolution.js';
import { isRejected, type StoredEvent } from '../storage/event-store.js';
import type { StateDelta } from '../storage/state-store.js';
import type { Storage } from '../storage/storage.js';

/**
 * Resolves several states into one (spec: rooms/v2 "State resolution"); a single state, or
 * identical ones, come back as they are without loading anything.
 */
export async function resolveStates(
  storage: Storage,
  rules: RoomVersionRules,
  stateSets: readonly StateMap[],
  /** Events not stored yet that the states name (the event being persisted). */
  unstored: readonly RoomEvent[] = [],
): Promise<StateMap> {
  if (stateSets.length === 0) return new Map();
  if (stateSets.length === 1 || stateSets.every((set) => sameState(set, stateSets[0]!))) {
    return new Map(stateSets[0]!);
  }
  // resolveState looks events up synchronously: the states' events and their auth chains.
  const extra = new Map(unstored.map((event) => [event.eventId, event]));
  const ids = new Set<string>();
  for (const set of stateSets) for (const id of set.values()) if (!extra.has(id)) ids.add(id);
  for (const event of extra.values()) for (const id of referencedEventIds(event.pdu.auth_events)) ids.add(id);
  for (const id of await storage.events.authChainEventIds([...ids])) ids.add(id);
  const events = await storage.events.getEvents([...ids]);
  return resolveState({
    rules,
    stateSets,
    getEvent: (id) => extra.get(id) ?? events.get(id),
    isRejected: (id) => {
      const event = events.get(id);
      return event !== undefined && isRejected(event);
    },
  });
}

function sameState(a: StateMap, b: StateMap): boolean {
  if (a.size !== b.size) return false;
  for (const [key, id] of a) if (b.get(key) !== id) return false;
  return true;
}

/** The state before an event whose prev events are all stored with state; null if one is not. */
export async function stateFromPrevEvents(
  storage: Storage,
  rules: RoomVersionRules,
  prevEventIds: readonly string[],
): Promise<StateMap | null> {
  const sets: StateMap[] = [];
  for (const id of new Set(prevEventIds)) {
    const after = await storage.state.stateAfterEvent(id);
    if (after === null) return null;
    sets.push(after);
  }
  return resolveStates(storage, rules, sets);
}

/** The state after an event, from the state before it (a rejected event changes nothing). */
export function stateAfter(stateBefore: StateMap, event: RoomEvent, accepted: boolean): StateMap {
  const after = new Map(stateBefore);
  if (accepted && typeof event.pdu.state_key === 'string') {
    after.set(stateTupleKey(event.pdu.type, event.pdu.state_key), event.eventId);
  }
  return after;
}

/** What turns `from` into `to`. */
export function stateDelta(from: StateMap, to: StateMap): StateDelta {
  const set: StateMap = new Map();
  for (const [key, id] of to) if (from.get(key) !== id) set.set(key, id);
  const remove = [...from.keys()].filter((key) => !to.has(key));
  return { set, remove };
}

/** A synchronous lookup over a state whose auth-relevant events have been loaded. */
export async function loadStateLookup(
  storage: Storage,
  state: StateMap,
  keys: Iterable<[string, string]>,
): Promise<AuthStateLookup> {
  const wanted = new Map<string, string>();
  for (const [type, stateKey] of keys) {
    const key = stateTupleKey(type, stateKey);
    const id = state.get(key);
    if (id !== undefined) wanted.set(key, id);
  }
  const events: Map<string, StoredEvent> = await storage.events.getEvents([...wanted.values()]);
  return (type, stateKey) => {
    const id = wanted.get(stateTupleKey(type, stateKey));
    return id === undefined ? undefined : events.get(id);
  };
}
