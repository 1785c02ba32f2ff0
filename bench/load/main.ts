/**
 * The load benchmark of issue #4 ("Figures"): forks a real Myelin
 * (bench/load/server-process.ts) and drives it from this process over HTTP
 * keep-alive and WebSocket on 127.0.0.1. Prints tables; asserts nothing.
 *
 *   npm run bench:load -- [scenario...] [--receivers=1000] [--events=50] [--rate=10]
 *                         [--warmup=10] [--seconds=4] [--no-ephemeral] [--source] [--profile=DIR]
 *
 * Scenarios (all by default, in this order): throughput, websocket, long-poll,
 * initial-sync. `--no-ephemeral`: the receivers' filter drops ephemeral events (typing,
 * receipts). `--warmup=N`: N messages at the rate before the measured ones, not measured
 * (default 10: the server's code warm, as throughput's 2 s warm-up; `--warmup=0` for the
 * cold figure, its first messages slow). `--source`: the server runs its TypeScript through tsx instead of
 * the compiled JavaScript (about 30 MB more RSS: the loader thread). `--profile=DIR` runs the server under --cpu-prof and writes
 * its .cpuprofile into DIR when it stops. Every loop is bounded in count and
 * time; the whole run is cut at 10 minutes whatever happens.
 */
import { type DeliveryResult, runLongPollDelivery, runWebSocketDelivery } from './delivery.js';
import { runInitialSync } from './initial-sync.js';
import type { ServerMemory } from './ipc.js';
import { kb, loadAverage, mb, ms, printTable } from './report.js';
import { ServerHandle } from './server-handle.js';
import { runThroughput } from './throughput.js';

const SCENARIOS = ['throughput', 'websocket', 'long-poll', 'initial-sync'] as const;
type Scenario = (typeof SCENARIOS)[number];
const RUN_DEADLINE_MS = 10 * 60_000;
/** Messages sent before the measured ones by default: the figures are those of a warm server. */
const DEFAULT_WARMUP_MESSAGES = 10;

interface Options {
  readonly scenarios: Set<Scenario>;
  readonly receivers: number;
  readonly events: number;
  readonly rate: number;
  /** Messages sent at the rate before the measured ones (not measured): the server's code warm. */
  readonly warmup: number;
  readonly seconds: number;
  readonly profileDir: string | undefined;
  readonly fromSource: boolean;
  readonly ephemeral: boolean;
  readonly connectBudgetSeconds: number;
}

function parseOptions(argv: readonly string[]): Options {
  const flags = new Map<string, string>();
  const scenarios = new Set<Scenario>();
  for (const arg of argv) {
    const flag = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (flag) flags.set(flag[1]!, flag[2] ?? 'true');
    else if ((SCENARIOS as readonly string[]).includes(arg)) scenarios.add(arg as Scenario);
    else throw new Error(`Unknown argument ${arg}; scenarios: ${SCENARIOS.join(', ')}`);
  }
  const positive = (name: string, fallback: number) => {
    const value = Number(flags.get(name) ?? fallback);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
    return value;
  };
  return {
    scenarios: scenarios.size > 0 ? scenarios : new Set(SCENARIOS),
    receivers: Math.floor(positive('receivers', 1000)),
    events: Math.floor(positive('events', 50)),
    rate: positive('rate', 10),
    warmup: Math.max(0, Math.floor(Number(flags.get('warmup') ?? DEFAULT_WARMUP_MESSAGES)) || 0),
    seconds: positive('seconds', 4),
    profileDir: flags.get('profile'),
    fromSource: flags.get('source') === 'true',
    ephemeral: flags.get('no-ephemeral') !== 'true',
    connectBudgetSeconds: positive('connect-budget', 45),
  };
}

function memoryCells(memory: ServerMemory): string[] {
  return [mb(memory.rss), mb(memory.heapUsed), mb(memory.external)];
}

