/**
 * Send-to-device fan-out (issue #6 figure: a to-device message to 1,000 devices
 * reaches their syncs within 200 ms). 1,000 devices wait in a sync; one
 * PUT /sendToDevice over HTTP names them all; the figure is the time from
 * issuing the PUT until the last waiting sync has answered with the message.
 * Two shapes: 1,000 users with one device each (the PUT lists every user), and
 * one user with 1,000 devices (`*`). The waiting syncs are hs.sync.sync calls
 * in the server process (the server's share alone), HTTP long-polls from a child
 * process (http-child), or HTTP long-polls from this same process (http: clients
 * and server then share one event loop).
 * Prints figures, asserts nothing. Run: node --import tsx bench/to-device.bench.ts [devices] [--only=users:http-child]
 */
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Agent, fetch } from 'undici';
import { defaultConfig } from '../server/config/index.js';
import type { HomeserverContext } from '../server/context.js';
import { createHomeserver, type Homeserver } from '../server/homeserver.js';
import { monotonicMicros } from './load/report.js';

const ROUNDS = 5;

interface Device {
  readonly userId: string;
  readonly deviceId: string;
  readonly token: string;
}

type Shape = 'users' | 'devices';
type Waiters = 'in-process' | 'http' | 'http-child';

async function main(): Promise<void> {
  const devices = Number(process.argv.slice(2).find((arg) => /^\d+$/.test(arg)) ?? 1000);
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  // --only=users:in-process (or devices:http...) runs one case, e.g. under --cpu-prof.
  const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
  for (const shape of ['users', 'devices'] as const)
    for (const waiters of ['in-process', 'http-child', 'http'] as const)
      if (only === undefined || only === `${shape}:${waiters}`) await fanOut(devices, shape, waiters);
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}

async function boot(): Promise<{ homeserver: Homeserver; port: number; dataDir: string }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'myelin-to-device-bench-'));
  const config = defaultConfig({ server_name: 'bench.test', data_dir: dataDir, port: 0 });
  config.listeners = [{ ...config.listeners[0]!, port: 0, bind_addresses: ['127.0.0.1'] }];
  config.rate_limits.enabled = false;
  const homeserver = await createHomeserver(config, { logger: pino({ level: 'silent' }) });
  const { ports } = await homeserver.start();
  return { homeserver, port: ports[0]!, dataDir };
}

async function makeDevices(
  hs: HomeserverContext,
  count: number,
  shape: Shape,
  prefix = 'user',
): Promise<Device[]> {
  const devices: Device[] = [];
  if (shape === 'devices') {
    await hs.storage.accounts.createAccount({
      userId: `@${prefix}:bench.test`,
      passwordHash: null,
      createdTs: 1,
    });
  }
  for (let i = 0; i < count; i++) {
    const userId = shape === 'users' ? `@${prefix}${i}:bench.test` : `@${prefix}:bench.test`;
    if (shape === 'users')
      await hs.storage.accounts.createAccount({ userId, passwordHash: null, createdTs: 1 });
    const session = await hs.sessions.createLoginSession({ userId, withRefreshToken: false });
    devices.push({ userId, deviceId: session.device_id, token: session.access_token });
  }
  return devices;
}

