/**
 * Server memory per idle WebSocket (issue #4: <= 30 KB each). This process
 * runs a Myelin and makes 1,000 login sessions; a child process opens one
 * authenticated WebSocket per session (Authorization header on the upgrade)
 * and, when the server offers sync, starts a sync stream on each, then
 * leaves them idle. RSS and V8 heap are read here (after a full GC) before
 * and after, and the difference is divided by the number of sockets.
 * Run: node --expose-gc --import tsx bench/ws-memory.ts [sockets]
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

const SOCKETS = Number(process.argv[3] ?? process.argv[2] ?? 1000) || 1000;
const WS_PATH = '/_matrix/client/unstable/io.myelin/ws';

interface ToClient {
  url: string;
  tokens: string[];
  sync: boolean;
}

/** The child: opens the sockets, waits until each is authenticated (and has its initial sync), then idles. */
async function openSockets(): Promise<void> {
  const job = await new Promise<ToClient>((resolve) =>
    process.once('message', (m) => resolve(m as ToClient)),
  );
  const sockets: WebSocket[] = [];
  const open = (token: string) =>
    new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(job.url, {
        headers: { Authorization: `Bearer ${token}` },
        perMessageDeflate: false,
      });
      sockets.push(socket);
      socket.on('error', reject);
      socket.on('message', (data) => {
        const frame = JSON.parse(String(data)) as { type: string };
        if (frame.type === 'authenticated') {
          if (job.sync) socket.send(JSON.stringify({ type: 'sync' }));
          else resolve();
        } else if (frame.type === 'sync') {
          resolve();
        } else if (frame.type === 'error') {
          reject(new Error(String(data)));
        }
      });
    });
  for (let i = 0; i < job.tokens.length; i += 50) {
    await Promise.all(job.tokens.slice(i, i + 50).map(open));
  }
  process.send!({ ready: sockets.length });
  await new Promise((resolve) => process.once('message', resolve));
  for (const socket of sockets) socket.terminate();
  process.exit(0);
}

function measure(): { rss: number; heapUsed: number; external: number } {
  for (let i = 0; i < 3; i++) globalThis.gc?.();
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external + usage.arrayBuffers };
}

async function main(): Promise<void> {
  if (!globalThis.gc) {
    process.stderr.write('Run with --expose-gc for stable figures.\n');
  }
  const dataDir = await mkdtemp(path.join(tmpdir(), 'myelin-bench-ws-'));
  const config = defaultConfig({ server_name: 'bench.example', data_dir: dataDir });
  config.listeners = [{ ...config.listeners[0]!, port: 0, bind_addresses: ['127.0.0.1'] }];
  config.rate_limits.enabled = false;
  config.password_hashing.scrypt_log_n = 10;
  const homeserver = await createHomeserver(config, { logger: pino({ level: 'silent' }) });
  const { ports } = await homeserver.start();
  const context = homeserver.context;
  const sync = (context as { sync?: unknown }).sync !== undefined;

  const tokens: string[] = [];
  for (let u = 0; u < SOCKETS / 10; u++) {
    const userId = `@user${u}:bench.example`;
    await context.storage.accounts.createAccount({ userId, passwordHash: null, createdTs: Date.now() });
    for (let d = 0; d < 10; d++) {
      tokens.push(
        (await context.sessions.createLoginSession({ userId, withRefreshToken: false })).access_token,
      );
    }
  }

  // Warm the paths (authentication, a first socket) so their one-off allocations are not counted.
  const child = fork(fileURLToPath(import.meta.url), ['client'], { execArgv: ['--import', 'tsx'] });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = measure();
  child.send({ url: `ws://127.0.0.1:${ports[0]}${WS_PATH}`, tokens, sync } satisfies ToClient);
  const ready = await new Promise<number>((resolve) =>
    child.on('message', (m) => resolve((m as { ready: number }).ready)),
  );
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const after = measure();

  const perSocket = (key: keyof typeof before) => (after[key] - before[key]) / ready;
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
  process.stdout.write(
    `${ready} idle authenticated WebSockets${sync ? ' each with a running sync stream' : ' (no sync engine on this server: auth only)'}\n` +
      `  RSS    before ${kb(before.rss)}, after ${kb(after.rss)}: ${kb(perSocket('rss'))} per socket\n` +
      `  heap   before ${kb(before.heapUsed)}, after ${kb(after.heapUsed)}: ${kb(perSocket('heapUsed'))} per socket\n` +
      `  native buffers: ${kb(perSocket('external'))} per socket\n`,
  );
  child.send('done');
  await new Promise((resolve) => child.once('exit', resolve));
  await homeserver.stop();
  await rm(dataDir, { recursive: true, force: true });
}

if (process.argv[2] === 'client') await openSockets();
else await main();
