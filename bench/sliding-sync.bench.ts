/**
 * Sliding sync figures (issue #10), over HTTP:
 *  - first response of a new connection for a user in 1,000 rooms (a few messages
 *    each) with a 20-room window, timeline_limit 1 and Element X's required_state
 *    (target <= 150 ms); the very first one (every cache cold) apart, after one
 *    GET /versions as a client makes first;
 *  - wake latency: 100 users, each with a sliding sync request waiting; one message
 *    in a room they all share wakes them all; time from the send to each answer,
 *    p50/p99 over several rounds (target p99 <= 50 ms). Measured three ways: the server
 *    forked into its own process (bench/load's server process) with the 100 clients in
 *    this one over keep-alive HTTP, the message sent over HTTP too (the figure that
 *    counts); then server and clients in this one process (the clients steal the
 *    server's event loop); then in-process without HTTP (the server's share alone).
 * Prints figures and the load average, asserts nothing.
 * Run: node --import tsx bench/sliding-sync.bench.ts [rooms] [users] [--profile=DIR] [--rounds=N] [--only=forked|in-process]
 * (`--profile=DIR`: the forked server runs its source under --cpu-prof, profile written into DIR;
 * `--rounds=N`: wake rounds, 20 by default; `--only=`: one of the two wake set-ups.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { defaultConfig } from '../server/config/index.js';
import type { HomeserverContext } from '../server/context.js';
import { createHomeserver, type Homeserver } from '../server/homeserver.js';
import { parseSlidingSyncRequest } from '../server/sliding-sync/request.js';
import { KeepAliveClient, sendPath } from './load/http-client.js';
import { monotonicMicros } from './load/report.js';
import { ServerHandle } from './load/server-handle.js';

const SLIDING = '/_matrix/client/unstable/org.matrix.simplified_msc3575/sync';
const MESSAGES_PER_ROOM = 5;
const RUNS = 9;
const DEFAULT_WAKE_ROUNDS = 20;
let WAKE_ROUNDS = DEFAULT_WAKE_ROUNDS;

const ELEMENT_X_LIST = {
  ranges: [[0, 19]],
  timeline_limit: 1,
  required_state: [
    ['m.room.encryption', ''],
    ['m.room.member', '$LAZY'],
    ['m.room.member', '$ME'],
    ['m.room.name', ''],
    ['m.room.avatar', ''],
    ['m.room.canonical_alias', ''],
    ['m.room.power_levels', ''],
    ['m.room.create', ''],
    ['m.room.topic', ''],
    ['m.room.join_rules', ''],
    ['m.room.history_visibility', ''],
  ],
  filters: { not_room_types: ['m.space'] },
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const profileDir = args.find((arg) => arg.startsWith('--profile='))?.slice('--profile='.length);
  const [rooms = 1000, users = 100] = args.filter((arg) => !arg.startsWith('--')).map(Number);
  const rounds = args.find((arg) => arg.startsWith('--rounds='))?.slice('--rounds='.length);
  if (rounds !== undefined) WAKE_ROUNDS = Number(rounds);
  const only = args.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
  console.log(`load average at start (1/5/15 min): ${loadAverage()}`);
  if (rooms > 0) await firstResponseBench(rooms);
  if (users > 0) {
    if (only !== 'in-process') await forkedWakeBench(users, profileDir);
    if (only !== 'forked') await wakeBench(users);
  }
  console.log(`load average at end (1/5/15 min): ${loadAverage()}`);
}

function loadAverage(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
}

/**
 * The wake figure with the server alone in its process, as in production: the set-up
 * goes over IPC, the 100 waiting clients (one keep-alive connection each) and the
 * sender's PUT /send over HTTP from this process.
 */