async function fanOut(count: number, shape: Shape, waiters: Waiters): Promise<void> {
  const { homeserver, port, dataDir } = await boot();
  const hs = homeserver.context;
  // Enough sockets for every long-poll at once.
  const agent = new Agent({ connections: count + 10, keepAliveTimeout: 60_000 });
  const base = `http://127.0.0.1:${port}/_matrix/client/v3`;
  try {
    const sender = (await makeDevices(hs, 1, 'users', 'sender'))[0]!;
    const devices = await makeDevices(hs, count, shape);
    const messages: Record<string, Record<string, object>> = {};
    for (const device of devices) {
      if (shape === 'devices') messages[device.userId] = { '*': { round: -1 } };
      else messages[device.userId] = { [device.deviceId]: { round: -1 } };
    }

    const clients =
      waiters === 'in-process'
        ? syncLoops(
            devices,
            (device, since, timeout) =>
              hs.sync.sync(
                device,
                { ...(since === undefined ? {} : { since }), timeoutMs: timeout, fullState: false },
                new AbortController().signal,
              ) as unknown as Promise<SyncAnswer>,
          )
        : waiters === 'http'
          ? syncLoops(devices, httpSync(base, agent))
          : await childSyncLoops(base, devices);
    await clients.ready;

    const latencies: number[] = [];
    let putMs = 0;
    const phaseFrom = monotonicMicros();
    for (let round = 0; round < ROUNDS; round++) {
      const lastAnswer = clients.waitFor(round);
      // Let every sync reach its wait.
      await new Promise((resolve) => setTimeout(resolve, waiters === 'in-process' ? 300 : 1500));
      for (const byDevice of Object.values(messages))
        for (const content of Object.values(byDevice)) Object.assign(content, { round });
      const sentAt = now();
      const res = await fetch(`${base}/sendToDevice/org.example.bench/round-${round}`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${sender.token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ messages }),
        dispatcher: agent,
      });
      if (res.status !== 200) throw new Error(`sendToDevice answered ${res.status}: ${await res.text()}`);
      putMs += now() - sentAt;
      latencies.push((await lastAnswer) - sentAt);
    }
    clients.close();
    // For bench/load/profile-summary.ts --from --to (run under node --cpu-prof).
    if (process.argv.some((arg) => arg.startsWith('--only='))) {
      console.log(`fan-out phase: --from=${phaseFrom} --to=${monotonicMicros()}`);
    }
    latencies.sort((a, b) => a - b);
    const label = shape === 'users' ? `${count} users x 1 device` : `1 user x ${count} devices (*)`;
    console.log(
      `to-device, ${label}, ${waiters} waiting syncs (${ROUNDS} rounds): PUT answered in ${(putMs / ROUNDS).toFixed(1)} ms ` +
        `on average; last sync answered after median ${latencies[Math.floor(ROUNDS / 2)]!.toFixed(1)} ms, ` +
        `best ${latencies[0]!.toFixed(1)} ms, worst ${latencies.at(-1)!.toFixed(1)} ms`,
    );
  } finally {
    await homeserver.stop();
    await agent.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

interface SyncAnswer {
  readonly next_batch: string;
  readonly to_device: { readonly events: { readonly content: { readonly round?: number } }[] };
}

type SyncCall = (device: Device, since: string | undefined, timeout: number) => Promise<SyncAnswer>;

/** The waiting clients: each round, every device syncs until it holds that round's message. */
interface WaitingClients {
  /** Resolves once every device has its first token. */
  readonly ready: Promise<void>;
  /** Starts the round's waits; resolves with when (performance.timeOrigin clock) the last one answered. */
  waitFor(round: number): Promise<number>;
  close(): void;
}

/** One clock for this process and the child: milliseconds since the epoch, sub-millisecond. */
const now = () => performance.timeOrigin + performance.now();

function syncLoops(devices: readonly Device[], sync: SyncCall): WaitingClients {
  const tokens = new Map<Device, string>();
  const ready = Promise.all(
    devices.map(async (device) => tokens.set(device, (await sync(device, undefined, 0)).next_batch)),
  ).then(() => {});
  return {
    ready,
    async waitFor(round) {
      const answered = await Promise.all(
        devices.map(async (device) => {
          for (;;) {
            const body = await sync(device, tokens.get(device), 30_000);
            tokens.set(device, body.next_batch);
            if (body.to_device.events.some((event) => event.content.round === round)) return now();
          }
        }),
      );
      return Math.max(...answered);
    },
    close() {},
  };
}

function httpSync(base: string, agent: Agent): SyncCall {
  return async (device, since, timeout) => {
    const query = `timeout=${timeout}${since === undefined ? '' : `&since=${encodeURIComponent(since)}`}`;
    const res = await fetch(`${base}/sync?${query}`, {
      headers: { Authorization: `Bearer ${device.token}` },
      dispatcher: agent,
    });
    return (await res.json()) as SyncAnswer;
  };
}

type ChildMessage = { kind: 'ready' } | { kind: 'answered'; round: number; at: number };

/** The long-polls run in a child process, so that the clients do not take the server's CPU. */
async function childSyncLoops(base: string, devices: readonly Device[]): Promise<WaitingClients> {
  const child = fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: ['--import', 'tsx'] });
  const answers = new Map<number, (at: number) => void>();
  const ready = new Promise<void>((resolve) => {
    child.on('message', (message: ChildMessage) => {
      if (message.kind === 'ready') resolve();
      else answers.get(message.round)?.(message.at);
    });
  });
  child.send({ base, devices });
  return {
    ready,
    waitFor(round) {
      const answered = new Promise<number>((resolve) => answers.set(round, resolve));
      child.send({ round });
      return answered;
    },
    close() {
      child.kill();
    },
  };
}

async function runChild(): Promise<void> {
  const setup = await new Promise<{ base: string; devices: Device[] }>((resolve) =>
    process.once('message', (message) => resolve(message as { base: string; devices: Device[] })),
  );
  const agent = new Agent({ connections: setup.devices.length + 10, keepAliveTimeout: 60_000 });
  const clients = syncLoops(setup.devices, httpSync(setup.base, agent));
  await clients.ready;
  process.on('message', (message: { round: number }) => {
    void clients.waitFor(message.round).then((at) => {
      process.send?.({ kind: 'answered', round: message.round, at } satisfies ChildMessage);
    });
  });
  process.send?.({ kind: 'ready' } satisfies ChildMessage);
}

if (process.argv.includes('--child')) await runChild();
else await main();
