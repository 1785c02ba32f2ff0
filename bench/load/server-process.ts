/**
 * The server side of the load benchmark: a real Myelin (SQLite in a temporary
 * folder, rate limits off, cheap password hashing, warn-level logs, unless BENCH_* says otherwise) listening
 * on 127.0.0.1, forked by bench/load/main.ts and driven from there over HTTP
 * and WebSocket. Set-up (accounts, sessions, rooms, history) goes through the
 * services directly, on request over IPC. Started with --expose-gc so that
 * memory readings are taken after a full collection.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { pino } from 'pino';
import { defaultConfig, type MyelinConfig } from '../../server/config/index.js';
import { createHomeserver, type Homeserver } from '../../server/homeserver.js';
import { logDestination } from '../../server/logger.js';
import { walFileBytes, walFramesInUse } from '../../storage/sqlite/wal-index.js';
import type {
  BenchUser,
  FromServer,
  ServerCommand,
  ServerGc,
  ServerMemory,
  ServerReply,
  ToServer,
} from './ipc.js';

const SERVER_NAME = 'bench.load';
/** Rooms built at once by `fill`: enough to fill the sender's batches, few enough to bound memory. */
const FILL_PARALLEL_ROOMS = 50;

const WAL_SAMPLE_MS = 50;

/**
 * Watches the WAL (frames in use, file size) and the event loop's delays for the whole run:
 * a checkpoint on the main thread shows in both. Returns the line printed at stop.
 */
function watchWalAndEventLoop(databasePath: string): () => string {
  let mostFrames = 0;
  const sampler = setInterval(() => {
    mostFrames = Math.max(mostFrames, walFramesInUse(databasePath));
  }, WAL_SAMPLE_MS);
  sampler.unref();
  const delays = monitorEventLoopDelay({ resolution: 1 });
  delays.enable();
  return () => {
    clearInterval(sampler);
    delays.disable();
    const ms = (ns: number) => `${(ns / 1e6).toFixed(1)} ms`;
    return (
      `server WAL: at most ${mostFrames} frames (${(mostFrames / 256).toFixed(1)} MiB), file ${(walFileBytes(databasePath) / 2 ** 20).toFixed(1)} MiB; ` +
      `event-loop delay p99 ${ms(delays.percentile(99))}, max ${ms(delays.max)}`
    );
  };
}

/** Every collection since start, for the `gc` op. */
const collections = { minor: 0, minorMs: 0, major: 0, majorMs: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const { kind } = (entry as unknown as { detail: { kind: number } }).detail;
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) {
      collections.minor++;
      collections.minorMs += entry.duration;
    } else if (
      kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR ||
      kind === perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL
    ) {
      collections.major++;
      collections.majorMs += entry.duration;
    }
  }
}).observe({ entryTypes: ['gc'] });

function gcSoFar(): ServerGc {
  return { ...collections };
}

function send(message: FromServer): void {
  process.send?.(message);
}

async function measureMemory(): Promise<ServerMemory> {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const usage = process.memoryUsage();
  return {
    rss: usage.rss,
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external + usage.arrayBuffers,
  };
}

async function createUsers(homeserver: Homeserver, prefix: string, count: number): Promise<BenchUser[]> {
  const { storage, sessions } = homeserver.context;
  const users: BenchUser[] = [];
  for (let i = 0; i < count; i++) {
    const userId = `@${prefix}${i}:${SERVER_NAME}`;
    await storage.accounts.createAccount({ userId, passwordHash: null, createdTs: Date.now() });
    const login = await sessions.createLoginSession({ userId, withRefreshToken: false });
    users.push({ userId, accessToken: login.access_token, deviceId: login.device_id });
  }
  return users;
}

async function createSharedRoom(
  homeserver: Homeserver,
  creator: string,
  members: readonly string[],
): Promise<string> {
  const { rooms } = homeserver.context;
  const created = await rooms.createRoom(creator, { preset: 'public_chat', name: 'load' });
  await Promise.all(members.map((member) => rooms.membership.join(created.roomId, member)));
  return created.roomId;
}

async function fillRooms(
  homeserver: Homeserver,
  userId: string,
  roomCount: number,
  messages: number,
): Promise<{ roomIds: string[]; events: number }> {
  const { rooms } = homeserver.context;
  const roomIds: string[] = [];
  let events = 0;
  const buildRoom = async (index: number) => {
    const created = await rooms.createRoom(userId, { preset: 'private_chat', name: `room ${index}` });
    roomIds.push(created.roomId);
    events += created.events.length;
    for (let m = 0; m < messages; m++) {
      await rooms.sender.sendEvent({
        roomId: created.roomId,
        sender: userId,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: `history ${m} of room ${index} 🧠` },
      });
      events++;
    }
  };
  for (let start = 0; start < roomCount; start += FILL_PARALLEL_ROOMS) {
    const slice = Array.from(
      { length: Math.min(FILL_PARALLEL_ROOMS, roomCount - start) },
      (_, i) => start + i,
    );
    await Promise.all(slice.map(buildRoom));
  }
  return { roomIds, events };
}

