/**
 * Authorization rules: checks per second for a message and for a join in a public room of
 * a few hundred members, against the current state (a Map lookup, as the send path does).
 */
import { performance } from 'node:perf_hooks';
import { checkAuthRules } from '../protocol/auth-rules.js';
import type { RoomEvent } from '../protocol/events.js';
import type { RoomVersionId } from '../protocol/room-versions.js';
import { TestRoomBuilder } from '../protocol/test-room-builder.js';

const MEMBERS = 300;
const RUN_MS = 1000;

/** Runs `check` in batches for about RUN_MS and returns calls per second. */
function measure(check: () => boolean): number {
  for (let i = 0; i < 10_000; i++) check();
  let calls = 0;
  let allowed = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < RUN_MS) {
    for (let i = 0; i < 5_000; i++) if (check()) allowed++;
    calls += 5_000;
    elapsed = performance.now() - start;
  }
  if (allowed !== calls) throw new Error('bench event was rejected');
  return (calls / elapsed) * 1000;
}

function buildRoom(version: RoomVersionId): { room: TestRoomBuilder; message: RoomEvent; join: RoomEvent } {
  const members = Array.from({ length: MEMBERS }, (_, i) => `@user${i}:server${i % 10}.example.org`);
  const room = TestRoomBuilder.withMembers({
    roomVersion: version,
    members,
    powerLevels: { users_default: 0, events: { 'm.room.name': 50, 'm.room.power_levels': 100 } },
  });
  const message = room.build({
    type: 'm.room.message',
    sender: members[123]!,
    content: { msgtype: 'm.text', body: 'hello, world' },
  });
  const newcomer = '@newcomer:elsewhere.org';
  const join = room.build({
    type: 'm.room.member',
    sender: newcomer,
    state_key: newcomer,
    content: { membership: 'join', displayname: 'Newcomer' },
  });
  return { room, message, join };
}

export async function runAuthBench(
  report: (name: string, opsPerSec: number, note?: string) => void,
): Promise<void> {
  for (const version of ['10', '12'] as RoomVersionId[]) {
    const { room, message, join } = buildRoom(version);
    const note = `v${version}, ${MEMBERS + 1} members`;
    report(
      'auth rules: m.room.message',
      measure(() => checkAuthRules(message, room.lookup, room.rules).allowed),
      note,
    );
    report(
      'auth rules: m.room.member join (public)',
      measure(() => checkAuthRules(join, room.lookup, room.rules).allowed),
      note,
    );
  }
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain) {
  await runAuthBench((name, ops, note) =>
    console.log(
      `${name.padEnd(44)} ${Math.round(ops).toLocaleString('en-US').padStart(12)} ops/s  ${note ?? ''}`,
    ),
  );
}
