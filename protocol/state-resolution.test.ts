import { expect } from 'chai';
import fc from 'fast-check';
import type { AuthVerdict } from './auth-rules.js';
import { ProtocolError } from './errors.js';
import { type JsonObject, type StateMap, stateTupleKey } from './events.js';
import { type RoomVersionRules, roomVersionRules } from './room-versions.js';
import {
  ALICE,
  BOB,
  buildDag,
  CHARLIE,
  type DagNode,
  EVELYN,
  eventId,
  expectedOutcome,
  INITIAL_DAG_CHAIN,
  initialDagNodes,
  RoomFixture,
  scenarioOutcome,
  ZARA,
} from './state-resolution.fixtures.js';
import {
  type AuthCheck,
  isPowerEvent,
  iterativeAuthChecks,
  resolveState,
  splitConflictedState,
} from './state-resolution.js';
import { AuthEventGraph, authDifference, conflictedStateSubgraph } from './state-resolution-graph.js';
import {
  comparePowerOrder,
  lexicographicalTopologicalSort,
  mainlineOrder,
} from './state-resolution-ordering.js';

const v11 = roomVersionRules('11');
const v12 = roomVersionRules('12');
const allowAll: AuthCheck = () => ({ allowed: true });

function ids(names: string[]): string[] {
  return names.map(eventId);
}

/** A v11 room whose auth graph is only edges; contents are irrelevant to the graph algorithms. */
function graphRoom(edges: Record<string, string[]>, rules: RoomVersionRules = v11): RoomFixture {
  const room = new RoomFixture(rules);
  for (const [name, auth] of Object.entries(edges)) {
    room.add({ name, sender: ALICE, type: 'm.room.topic', stateKey: name, auth });
  }
  return room;
}

describe('state resolution: unconflicted and conflicted state', () => {
  it('splits keys held identically by every state set from the rest', () => {
    const a: StateMap = new Map([
      ['k1', '$A'],
      ['k2', '$B'],
      ['k3', '$C'],
    ]);
    const b: StateMap = new Map([
      ['k1', '$A'],
      ['k2', '$X'],
    ]);
    const { unconflicted, conflicted } = splitConflictedState([a, b]);
    expect([...unconflicted]).to.deep.equal([['k1', '$A']]);
    expect([...conflicted.keys()].sort()).to.deep.equal(['k2', 'k3']);
    expect([...conflicted.get('k2')!].sort()).to.deep.equal(['$B', '$X']);
    // Present in one state set only: conflicted, with just the one event.
    expect([...conflicted.get('k3')!]).to.deep.equal(['$C']);
  });

  it('returns the unconflicted state untouched when nothing conflicts, without consulting auth', () => {
    const room = new RoomFixture(v11);
    room.add({ name: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '', content: {} });
    room.add({ name: 'TOPIC', sender: ALICE, type: 'm.room.topic', stateKey: '', auth: ['CREATE'] });
    const state = room.state('CREATE', 'TOPIC');
    const refuse: AuthCheck = () => {
      throw new Error('auth must not run');
    };
    const resolved = resolveState({
      rules: v11,
      stateSets: [state, new Map(state)],
      getEvent: room.getEvent,
      authCheck: refuse,
    });
    expect(resolved).to.deep.equal(state);
    expect(resolveState({ rules: v11, stateSets: [], getEvent: room.getEvent }).size).to.equal(0);
  });

  it('throws MISSING_EVENT when an event the algorithm needs is unknown', () => {
    const room = graphRoom({ A: [], B: ['A', 'GONE'] });
    const stateSets: StateMap[] = [new Map([['k', '$A']]), new Map([['k', '$B']])];
    expect(() => resolveState({ rules: v11, stateSets, getEvent: room.getEvent, authCheck: allowAll }))
      .to.throw(ProtocolError)
      .with.property('code', 'MISSING_EVENT');
  });
});

