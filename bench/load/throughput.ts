/**
 * Sends per second over HTTP keep-alive: closed-loop clients, each awaiting
 * its PUT /send before the next, for a fixed time after a short warm-up.
 * Three shapes (issue #4 "Figures"): one client into one room, 50 clients
 * into one room, 50 clients each into their own room.
 */

import { KeepAliveClient, sendPath } from './http-client.js';
import type { BenchUser } from './ipc.js';
import { type LatencySummary, monotonicMicros, summarise } from './report.js';
import type { ServerHandle } from './server-handle.js';

export interface ThroughputResult {
  readonly name: string;
  readonly clients: number;
  readonly rooms: number;
  readonly eventsPerSecond: number;
  readonly sent: number;
  readonly failed: number;
  readonly requestLatency: LatencySummary;
  /** CPU this driver process used while measuring, in cores (1 = one core busy): the load generator's own cost. */
  readonly driverCores: number;
  /** Server CPU time per event sent while measuring, µs (all its threads). */
  readonly serverCpuPerEvent: number;
  /** Storage commits per event sent while measuring (group commit and deferred writes lower it). */
  readonly commitsPerEvent: number;
  /** The measured span on the monotonic clock (µs), to slice a server CPU profile. */
  readonly measured: { readonly fromMicros: number; readonly toMicros: number };
}

interface Sender {
  readonly user: BenchUser;
  readonly roomId: string;
}

const WARM_UP_MS = 500;
/**
 * Sends before the first phase, counted nowhere: the server comes fresh from start-up,
 * whose set-up never ran the HTTP send path, and 0.5 s of it left the one-client phase
 * measuring the JIT compiling that path (300-500 µs of server CPU per event more than
 * the same phase run after the others).
 */
const JIT_WARM_UP_MS = 2000;

async function runClosedLoops(
  server: ServerHandle,
  name: string,
  senders: readonly Sender[],
  measureMs: number,
): Promise<ThroughputResult> {
  const clients = senders.map(() => new KeepAliveClient(server.port));
  const latencies: number[] = [];
  let sent = 0;
  let failed = 0;
  let measuring = false;
  const warmUpEnd = performance.now() + WARM_UP_MS;
  const end = warmUpEnd + measureMs;
  let measureStart = 0;
  let fromMicros = 0;
  let cpuAtStart = process.cpuUsage();
  let serverAtStart: Promise<{ micros: number; commits: number }> | undefined;
  const loop = async (index: number) => {
    const { user, roomId } = senders[index]!;
    const client = clients[index]!;
    for (let n = 0; performance.now() < end; n++) {
      const started = performance.now();
      if (!measuring && started >= warmUpEnd) {
        measuring = true;
        measureStart = started;
        fromMicros = monotonicMicros();
        cpuAtStart = process.cpuUsage();
        serverAtStart = server.usage();
      }
      const counted = measuring;
      const answer = await client.call('PUT', sendPath(roomId, `${name}-${index}-${n}`), user.accessToken, {
        msgtype: 'm.text',
        body: `load ${n} from ${index} 🚀`,
      });
      if (!counted) continue;
      if (answer.status === 200) {
        sent++;
        latencies.push(performance.now() - started);
      } else {
        failed++;
      }
    }
  };
  try {
    await Promise.all(senders.map((_, index) => loop(index)));
  } finally {
    for (const client of clients) client.close();
  }
  const elapsed = (performance.now() - measureStart) / 1000;
  const toMicros = monotonicMicros();
  const cpu = process.cpuUsage(cpuAtStart);
  const serverAtEnd = await server.usage();
  const serverStart = (await serverAtStart) ?? serverAtEnd;
  return {
    name,
    clients: senders.length,
    rooms: new Set(senders.map((sender) => sender.roomId)).size,
    eventsPerSecond: sent / elapsed,
    sent,
    failed,
    requestLatency: summarise(latencies),
    measured: { fromMicros, toMicros },
    driverCores: (cpu.user + cpu.system) / 1e6 / elapsed,
    serverCpuPerEvent: sent > 0 ? (serverAtEnd.micros - serverStart.micros) / sent : 0,
    commitsPerEvent: sent > 0 ? (serverAtEnd.commits - serverStart.commits) / sent : 0,
  };
}

export async function runThroughput(server: ServerHandle, measureMs: number): Promise<ThroughputResult[]> {
  const [solo] = await server.users('solo', 1);
  const crowd = await server.users('crowd', 50);
  const soloRoom = await server.room(solo!.userId, []);
  const sharedRoom = await server.room(
    crowd[0]!.userId,
    crowd.slice(1).map((user) => user.userId),
  );
  const ownRooms = await Promise.all(crowd.map((user) => server.room(user.userId, [])));
  await runClosedLoops(server, 'JIT warm-up', [{ user: solo!, roomId: soloRoom }], JIT_WARM_UP_MS);

  return [
    await runClosedLoops(server, 'one client, one room', [{ user: solo!, roomId: soloRoom }], measureMs),
    await runClosedLoops(
      server,
      '50 clients, one room',
      crowd.map((user) => ({ user, roomId: sharedRoom })),
      measureMs,
    ),
    await runClosedLoops(
      server,
      '50 clients, 50 rooms',
      crowd.map((user, i) => ({ user, roomId: ownRooms[i]! })),
      measureMs,
    ),
  ];
}
