/**
 * Send-to-device fan-out (issue #6 figure: a to-device message to 1,000 devices
 * reaches their syncs within 200 ms). 1,000 devices wait in a sync; one
 * PUT /sendToDevice over HTTP names them all; the figure is the time from
 * issuing the PUT until the last waiting sync has answered with the message.
 * Two shapes: 1,000 users with one device each (the PUT lists every user), and
 * one user with 1,000 devices (`*`). The waiting syncs are hs.sync.sync calls
 * in the server process (the server's share alone) or HTTP long-polls from this
 * same process (clients and server then share the CPU).
 * Prints figures, asserts nothing. Run: node --import tsx bench/to-device.bench.ts [devices] [--only=users:in-process]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
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
type Waiters = 'in-process' | 'http';

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
    for (const waiters of ['in-process', 'http'] as const)
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

    const httpSync = async (device: Device, since: string | undefined, timeout: number) => {
      const query = `timeout=${timeout}${since === undefined ? '' : `&since=${encodeURIComponent(since)}`}`;
      const res = await fetch(`${base}/sync?${query}`, {
        headers: { Authorization: `Bearer ${device.token}` },
        dispatcher: agent,
      });
      return (await res.json()) as {
        next_batch: string;
        to_device: { events: { content: { round: number } }[] };
      };
    };
    const localSync = async (device: Device, since: string | undefined, timeout: number) =>
      (await hs.sync.sync(
        device,
        { ...(since === undefined ? {} : { since }), timeoutMs: timeout, fullState: false },
        new AbortController().signal,
      )) as unknown as { next_batch: string; to_device: { events: { content: { round: number } }[] } };
    const sync = waiters === 'http' ? httpSync : localSync;

    const tokens = new Map<Device, string>();
    for (const device of devices) tokens.set(device, (await sync(device, undefined, 0)).next_batch);

    const latencies: number[] = [];
    let putMs = 0;
    const phaseFrom = monotonicMicros();
    for (let round = 0; round < ROUNDS; round++) {
      const polls = devices.map(async (device) => {
        for (;;) {
          const body = await sync(device, tokens.get(device), 30_000);
          tokens.set(device, body.next_batch);
          if (body.to_device.events.some((event) => event.content.round === round)) return performance.now();
        }
      });
      // Let every sync reach its wait.
      await new Promise((resolve) => setTimeout(resolve, waiters === 'http' ? 1500 : 300));
      for (const byDevice of Object.values(messages))
        for (const content of Object.values(byDevice)) Object.assign(content, { round });
      const sentAt = performance.now();
      const res = await fetch(`${base}/sendToDevice/org.example.bench/round-${round}`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${sender.token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ messages }),
        dispatcher: agent,
      });
      if (res.status !== 200) throw new Error(`sendToDevice answered ${res.status}: ${await res.text()}`);
      putMs += performance.now() - sentAt;
      const answered = await Promise.all(polls);
      latencies.push(Math.max(...answered) - sentAt);
    }
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

await main();
