/**
 * Send-to-delivery latency over the WebSocket (issue #4: with 1,000 WebSocket
 * clients in the room, p50 <= 20 ms, p99 <= 100 ms; nothing lost or duplicated).
 * This process runs a Myelin, makes the users and one room they all join; a
 * child process holds one WebSocket per user with a running sync stream
 * (lazy-loaded members, short timelines). Then this process sends messages over
 * HTTP, one every 50 ms, each carrying its send time; the child notes when each
 * socket receives each message. Prints p50/p90/p99/max and lost/duplicated counts.
 * Run: node --import tsx bench/ws-latency.ts [clients] [messages]
 */
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import WebSocket from 'ws';
import { defaultConfig } from '../server/config/index.js';
import { createHomeserver } from '../server/homeserver.js';

const CLIENTS = Number(process.argv[2]) || 1000;
const MESSAGES = Number(process.argv[3]) || 100;
const WS_PATH = '/_matrix/client/unstable/io.myelin/ws';
const FILTER = {
  room: { state: { lazy_load_members: true }, timeline: { limit: 5 } },
  presence: { types: [] },
};

const now = () => performance.timeOrigin + performance.now();

interface Job {
  url: string;
  tokens: string[];
  roomId: string;
  messages: number;
}

async function clients(): Promise<void> {
  const job = await new Promise<Job>((resolve) => process.once('message', (m) => resolve(m as Job)));
  const latencies: number[] = [];
  let duplicates = 0;
  const received = new Map<WebSocket, Set<number>>();
  const open = (token: string) =>
    new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(job.url, {
        headers: { Authorization: `Bearer ${token}` },
        perMessageDeflate: false,
      });
      const seen = new Set<number>();
      received.set(socket, seen);
      let synced = false;
      socket.on('error', reject);
      socket.on('message', (data) => {
        const at = now();
        const frame = JSON.parse(String(data)) as { type: string; body?: Record<string, unknown> };
        if (frame.type === 'authenticated') socket.send(JSON.stringify({ type: 'sync', filter: FILTER }));
        if (frame.type !== 'sync') return;
        if (!synced) {
          synced = true;
          resolve();
          return;
        }
        const rooms = frame.body?.rooms as
          | {
              join?: Record<
                string,
                { timeline?: { events?: { type: string; content: { seq?: number; sent_at?: number } }[] } }
              >;
            }
          | undefined;
        for (const event of rooms?.join?.[job.roomId]?.timeline?.events ?? []) {
          const { seq, sent_at: sentAt } = event.content;
          if (event.type !== 'm.room.message' || seq === undefined || sentAt === undefined) continue;
          if (seen.has(seq)) duplicates++;
          seen.add(seq);
          latencies.push(at - sentAt / 1000);
        }
      });
    });
  for (let i = 0; i < job.tokens.length; i += 50) await Promise.all(job.tokens.slice(i, i + 50).map(open));
  process.send!({ ready: true });
  await new Promise((resolve) => process.once('message', resolve));
  // Give the last message time to arrive everywhere.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  let lost = 0;
  for (const seen of received.values()) lost += job.messages - seen.size;
  process.send!({ latencies, lost, duplicates });
  for (const socket of received.keys()) socket.terminate();
  process.exit(0);
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'myelin-bench-ws-latency-'));
  const config = defaultConfig({ server_name: 'bench.example', data_dir: dataDir });
  config.listeners = [{ ...config.listeners[0]!, port: 0, bind_addresses: ['127.0.0.1'] }];
  config.rate_limits.enabled = false;
  const homeserver = await createHomeserver(config, { logger: pino({ level: 'silent' }) });
  const { ports } = await homeserver.start();
  const base = `http://127.0.0.1:${ports[0]}`;
  const context = homeserver.context;
  const api = async (token: string, method: string, apiPath: string, body: unknown) => {
    const res = await fetch(`${base}${apiPath}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status !== 200) throw new Error(`${method} ${apiPath}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };

  const tokens: string[] = [];
  for (let i = 0; i <= CLIENTS; i++) {
    const userId = `@user${i}:bench.example`;
    await context.storage.accounts.createAccount({ userId, passwordHash: null, createdTs: Date.now() });
    tokens.push(
      (await context.sessions.createLoginSession({ userId, withRefreshToken: false })).access_token,
    );
  }
  const [senderToken, ...receiverTokens] = tokens as [string, ...string[]];
  const { room_id: roomId } = (await api(senderToken, 'POST', '/_matrix/client/v3/createRoom', {
    preset: 'public_chat',
  })) as { room_id: string };
  const joinStarted = performance.now();
  for (let i = 0; i < receiverTokens.length; i += 20) {
    await Promise.all(
      receiverTokens
        .slice(i, i + 20)
        .map((token) => api(token, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {})),
    );
  }
  process.stdout.write(`${CLIENTS} users joined in ${Math.round(performance.now() - joinStarted)} ms\n`);

  const child = fork(fileURLToPath(import.meta.url), ['clients'], { execArgv: ['--import', 'tsx'] });
  const fromChild = <T>() => new Promise<T>((resolve) => child.once('message', (m) => resolve(m as T)));
  const ready = fromChild<{ ready: true }>();
  child.send({
    url: `ws://127.0.0.1:${ports[0]}${WS_PATH}`,
    tokens: receiverTokens,
    roomId,
    messages: MESSAGES,
  } satisfies Job);
  await ready;
  process.stdout.write(`${CLIENTS} WebSockets syncing\n`);

  for (let seq = 0; seq < MESSAGES; seq++) {
    await api(
      senderToken,
      'PUT',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/b${seq}`,
      {
        msgtype: 'm.text',
        body: `message ${seq}`,
        seq,
        // Canonical JSON takes integers only: microseconds.
        sent_at: Math.round(now() * 1000),
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const result = fromChild<{ latencies: number[]; lost: number; duplicates: number }>();
  child.send('done');
  const { latencies, lost, duplicates } = await result;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(1);
  process.stdout.write(
    `${MESSAGES} messages x ${CLIENTS} WebSocket clients: ${latencies.length} deliveries, lost ${lost}, duplicated ${duplicates}\n` +
      `send-to-delivery latency ms: p50 ${at(0.5)}, p90 ${at(0.9)}, p99 ${at(0.99)}, max ${latencies.at(-1)!.toFixed(1)}\n`,
  );
  await new Promise((resolve) => child.once('exit', resolve));
  await homeserver.stop();
  await rm(dataDir, { recursive: true, force: true });
}

if (process.argv[2] === 'clients') await clients();
else await main();
