/**
 * Push figures of issue #8. Prints, asserts nothing.
 *   1. Rule evaluation alone (protocol/push-rules): one event evaluated for every
 *      member of a 1,000-member room, each member with their own compiled rule set
 *      (one in ten with custom rules: a muted room, a keyword, a sender rule).
 *   2. The server's evaluation of one event in a room of 1,000 local members: from
 *      the persisted event to its notifications counted (PushService.idle(); the rows
 *      themselves are written in batches a little later).
 *   3. Send latency (RoomEventSender.sendEvent, closed loop, one client) in a room of
 *      100 members, without pushers and then with each member holding a pusher to a
 *      loopback gateway (a child process; delivery runs in the server's delivery worker
 *      thread). Beside latency: main-thread CPU per send (hardly load-dependent) and the
 *      whole server process's, and how long the main thread waited for a CPU while sending
 *      (runnable, not running: /proc's schedstat). --gateway-nice=19 runs the gateway process at
 *      that nice value, --gateway-idle at SCHED_IDLE (Linux, chrt): it stands for another
 *      machine, whose CPU is not the server's to share. Also prints the scheduling policy of
 *      the server's threads (the delivery worker's should be SCHED_IDLE).
 *   4. After a burst of concurrent sends, how long the unread counts a sync reports wait
 *      for push evaluation to catch up.
 * Run: node --import tsx bench/push-rules.bench.ts [--members=1000] [--sends=300] [--only=1|2|3|4]
 *        [--gateway-nice=N] [--gateway-idle] [--rounds=N] [--max-hold=MS] [--cold] [--phases]
 *   --rounds=N (scenario 3): N pairs of phases (without pushers, then with), alternating in one
 *     server, their samples pooled and their figures averaged: other load hits both alike.
 *   --cold: no warm-up sends before each phase (the delivery worker then starts within it);
 *   --phases (or --cpu-prof): print each phase's bounds for profile-summary / perf.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { JsonObject } from '../protocol/events.js';
import {
  CompiledPushRules,
  EMPTY_USER_PUSH_RULES,
  effectivePushRules,
  PushEventView,
  putUserRule,
  type UserPushRules,
} from '../protocol/push-rules/index.js';
import { defaultConfig } from '../server/config/index.js';
import { createHomeserver } from '../server/homeserver.js';
import { monotonicMicros } from './load/report.js';

const arg = (name: string, fallback: number) => {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.split('=')[1]);
};
const MEMBERS = arg('members', 1000);
const SENDS = arg('sends', 300);
const ROOM = '!bench:bench.test';
const GATEWAY_NICE = arg('gateway-nice', 0);
const GATEWAY_IDLE = process.argv.includes('--gateway-idle');
const ROUNDS = arg('rounds', 1);
/** --max-hold=MS: push.delivery_max_hold_ms (how long delivery may hold back for sends). */
const MAX_HOLD_MS = process.argv.some((a) => a.startsWith('--max-hold=')) ? arg('max-hold', 0) : undefined;
/** Under --cpu-prof (or with --phases, for perf): each phase's bounds, monotonic µs, for profile-summary's --from / --to. */
const profiling =
  process.execArgv.some((a) => a.startsWith('--cpu-prof')) || process.argv.includes('--phases');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50).toFixed(3)} ms, p99 ${percentile(sorted, 99).toFixed(3)} ms, max ${sorted.at(-1)!.toFixed(3)} ms`;
}

function customRules(userId: string, i: number): UserPushRules {
  let user = EMPTY_USER_PUSH_RULES;
  const steps = [
    (u: UserPushRules) =>
      putUserRule(u, 'override', `mute-${i}`, {
        actions: [],
        conditions: [{ kind: 'event_match', key: 'room_id', pattern: `!other${i}:bench.test` }],
      }),
    (u: UserPushRules) => putUserRule(u, 'content', 'kw', { pattern: `word${i}*`, actions: ['notify'] }),
    (u: UserPushRules) => putUserRule(u, 'sender', `@spam${i}:bench.test`, { actions: [] }),
  ];
  for (const step of steps) {
    const verdict = step(user);
    if (verdict.ok) user = verdict.value;
  }
  void userId;
  return user;
}

function pureEvaluation(): void {
  const users = Array.from({ length: MEMBERS }, (_, i) => `@u${i}:bench.test`);
  let start = performance.now();
  const compiled = users.map(
    (userId, i) =>
      new CompiledPushRules(
        effectivePushRules(userId, i % 10 === 0 ? customRules(userId, i) : EMPTY_USER_PUSH_RULES),
      ),
  );
  const compileMs = performance.now() - start;
  const events: JsonObject[] = [
    { type: 'm.room.message', content: { msgtype: 'm.text', body: 'hello everyone, word5 here' } },
    {
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'hi @u7', 'm.mentions': { user_ids: ['@u7:bench.test'] } },
    },
    {
      type: 'm.reaction',
      content: { 'm.relates_to': { rel_type: 'm.annotation', event_id: '$x', key: '👍' } },
    },
    { type: 'm.room.encrypted', content: { algorithm: 'm.megolm.v1.aes-sha2', ciphertext: 'AAAA' } },
  ];
  const samples: number[] = [];
  let notified = 0;
  for (let round = 0; round < 200; round++) {
    const event = events[round % events.length]!;
    start = performance.now();
    const view = new PushEventView({
      event: { ...event, room_id: ROOM, sender: '@sender:bench.test', event_id: `$e${round}` },
      roomMemberCount: MEMBERS,
      senderMayNotify: () => false,
    });
    for (let i = 0; i < compiled.length; i++) {
      if (compiled[i]!.evaluate(view, { displayName: `User ${i}` })?.notify) notified++;
    }
    samples.push(performance.now() - start);
  }
  console.log(`1. evaluation alone, ${MEMBERS} members per event (200 events, 4 kinds):`);
  console.log(
    `   compile ${MEMBERS} rule sets: ${compileMs.toFixed(1)} ms; per event: ${summary(samples.slice(20))}`,
  );
  console.log(`   (${notified} notifications produced)`);
}

async function withServer<T>(
  configure: (config: ReturnType<typeof defaultConfig>) => void,
  work: (hs: Awaited<ReturnType<typeof createHomeserver>>) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'myelin-push-bench-'));
  const config = defaultConfig({ server_name: 'bench.test', data_dir: dir, port: 0 });
  config.listeners = [{ ...config.listeners[0]!, port: 0, bind_addresses: ['127.0.0.1'] }];
  configure(config);
  const hs = await createHomeserver(config, { logger: pino({ level: 'error' }) });
  try {
    return await work(hs);
  } finally {
    await hs.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function roomWithMembers(
  hs: Awaited<ReturnType<typeof createHomeserver>>,
  count: number,
): Promise<{ roomId: string; members: string[] }> {
  const { rooms, storage } = hs.context;
  const sender = '@sender:bench.test';
  const members = Array.from({ length: count }, (_, i) => `@m${i}:bench.test`);
  for (const userId of [sender, ...members])
    await storage.accounts.createAccount({ userId, passwordHash: 'x', createdTs: Date.now() });
  const { roomId } = await rooms.createRoom(sender, { preset: 'public_chat', name: 'Bench' });
  await Promise.all(members.map((userId) => rooms.membership.join(roomId, userId)));
  return { roomId, members };
}

async function serverEvaluation(): Promise<void> {
  await withServer(
    () => {},
    async (hs) => {
      const { roomId } = await roomWithMembers(hs, MEMBERS);
      const { rooms, push } = hs.context;
      await push.idle();
      const samples: number[] = [];
      const cpuSamples: number[] = [];
      for (let i = 0; i < 60; i++) {
        const content: JsonObject =
          i % 3 === 0
            ? { msgtype: 'm.text', body: `hi @m${i}`, 'm.mentions': { user_ids: [`@m${i}:bench.test`] } }
            : { msgtype: 'm.text', body: `message ${i}` };
        await rooms.sender.sendEvent({
          roomId,
          sender: '@sender:bench.test',
          type: 'm.room.message',
          content,
        });
        const start = performance.now();
        const cpu = process.cpuUsage();
        await push.idle();
        samples.push(performance.now() - start);
        const used = process.cpuUsage(cpu);
        cpuSamples.push((used.user + used.system) / 1000);
      }
      console.log(
        `2. server evaluation of one event, ${MEMBERS} local members (rules cached, until its notifications count):`,
      );
      console.log(`   after the send returned, until counted: ${summary(samples.slice(10))}`);
      console.log(`   process CPU time in that span: ${summary(cpuSamples.slice(10))}`);
    },
  );
}

/** The push gateway runs in a child process: its own HTTP work stays off the measured server's loop. */
async function startGateway(): Promise<{ url: string; requests: () => Promise<number>; stop: () => void }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `let n = 0;
       const server = require('node:http').createServer((req, res) => {
         req.resume();
         req.on('end', () => { n++; res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"rejected":[]}'); });
       });
       server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
       process.on('message', () => process.send({ requests: n }));`,
    ],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const port = await new Promise<number>((resolve) =>
    child.once('message', (message) => resolve((message as { port: number }).port)),
  );
  if (GATEWAY_NICE !== 0) setPriority(child.pid!, GATEWAY_NICE);
  // Every thread of the gateway process, V8's helpers included.
  if (GATEWAY_IDLE) execFileSync('chrt', ['--idle', '--all-tasks', '--pid', '0', String(child.pid)]);
  return {
    url: `http://127.0.0.1:${port}/_matrix/push/v1/notify`,
    requests: () =>
      new Promise((resolve) => {
        child.once('message', (message) => resolve((message as { requests: number }).requests));
        child.send('count');
      }),
    stop: () => child.kill(),
  };
}