describe('state resolution: power events', () => {
  const room = new RoomFixture(v11);
  const member = (name: string, sender: string, target: string, membership: string) =>
    room.add({ name, sender, type: 'm.room.member', stateKey: target, content: { membership } });

  it('are power levels, join rules, and leaves or bans of someone else', () => {
    expect(
      isPowerEvent(room.add({ name: 'PL', sender: ALICE, type: 'm.room.power_levels', stateKey: '' })),
    ).to.equal(true);
    expect(
      isPowerEvent(room.add({ name: 'JR', sender: ALICE, type: 'm.room.join_rules', stateKey: '' })),
    ).to.equal(true);
    // Not in the spec's list, but Synapse and ruma count it; servers must agree.
    expect(
      isPowerEvent(room.add({ name: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '' })),
    ).to.equal(true);
    expect(isPowerEvent(member('KICK', ALICE, BOB, 'leave'))).to.equal(true);
    expect(isPowerEvent(member('BAN', ALICE, BOB, 'ban'))).to.equal(true);
    expect(isPowerEvent(member('LEAVE', BOB, BOB, 'leave'))).to.equal(false);
    expect(isPowerEvent(member('JOIN', BOB, BOB, 'join'))).to.equal(false);
    expect(isPowerEvent(member('INVITE', ALICE, BOB, 'invite'))).to.equal(false);
    expect(
      isPowerEvent(room.add({ name: 'TOPIC', sender: ALICE, type: 'm.room.topic', stateKey: '' })),
    ).to.equal(false);
  });
});

describe('state resolution: auth chains', () => {
  //   D -> C -> A,  E -> B -> A,  F -> C
  const room = graphRoom({ A: [], B: ['A'], C: ['A'], D: ['C'], E: ['B'], F: ['C', 'B'] });
  const graph = new AuthEventGraph(room.getEvent, v11);

  it('auth difference is the events in some but not all full auth chains', () => {
    // Full chains: {D, C, A} and {E, B, A}.
    expect([...authDifference(graph, [ids(['D']), ids(['E'])])].sort()).to.deep.equal(
      ids(['B', 'C', 'D', 'E']),
    );
    // {D, C, A} and {F, C, B, A}.
    expect([...authDifference(graph, [ids(['D', 'C']), ids(['F'])])].sort()).to.deep.equal(
      ids(['B', 'D', 'F']),
    );
    expect(authDifference(graph, [ids(['D']), ids(['D'])]).size).to.equal(0);
  });

  it("counts a state set's own events in its full auth chain", () => {
    // C is held by both states but cited only by D: it is no part of the difference.
    expect([...authDifference(graph, [ids(['D', 'C']), ids(['E', 'C'])])].sort()).to.deep.equal(
      ids(['B', 'D', 'E']),
    );
  });

  it('includes the implied create event in room version 12 chains', () => {
    const room12 = new RoomFixture(v12);
    room12.add({ name: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '' });
    room12.add({ name: 'X', sender: ALICE, type: 'm.room.topic', stateKey: '' });
    const graph12 = new AuthEventGraph(room12.getEvent, v12);
    expect(graph12.authEventIds('$X')).to.deep.equal(['$CREATE']);
    expect(graph12.authEventIds('$CREATE')).to.deep.equal([]);
    expect([...authDifference(graph12, [['$X'], []])].sort()).to.deep.equal(['$CREATE', '$X']);
  });

  it('conflicted state subgraph holds every path between conflicted events, endpoints included', () => {
    //  P3 -> M -> P2 -> N -> P1 -> A ;  Q -> P1 ; R -> S (unrelated)
    const r = graphRoom({
      A: [],
      P1: ['A'],
      N: ['P1'],
      P2: ['N'],
      M: ['P2'],
      P3: ['M'],
      Q: ['P1'],
      S: [],
      R: ['S'],
    });
    const g = new AuthEventGraph(r.getEvent, v11);
    const subgraph = conflictedStateSubgraph(g, new Set(ids(['P3', 'P1', 'Q', 'R'])));
    // A is below every conflicted event; S is below R only, with no conflicted event under it.
    expect([...subgraph].sort()).to.deep.equal(ids(['M', 'N', 'P1', 'P2', 'P3', 'Q', 'R']));
  });
});

