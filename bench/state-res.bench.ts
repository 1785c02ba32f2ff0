/**
 * State resolution: a room of 1,000 members forked into two branches of 5,000 state events
 * each (renames, topics, power levels, kicks), resolved with the real auth rules.
 */
import { performance } from 'node:perf_hooks';
import { selectAuthEventKeys } from '../protocol/auth-events-selection.js';
import { type JsonObject, type StateMap, stateTupleKey } from '../protocol/events.js';
import { type RoomVersionRules, roomVersionRules } from '../protocol/room-versions.js';
import { RoomFixture } from '../protocol/state-resolution.fixtures.js';
import { resolveState, splitConflictedState } from '../protocol/state-resolution.js';

const MEMBERS = 1000;
/** Members 0..RENAMED-1 rename themselves; the others are kicked, one branch the even, the other the odd. */
const RENAMED = 900;
const BRANCH_EVENTS = 5000;
const ADMIN = '@admin:example.com';
const member = (i: number) => `@user${i}:example.com`;

export interface Fork {
  room: RoomFixture;
  stateSets: StateMap[];
}

export function buildForkedRoom(rules: RoomVersionRules): Fork {
  const room = new RoomFixture(rules);
  let ts = 0;
  let serial = 0;
  const send = (
    state: StateMap,
    name: string,
    sender: string,
    type: string,
    stateKey: string,
    content: JsonObject,
  ): void => {
    const auth: string[] = [];
    for (const [t, k] of selectAuthEventKeys({ type, sender, state_key: stateKey, content }, rules)) {
      const id = state.get(stateTupleKey(t, k));
      if (id !== undefined && !auth.includes(id.slice(1))) auth.push(id.slice(1));
    }
    const event = room.add({ name, sender, type, stateKey, content, auth, ts: ts++ });
    state.set(stateTupleKey(type, stateKey), event.eventId);
  };
  const powerLevels = (users: Record<string, number>): JsonObject =>
    rules.privilegedCreators ? { users } : { users: { ...users, [ADMIN]: 100 } };

  const base: StateMap = new Map();
  const create: JsonObject = rules.createEventHasCreatorField ? { creator: ADMIN } : {};
  send(base, 'CREATE', ADMIN, 'm.room.create', '', { ...create, room_version: rules.id });
  send(base, 'ADMIN_JOIN', ADMIN, 'm.room.member', ADMIN, { membership: 'join' });
  send(base, 'PL_BASE', ADMIN, 'm.room.power_levels', '', powerLevels({}));
  send(base, 'JR', ADMIN, 'm.room.join_rules', '', { join_rule: 'public' });
  for (let i = 0; i < MEMBERS; i++)
    send(base, `JOIN_${i}`, member(i), 'm.room.member', member(i), { membership: 'join' });

  const branch = (tag: string, offset: number): StateMap => {
    const state = new Map(base);
    let kicks = 0;
    for (let n = 0; n < BRANCH_EVENTS; n++) {
      const name = `${tag}_${serial++}`;
      if (n % 250 === 0) {
        send(
          state,
          name,
          ADMIN,
          'm.room.power_levels',
          '',
          powerLevels({ [member(n % MEMBERS)]: 50 + (n % 7) }),
        );
      } else if (n % 100 === 1) {
        send(state, name, ADMIN, 'm.room.topic', '', { topic: `${tag} ${n}` });
      } else if (n % 100 === 2) {
        // A kick (a power event); members from RENAMED on are kicked, never renamed.
        send(state, name, ADMIN, 'm.room.member', member(RENAMED + kicks++ * 2 + offset), {
          membership: 'leave',
        });
      } else {
        const who = member((n * 7 + offset) % RENAMED);
        send(state, name, who, 'm.room.member', who, { membership: 'join', displayname: `${tag}-${n}` });
      }
    }
    return state;
  };
  return { room, stateSets: [branch('A', 0), branch('B', 1)] };
}

export async function runStateResBench(
  report: (name: string, opsPerSec: number, note?: string) => void,
): Promise<void> {
  for (const version of ['11', '12'] as const) {
    const rules = roomVersionRules(version);
    const { room, stateSets } = buildForkedRoom(rules);
    const conflicts = splitConflictedState(stateSets).conflicted.size;
    const resolve = () => resolveState({ rules, stateSets, getEvent: room.getEvent });
    resolve(); // warm-up
    const runs = 5;
    const start = performance.now();
    for (let i = 0; i < runs; i++) resolve();
    const msEach = (performance.now() - start) / runs;
    report(
      `state res ${rules.stateResolution} (v${version}) 2x${BRANCH_EVENTS} events`,
      1000 / msEach,
      `${msEach.toFixed(0)} ms each; ${conflicts} conflicted keys, ${room.events.size} events`,
    );
  }
}