/**
 * CPU time of this (the main) thread so far, in ms: unlike latency, it hardly depends on what
 * else runs on the machine. Linux only (10 ms ticks, fine over hundreds of sends); NaN elsewhere.
 */
function mainThreadCpuMs(): number {
  try {
    const fields = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/**
 * The main thread's scheduler figures so far (Linux /proc schedstat): ms run on a CPU and
 * ms spent runnable but waiting for one; undefined elsewhere.
 */
function mainThreadSchedule(): { runMs: number; waitMs: number } | undefined {
  try {
    const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
    return { runMs: run! / 1e6, waitMs: wait! / 1e6 };
  } catch {
    return undefined;
  }
}

/** This process's threads by scheduling policy (Linux /proc: stat field 41), e.g. "normal 11, idle 1". */
function threadPolicies(): string {
  const names: Record<string, string> = { '0': 'normal', '3': 'batch', '5': 'idle' };
  const counts = new Map<string, number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      const policy = names[fields[38]!] ?? `policy ${fields[38]}`;
      counts.set(policy, (counts.get(policy) ?? 0) + 1);
    }
  } catch {
    return 'unknown';
  }
  return [...counts].map(([policy, count]) => `${policy} ${count}`).join(', ');
}

/**
 * CPU run time so far (ms, /proc schedstat) of this process's threads: the main thread, the
 * delivery worker (the thread at SCHED_IDLE or with a positive nice value) and the others
 * (V8's helpers for GC and compilation, libuv's pool, SQLite's checkpointer); undefined off Linux.
 */
