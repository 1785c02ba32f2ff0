/**
 * Room builders for the state resolution tests and bench: events with chosen IDs (`$NAME`),
 * unsigned, linked by explicit auth events or by a DAG whose auth events are selected from
 * the state before each event, as a server building them would.
 */
import { selectAuthEventKeys } from './auth-events-selection.js';
import type { JsonObject, Pdu, RoomEvent, StateMap } from './events.js';
import { stateTupleKey } from './events.js';
import type { RoomVersionRules } from './room-versions.js';
import { type AuthCheck, resolveState } from './state-resolution.js';

export const ALICE = '@alice:example.com';
export const BOB = '@bob:example.com';
export const CHARLIE = '@charlie:example.com';
export const EVELYN = '@evelyn:example.com';
export const ZARA = '@zara:example.com';

export interface EventSpec {
  /** The event ID is `$` + name. In room version 12+ the create event must be named `CREATE`. */
  name: string;
  sender: string;
  type: string;
  stateKey?: string;
  content?: JsonObject;
  ts?: number;
  /** Names of the auth events. */
  auth?: readonly string[];
  /** Names of the prev events. */
  prev?: readonly string[];
  /** The event's depth (only room version 1's resolution reads it); 0 when not given. */
  depth?: number;
}

export function eventId(name: string): string {
  return `$${name}`;
}

export class RoomFixture {
  readonly events = new Map<string, RoomEvent>();
  readonly roomId: string;
  #nextTs = 0;

  constructor(readonly rules: RoomVersionRules) {
    this.roomId = rules.roomIdIsCreateEventHash ? '!CREATE' : '!room:example.com';
  }

  readonly getEvent = (id: string): RoomEvent | undefined => this.events.get(id);

  add(spec: EventSpec): RoomEvent {
    const ts = spec.ts ?? this.#nextTs;
    this.#nextTs = Math.max(this.#nextTs, ts + 1);
    const isV12Create = this.rules.roomIdIsCreateEventHash && spec.type === 'm.room.create';
    const pdu: Pdu = {
      type: spec.type,
      sender: spec.sender,
      origin_server_ts: ts,
      content: spec.content ?? {},
      depth: spec.depth ?? 0,
      prev_events: (spec.prev ?? []).map(eventId),
      auth_events: (spec.auth ?? []).map(eventId),
      hashes: { sha256: '' },
      signatures: {},
    };
    if (!isV12Create) pdu.room_id = this.roomId;
    if (spec.stateKey !== undefined) pdu.state_key = spec.stateKey;
    const event: RoomEvent = { eventId: eventId(spec.name), roomId: this.roomId, pdu };
    this.events.set(event.eventId, event);
    return event;
  }

  /** A state map holding the named events. */
  state(...names: string[]): StateMap {
    const state: StateMap = new Map();
    for (const name of names) {
      const event = this.events.get(eventId(name));
      if (event?.pdu.state_key === undefined) throw new Error(`no state event named ${name}`);
      state.set(stateTupleKey(event.pdu.type, event.pdu.state_key), event.eventId);
    }
    return state;
  }
}

export interface DagNode {
  name: string;
  sender: string;
  type: string;
  stateKey?: string;
  content?: JsonObject;
}

/**
 * The room every DAG scenario starts from: Alice creates it and is admin, the join rule is
 * public, Bob, Charlie and Zara join; START and END are messages framing the scenario.
 */
export function initialDagNodes(rules: RoomVersionRules): DagNode[] {
  const createContent: JsonObject = rules.createEventHasCreatorField
    ? { creator: ALICE, room_version: rules.id }
    : { room_version: rules.id };
  // v12+: creators have infinite power and may not be listed in `users`.
  const powerLevels: JsonObject = rules.privilegedCreators ? { users: {} } : { users: { [ALICE]: 100 } };
  return [
    { name: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '', content: createContent },
    { name: 'IMA', sender: ALICE, type: 'm.room.member', stateKey: ALICE, content: { membership: 'join' } },
    { name: 'IPOWER', sender: ALICE, type: 'm.room.power_levels', stateKey: '', content: powerLevels },
    { name: 'IJR', sender: ALICE, type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'public' } },
    { name: 'IMB', sender: BOB, type: 'm.room.member', stateKey: BOB, content: { membership: 'join' } },
    {
      name: 'IMC',
      sender: CHARLIE,
      type: 'm.room.member',
      stateKey: CHARLIE,
      content: { membership: 'join' },
    },
    { name: 'IMZ', sender: ZARA, type: 'm.room.member', stateKey: ZARA, content: { membership: 'join' } },
    { name: 'START', sender: ZARA, type: 'm.room.message', content: {} },
    { name: 'END', sender: ZARA, type: 'm.room.message', content: {} },
  ];
}

