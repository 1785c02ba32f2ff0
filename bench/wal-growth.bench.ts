/**
 * WAL size and main-thread commit stalls under continuous sends: closed-loop
 * senders through RoomEventSender.sendEvent into a SQLite file database for a
 * fixed time, sampling the WAL (frames in use, read from the wal-index; file
 * size) and timing every group commit on the main thread. A commit that runs
 * SQLite's own checkpoint (the backstop) shows as a long one.
 * Prints figures, asserts nothing.
 *
 *   node --import tsx bench/wal-growth.bench.ts [--seconds=20] [--senders=4]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey } from '../protocol/signing.js';
import { createRoomServices } from '../server/rooms/room-services.js';
import { openSqliteStorage } from '../storage/sqlite/sqlite-storage.js';
import { walFileBytes, walFramesInUse as walFrames } from '../storage/sqlite/wal-index.js';

const SERVER_NAME = 'bench.test';
const SAMPLE_MS = 1000;
/** A commit longer than this is counted as a stall. */
const STALL_MS = 4;

function flag(name: string, fallback: number): number {
  const found = process.argv.find((arg) => arg.startsWith(`--${name}=`));
  return found ? Number(found.slice(name.length + 3)) : fallback;
}

interface Commit {
  readonly ms: number;
  readonly framesBefore: number;
  readonly framesAfter: number;
}

/** Times every flush of the storage's write queue (each is one commit, run on the main thread). */
function timeCommits(storage: object, dbPath: string): Commit[] {
  const commits: Commit[] = [];
  const queue = Reflect.get(storage, 'writeQueue') as { flush: () => void };
  const flush = queue.flush.bind(queue);
  queue.flush = () => {
    const framesBefore = walFrames(dbPath);
    const started = performance.now();
    flush();
    const ms = performance.now() - started;
    commits.push({ ms, framesBefore, framesAfter: walFrames(dbPath) });
  };
  return commits;
}

function describe(label: string, commits: readonly Commit[]): string {
  const total = commits.reduce((sum, commit) => sum + commit.ms, 0);
  return `${label}: ${commits.length} commits, ${total.toFixed(0)} ms`;
}

const seconds = flag('seconds', 20);
const senders = flag('senders', 4);
const dir = mkdtempSync(join(tmpdir(), 'myelin-wal-growth-'));
const dbPath = join(dir, 'bench.db');
const storage = await openSqliteStorage({ path: dbPath });
const services = createRoomServices({ storage, serverName: SERVER_NAME, signingKey: generateSigningKey() });
try {
  const sender = `@alice:${SERVER_NAME}`;
  await storage.accounts.createAccount({ userId: sender, createdTs: Date.now(), displayName: 'Alice' });
  const rooms = await Promise.all(
    Array.from({ length: senders }, () => services.createRoom(sender, { preset: 'public_chat' })),
  );
  const commits = timeCommits(storage, dbPath);
  let sent = 0;
  const end = performance.now() + seconds * 1000;
  const cpuAtStart = process.cpuUsage();
  const client = async (i: number) => {
    while (performance.now() < end) {
      await services.sender.sendEvent({
        roomId: rooms[i]!.roomId,
        sender,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: `message ${sent} from client ${i} 🧠 ${'x'.repeat(200)}` },
      });
      sent++;
    }
  };
  let lastCommit = 0;
  const sampler = setInterval(() => {
    const frames = walFrames(dbPath);
    const recent = commits.slice(lastCommit).map((commit) => commit.ms);
    lastCommit = commits.length;
    console.log(
      `  wal ${String(frames).padStart(6)} frames  file ${(walFileBytes(dbPath) / 2 ** 20).toFixed(1).padStart(6)} MiB  ` +
        `commits ${String(recent.length).padStart(5)}  longest ${Math.max(0, ...recent).toFixed(1)} ms`,
    );
  }, SAMPLE_MS);
  await Promise.all(Array.from({ length: senders }, (_, i) => client(i)));
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpuAtStart);
  const sorted = commits.map((commit) => commit.ms).sort((a, b) => a - b);
  const stalls = commits.filter((commit) => commit.ms > STALL_MS);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  console.log(`events sent: ${sent} (${Math.round(sent / seconds)}/s), commits: ${commits.length}`);
  console.log(
    `commit ms: p50 ${at(0.5).toFixed(2)} p99 ${at(0.99).toFixed(2)} max ${at(1).toFixed(1)}; ` +
      `${describe('all', commits)}; ${describe(`over ${STALL_MS} ms`, stalls)}`,
  );
  // SQLite's own checkpoint runs in the commit that leaves the WAL at or past wal_autocheckpoint.
  const connection = Reflect.get(storage, 'connection') as {
    sqlite: { pragma: (s: string, o: object) => unknown };
  };
  const backstopFrames = Number(connection.sqlite.pragma('wal_autocheckpoint', { simple: true }));
  const backstop = commits.filter((commit) => commit.framesAfter >= backstopFrames);
  const restarted = commits.filter((commit) => commit.framesAfter < commit.framesBefore);
  // A restart made by another connection (the checkpointer) shows between two commits.
  const restartedBetween = commits.filter(
    (commit, index) => index > 0 && commit.framesBefore < commits[index - 1]!.framesAfter,
  ).length;
  console.log(
    `  ${describe('main-thread checkpoints (backstop)', backstop)}; ${describe('WAL restarted in', restarted)}; ` +
      `restarted between commits: ${restartedBetween} times`,
  );
  console.log(
    `wal: most frames ${Math.max(0, ...commits.map((commit) => commit.framesAfter))}, file at end ${(walFileBytes(dbPath) / 2 ** 20).toFixed(1)} MiB; ` +
      `process CPU per event ${Math.round((cpu.user + cpu.system) / sent)} µs (all threads)`,
  );
} finally {
  await services.close();
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
}