function threadRunTimes(): { main: number; delivery: number; others: number } | undefined {
  try {
    const times = { main: 0, delivery: 0, others: 0 };
    for (const tid of readdirSync('/proc/self/task')) {
      const runMs = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      if (Number(tid) === process.pid) times.main += runMs;
      else if (fields[38] === '5' || Number(fields[16]) > 0) times.delivery += runMs;
      else times.others += runMs;
    }
    return times;
  } catch {
    return undefined;
  }
}

/** One phase of scenario 3: latency samples and per-send figures. */
interface Phase {
  samples: number[];
  drainMs: number;
  sendingDeliveryMsPerSend: number;
  sendingOthersMsPerSend: number;
  busyMsPerSend: number;
  cpuMsPerSend: number;
  mainMsPerSend: number;
  deliveryMsPerSend: number;
  othersMsPerSend: number;
  mainCpuMsPerSend: number;
  sendingCpuMsPerSend: number;
  sendingRunMsPerSend: number;
  sendingWaitMsPerSend: number;
}

/** Rounds of one phase: samples together, every per-send figure (and the drain time) averaged. */
function pooled(phases: Phase[]): Phase {
  const mean = (key: Exclude<keyof Phase, 'samples'>) =>
    phases.reduce((sum, phase) => sum + phase[key], 0) / phases.length;
  const figures = Object.fromEntries(
    (Object.keys(phases[0]!) as (keyof Phase)[])
      .filter((key) => key !== 'samples')
      .map((key) => [key, mean(key as Exclude<keyof Phase, 'samples'>)]),
  );
  return { ...(figures as Omit<Phase, 'samples'>), samples: phases.flatMap((phase) => phase.samples) };
}