describe('state resolution: orderings', () => {
  it('Kahn sort emits auth events first and breaks ties by the comparison', () => {
    // l -> o, m -> {n, o}, n -> o, p -> o: o first, then the candidates by name.
    const edges = new Map<string, string[]>([
      ['l', ['o']],
      ['m', ['n', 'o']],
      ['n', ['o']],
      ['o', []],
      ['p', ['o']],
    ]);
    const byName = (x: { eventId: string }, y: { eventId: string }) => (x.eventId < y.eventId ? -1 : 1);
    expect(lexicographicalTopologicalSort(edges, (eventId) => ({ eventId }), byName)).to.deep.equal([
      'o',
      'l',
      'n',
      'm',
      'p',
    ]);
  });

  it('power order: higher power first, then older, then smaller event ID', () => {
    const keys = [
      { eventId: '$b', powerLevel: 50, originServerTs: 1 },
      { eventId: '$a', powerLevel: 50, originServerTs: 1 },
      { eventId: '$c', powerLevel: 50, originServerTs: 0 },
      { eventId: '$z', powerLevel: Number.POSITIVE_INFINITY, originServerTs: 9 },
      { eventId: '$d', powerLevel: 100, originServerTs: 5 },
    ];
    expect(keys.sort(comparePowerOrder).map((k) => k.eventId)).to.deep.equal(['$z', '$d', '$c', '$a', '$b']);
  });

  it('mainline order puts events based on older mainline power levels first, then by ts and ID', () => {
    const room = new RoomFixture(v11);
    const pl = (name: string, auth: string[]) =>
      room.add({ name, sender: ALICE, type: 'm.room.power_levels', stateKey: '', auth });
    const topic = (name: string, auth: string[], ts: number) =>
      room.add({ name, sender: ALICE, type: 'm.room.topic', stateKey: '', auth, ts });
    room.add({ name: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '' });
    pl('P0', ['CREATE']); // mainline: P2 -> P1 -> P0
    pl('P1', ['CREATE', 'P0']);
    pl('P2', ['CREATE', 'P1']);
    pl('FORK', ['CREATE', 'P0']); // off the mainline, descends from P0
    topic('T_P2', ['CREATE', 'P2'], 1);
    topic('T_P1', ['CREATE', 'P1'], 50);
    topic('T_FORK', ['CREATE', 'FORK'], 2);
    topic('T_P0', ['CREATE', 'P0'], 3);
    topic('T_NONE', ['CREATE'], 100);
    topic('T_P0_SAME_TS', ['CREATE', 'P0'], 3);
    const graph = new AuthEventGraph(room.getEvent, v11);
    const order = mainlineOrder(
      graph,
      ids(['T_P2', 'T_P1', 'T_FORK', 'T_P0', 'T_NONE', 'T_P0_SAME_TS']),
      '$P2',
    );
    // T_NONE: position ∞. T_FORK: FORK is off the mainline, its parent P0 is position 2 (ts 2 < 3).
    expect(order).to.deep.equal(ids(['T_NONE', 'T_FORK', 'T_P0', 'T_P0_SAME_TS', 'T_P1', 'T_P2']));
    // With no resolved power levels every position is ∞: ts then ID.
    expect(mainlineOrder(graph, ids(['T_P1', 'T_P2', 'T_FORK']), undefined)).to.deep.equal(
      ids(['T_P2', 'T_FORK', 'T_P1']),
    );
  });
});

describe('state resolution: iterative auth checks', () => {
  it('checks against auth events overridden by the resolved state for the selected keys', () => {
    const room = new RoomFixture(v11);
    room.add({ name: 'CREATE', sender: ALICE, type: 'm.room.create', stateKey: '' });
    room.add({ name: 'PL_OLD', sender: ALICE, type: 'm.room.power_levels', stateKey: '', auth: ['CREATE'] });
    room.add({ name: 'PL_NEW', sender: ALICE, type: 'm.room.power_levels', stateKey: '', auth: ['CREATE'] });
    room.add({ name: 'JR', sender: ALICE, type: 'm.room.join_rules', stateKey: '', auth: ['CREATE'] });
    room.add({
      name: 'T',
      sender: BOB,
      type: 'm.room.topic',
      stateKey: '',
      auth: ['CREATE', 'PL_OLD', 'JR'],
    });
    const seen: Record<string, string | undefined>[] = [];
    const recordingCheck: AuthCheck = (_event, lookup): AuthVerdict => {
      seen.push({
        pl: lookup('m.room.power_levels', '')?.eventId,
        create: lookup('m.room.create', '')?.eventId,
        jr: lookup('m.room.join_rules', '')?.eventId,
      });
      return { allowed: false, rule: 'test', reason: 'refused' };
    };
    const graph = new AuthEventGraph(room.getEvent, v11);
    const start: StateMap = new Map([[stateTupleKey('m.room.power_levels', ''), '$PL_NEW']]);
    const out = iterativeAuthChecks(graph, ['$T'], start, v11, recordingCheck, () => false);
    // Power levels: from the resolved state. Join rules: a topic's selection does not name them,
    // so the auth event stays.
    expect(seen).to.deep.equal([{ pl: '$PL_NEW', create: '$CREATE', jr: '$JR' }]);
    expect([...out]).to.deep.equal([...start]); // refused: not applied

    seen.length = 0;
    iterativeAuthChecks(graph, ['$T'], new Map(), v11, recordingCheck, (id) => id === '$PL_OLD');
    expect(seen).to.deep.equal([{ pl: undefined, create: '$CREATE', jr: '$JR' }]);
  });
});