/** Chain of the initial nodes, newest first (each points at the next as its prev event). */
export const INITIAL_DAG_CHAIN = ['START', 'IMZ', 'IMC', 'IMB', 'IJR', 'IPOWER', 'IMA', 'CREATE'];

export interface DagResult {
  room: RoomFixture;
  stateAfter: ReadonlyMap<string, StateMap>;
}

/**
 * Builds the DAG given by `chains` (each `[A, B, C]` means A's prev events include B, and B's
 * include C), visiting events in topological order (ties by name). Each event's state before
 * is the resolution of its prev events' states after, its auth events are selected from that
 * state, and its timestamp is its visiting index. Events join the state after them whether
 * or not they are authorised, as in the scenarios this reproduces.
 */
export function buildDag(
  rules: RoomVersionRules,
  nodes: readonly DagNode[],
  chains: readonly (readonly string[])[],
  authCheck?: AuthCheck,
): DagResult {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const prevs = new Map<string, Set<string>>(nodes.map((n) => [n.name, new Set<string>()]));
  for (const chain of chains) {
    for (let i = 0; i + 1 < chain.length; i++) prevs.get(chain[i]!)!.add(chain[i + 1]!);
  }

  const room = new RoomFixture(rules);
  const stateAfter = new Map<string, StateMap>();
  const visited = new Set<string>();
  let ts = 0;
  while (visited.size < nodes.length) {
    const ready = [...prevs]
      .filter(([name, p]) => !visited.has(name) && [...p].every((x) => visited.has(x)))
      .map(([name]) => name)
      .sort();
    const name = ready[0];
    if (name === undefined) throw new Error('cycle in DAG');
    visited.add(name);
    const node = byName.get(name)!;
    const prevNames = [...prevs.get(name)!].sort();

    let stateBefore: StateMap;
    if (prevNames.length === 0) stateBefore = new Map();
    else if (prevNames.length === 1) stateBefore = new Map(stateAfter.get(prevNames[0]!)!);
    else {
      stateBefore = resolveState({
        rules,
        stateSets: prevNames.map((p) => stateAfter.get(p)!),
        getEvent: room.getEvent,
        ...(authCheck ? { authCheck } : {}),
      });
    }

    const pduShape = {
      type: node.type,
      sender: node.sender,
      content: node.content ?? {},
      state_key: node.stateKey,
    };
    const auth: string[] = [];
    for (const [type, key] of selectAuthEventKeys(pduShape, rules)) {
      const id = stateBefore.get(stateTupleKey(type, key));
      if (id !== undefined && !auth.includes(id.slice(1))) auth.push(id.slice(1));
    }
    const event = room.add({ ...node, ts: ts++, auth, prev: prevNames });

    const after = new Map(stateBefore);
    if (node.stateKey !== undefined) after.set(stateTupleKey(node.type, node.stateKey), event.eventId);
    stateAfter.set(name, after);
  }
  return { room, stateAfter };
}

/**
 * The state after END limited to the keys that the scenario touched (changed since START) or
 * that the expected names cover, as `key -> event name`; the form the scenario tests compare.
 */
export function scenarioOutcome(result: DagResult, expectedNames: readonly string[]): Map<string, string> {
  const start = result.stateAfter.get('START')!;
  const end = result.stateAfter.get('END')!;
  const expectedKeys = new Set(
    expectedNames.map((n) => {
      const pdu = result.room.events.get(eventId(n))!.pdu;
      return stateTupleKey(pdu.type, pdu.state_key!);
    }),
  );
  const outcome = new Map<string, string>();
  for (const [key, id] of [...end].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (expectedKeys.has(key) || start.get(key) !== id) outcome.set(key, id.slice(1));
  }
  return outcome;
}

export function expectedOutcome(result: DagResult, expectedNames: readonly string[]): Map<string, string> {
  const expected = new Map<string, string>();
  for (const name of expectedNames) {
    const pdu = result.room.events.get(eventId(name))!.pdu;
    expected.set(stateTupleKey(pdu.type, pdu.state_key!), name);
  }
  return new Map([...expected].sort(([a], [b]) => (a < b ? -1 : 1)));
}