async function sendLatency(): Promise<void> {
  const gateway = await startGateway();
  try {
    await withServer(
      (config) => {
        config.push.allow_private_gateways = true;
        if (MAX_HOLD_MS !== undefined) config.push.delivery_max_hold_ms = MAX_HOLD_MS;
      },
      async (hs) => {
        const { roomId, members } = await roomWithMembers(hs, 100);
        const { rooms, push } = hs.context;
        /**
         * Some sends, then quiet: what starts once (the delivery worker, its first
         * gateway connections, users looked up) is not counted per send. --cold: no warm-up.
         */
        const warmUp = async () => {
          if (process.argv.includes('--cold')) return;
          // Enough for the worker's hot paths to be compiled (5,000 pushes), which otherwise runs within the phase.
          for (let i = 0; i < 50; i++) {
            await rooms.sender.sendEvent({
              roomId,
              sender: '@sender:bench.test',
              type: 'm.room.message',
              content: { msgtype: 'm.text', body: `warm-up ${i}` },
            });
          }
          await push.idle();
        };
        const run = async () => {
          await warmUp();
          const samples: number[] = [];
          const fromMicros = monotonicMicros();
          const loopBefore = performance.eventLoopUtilization();
          const cpuBefore = process.cpuUsage();
          const threadsBefore = threadRunTimes();
          const threadBefore = mainThreadCpuMs();
          const scheduleBefore = mainThreadSchedule();
          for (let i = 0; i < SENDS; i++) {
            const start = performance.now();
            await rooms.sender.sendEvent({
              roomId,
              sender: '@sender:bench.test',
              type: 'm.room.message',
              content: { msgtype: 'm.text', body: `m ${i}` },
            });
            samples.push(performance.now() - start);
          }
          const sendingCpu = mainThreadCpuMs() - threadBefore;
          const scheduleAfter = mainThreadSchedule();
          const threadsSent = threadRunTimes();
          const sentMicros = monotonicMicros();
          await push.idle();
          // How long delivery went on after the last send (it holds requests while sends go on).
          const drainMs = (monotonicMicros() - sentMicros) / 1000;
          if (profiling) {
            console.log(
              `   (profile: sends --from=${fromMicros} --to=${sentMicros}, until idle --to=${monotonicMicros()})`,
            );
          }
          // Main-thread busy time over the run, deliveries' completion included.
          const loop = performance.eventLoopUtilization(loopBefore);
          // The whole server process: the main thread, the delivery worker and SQLite.
          const cpu = process.cpuUsage(cpuBefore);
          const threadsAfter = threadRunTimes();
          const threadMsPerSend = (name: 'main' | 'delivery' | 'others', to = threadsAfter) =>
            to === undefined ? Number.NaN : (to[name] - threadsBefore![name]) / SENDS;
          return {
            samples: samples.slice(20),
            drainMs,
            sendingDeliveryMsPerSend: threadMsPerSend('delivery', threadsSent),
            sendingOthersMsPerSend: threadMsPerSend('others', threadsSent),
            busyMsPerSend: loop.active / SENDS,
            cpuMsPerSend: (cpu.user + cpu.system) / 1000 / SENDS,
            mainMsPerSend: threadMsPerSend('main'),
            deliveryMsPerSend: threadMsPerSend('delivery'),
            othersMsPerSend: threadMsPerSend('others'),
            mainCpuMsPerSend: (mainThreadCpuMs() - threadBefore) / SENDS,
            sendingCpuMsPerSend: sendingCpu / SENDS,
            sendingRunMsPerSend:
              scheduleAfter === undefined
                ? Number.NaN
                : (scheduleAfter.runMs - scheduleBefore!.runMs) / SENDS,
            sendingWaitMsPerSend:
              scheduleAfter === undefined
                ? Number.NaN
                : (scheduleAfter.waitMs - scheduleBefore!.waitMs) / SENDS,
          };
        };
        const setPushers = async (on: boolean) => {
          for (const [i, userId] of members.entries()) {
            await push.setPusher(
              userId,
              null,
              on
                ? {
                    kind: 'http',
                    appId: 'bench',
                    pushkey: `key${i}`,
                    appDisplayName: 'Bench',
                    deviceDisplayName: 'Device',
                    lang: 'en',
                    data: { url: gateway.url },
                  }
                : { kind: null, appId: 'bench', pushkey: `key${i}` },
            );
          }
        };
        await push.idle();
        // --rounds=N: N pairs of phases, without then with, their samples pooled (external load hits both alike).
        const rounds: { without: Phase; withPushers: Phase }[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          if (round > 0) await setPushers(false);
          const without = await run();
          await setPushers(true);
          rounds.push({ without, withPushers: await run() });
        }
        const without = pooled(rounds.map((r) => r.without));
        const withPushers = pooled(rounds.map((r) => r.withPushers));
        // Fewer arrive when delivery fell more than MAX_PENDING_PUSHES behind and dropped some (long runs).
        const pushesExpected = ROUNDS * (SENDS + (process.argv.includes('--cold') ? 0 : 50)) * members.length;
        console.log(
          `3. send latency, room of 100 members, ${SENDS} sequential sends each${ROUNDS === 1 ? '' : ` (${ROUNDS} rounds pooled)`}${GATEWAY_NICE === 0 ? '' : ` (gateway process at nice ${GATEWAY_NICE})`}${GATEWAY_IDLE ? ' (gateway process at SCHED_IDLE)' : ''}:`,
        );
        console.log(
          `   without pushers:   ${summary(without.samples)}; main thread busy ${without.busyMsPerSend.toFixed(2)} ms, main thread CPU ${without.mainCpuMsPerSend.toFixed(2)} ms (${without.sendingCpuMsPerSend.toFixed(2)} while sending), server CPU ${without.cpuMsPerSend.toFixed(2)} ms per send`,
        );
        console.log(
          `   with 100 pushers:  ${summary(withPushers.samples)}; main thread busy ${withPushers.busyMsPerSend.toFixed(2)} ms, main thread CPU ${withPushers.mainCpuMsPerSend.toFixed(2)} ms (${withPushers.sendingCpuMsPerSend.toFixed(2)} while sending), server CPU ${withPushers.cpuMsPerSend.toFixed(2)} ms per send (${await gateway.requests()} gateway requests of ${pushesExpected})`,
        );
        for (const [name, phase] of [
          ['without', without],
          ['with', withPushers],
        ] as const) {
          console.log(
            `   while sending, ${name} pushers: main thread ran ${phase.sendingRunMsPerSend.toFixed(3)} ms and waited for a CPU ${phase.sendingWaitMsPerSend.toFixed(3)} ms per send; delivery worker ${phase.sendingDeliveryMsPerSend.toFixed(3)}, other threads ${phase.sendingOthersMsPerSend.toFixed(3)} ms per send; delivery done ${phase.drainMs.toFixed(0)} ms after the last send`,
          );
        }
        const byThread = (phase: Phase) =>
          `main ${phase.mainMsPerSend.toFixed(2)}, delivery worker ${phase.deliveryMsPerSend.toFixed(2)}, other threads ${phase.othersMsPerSend.toFixed(2)}`;
        console.log(
          `   run time per send by thread (until idle), without: ${byThread(without)}; with: ${byThread(withPushers)} ms`,
        );
        console.log(`   server threads by scheduling policy: ${threadPolicies()}`);
      },
    );
  } finally {
    gateway.stop();
  }
}