/** Power levels content with Alice (the creator) listed only where the room version allows it. */
function levels(rules: RoomVersionRules, users: Record<string, number>, extra: JsonObject = {}): JsonObject {
  const listed: JsonObject = {};
  for (const [user, level] of Object.entries(users))
    if (!(rules.privilegedCreators && user === ALICE)) listed[user] = level;
  return { users: listed, ...extra };
}

interface Scenario {
  title: string;
  nodes: (rules: RoomVersionRules) => DagNode[];
  chains: string[][];
  expected: string[];
}

const topic = (name: string, sender: string): DagNode => ({
  name,
  sender,
  type: 'm.room.topic',
  stateKey: '',
  content: { topic: name },
});
const powerLevels = (name: string, sender: string, content: JsonObject): DagNode => ({
  name,
  sender,
  type: 'm.room.power_levels',
  stateKey: '',
  content,
});
const membership = (name: string, sender: string, target: string, value: string): DagNode => ({
  name,
  sender,
  type: 'm.room.member',
  stateKey: target,
  content: { membership: value },
});

// The classic scenarios of the v2 design (as exercised by Synapse's and ruma's suites), in our
// own words. Each starts from the initial room; the chains are newest first.
const SCENARIOS: Scenario[] = [
  {
    title: 'a ban beats a concurrent power levels change by the banned user',
    // Alice makes Bob a moderator (PA); then Alice re-joins and bans Bob while Bob, in a fork,
    // sends power levels. Alice's ban sorts first (higher power), so Bob's change fails.
    nodes: (r) => [
      powerLevels('PA', ALICE, levels(r, { [ALICE]: 100, [BOB]: 50 })),
      membership('MA', ALICE, ALICE, 'join'),
      membership('MB', ALICE, BOB, 'ban'),
      powerLevels('PB', BOB, levels(r, { [ALICE]: 100, [BOB]: 50 })),
    ],
    chains: [
      ['END', 'MB', 'MA', 'PA', 'START'],
      ['END', 'PB', 'PA'],
    ],
    expected: ['PA', 'MA', 'MB'],
  },
  {
    title: 'a join rules change to invite-only beats a concurrent join',
    nodes: () => [
      {
        name: 'JR',
        sender: ALICE,
        type: 'm.room.join_rules',
        stateKey: '',
        content: { join_rule: 'invite' },
      },
      membership('ME', EVELYN, EVELYN, 'join'),
    ],
    chains: [
      ['END', 'JR', 'START'],
      ['END', 'ME', 'START'],
    ],
    expected: ['JR'],
  },
  {
    title: 'a chain of power levels changes wins over its own ancestor',
    // Bob, then Charlie, build on Alice's PA; the fork only has PA. PC is the latest.
    nodes: (r) => [
      powerLevels('PA', ALICE, levels(r, { [ALICE]: 100, [BOB]: 50 })),
      powerLevels('PB', BOB, levels(r, { [ALICE]: 100, [BOB]: 50, [CHARLIE]: 50 })),
      powerLevels('PC', CHARLIE, levels(r, { [ALICE]: 100, [BOB]: 50, [CHARLIE]: 0 })),
    ],
    chains: [
      ['END', 'PC', 'PB', 'PA', 'START'],
      ['END', 'PA'],
    ],
    expected: ['PC'],
  },
  {
    title: 'a topic set under demoted powers loses to the demotion (basic topic)',
    // Alice demotes Bob (PA2) while Bob, in a fork, re-sends power levels and sets topic T3.
    nodes: (r) => [
      topic('T1', ALICE),
      powerLevels('PA1', ALICE, levels(r, { [ALICE]: 100, [BOB]: 50 })),
      topic('T2', ALICE),
      powerLevels('PA2', ALICE, levels(r, { [ALICE]: 100, [BOB]: 0 })),
      powerLevels('PB', BOB, levels(r, { [ALICE]: 100, [BOB]: 50 })),
      topic('T3', BOB),
    ],
    chains: [
      ['END', 'PA2', 'T2', 'PA1', 'T1', 'START'],
      ['END', 'T3', 'PB', 'PA1'],
    ],
    expected: ['PA2', 'T2'],
  },
  {
    title: 'a banned user\u2019s topic is reset to the one before (topic reset)',
    nodes: (r) => [
      topic('T1', ALICE),
      powerLevels('PA', ALICE, levels(r, { [ALICE]: 100, [BOB]: 50 })),
      topic('T2', BOB),
      membership('MB', ALICE, BOB, 'ban'),
    ],
    chains: [
      ['END', 'MB', 'T2', 'PA', 'T1', 'START'],
      ['END', 'T1'],
    ],
    expected: ['T1', 'MB', 'PA'],
  },
  {
    title: 'topic set after a message merging both forks wins (topic)',
    nodes: (r) => [
      topic('T1', ALICE),
      powerLevels('PA1', ALICE, levels(r, { [ALICE]: 100, [BOB]: 50 })),
      topic('T2', ALICE),
      powerLevels('PA2', ALICE, levels(r, { [ALICE]: 100, [BOB]: 0 })),
      powerLevels('PB', BOB, levels(r, { [ALICE]: 100, [BOB]: 50 })),
      topic('T3', BOB),
      { name: 'MZ1', sender: ZARA, type: 'm.room.message', content: {} },
      topic('T4', ALICE),
    ],
    chains: [
      ['END', 'T4', 'MZ1', 'PA2', 'T2', 'PA1', 'T1', 'START'],
      ['END', 'MZ1', 'T3', 'PB', 'PA1'],
    ],
    expected: ['T4', 'PA2'],
  },
  {
    title: 'mainline ordering picks the topic based on the newest power levels, not the newest topic',
    // T4 is sent after T3 but cites PB, which is older on the resolved mainline than PA2.
    nodes: (r) => [
      topic('T1', ALICE),
      powerLevels('PA1', ALICE, levels(r, { [ALICE]: 100, [BOB]: 50 })),
      topic('T2', ALICE),
      powerLevels(
        'PA2',
        ALICE,
        levels(r, { [ALICE]: 100, [BOB]: 50 }, { events: { 'm.room.power_levels': 100 } }),
      ),
      powerLevels('PB', BOB, levels(r, { [ALICE]: 100, [BOB]: 50 })),
      topic('T3', BOB),
      topic('T4', ALICE),
    ],
    chains: [
      ['END', 'T3', 'PA2', 'T2', 'PA1', 'T1', 'START'],
      ['END', 'T4', 'PB', 'PA1'],
    ],
    expected: ['T3', 'PA2'],
  },
  {
    title: 'concurrent joins both stay',
    nodes: () => [
      membership('JE', EVELYN, EVELYN, 'join'),
      membership('JF', '@frank:example.com', '@frank:example.com', 'join'),
    ],
    chains: [
      ['END', 'JE', 'START'],
      ['END', 'JF', 'START'],
    ],
    expected: ['JE', 'JF'],
  },
  {
    title: 'a higher-powered power levels change beats a lower-powered one',
    // Alice and Bob (a moderator) both change power levels concurrently; Alice's sorts first,
    // and Bob's, which would lower Charlie, is then checked against Alice's and stays allowed
    // only if Bob still has the power. Alice removes Bob's power, so hers wins.
    nodes: (r) => [
      powerLevels('PA', ALICE, levels(r, { [ALICE]: 100, [BOB]: 50, [CHARLIE]: 10 })),
      powerLevels('PALICE', ALICE, levels(r, { [ALICE]: 100, [CHARLIE]: 10 })),
      powerLevels('PBOB', BOB, levels(r, { [ALICE]: 100, [BOB]: 50 })),
    ],
    chains: [
      ['END', 'PALICE', 'PA', 'START'],
      ['END', 'PBOB', 'PA'],
    ],
    expected: ['PALICE'],
  },
];