async function perform(homeserver: Homeserver, command: ServerCommand): Promise<ServerReply> {
  switch (command.op) {
    case 'users':
      return { op: 'users', users: await createUsers(homeserver, command.prefix, command.count) };
    case 'room':
      return { op: 'room', roomId: await createSharedRoom(homeserver, command.creator, command.members) };
    case 'fill':
      return {
        op: 'fill',
        ...(await fillRooms(homeserver, command.userId, command.rooms, command.messages)),
      };
    case 'memory':
      return { op: 'memory', memory: await measureMemory() };
    case 'cpu': {
      // Phases are bounded by these readings: each interval between two gets its own allocation profile.
      await allocationSampler?.next();
      const usage = process.cpuUsage();
      const { storage } = homeserver.context;
      const commits = 'commits' in storage && typeof storage.commits === 'number' ? storage.commits : 0;
      return { op: 'cpu', micros: usage.user + usage.system, user: usage.user, commits };
    }
    case 'waiting':
      return { op: 'waiting', count: homeserver.context.notifier.waiting };
    case 'gc':
      return { op: 'gc', gc: gcSoFar() };
    case 'push-idle':
      await homeserver.context.push.idle();
      return { op: 'push-idle' };
    case 'stop':
      return { op: 'stop' };
  }
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'myelin-bench-load-'));
  const config = defaultConfig({ server_name: SERVER_NAME, data_dir: dataDir });
  config.listeners = [{ ...config.listeners[0]!, port: 0, bind_addresses: ['127.0.0.1'] }];
  // BENCH_RATE_LIMITS=on (buckets kept but never empty) and BENCH_LOG_LEVEL=info (into BENCH_LOG_FILE)
  // measure the request path as production runs it.
  config.rate_limits.enabled = process.env.BENCH_RATE_LIMITS === 'on';
  config.rate_limits.exempt_admins = false;
  for (const limit of ['client', 'login', 'registration'] as const) {
    config.rate_limits[limit] = { per_second: 1e9, burst: 1e9 };
  }
  config.password_hashing.scrypt_log_n = 10;
  const level = (process.env.BENCH_LOG_LEVEL ?? 'warn') as MyelinConfig['logging']['level'];
  config.logging.level = level;
  const logFile = process.env.BENCH_LOG_FILE;
  const homeserver = await createHomeserver(config, {
    logger: pino({ level }, logFile === undefined ? pino.destination(2) : logDestination(logFile)),
  });
  const { ports } = await homeserver.start();
  const walReport = watchWalAndEventLoop(path.join(dataDir, 'homeserver.db'));
  allocationSampler = await AllocationSampler.start(process.env.BENCH_ALLOCATIONS);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${walReport()}\n`);
    await allocationSampler?.stop();
    await homeserver.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  // The driver going away (crash, Ctrl-C) must not leave a server or its folder behind.
  process.on('disconnect', () => {
    void stop().finally(() => process.exit(0));
  });
  process.on('message', (message: ToServer) => {
    perform(homeserver, message.command).then(
      async (reply) => {
        if (reply.op === 'stop') {
          // The driver learns of the stop from the exit itself.
          await stop();
          process.exit(0);
        }
        send({ kind: 'reply', id: message.id, reply });
      },
      (error: unknown) =>
        send({ kind: 'failed', id: message.id, error: String((error as Error)?.stack ?? error) }),
    );
  });
  send({ kind: 'ready', port: ports[0]!, memory: await measureMemory() });
}

/**
 * BENCH_ALLOCATIONS=PREFIX: V8's sampling heap profiler, collected objects included (what the
 * young generation churns through is what the scavenger pays for). Each interval between two
 * CPU readings (the driver takes one at each phase's start and end) is written to its own
 * PREFIX.N.heapprofile, N counting from 0 (start-up to the first reading); read them with
 * bench/load/allocation-summary.ts or DevTools.
 */
class AllocationSampler {
  private interval = 0;

  private constructor(
    private readonly session: Session,
    private readonly prefix: string,
  ) {}

  static async start(prefix: string | undefined): Promise<AllocationSampler | undefined> {
    if (prefix === undefined) return undefined;
    const session = new Session();
    session.connect();
    const sampler = new AllocationSampler(session, prefix);
    await sampler.begin();
    return sampler;
  }

  private begin(): Promise<unknown> {
    return this.session.post('HeapProfiler.startSampling', {
      samplingInterval: 16_384,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as never);
  }

  /** Writes the interval that ends now and starts the next. */
  async next(): Promise<void> {
    await this.stop();
    await this.begin();
  }

  async stop(): Promise<void> {
    const { profile } = await this.session.post('HeapProfiler.stopSampling');
    await writeFile(`${this.prefix}.${this.interval++}.heapprofile`, JSON.stringify(profile));
  }
}

let allocationSampler: AllocationSampler | undefined;

await main();