async function forkedWakeBench(userCount: number, profileDir: string | undefined): Promise<void> {
  const server = await ServerHandle.start(
    profileDir === undefined ? {} : { cpuProfileDir: profileDir, fromSource: true },
  );
  const clients: KeepAliveClient[] = [];
  try {
    const [sender] = await server.users('sender', 1);
    const users = await server.users('user', userCount);
    // Each user is in a few rooms of their own too, so the waits are not all alike.
    for (const user of users) {
      await server.request({ op: 'fill', userId: user.userId, rooms: 5, messages: 1 });
    }
    const roomId = await server.room(
      sender!.userId,
      users.map((user) => user.userId),
    );
    await server.request({ op: 'push-idle' });
    const senderClient = new KeepAliveClient(server.port);
    clients.push(senderClient);
    const userClients = users.map(() => new KeepAliveClient(server.port));
    clients.push(...userClients);
    const body = { conn_id: 'bench', lists: { all_rooms: ELEMENT_X_LIST } };
    const sync = async (i: number, query: string) => {
      const answer = await userClients[i]!.call('POST', `${SLIDING}${query}`, users[i]!.accessToken, body);
      if (answer.status !== 200) throw new Error(`sliding sync answered ${answer.status}`);
      return answer.body as { pos: string; rooms: Record<string, unknown> };
    };
    const positions = await Promise.all(users.map(async (_, i) => (await sync(i, '')).pos));

    const latencies: number[] = [];
    const roundsFrom = monotonicMicros();
    const cpuFrom = await server.cpuMicros();
    const gcFrom = await server.gc();
    for (let round = 0; round < WAKE_ROUNDS; round++) {
      let sentAt = 0;
      const waits = users.map(async (_, i) => {
        const response = await sync(i, `?pos=${positions[i]}&timeout=30000`);
        latencies.push(performance.now() - sentAt);
        positions[i] = response.pos;
        if (response.rooms[roomId] === undefined) throw new Error('woken without the room');
      });
      // Let every request reach its wait.
      while ((await server.request({ op: 'waiting' })).count < userCount) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      sentAt = performance.now();
      const sent = await senderClient.call('PUT', sendPath(roomId, `round-${round}`), sender!.accessToken, {
        msgtype: 'm.text',
        body: `round ${round}`,
      });
      if (sent.status !== 200) throw new Error(`send answered ${sent.status}`);
      await Promise.all(waits);
    }
    const cpuMicros = (await server.cpuMicros()) - cpuFrom;
    const cpuPerWake = cpuMicros / (WAKE_ROUNDS * userCount);
    const gcTo = await server.gc();
    const minorMs = gcTo.minorMs - gcFrom.minorMs;
    const majorMs = gcTo.majorMs - gcFrom.majorMs;
    console.log(
      `sliding sync wake, server in its own process, ${userCount} waiting HTTP clients in this one, ` +
        `one message (PUT /send) in a shared room, ${WAKE_ROUNDS} rounds:\n` +
        `  send -> answer p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, ` +
        `max ${Math.max(...latencies).toFixed(1)} ms (load average ${loadAverage()})\n` +
        // Holds up better than latency on a shared machine: compare code versions by it.
        `  server CPU per woken connection (its answer and its next request) ${(cpuPerWake / 1000).toFixed(2)} ms\n` +
        // Pauses are wall time: on a busy machine they include time the process was not running.
        `  GC over the rounds: ${gcTo.minor - gcFrom.minor} scavenges (${minorMs.toFixed(0)} ms), ` +
        `${gcTo.major - gcFrom.major} mark-compacts (${majorMs.toFixed(0)} ms); ` +
        `pauses ${((minorMs + majorMs) / (WAKE_ROUNDS * userCount)).toFixed(3)} ms per woken connection`,
    );
    if (profileDir !== undefined) {
      console.log(`  wake rounds in the server's profile: --from=${roundsFrom} --to=${monotonicMicros()}`);
    }
  } finally {
    for (const client of clients) client.close();
    await server.stop();
  }
}

async function boot(): Promise<{ homeserver: Homeserver; port: number; dataDir: string }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'myelin-sliding-bench-'));
  const config = defaultConfig({ server_name: 'bench.test', data_dir: dataDir, port: 0 });
  config.listeners = [{ ...config.listeners[0]!, port: 0, bind_addresses: ['127.0.0.1'] }];
  config.password_hashing.scrypt_log_n = 10;
  config.rate_limits.enabled = false;
  const homeserver = await createHomeserver(config, { logger: pino({ level: 'silent' }) });
  const { ports } = await homeserver.start();
  return { homeserver, port: ports[0]!, dataDir };
}