for (const version of ['6', '11', '12'] as const) {
  describe(`state resolution scenarios, room version ${version}`, () => {
    const rules = roomVersionRules(version);
    for (const scenario of SCENARIOS) {
      it(scenario.title, () => {
        const result = buildDag(
          rules,
          [...initialDagNodes(rules), ...scenario.nodes(rules)],
          [INITIAL_DAG_CHAIN, ...scenario.chains],
        );
        expect(scenarioOutcome(result, scenario.expected)).to.deep.equal(
          expectedOutcome(result, scenario.expected),
        );
      });
    }
  });
}

/**
 * The two problems that motivated state resolution v2.1 (MSC4297), rebuilt with explicit auth
 * events. `auth` names exclude the create event; it is added where the room version lists it.
 */
function explicitRoom(rules: RoomVersionRules) {
  const room = new RoomFixture(rules);
  const add = (
    name: string,
    sender: string,
    type: string,
    stateKey: string,
    content: JsonObject,
    auth: string[],
  ) => {
    const withCreate = type !== 'm.room.create' && rules.createEventInAuthEvents ? ['CREATE', ...auth] : auth;
    room.add({ name, sender, type, stateKey, content, auth: withCreate });
  };
  const createContent: JsonObject = rules.createEventHasCreatorField ? { creator: ALICE } : {};
  add('CREATE', ALICE, 'm.room.create', '', { ...createContent, room_version: rules.id }, []);
  add('ALICE_JOIN', ALICE, 'm.room.member', ALICE, { membership: 'join' }, []);
  add('PL0', ALICE, 'm.room.power_levels', '', levels(rules, { [ALICE]: 100 }), ['ALICE_JOIN']);
  add('JR_PUBLIC', ALICE, 'm.room.join_rules', '', { join_rule: 'public' }, ['ALICE_JOIN', 'PL0']);
  add('BOB_JOIN', BOB, 'm.room.member', BOB, { membership: 'join' }, ['PL0', 'JR_PUBLIC']);
  add('CHARLIE_JOIN', CHARLIE, 'm.room.member', CHARLIE, { membership: 'join' }, ['PL0', 'JR_PUBLIC']);
  return { room, add };
}

