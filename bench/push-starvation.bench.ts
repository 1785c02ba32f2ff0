/**
 * Push delivery on a saturated CPU. Prints, asserts nothing. 100 users with pushers to a
 * loopback gateway in this process; N busy-loop processes at nice 0 are started, then
 * E events notifying every user are handed to the delivery worker (SCHED_IDLE) at once:
 * how long until every push reached the gateway, and this process's CPU per push. Prints
 * the delivery log (on branches that raise the worker when pushes wait, when it was).
 * Run: node --import tsx bench/push-starvation.bench.ts [--loops=2] [--events=50]
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import type { RoomEvent } from '../protocol/events.js';
import type { PushOutcome } from '../protocol/push-rules/index.js';
import { PushDelivery } from '../server/push/push-delivery.js';
import type { ProducedNotification } from '../server/push/push-evaluator.js';
import { httpPusher, startLoopbackGateway } from '../server/push/push-test-fixtures.js';
import type { RoomPushFacts } from '../server/push/room-push-facts.js';
import { openSqliteStorage } from '../storage/sqlite/sqlite-storage.js';

const arg = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const loops = arg('loops', 2);
const events = arg('events', 50);

const gateway = await startLoopbackGateway();
const storage = await openSqliteStorage({ path: ':memory:' });
const users = Array.from({ length: 100 }, (_, i) => `@u${i}:example.org`);
for (const userId of users)
  await storage.push.setPusher(httpPusher(userId, userId, { url: gateway.url }), true);
let started = performance.now();
const logs: string[] = [];
const log = (_fields: object, message: string) =>
  logs.push(`${(performance.now() - started).toFixed(0)} ms: ${message}`);
const delivery = new PushDelivery({
  storage,
  policy: { allowPrivate: true, allowedHosts: [] },
  requestTimeoutMs: 10_000,
  initialRetryDelayMs: 100,
  maxRetryDelayMs: 1_000,
  maxAttempts: 3,
  log: { warn: log, info: log },
});
const room: RoomPushFacts = {
  joined: new Map(),
  localJoined: [],
  roomName: undefined,
  senderMayNotify: () => false,
};
const notified = (eventId: string, streamOrdering: number, userIds: string[]): ProducedNotification[] => {
  const event: RoomEvent = {
    eventId,
    roomId: '!r:example.org',
    pdu: { type: 'm.room.message', sender: '@a:example.org', content: {} } as never,
  };
  const outcome = { actions: ['notify'] } as unknown as PushOutcome;
  return userIds.map((userId) => ({ userId, event, streamOrdering, outcome, room }));
};

// The worker started and lowered before the clock starts.
delivery.deliver(notified('$warm', 1, [users[0]!]));
await delivery.idle();
await new Promise((resolve) => setTimeout(resolve, 300));
const busy = Array.from({ length: loops }, () =>
  spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }),
);
await new Promise((resolve) => setTimeout(resolve, 300));
gateway.received.length = 0;
logs.length = 0;
const load = loadavg()[0]!.toFixed(2);
const cpu = process.cpuUsage();
started = performance.now();
for (let e = 0; e < events; e++) delivery.deliver(notified(`$${e}`, e + 2, users));
await delivery.idle();
const seconds = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
for (const loop of busy) loop.kill();
const pushes = gateway.received.length;
console.log(
  `${loops} busy loops, load ${load}: ${pushes} pushes in ${seconds.toFixed(2)} s (${(pushes / seconds).toFixed(0)}/s), process CPU ${((used.user + used.system) / 1000 / pushes).toFixed(3)} ms per push`,
);
for (const line of logs) console.log(`  ${line}`);
await delivery.stop();
await storage.close();
await gateway.stop();
process.exit(0);
