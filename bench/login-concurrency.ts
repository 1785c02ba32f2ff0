/**
 * Does /login block other requests? A Myelin with the default scrypt cost
 * (N=2^17, r=8, p=1: 128 MiB and a few hundred ms per hash) runs in a child
 * process; this process fires 100 concurrent password logins at it while a
 * second loop measures GET /_matrix/client/versions one request at a time.
 * Prints the /versions latency p50/p99 during the burst and before it.
 * Run: node --import tsx bench/login-concurrency.ts
 */
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { defaultConfig } from '../server/config/index.js';
import { createHomeserver } from '../server/homeserver.js';

const LOGINS = 100;
const PASSWORD = 'a password of decent length';

async function serve(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'myelin-bench-login-'));
  const config = defaultConfig({ server_name: 'bench.example', data_dir: dataDir });
  config.listeners = [{ ...config.listeners[0]!, port: 0, bind_addresses: ['127.0.0.1'] }];
  config.rate_limits.enabled = false;
  const homeserver = await createHomeserver(config, { logger: pino({ level: 'silent' }) });
  const { ports } = await homeserver.start();
  const context = homeserver.context;
  await context.storage.accounts.createAccount({
    userId: '@bench:bench.example',
    passwordHash: await context.passwords.hash(PASSWORD),
    createdTs: Date.now(),
  });
  process.send?.({ port: ports[0], scrypt: config.password_hashing });
  process.on('message', async () => {
    await homeserver.stop();
    await rm(dataDir, { recursive: true, force: true });
    process.exit(0);
  });
}

function percentiles(samples: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1)! };
}

async function measureVersions(base: string, until: () => boolean): Promise<number[]> {
  const samples: number[] = [];
  while (!until()) {
    const start = performance.now();
    const res = await fetch(`${base}/_matrix/client/versions`);
    await res.arrayBuffer();
    samples.push(performance.now() - start);
  }
  return samples;
}

async function drive(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: ['--import', 'tsx'] });
  const ready = await new Promise<{ port: number; scrypt: unknown }>((resolve) =>
    child.once('message', resolve as never),
  );
  const base = `http://127.0.0.1:${ready.port}`;
  try {
    console.log(
      `Myelin login concurrency bench — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}`,
    );
    console.log(
      `scrypt ${JSON.stringify(ready.scrypt)}, ${LOGINS} concurrent logins, libuv pool ${process.env.UV_THREADPOOL_SIZE ?? 4}`,
    );

    let idleDone = false;
    setTimeout(() => (idleDone = true), 1000);
    const idle = percentiles(await measureVersions(base, () => idleDone));

    const login = async () => {
      const start = performance.now();
      const res = await fetch(`${base}/_matrix/client/v3/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'm.login.password', user: 'bench', password: PASSWORD }),
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`login answered ${res.status}`);
      return performance.now() - start;
    };
    let loginsDone = false;
    const burstStart = performance.now();
    const logins = Promise.all(Array.from({ length: LOGINS }, login)).finally(() => (loginsDone = true));
    const during = await measureVersions(base, () => loginsDone);
    const loginTimes = percentiles(await logins);
    const burstMs = performance.now() - burstStart;
    const busy = percentiles(during);

    const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
    console.log(`/versions idle:         p50 ${fmt(idle.p50)}  p99 ${fmt(idle.p99)}  max ${fmt(idle.max)}`);
    console.log(
      `/versions during burst: p50 ${fmt(busy.p50)}  p99 ${fmt(busy.p99)}  max ${fmt(busy.max)}  (${during.length} requests)`,
    );
    console.log(
      `logins: all ${LOGINS} done in ${fmt(burstMs)}; each p50 ${fmt(loginTimes.p50)} p99 ${fmt(loginTimes.p99)}`,
    );
  } finally {
    child.send('stop');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

if (process.argv.includes('--serve')) await serve();
else await drive();