/**
 * Problem A: Alice closes the room (JR_INVITE) and leaves; Bob and Charlie then rename
 * themselves concurrently, but Charlie's side still holds the old public join rules. The
 * unconflicted state says Alice has left, so v2, starting from it, rejects both join rules
 * events and the room ends with none; v2.1 starts empty and keeps Alice's last word.
 */
function problemA(rules: RoomVersionRules) {
  const { room, add } = explicitRoom(rules);
  add('JR_INVITE', ALICE, 'm.room.join_rules', '', { join_rule: 'invite' }, ['PL0', 'ALICE_JOIN']);
  add('ALICE_LEAVE', ALICE, 'm.room.member', ALICE, { membership: 'leave' }, ['PL0', 'ALICE_JOIN']);
  add('BOB_RENAME', BOB, 'm.room.member', BOB, { membership: 'join', displayname: 'bob++' }, [
    'PL0',
    'BOB_JOIN',
    'JR_INVITE',
  ]);
  add('CHARLIE_RENAME', CHARLIE, 'm.room.member', CHARLIE, { membership: 'join', displayname: 'charlie++' }, [
    'PL0',
    'CHARLIE_JOIN',
    'JR_INVITE',
  ]);
  const bobSide = room.state('CREATE', 'PL0', 'CHARLIE_JOIN', 'JR_INVITE', 'ALICE_LEAVE', 'BOB_RENAME');
  const charlieSide = room.state('CREATE', 'PL0', 'JR_PUBLIC', 'BOB_JOIN', 'ALICE_LEAVE', 'CHARLIE_RENAME');
  return { room, stateSets: [bobSide, charlieSide] };
}

/**
 * Problem B: Alice makes Bob a moderator (PL1), Bob promotes Charlie (PL2); Zara and Eve join
 * under PL2 and Eve renames herself. Eve's side claims the original PL0. PL1 is in both auth
 * chains, so v2 leaves it out of the full conflicted set and PL2, checked straight against
 * PL0, fails: the power levels reset. v2.1 adds the conflicted state subgraph PL2 -> PL1 -> PL0.
 */
function problemB(rules: RoomVersionRules) {
  const { room, add } = explicitRoom(rules);
  add('PL1', ALICE, 'm.room.power_levels', '', levels(rules, { [ALICE]: 100, [BOB]: 50 }), [
    'PL0',
    'ALICE_JOIN',
  ]);
  add('PL2', BOB, 'm.room.power_levels', '', levels(rules, { [ALICE]: 100, [BOB]: 50, [CHARLIE]: 50 }), [
    'PL1',
    'BOB_JOIN',
  ]);
  add('ZARA_JOIN', ZARA, 'm.room.member', ZARA, { membership: 'join' }, ['PL2', 'JR_PUBLIC']);
  add('EVE_JOIN', EVELYN, 'm.room.member', EVELYN, { membership: 'join' }, ['PL2', 'JR_PUBLIC']);
  add('EVE_RENAME', EVELYN, 'm.room.member', EVELYN, { membership: 'join', displayname: 'eve++' }, [
    'PL2',
    'EVE_JOIN',
    'JR_PUBLIC',
  ]);
  const eveSide = room.state(
    'CREATE',
    'ALICE_JOIN',
    'PL0',
    'JR_PUBLIC',
    'BOB_JOIN',
    'CHARLIE_JOIN',
    'EVE_RENAME',
  );
  const zaraSide = room.state(
    'CREATE',
    'ALICE_JOIN',
    'JR_PUBLIC',
    'BOB_JOIN',
    'CHARLIE_JOIN',
    'PL2',
    'ZARA_JOIN',
  );
  return { room, stateSets: [eveSide, zaraSide] };
}

