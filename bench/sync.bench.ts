/**
 * Sync figures (issue #4): initial sync of a user in 100 rooms x 20 messages and
 * in 1,000 rooms x 20 messages (targets 60 ms and 600 ms), over HTTP (JSON encode
 * included) and in-process (hs.sync.sync alone); and an incremental sync fan-out:
 * N long-polling syncs in one room woken by one message (time until all answered),
 * over HTTP (the clients share this process, so they slow the server down) and
 * in-process (hs.sync.sync, no HTTP: the server's share alone).
 * Prints figures, asserts nothing. Run: node --import tsx bench/sync.bench.ts [rooms...]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { defaultConfig } from '../server/config/index.js';
import type { HomeserverContext } from '../server/context.js';
import { createHomeserver, type Homeserver } from '../server/homeserver.js';

const MESSAGES_PER_ROOM = 20;
const RUNS = 7;

async function main(): Promise<void> {
  const roomCounts = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => n > 0);
  for (const rooms of roomCounts.length > 0 ? roomCounts : [100, 1000])
    if (rooms > 0) await initialSyncBench(rooms);
  await fanOutBench(200);
  await inProcessFanOutBench(1000);
}

async function boot(): Promise<{ homeserver: Homeserver; port: number; dataDir: string }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'myelin-sync-bench-'));
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

async function initialSyncBench(roomCount: number): Promise<void> {
  const { homeserver, port, dataDir } = await boot();
  const hs = homeserver.context;
  try {
    const alice = await userWithToken(hs, 'alice');
    const bob = await userWithToken(hs, 'bob');
    const setupStart = performance.now();
    const rooms: string[] = [];
    const BATCH = 50;
    for (let start = 0; start < roomCount; start += BATCH) {
      await Promise.all(
        Array.from({ length: Math.min(BATCH, roomCount - start) }, async (_, i) => {
          const created = await hs.rooms.createRoom(alice.userId, {
            preset: 'public_chat',
            name: `Room ${start + i}`,
          });
          await hs.rooms.membership.join(created.roomId, bob.userId);
          for (let m = 0; m < MESSAGES_PER_ROOM; m++) {
            await hs.rooms.sender.sendEvent({
              roomId: created.roomId,
              sender: m % 2 === 0 ? alice.userId : bob.userId,
              type: 'm.room.message',
              content: { msgtype: 'm.text', body: `message ${m} in room ${start + i} 🧠` },
              ...(m % 2 === 0 ? { txn: { deviceId: alice.deviceId, txnId: `r${start + i}m${m}` } } : {}),
            });
          }
          rooms.push(created.roomId);
        }),
      );
    }
    const setupMs = performance.now() - setupStart;

    const httpTimes: number[] = [];
    let bytes = 0;
    for (let run = 0; run < RUNS; run++) {
      const started = performance.now();
      const res = await fetch(`http://127.0.0.1:${port}/_matrix/client/v3/sync`, {
        headers: { Authorization: `Bearer ${alice.token}` },
      });
      const text = await res.text();
      httpTimes.push(performance.now() - started);
      bytes = text.length;
      if (res.status !== 200) throw new Error(`sync answered ${res.status}: ${text.slice(0, 200)}`);
      const joined = Object.keys((JSON.parse(text) as { rooms: { join: object } }).rooms.join).length;
      if (joined !== roomCount) throw new Error(`expected ${roomCount} joined rooms, got ${joined}`);
    }
    const inProcess: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const started = performance.now();
      await hs.sync.sync(
        { userId: alice.userId, deviceId: alice.deviceId },
        { timeoutMs: 0, fullState: false },
        new AbortController().signal,
      );
      inProcess.push(performance.now() - started);
    }
    console.log(
      `initial sync, ${roomCount} rooms x ${MESSAGES_PER_ROOM} messages (setup ${(setupMs / 1000).toFixed(1)} s, ` +
        `${(bytes / 1024).toFixed(0)} KiB):\n` +
        `  HTTP       first ${httpTimes[0]!.toFixed(1)} ms, then median ${median(httpTimes.slice(1)).toFixed(1)} ms\n` +
        `  in-process median ${median(inProcess).toFixed(1)} ms`,
    );
  } finally {
    await homeserver.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** N users long-poll in one room; one message wakes them all: time until the last answer. */
