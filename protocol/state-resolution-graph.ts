/**
 * The auth-event graph that state resolution walks (spec: rooms/v2 "State resolution",
 * definitions "Auth chain", "Auth difference"; rooms/v12 "Conflicted state subgraph").
 * Events are looked up once and their auth edges memoised, so each chain walk touches
 * every reachable event at most once.
 */
import { ProtocolError } from './errors.js';
import { type RoomEvent, referencedEventIds } from './events.js';
import type { RoomVersionRules } from './room-versions.js';

export const CREATE = 'm.room.create';
export const POWER_LEVELS = 'm.room.power_levels';

export function isCreateEvent(event: RoomEvent): boolean {
  return event.pdu.type === CREATE && event.pdu.state_key === '';
}

/**
 * In room version 12+ the create event is not listed in `auth_events`; it is implied by the
 * room ID (`!hash` -> `$hash`) and is part of every other event's auth chain.
 */
export function impliedCreateEventId(event: RoomEvent, rules: RoomVersionRules): string | undefined {
  if (rules.createEventInAuthEvents || isCreateEvent(event)) return undefined;
  return `$${event.roomId.slice(1)}`;
}

export class AuthEventGraph {
  readonly #getEvent: (eventId: string) => RoomEvent | undefined;
  readonly #rules: RoomVersionRules;
  readonly #events = new Map<string, RoomEvent>();
  readonly #authEventIds = new Map<string, readonly string[]>();
  readonly #powerLevelsAuthEvent = new Map<string, string | null>();

  constructor(getEvent: (eventId: string) => RoomEvent | undefined, rules: RoomVersionRules) {
    this.#getEvent = getEvent;
    this.#rules = rules;
  }

  event(eventId: string): RoomEvent {
    let event = this.#events.get(eventId);
    if (event === undefined) {
      event = this.#getEvent(eventId);
      if (event === undefined) {
        throw new ProtocolError('MISSING_EVENT', `State resolution needs event ${eventId}, which is unknown`);
      }
      this.#events.set(eventId, event);
    }
    return event;
  }

  /** The event's auth events, including the implied create event of room version 12+. */
  authEventIds(eventId: string): readonly string[] {
    let ids = this.#authEventIds.get(eventId);
    if (ids === undefined) {
      const event = this.event(eventId);
      const listed = referencedEventIds(event.pdu.auth_events);
      const implied = impliedCreateEventId(event, this.#rules);
      ids = implied === undefined || listed.includes(implied) ? listed : [...listed, implied];
      this.#authEventIds.set(eventId, ids);
    }
    return ids;
  }

  /** The `m.room.power_levels` event among the event's auth events, if any (mainline steps). */
  powerLevelsAuthEventId(eventId: string): string | undefined {
    let found = this.#powerLevelsAuthEvent.get(eventId);
    if (found === undefined) {
      found = null;
      for (const authId of this.authEventIds(eventId)) {
        const pdu = this.event(authId).pdu;
        if (pdu.type === POWER_LEVELS && pdu.state_key === '') {
          found = authId;
          break;
        }
      }
      this.#powerLevelsAuthEvent.set(eventId, found);
    }
    return found ?? undefined;
  }

  /** Every event reachable from `startIds` through auth edges, excluding the start events themselves unless reached. */
  authChainOf(startIds: Iterable<string>): Set<string> {
    const chain = new Set<string>();
    const stack: string[] = [];
    for (const id of startIds) stack.push(...this.authEventIds(id));
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (chain.has(id)) continue;
      chain.add(id);
      for (const authId of this.authEventIds(id)) if (!chain.has(authId)) stack.push(authId);
    }
    return chain;
  }
}

/**
 * Auth difference: ∪Cᵢ − ∩Cᵢ, where Cᵢ is the full auth chain of state set i. Like Synapse
 * (whose chain index counts an event as reaching itself), Cᵢ holds the state set's own events
 * as well as their auth chains, so an event every state set holds is never in the difference.
 * One walk per state set; an event's count says in how many full auth chains it lies.
 */
export function authDifference(
  graph: AuthEventGraph,
  stateSetEventIds: readonly Iterable<string>[],
): Set<string> {
  const chainCount = new Map<string, number>();
  for (const eventIds of stateSetEventIds) {
    const stateEvents = [...eventIds];
    const fullChain = graph.authChainOf(stateEvents);
    for (const id of stateEvents) fullChain.add(id);
    for (const id of fullChain) chainCount.set(id, (chainCount.get(id) ?? 0) + 1);
  }
  const difference = new Set<string>();
  for (const [id, count] of chainCount) if (count < stateSetEventIds.length) difference.add(id);
  return difference;
}

/**
 * Conflicted state subgraph (v2.1): every event lying on an auth-edge path from one event of
 * the conflicted state set to another, endpoints included. An event is on such a path exactly
 * when it is reachable from a conflicted event (or is one) and a conflicted event is
 * reachable from it (or it is one).
 */
export function conflictedStateSubgraph(
  graph: AuthEventGraph,
  conflictedEventIds: ReadonlySet<string>,
): Set<string> {
  const reachableFromConflicted = graph.authChainOf(conflictedEventIds);
  for (const id of conflictedEventIds) reachableFromConflicted.add(id);

  // Iterative post-order DFS: auth chains can be thousands of events deep.
  const leadsToConflicted = new Map<string, boolean>();
  for (const root of reachableFromConflicted) {
    if (leadsToConflicted.has(root)) continue;
    const stack: Array<{ id: string; next: number }> = [{ id: root, next: 0 }];
    const onStack = new Set<string>([root]);
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const authIds = graph.authEventIds(frame.id);
      if (frame.next < authIds.length) {
        const child = authIds[frame.next++]!;
        if (!leadsToConflicted.has(child) && !onStack.has(child)) {
          onStack.add(child);
          stack.push({ id: child, next: 0 });
        }
        continue;
      }
      let leads = conflictedEventIds.has(frame.id);
      if (!leads) for (const authId of authIds) if (leadsToConflicted.get(authId) === true) leads = true;
      leadsToConflicted.set(frame.id, leads);
      onStack.delete(frame.id);
      stack.pop();
    }
  }

  const subgraph = new Set<string>();
  for (const id of reachableFromConflicted) if (leadsToConflicted.get(id) === true) subgraph.add(id);
  return subgraph;
}