function resolvedNames(
  rules: RoomVersionRules,
  fixture: { room: RoomFixture; stateSets: StateMap[] },
): string[] {
  const resolved = resolveState({ rules, stateSets: fixture.stateSets, getEvent: fixture.room.getEvent });
  return [...resolved.values()].map((id) => id.slice(1)).sort();
}

describe('state resolution v2 and v2.1 differ (MSC4297 problems)', () => {
  it('problem A, v2: starting from the unconflicted state, the room loses its join rules', () => {
    expect(resolvedNames(v11, problemA(v11))).to.deep.equal(
      ['ALICE_LEAVE', 'BOB_RENAME', 'CHARLIE_RENAME', 'CREATE', 'PL0'].sort(),
    );
  });

  it('problem A, v2.1: starting from an empty state, the invite-only join rules survive', () => {
    expect(resolvedNames(v12, problemA(v12))).to.deep.equal(
      ['ALICE_LEAVE', 'BOB_RENAME', 'CHARLIE_RENAME', 'CREATE', 'JR_INVITE', 'PL0'].sort(),
    );
  });

  it('problem B, v2: power levels reset to the old PL0', () => {
    expect(resolvedNames(v11, problemB(v11))).to.deep.equal(
      [
        'ALICE_JOIN',
        'BOB_JOIN',
        'CHARLIE_JOIN',
        'CREATE',
        'EVE_RENAME',
        'JR_PUBLIC',
        'PL0',
        'ZARA_JOIN',
      ].sort(),
    );
  });

  it('problem B, v2.1: the conflicted state subgraph keeps PL2', () => {
    expect(resolvedNames(v12, problemB(v12))).to.deep.equal(
      [
        'ALICE_JOIN',
        'BOB_JOIN',
        'CHARLIE_JOIN',
        'CREATE',
        'EVE_RENAME',
        'JR_PUBLIC',
        'PL2',
        'ZARA_JOIN',
      ].sort(),
    );
  });

  it('problem B, v2.1: PL1 enters the full conflicted set only through the subgraph', () => {
    const { room, stateSets } = problemB(v12);
    const graph = new AuthEventGraph(room.getEvent, v12);
    const difference = authDifference(
      graph,
      stateSets.map((s) => s.values()),
    );
    expect(difference.has('$PL1')).to.equal(false);
    const { conflicted } = splitConflictedState(stateSets);
    const conflictedIds = new Set([...conflicted.values()].flatMap((s) => [...s]));
    expect([...conflictedStateSubgraph(graph, conflictedIds)].sort()).to.include('$PL1');
  });
});

describe('state resolution: determinism', () => {
  const permutation = <T>(items: readonly T[]) =>
    fc.shuffledSubarray([...items], { minLength: items.length, maxLength: items.length });

  function forks(rules: RoomVersionRules) {
    // The "topic" scenario's DAG, resolved across the states after several of its events.
    const scenario = SCENARIOS.find((s) => s.title.startsWith('topic set after'))!;
    const { room, stateAfter } = buildDag(
      rules,
      [...initialDagNodes(rules), ...scenario.nodes(rules)],
      [INITIAL_DAG_CHAIN, ...scenario.chains],
    );
    return { room, stateSets: ['T4', 'T3', 'PB', 'PA2', 'IMZ'].map((n) => stateAfter.get(n)!) };
  }

  for (const version of ['11', '12'] as const) {
    const rules = roomVersionRules(version);
    const fixtures = [problemA(rules), problemB(rules), forks(rules)];
    it(`room version ${version}: the order of state sets and of their entries does not change the result`, () => {
      const baseline = fixtures.map(({ room, stateSets }) => [
        ...resolveState({ rules, stateSets, getEvent: room.getEvent }),
      ]);
      fc.assert(
        fc.property(
          fc.nat({ max: fixtures.length - 1 }).chain((i) =>
            fc.tuple(
              fc.constant(i),
              permutation(fixtures[i]!.stateSets.map((s) => [...s])).chain((sets) =>
                fc.tuple(...sets.map((entries) => permutation(entries))),
              ),
            ),
          ),
          ([i, shuffledSets]) => {
            const stateSets = shuffledSets.map((entries) => new Map(entries));
            const resolved = resolveState({ rules, stateSets, getEvent: fixtures[i]!.room.getEvent });
            expect([...resolved]).to.deep.equal(baseline[i]);
          },
        ),
        { numRuns: 60 },
      );
    });
  }
});