async function fanOutBench(receivers: number): Promise<void> {
  const { homeserver, port, dataDir } = await boot();
  const hs = homeserver.context;
  try {
    const sender = await userWithToken(hs, 'sender');
    const created = await hs.rooms.createRoom(sender.userId, { preset: 'public_chat' });
    const users = [];
    for (let i = 0; i < receivers; i++) {
      const user = await userWithToken(hs, `receiver${i}`);
      await hs.rooms.membership.join(created.roomId, user.userId);
      users.push(user);
    }
    const latencies: number[] = [];
    for (let round = 0; round < 5; round++) {
      const tokens = await Promise.all(
        users.map(async (user) => {
          const res = await fetch(`http://127.0.0.1:${port}/_matrix/client/v3/sync?timeout=0`, {
            headers: { Authorization: `Bearer ${user.token}` },
          });
          return ((await res.json()) as { next_batch: string }).next_batch;
        }),
      );
      // Each client long-polls until it holds the round's message (earlier answers
      // may carry receipts or presence), as a client's sync loop does.
      const polls = users.map(async (user, i) => {
        let token = tokens[i]!;
        for (;;) {
          const res = await fetch(
            `http://127.0.0.1:${port}/_matrix/client/v3/sync?timeout=30000&since=${encodeURIComponent(token)}`,
            { headers: { Authorization: `Bearer ${user.token}` } },
          );
          const text = await res.text();
          if (text.includes(`"round ${round}"`)) return performance.now();
          token = (JSON.parse(text) as { next_batch: string }).next_batch;
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const sentAt = performance.now();
      await hs.rooms.sender.sendEvent({
        roomId: created.roomId,
        sender: sender.userId,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: `round ${round}` },
      });
      const answered = await Promise.all(polls);
      latencies.push(...answered.map((at) => at - sentAt));
    }
    latencies.sort((a, b) => a - b);
    console.log(
      `fan-out: ${receivers} long-polls in one room, one message (5 rounds): ` +
        `p50 ${percentile(latencies, 0.5).toFixed(1)} ms, p99 ${percentile(latencies, 0.99).toFixed(1)} ms, ` +
        `max ${latencies.at(-1)!.toFixed(1)} ms`,
    );
  } finally {
    await homeserver.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** N waiting hs.sync.sync calls in one room; one message wakes them all. */
async function inProcessFanOutBench(receivers: number): Promise<void> {
  const { homeserver, dataDir } = await boot();
  const hs = homeserver.context;
  try {
    const sender = await userWithToken(hs, 'sender');
    const created = await hs.rooms.createRoom(sender.userId, { preset: 'public_chat' });
    const users = [];
    for (let i = 0; i < receivers; i++) {
      const user = await userWithToken(hs, `receiver${i}`);
      await hs.rooms.membership.join(created.roomId, user.userId);
      users.push(user);
    }
    const latencies: number[] = [];
    for (let round = 0; round < 5; round++) {
      const tokens = await Promise.all(
        users.map(
          async (user) =>
            (await hs.sync.sync(user, { timeoutMs: 0, fullState: false }, new AbortController().signal))
              .next_batch as string,
        ),
      );
      const polls = users.map(async (user, i) => {
        let since = tokens[i]!;
        for (;;) {
          const body = await hs.sync.sync(
            user,
            { since, timeoutMs: 30_000, fullState: false },
            new AbortController().signal,
          );
          const text = JSON.stringify(body);
          if (text.includes(`"round ${round}"`)) return performance.now();
          since = body.next_batch as string;
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const sentAt = performance.now();
      await hs.rooms.sender.sendEvent({
        roomId: created.roomId,
        sender: sender.userId,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: `round ${round}` },
      });
      latencies.push(...(await Promise.all(polls)).map((at) => at - sentAt));
    }
    latencies.sort((a, b) => a - b);
    console.log(
      `fan-out in-process: ${receivers} waiting syncs in one room, one message (5 rounds): ` +
        `p50 ${percentile(latencies, 0.5).toFixed(1)} ms, p99 ${percentile(latencies, 0.99).toFixed(1)} ms`,
    );
  } finally {
    await homeserver.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

await main();