/**
 * 4. After a burst of sends, how long a sync waits for its unread counts: what
 *    PushService.unreadCounts (sync's and sliding sync's call) takes for a member when
 *    the burst's last send returns, i.e. the push evaluation backlog it waits behind.
 */
async function countsAfterBurst(): Promise<void> {
  await withServer(
    () => {},
    async (hs) => {
      const { roomId, members } = await roomWithMembers(hs, 100);
      const { rooms, push } = hs.context;
      await push.idle();
      const waits: number[] = [];
      const BURST = 200;
      for (let round = 0; round < 5; round++) {
        const sent = await Promise.all(
          Array.from({ length: BURST }, (_, i) =>
            rooms.sender.sendEvent({
              roomId,
              sender: '@sender:bench.test',
              type: 'm.room.message',
              content: { msgtype: 'm.text', body: `burst ${round} ${i}` },
            }),
          ),
        );
        const upTo = Math.max(...sent.map((event) => event.streamOrdering));
        const start = performance.now();
        const counts = await push.unreadCounts(members[round]!, [roomId], upTo);
        waits.push(performance.now() - start);
        if (counts.get(roomId)?.notificationCount !== BURST * (round + 1))
          console.log(`   (round ${round}: count ${counts.get(roomId)?.notificationCount}, not yet exact)`);
        await push.idle();
      }
      console.log(
        `4. unread counts right after a burst of ${BURST} concurrent sends (100 members), 5 rounds:`,
      );
      console.log(`   wait: ${waits.map((ms) => ms.toFixed(1)).join(', ')} ms`);
    },
  );
}

console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
const only = arg('only', 0);
if (only === 0 || only === 1) pureEvaluation();
if (only === 0 || only === 2) await serverEvaluation();
if (only === 0 || only === 3) await sendLatency();
if (only === 0 || only === 4) await countsAfterBurst();
console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
