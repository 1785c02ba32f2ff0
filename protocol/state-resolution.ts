/**
 * State resolution v2 (room versions 2-11) and v2.1 (room version 12+)
 * (spec: rooms/v2 "State resolution"; rooms/v12 "State resolution"); room
 * version 1's algorithm is in state-resolution-v1.ts.
 */

import { selectAuthEventKeys } from './auth-events-selection.js';
import { type AuthStateLookup, type AuthVerdict, checkAuthRules } from './auth-rules.js';
import { ProtocolError } from './errors.js';
import { type RoomEvent, type StateMap, type StateTupleKey, stateTupleKey } from './events.js';
import { userPowerLevel } from './power-levels.js';
import type { RoomVersionRules } from './room-versions.js';
import {
  AuthEventGraph,
  authDifference,
  CREATE,
  conflictedStateSubgraph,
  isCreateEvent,
  POWER_LEVELS,
} from './state-resolution-graph.js';
import {
  comparePowerOrder,
  lexicographicalTopologicalSort,
  mainlineOrder,
  type PowerOrderKey,
} from './state-resolution-ordering.js';
import { resolveStateV1 } from './state-resolution-v1.js';

export type AuthCheck = (
  event: RoomEvent,
  authState: AuthStateLookup,
  rules: RoomVersionRules,
) => AuthVerdict;

export interface StateResolutionInput {
  rules: RoomVersionRules;
  /** The states to resolve, e.g. the states after each of an event's prev_events. */
  stateSets: readonly StateMap[];
  /** Synchronous lookup; the caller preloads the state sets' events and their auth chains. */
  getEvent: (eventId: string) => RoomEvent | undefined;
  authCheck?: AuthCheck;
  /**
   * Whether an event was rejected. Rejected auth events are never used in the iterative auth
   * checks (spec: "Rejected events"); without this lookup no event counts as rejected.
   */
  isRejected?: (eventId: string) => boolean;
}

export interface SplitState {
  unconflicted: StateMap;
  /** Key -> the distinct event IDs the state sets hold for it (absent entries left out). */
  conflicted: Map<StateTupleKey, Set<string>>;
}

/** Unconflicted state map and conflicted state set (spec definitions). */
export function splitConflictedState(stateSets: readonly StateMap[]): SplitState {
  const unconflicted: StateMap = new Map();
  const conflicted = new Map<StateTupleKey, Set<string>>();
  const seen = new Set<StateTupleKey>();
  for (const stateSet of stateSets) {
    for (const key of stateSet.keys()) {
      if (seen.has(key)) continue;
      seen.add(key);
      const ids = new Set<string>();
      let inEvery = true;
      for (const other of stateSets) {
        const id = other.get(key);
        if (id === undefined) inEvery = false;
        else ids.add(id);
      }
      if (inEvery && ids.size === 1) unconflicted.set(key, ids.values().next().value!);
      else conflicted.set(key, ids);
    }
  }
  return { unconflicted, conflicted };
}

/**
 * A power event: `m.room.power_levels`, `m.room.join_rules`, or a membership `leave`/`ban` whose
 * sender is not its target. `m.room.create` counts too, as Synapse and ruma count it, so that
 * servers converge when a create event is ever in the full conflicted set.
 */
export function isPowerEvent(event: RoomEvent): boolean {
  const { type, state_key: stateKey, content, sender } = event.pdu;
  if (stateKey === undefined) return false;
  if (type === POWER_LEVELS || type === 'm.room.join_rules' || type === CREATE) return stateKey === '';
  if (type === 'm.room.member') {
    const membership = content.membership;
    return (membership === 'leave' || membership === 'ban') && sender !== stateKey;
  }
  return false;
}

/**
 * The sender's power level "when looking at their auth_events": the power levels and create
 * events it cites (the create event implied in v12+).
 */
function senderPowerLevel(graph: AuthEventGraph, eventId: string, rules: RoomVersionRules): number {
  const event = graph.event(eventId);
  // The create event cites nothing, so its sender has no power to look at; Synapse and ruma use 0.
  if (isCreateEvent(event)) return 0;
  let powerLevels: RoomEvent | undefined;
  let create: RoomEvent | undefined;
  for (const authId of graph.authEventIds(eventId)) {
    const authEvent = graph.event(authId);
    if (authEvent.pdu.type === POWER_LEVELS && authEvent.pdu.state_key === '') powerLevels = authEvent;
    else if (isCreateEvent(authEvent)) create = authEvent;
  }
  try {
    return userPowerLevel(event.pdu.sender, powerLevels, create, rules);
  } catch (e) {
    // Content no server would have accepted; rank the sender lowest rather than abort the resolution.
    if (e instanceof ProtocolError && e.code === 'BAD_EVENT') return 0;
    throw e;
  }
}

/**
 * Step 1's list: the power events of the full conflicted set, enlarged by their auth chains
 * within the full conflicted set, in reverse topological power ordering (earliest first).
 * Like Synapse and ruma, the DAG is walked through events of the full conflicted set only.
 */
export function sortedPowerEvents(
  graph: AuthEventGraph,
  fullConflictedSet: ReadonlySet<string>,
  rules: RoomVersionRules,
): string[] {
  const authEdges = new Map<string, string[]>();
  const stack: string[] = [];
  for (const id of fullConflictedSet) if (isPowerEvent(graph.event(id))) stack.push(id);
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (authEdges.has(id)) continue;
    const inSet = graph.authEventIds(id).filter((authId) => fullConflictedSet.has(authId));
    authEdges.set(id, inSet);
    for (const authId of inSet) if (!authEdges.has(authId)) stack.push(authId);
  }
  return reverseTopologicalPowerOrder(graph, authEdges, rules);
}