function deliveryRow(result: DeliveryResult): string[] {
  return [
    result.transport,
    result.receivers === result.receiversWanted
      ? String(result.receivers)
      : `${result.receivers} of ${result.receiversWanted}`,
    `${result.events} @ ${result.eventsPerSecond}/s`,
    ms(result.latency.p50),
    ms(result.latency.p95),
    ms(result.latency.p99),
    ms(result.latency.max),
    String(result.missing),
    String(result.duplicates),
    String(result.limitedTimelines),
    String(result.sendFailures + result.receiveErrors),
    String(result.syncResponses),
    `${result.connectSeconds.toFixed(1)} s`,
    `${(result.serverCpuPerMessage / 1000).toFixed(1)} ms`,
    `${(result.driverCpuPerMessage / 1000).toFixed(1)} ms`,
  ];
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = performance.now();
  console.log(`Myelin load benchmark: ${[...options.scenarios].join(', ')}`);
  console.log(`load average at start (1/5/15 min): ${loadAverage()}`);
  const server = await ServerHandle.start({
    fromSource: options.fromSource,
    ...(options.profileDir !== undefined ? { cpuProfileDir: options.profileDir } : {}),
  });
  console.log(
    `server process runs ${options.fromSource ? 'the TypeScript source through tsx' : 'compiled JavaScript, a file per module as npm run build makes it (no loader)'}`,
  );
  const deadline = setTimeout(() => {
    console.error('Run deadline reached: stopping.');
    void server.stop().finally(() => process.exit(1));
  }, RUN_DEADLINE_MS);
  deadline.unref();
  try {
    const phases: [string, { fromMicros: number; toMicros: number }][] = [];
    const memoryRows: string[][] = [
      [
        'server started (idle)',
        mb(server.startMemory.rss),
        mb(server.startMemory.heapUsed),
        mb(server.startMemory.external),
      ],
    ];

    if (options.scenarios.has('throughput')) {
      const results = await runThroughput(server, options.seconds * 1000);
      for (const result of results) phases.push([`sends, ${result.name}`, result.measured]);
      printTable(
        `Sends (PUT /send over keep-alive, ${options.seconds} s each after 0.5 s warm-up; load ${loadAverage()})`,
        [
          'scenario',
          'events/s',
          'sent',
          'failed',
          'req p50',
          'req p95',
          'req p99',
          'server CPU/event',
          'commits/event',
          'driver CPU',
        ],
        results.map((r) => [
          r.name,
          r.eventsPerSecond.toFixed(0),
          String(r.sent),
          String(r.failed),
          ms(r.requestLatency.p50),
          ms(r.requestLatency.p95),
          ms(r.requestLatency.p99),
          `${r.serverCpuPerEvent.toFixed(0)} µs`,
          r.commitsPerEvent.toFixed(2),
          `${(r.driverCores * 100).toFixed(0)}%`,
        ]),
      );
    }

    const deliveryRows: string[][] = [];
    if (options.scenarios.has('websocket') || options.scenarios.has('long-poll')) {
      const [sender] = await server.users('sender', 1);
      const receivers = await server.users('receiver', options.receivers);
      const roomId = await server.room(
        sender!.userId,
        receivers.map((user) => user.userId),
      );
      const idle = await server.memory();
      memoryRows.push([
        `idle after set-up (${options.receivers + 1} accounts, a ${options.receivers + 1}-member room)`,
        mb(idle.rss),
        mb(idle.heapUsed),
        mb(idle.external),
      ]);
      const delivery = {
        receivers: options.receivers,
        events: options.events,
        eventsPerSecond: options.rate,
        warmupEvents: options.warmup,
        ephemeral: options.ephemeral,
        connectBudgetMs: options.connectBudgetSeconds * 1000,
      };
      if (options.scenarios.has('websocket')) {
        const result = await runWebSocketDelivery(server, sender!, receivers, roomId, delivery);
        deliveryRows.push(deliveryRow(result));
        const { sockets, before, authenticated, syncing } = result.memory!;
        // A syncing socket costs what an authenticated one does plus its share of the sync state.
        const perSocket = (key: keyof ServerMemory) => (authenticated[key] - before[key]) / sockets;
        const perSyncingSocket = (key: keyof ServerMemory) =>
          perSocket(key) + (syncing[key] - authenticated[key]) / Math.max(1, result.receivers);
        memoryRows.push(
          [`${sockets} idle WebSockets, authenticated`, ...memoryCells(authenticated)],
          ['  per socket', kb(perSocket('rss')), kb(perSocket('heapUsed')), kb(perSocket('external'))],
          [`${result.receivers} of them syncing (initial sync pushed)`, ...memoryCells(syncing)],
          [
            '  per syncing socket',
            kb(perSyncingSocket('rss')),
            kb(perSyncingSocket('heapUsed')),
            kb(perSyncingSocket('external')),
          ],
        );
        phases.push(['websocket send phase', result.sendPhase]);
      }
      if (options.scenarios.has('long-poll')) {
        const result = await runLongPollDelivery(server, sender!, receivers, roomId, delivery);
        deliveryRows.push(deliveryRow(result));
        phases.push(['long-poll send phase', result.sendPhase]);
      }
      printTable(
        `Send-to-delivery latency (one sender over HTTP, open loop, after ${options.warmup} unmeasured warm-up messages; load ${loadAverage()})`,
        [
          'receivers via',
          'N',
          'messages',
          'p50',
          'p95',
          'p99',
          'max',
          'missing',
          'dup',
          'limited',
          'errors',
          'sync answers',
          'connect',
          'server CPU/msg',
          'driver CPU/msg',
        ],
        deliveryRows,
      );
    }

    if (options.scenarios.has('initial-sync')) {
      const results = [await runInitialSync(server, 100, 20, 6), await runInitialSync(server, 1000, 20, 4)];
      printTable(
        `Initial sync (GET /sync, no filter, no since; load ${loadAverage()})`,
        ['rooms x messages', 'first', 'median of rest', 'min', 'bytes', 'rooms / events in answer', 'build'],
        results.map((r) => [
          `${r.rooms} x ${r.messagesPerRoom}`,
          ms(r.firstMs),
          ms(r.medianMs),
          ms(r.minMs),
          kb(r.bytes),
          `${r.roomsInAnswer} / ${r.timelineEvents}`,
          `${r.eventsBuilt} events in ${r.buildSeconds.toFixed(1)} s`,
        ]),
      );
    }

    const end = await server.memory();
    memoryRows.push(['end of run', mb(end.rss), mb(end.heapUsed), mb(end.external)]);
    printTable('Server memory (after a full GC)', ['when', 'RSS', 'heap used', 'buffers'], memoryRows);
    if (options.profileDir !== undefined) {
      console.log(`\nServer CPU profile in ${options.profileDir}; slice it by phase with`);
      for (const [name, phase] of phases) {
        console.log(
          `  ${name}: node --import tsx bench/load/profile-summary.ts FILE --from=${phase.fromMicros} --to=${phase.toMicros}`,
        );
      }
    }
  } finally {
    await server.stop();
    clearTimeout(deadline);
  }
  console.log(
    `\nload average at end (1/5/15 min): ${loadAverage()}; ran ${((performance.now() - startedAt) / 1000).toFixed(0)} s`,
  );
}

await main();