async function userWithToken(
  hs: HomeserverContext,
  localpart: string,
): Promise<{ userId: string; token: string; deviceId: string }> {
  const userId = `@${localpart}:bench.test`;
  await hs.storage.accounts.createAccount({ userId, passwordHash: null, createdTs: Date.now() });
  const session = await hs.sessions.createLoginSession({ userId, withRefreshToken: false });
  return { userId, token: session.access_token, deviceId: session.device_id };
}

async function slidingSync(
  port: number,
  token: string,
  body: unknown,
  query = '',
): Promise<{ pos: string; rooms: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${SLIDING}${query}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`sliding sync answered ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as { pos: string; rooms: Record<string, unknown> };
}

async function firstResponseBench(roomCount: number): Promise<void> {
  const { homeserver, port, dataDir } = await boot();
  const hs = homeserver.context;
  try {
    const alice = await userWithToken(hs, 'alice');
    const bob = await userWithToken(hs, 'bob');
    const setupStart = performance.now();
    const BATCH = 50;
    for (let start = 0; start < roomCount; start += BATCH) {
      await Promise.all(
        Array.from({ length: Math.min(BATCH, roomCount - start) }, async (_, i) => {
          const { roomId } = await hs.rooms.createRoom(alice.userId, {
            preset: 'public_chat',
            name: `Room ${start + i}`,
          });
          await hs.rooms.membership.join(roomId, bob.userId);
          for (let m = 0; m < MESSAGES_PER_ROOM; m++) {
            await hs.rooms.sender.sendEvent({
              roomId,
              sender: m % 2 === 0 ? alice.userId : bob.userId,
              type: 'm.room.message',
              content: { msgtype: 'm.text', body: `message ${m} in room ${start + i}` },
            });
          }
        }),
      );
    }
    const setupMs = performance.now() - setupStart;
    // The first sliding sync waits (up to 2 s) for the push evaluator to reach the newest
    // event: let it work through the set-up's 5,000 messages first, as a server at rest would.
    await hs.push.idle();

    const measure = async (serverPort: number): Promise<{ times: number[]; firstCpuMs: number }> => {
      // As a client does first (Element X asks /versions before anything else): this loads the
      // bench's HTTP client (fetch, in this very process) and runs the server's HTTP stack
      // once, whose one-off costs are not sliding sync's.
      await fetch(`http://127.0.0.1:${serverPort}/_matrix/client/versions`).then((res) => res.text());
      const times: number[] = [];
      let firstCpuMs = 0;
      for (let run = 0; run < RUNS; run++) {
        const cpuFrom = process.cpuUsage();
        const started = performance.now();
        const response = await slidingSync(serverPort, alice.token, {
          conn_id: `run-${run}`,
          lists: { all_rooms: ELEMENT_X_LIST },
          extensions: {
            to_device: { enabled: true },
            e2ee: { enabled: true },
            account_data: { enabled: true },
          },
        });
        times.push(performance.now() - started);
        if (run === 0) {
          const cpu = process.cpuUsage(cpuFrom);
          firstCpuMs = (cpu.user + cpu.system) / 1000;
        }
        const sent = Object.keys(response.rooms).length;
        if (sent !== 20) throw new Error(`expected 20 rooms, got ${sent}`);
      }
      return { times, firstCpuMs };
    };
    const warm = await measure(port);
    await homeserver.stop();
    // After a restart nothing is cached: bump stamps, memberships, state are read from storage.
    const restarted = await createHomeserver(homeserver.context.config, {
      logger: pino({ level: 'silent' }),
    });
    const { ports } = await restarted.start();
    let cold: { times: number[]; firstCpuMs: number };
    try {
      cold = await measure(ports[0]!);
    } finally {
      await restarted.stop();
    }
    // The process's CPU over the first call (server and this client, as they share it): it
    // holds up better than its latency on a busy machine, though it counts background work too.
    const line = ({ times, firstCpuMs }: { times: number[]; firstCpuMs: number }) =>
      `first ${times[0]!.toFixed(1)} ms (CPU ${firstCpuMs.toFixed(1)} ms), then median ${percentile(times.slice(1), 50).toFixed(1)} ms, ` +
      `max ${Math.max(...times.slice(1)).toFixed(1)} ms`;
    console.log(
      `sliding sync first response (new connection), ${roomCount} rooms x ${MESSAGES_PER_ROOM} messages, ` +
        `window [0,19] (setup ${(setupMs / 1000).toFixed(1)} s):\n` +
        `  same process as the set-up: ${line(warm)}\n` +
        `  after a restart:            ${line(cold)}`,
    );
  } finally {
    await homeserver.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function wakeBench(userCount: number): Promise<void> {
  const { homeserver, port, dataDir } = await boot();
  const hs = homeserver.context;
  try {
    const sender = await userWithToken(hs, 'sender');
    const { roomId } = await hs.rooms.createRoom(sender.userId, { preset: 'public_chat' });
    const users = await Promise.all(
      Array.from({ length: userCount }, async (_, i) => {
        const user = await userWithToken(hs, `user${i}`);
        // Each user is in a few rooms of their own too, so the waits are not all alike.
        for (let r = 0; r < 5; r++) {
          const own = await hs.rooms.createRoom(user.userId, { preset: 'private_chat' });
          await hs.rooms.sender.sendEvent({
            roomId: own.roomId,
            sender: user.userId,
            type: 'm.room.message',
            content: { msgtype: 'm.text', body: 'own room' },
          });
        }
        await hs.rooms.membership.join(roomId, user.userId);
        return user;
      }),
    );
    const body = { conn_id: 'bench', lists: { all_rooms: ELEMENT_X_LIST } };
    const positions = await Promise.all(
      users.map(async (user) => (await slidingSync(port, user.token, body)).pos),
    );

    const latencies: number[] = [];
    for (let round = 0; round < WAKE_ROUNDS; round++) {
      let sentAt = 0;
      const waits = users.map(async (user, i) => {
        const response = await slidingSync(port, user.token, body, `?pos=${positions[i]}&timeout=30000`);
        latencies.push(performance.now() - sentAt);
        positions[i] = response.pos;
        if (response.rooms[roomId] === undefined) throw new Error('woken without the room');
      });
      // Let every request reach its wait.
      while (hs.notifier.waiting < userCount) await new Promise((resolve) => setTimeout(resolve, 5));
      sentAt = performance.now();
      await hs.rooms.sender.sendEvent({
        roomId,
        sender: sender.userId,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: `round ${round}` },
      });
      await Promise.all(waits);
    }
    // The same without HTTP: hs.slidingSync.sync called directly (the server's share alone).
    const inProcess: number[] = [];
    const parsed = (pos: string) => parseSlidingSyncRequest(body, { pos, timeout: 30_000 });
    const cpuFrom = process.cpuUsage();
    for (let round = 0; round < WAKE_ROUNDS; round++) {
      let sentAt = 0;
      const waits = users.map(async (_, i) => {
        const response = await hs.slidingSync.sync(
          users[i]!,
          parsed(positions[i]!),
          new AbortController().signal,
        );
        inProcess.push(performance.now() - sentAt);
        positions[i] = response.pos as string;
      });
      while (hs.notifier.waiting < userCount) await new Promise((resolve) => setTimeout(resolve, 5));
      sentAt = performance.now();
      await hs.rooms.sender.sendEvent({
        roomId,
        sender: sender.userId,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: `in-process round ${round}` },
      });
      await Promise.all(waits);
    }
    const cpu = process.cpuUsage(cpuFrom);
    const cpuPerWake = (cpu.user + cpu.system) / (WAKE_ROUNDS * userCount);
    console.log(
      `sliding sync wake, ${userCount} waiting users in the server's process, one message in a shared room, ${WAKE_ROUNDS} rounds:\n` +
        `  clients in the server's process: send -> answer p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, ` +
        `max ${Math.max(...latencies).toFixed(1)} ms\n` +
        `  in-process (no HTTP) p50 ${percentile(inProcess, 50).toFixed(1)} ms, p99 ${percentile(inProcess, 99).toFixed(1)} ms, ` +
        `CPU per woken connection (answer and next call) ${(cpuPerWake / 1000).toFixed(3)} ms`,
    );
  } finally {
    await homeserver.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

await main();