/** Reverse topological power ordering of the events keyed in `authEdges` (event -> its auth events among them). */
export function reverseTopologicalPowerOrder(
  graph: AuthEventGraph,
  authEdges: ReadonlyMap<string, readonly string[]>,
  rules: RoomVersionRules,
): string[] {
  const keyOf = (eventId: string): PowerOrderKey => ({
    eventId,
    powerLevel: senderPowerLevel(graph, eventId, rules),
    originServerTs: graph.event(eventId).pdu.origin_server_ts,
  });
  return lexicographicalTopologicalSort(authEdges, keyOf, comparePowerOrder);
}

/**
 * Iterative auth checks (spec definition): each state event in turn is checked against its
 * own (non-rejected) auth events, overridden by the state built so far for every key the
 * auth events selection names, and applied when allowed.
 */
export function iterativeAuthChecks(
  graph: AuthEventGraph,
  sortedEventIds: readonly string[],
  initialState: StateMap,
  rules: RoomVersionRules,
  authCheck: AuthCheck,
  isRejected: (eventId: string) => boolean,
): StateMap {
  const state: StateMap = new Map(initialState);
  for (const eventId of sortedEventIds) {
    const event = graph.event(eventId);
    const stateKey = event.pdu.state_key;
    if (stateKey === undefined) continue;

    const authState = new Map<StateTupleKey, RoomEvent>();
    for (const authId of graph.authEventIds(eventId)) {
      if (isRejected(authId)) continue;
      const authEvent = graph.event(authId);
      if (authEvent.pdu.state_key !== undefined) {
        authState.set(stateTupleKey(authEvent.pdu.type, authEvent.pdu.state_key), authEvent);
      }
    }
    for (const [type, key] of selectAuthEventKeys(event.pdu, rules)) {
      const tuple = stateTupleKey(type, key);
      const resolvedId = state.get(tuple);
      if (resolvedId !== undefined && !isRejected(resolvedId)) authState.set(tuple, graph.event(resolvedId));
    }

    const verdict = authCheck(event, (type, key) => authState.get(stateTupleKey(type, key)), rules);
    if (verdict.allowed) state.set(stateTupleKey(event.pdu.type, stateKey), eventId);
  }
  return state;
}

function sortedByKey(state: StateMap): StateMap {
  return new Map([...state].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Resolves `stateSets` into one state (spec: rooms/v2 and rooms/v12 "Algorithm"). The result
 * depends neither on the order of the state sets nor on the order of keys in them; its keys
 * are in sorted order.
 */
export function resolveState(input: StateResolutionInput): StateMap {
  const { rules, stateSets } = input;
  if (rules.stateResolution === 'v1') {
    const split = splitConflictedState(stateSets);
    if (split.conflicted.size === 0) return sortedByKey(split.unconflicted);
    return sortedByKey(resolveStateV1(input, split));
  }
  const isV21 = rules.stateResolution === 'v2.1';
  const authCheck = input.authCheck ?? checkAuthRules;
  const isRejected = input.isRejected ?? (() => false);
  const graph = new AuthEventGraph(input.getEvent, rules);

  const { unconflicted, conflicted } = splitConflictedState(stateSets);
  if (conflicted.size === 0) return sortedByKey(unconflicted);

  const conflictedEventIds = new Set<string>();
  for (const ids of conflicted.values()) for (const id of ids) conflictedEventIds.add(id);

  // Full conflicted set: conflicted state set ∪ auth difference (∪ conflicted state subgraph in v2.1).
  const fullConflictedSet = authDifference(
    graph,
    stateSets.map((s) => s.values()),
  );
  for (const id of conflictedEventIds) fullConflictedSet.add(id);
  if (isV21) for (const id of conflictedStateSubgraph(graph, conflictedEventIds)) fullConflictedSet.add(id);

  // 1. Power events and their auth chains within the full conflicted set, reverse topological power ordering.
  const powerEvents = sortedPowerEvents(graph, fullConflictedSet, rules);

  // 2. Iterative auth checks from the unconflicted state map (v2) or from an empty map (v2.1).
  const partiallyResolved = iterativeAuthChecks(
    graph,
    powerEvents,
    isV21 ? new Map() : unconflicted,
    rules,
    authCheck,
    isRejected,
  );

  // 3. The remaining events, in mainline ordering based on the partially resolved power levels.
  const picked = new Set(powerEvents);
  const remaining: string[] = [];
  for (const id of fullConflictedSet) if (!picked.has(id)) remaining.push(id);
  const mainlineSorted = mainlineOrder(
    graph,
    remaining,
    partiallyResolved.get(stateTupleKey(POWER_LEVELS, '')),
  );

  // 4. Iterative auth checks on the partially resolved state.
  const resolved = iterativeAuthChecks(
    graph,
    mainlineSorted,
    partiallyResolved,
    rules,
    authCheck,
    isRejected,
  );

  // 5. The unconflicted state map wins for every key it has.
  for (const [key, id] of unconflicted) resolved.set(key, id);
  return sortedByKey(resolved);
}