describe('state resolution v1 (room version 1)', () => {
  const v1 = roomVersionRules('1');
  const refuse =
    (...names: string[]): AuthCheck =>
    (event) =>
      names.map(eventId).includes(event.eventId)
        ? { allowed: false, rule: 'test', reason: 'refused' }
        : { allowed: true };
  const room = new RoomFixture(v1);
  room.add({
    name: 'CREATE',
    sender: ALICE,
    type: 'm.room.create',
    stateKey: '',
    content: { creator: ALICE },
  });
  for (const [name, depth] of [
    ['PL1', 3],
    ['PL2', 5],
    ['PL3', 7],
    ['TOPIC_OLD', 4],
    ['TOPIC_NEW', 9],
  ] as const) {
    const type = name.startsWith('PL') ? 'm.room.power_levels' : 'm.room.topic';
    room.add({ name, sender: ALICE, type, stateKey: '', content: { n: name }, depth, auth: ['CREATE'] });
  }
  const resolve = (stateSets: StateMap[], authCheck: AuthCheck = allowAll) =>
    resolveState({ rules: v1, stateSets, getEvent: room.getEvent, authCheck });
  const pl = stateTupleKey('m.room.power_levels', '');
  const topic = stateTupleKey('m.room.topic', '');

  it('keeps unconflicted state and applies power levels in ascending depth while the auth rules allow', () => {
    const resolved = resolve([
      room.state('CREATE', 'PL3'),
      room.state('CREATE', 'PL1'),
      room.state('CREATE', 'PL2'),
    ]);
    expect(resolved.get(stateTupleKey('m.room.create', ''))).to.equal(eventId('CREATE'));
    expect(resolved.get(pl)).to.equal(eventId('PL3'));
  });

  it('stops at the first power levels event the auth rules refuse', () => {
    const stateSets = [room.state('CREATE', 'PL1'), room.state('CREATE', 'PL2'), room.state('CREATE', 'PL3')];
    expect(resolve(stateSets, refuse('PL2')).get(pl)).to.equal(eventId('PL1'));
  });

  it('picks the deepest other event that passes the auth rules', () => {
    const stateSets = [room.state('CREATE', 'TOPIC_OLD'), room.state('CREATE', 'TOPIC_NEW')];
    expect(resolve(stateSets).get(topic)).to.equal(eventId('TOPIC_NEW'));
    expect(resolve(stateSets, refuse('TOPIC_NEW')).get(topic)).to.equal(eventId('TOPIC_OLD'));
  });

  it('does not depend on the order of the state sets', () => {
    const a = room.state('CREATE', 'PL2', 'TOPIC_OLD');
    const b = room.state('CREATE', 'PL3', 'TOPIC_NEW');
    expect([...resolve([a, b])]).to.deep.equal([...resolve([b, a])]);
  });

  it('resolves with the real auth rules: a topic by a user without power is refused', () => {
    const real = new RoomFixture(v1);
    real.add({
      name: 'CREATE',
      sender: ALICE,
      type: 'm.room.create',
      stateKey: '',
      content: { creator: ALICE },
    });
    real.add({
      name: 'JOIN',
      sender: ALICE,
      type: 'm.room.member',
      stateKey: ALICE,
      content: { membership: 'join' },
      auth: ['CREATE'],
      depth: 1,
    });
    real.add({
      name: 'T_ALICE',
      sender: ALICE,
      type: 'm.room.topic',
      stateKey: '',
      content: { topic: 'a' },
      auth: ['CREATE', 'JOIN'],
      depth: 2,
    });
    real.add({
      name: 'T_BOB',
      sender: BOB,
      type: 'm.room.topic',
      stateKey: '',
      content: { topic: 'b' },
      auth: ['CREATE'],
      depth: 5,
    });
    const resolved = resolveState({
      rules: v1,
      stateSets: [real.state('CREATE', 'JOIN', 'T_ALICE'), real.state('CREATE', 'JOIN', 'T_BOB')],
      getEvent: real.getEvent,
    });
    // Bob is not in the room, so his deeper topic fails the auth rules in R.
    expect(resolved.get(topic)).to.equal(eventId('T_ALICE'));
  });
});
