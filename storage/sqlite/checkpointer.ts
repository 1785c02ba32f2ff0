/**
 * WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside
 * the commit that crosses the threshold: it copies the WAL into the database and
 * fsyncs both, which on a virtual disk stalls that commit (and the event loop) for
 * milliseconds. Profiles of the send path put it at over half of the write cost.
 * Here a worker thread with its own connection runs PASSIVE checkpoints (they
 * never block readers or writers) while the main connection's automatic
 * checkpoint stays only as a backstop for a WAL that grows far past the
 * worker (the worker stuck or gone).
 *
 * Copying every frame is not enough for the WAL to restart from its beginning: the
 * next writer restarts it only if the last checkpoint copied every frame there is,
 * and under steady sends some commit always lands while a checkpoint runs. The WAL
 * then grew to the backstop, whose checkpoint ran on the main thread (tens of ms).
 * So once the WAL is past RESTART_FRAMES the worker asks the main thread to hold
 * commits (queued, not blocking the event loop) for one short checkpoint of what
 * little is left, then itself makes the write that starts the WAL afresh.
 *
 * The worker starts with the first burst of commits, so an idle server and a short
 * test never pay for a thread.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/**
 * WAL pages (4 KiB) past which the committing connection checkpoints itself after all: the
 * worker stuck or gone. Not reached while the worker restarts the WAL, even starved of CPU.
 */
const BACKSTOP_PAGES = 32_768;
/** WAL frames past which the worker has commits held to let the WAL restart. */
const RESTART_FRAMES = 2048;
/** Frames a checkpoint may have left behind for the held one to copy; more, and the worker catches up first. */
const HELD_FRAMES = 256;
/**
 * A WAL file grown past this (a backlog) is cut back to it when the WAL restarts. Not lower:
 * cutting a file the WAL regrows after every restart is an ftruncate in a main-thread commit.
 */
const WAL_SIZE_LIMIT_BYTES = 64 * 2 ** 20;
/** Commits are held no longer than this, whatever the worker does. */
const MAX_HOLD_MS = 50;
/** Commits counted before the worker is started. */
const COMMITS_BEFORE_START = 64;
const INTERVAL_MS = 100;
const MAX_STARTS = 3;

/** What the checkpointer needs of the write queue: commits held (queued) for a moment. */
export interface CommitGate {
  hold(): void;
  release(): void;
}

// Runs in the worker (CommonJS, `eval`): checkpoints every interval until told to stop.
// Messages: the worker sends 'hold' and waits for 'held', checkpoints, then sends 'released'.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const { restartFrames, heldFrames } = workerData;
const db = new Database(workerData.path, { timeout: 1000 });
db.pragma('busy_timeout = 1000');
// As the main connection: its checkpoints fsync just the same, its one write (restartWal) does not.
db.pragma('synchronous = NORMAL');
// The WAL is cut back by the connection that restarts it: this one (restartWal).
db.pragma('journal_size_limit = ' + workerData.walSizeLimit);
const checkpoint = () => {
  try { return db.pragma('wal_checkpoint(PASSIVE)')[0]; } catch { return undefined; }
};
// Writing the first frame of a restarted WAL fsyncs its header: that write is made here, not by the
// main thread's next commit. It rewrites page 1 unchanged (the application id, unused otherwise).
const restartWal = () => {
  const applicationId = Number(db.pragma('application_id', { simple: true }));
  db.exec('BEGIN IMMEDIATE; PRAGMA application_id = ' + applicationId + '; COMMIT');
};
let holding = false;
let timer;
// Returns whether the WAL is still long: then the next round comes sooner.
const round = () => {
  if (holding) return false;
  let last = checkpoint();
  // Catch up while commits keep coming, so that the held checkpoint has little to copy.
  for (let i = 0; i < 3 && last && !last.busy && last.log >= restartFrames; i++) {
    const next = checkpoint();
    if (!next || next.busy || next.log < last.log) return false;
    const added = next.log - last.log;
    last = next;
    if (added <= heldFrames) break;
  }
  if (!last || last.log < restartFrames) return false;
  if (last.busy) return true;
  holding = true;
  parentPort.postMessage('hold');
  return false;
};
const schedule = (ms) => {
  timer = setTimeout(() => schedule(round() ? workerData.intervalMs / 10 : workerData.intervalMs), ms);
};
schedule(workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message === 'held') {
    const done = checkpoint();
    if (done && !done.busy && done.log === done.checkpointed) {
      try { restartWal(); } catch { try { db.exec('ROLLBACK'); } catch {} }
    }
    holding = false;
    parentPort.postMessage('released');
    return;
  }
  clearTimeout(timer);
  checkpoint();
  db.close();
  process.exit(0);
});
`;

export class BackgroundCheckpointer {
  private worker: Worker | undefined;
  private commits = 0;
  private starts = 0;
  private stopped = false;
  private holdTimer: NodeJS.Timeout | undefined;

  /** `path` is the database file; the main connection must already be in WAL mode. */
  constructor(
    private readonly path: string,
    sqlite: Database.Database,
    private readonly gate: CommitGate,
  ) {
    sqlite.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
    sqlite.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  }

  /** After each commit of the main connection. */
  noteCommit(): void {
    if (this.worker !== undefined || this.stopped || ++this.commits < COMMITS_BEFORE_START) return;
    // A worker that keeps dying is not restarted for ever: the backstop is enough.
    if (++this.starts > MAX_STARTS) return;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        path: this.path,
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        intervalMs: INTERVAL_MS,
        restartFrames: RESTART_FRAMES,
        heldFrames: HELD_FRAMES,
        walSizeLimit: WAL_SIZE_LIMIT_BYTES,
      },
      // The server's own flags (--import tsx, --cpu-prof) are not for this thread.
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: 16 },
    });
    worker.on('message', (message) => {
      if (message === 'hold') this.hold(worker);
      else this.release();
    });
    // A checkpointer that fails leaves the backstop to do its work; nothing to report upward.
    worker.on('error', () => {});
    worker.once('exit', () => {
      if (this.worker === worker) this.worker = undefined;
      this.release();
    });
    worker.unref();
    this.worker = worker;
  }

  private hold(worker: Worker): void {
    if (this.stopped) return;
    this.gate.hold();
    // A worker slow to answer (a stalled disk) must not keep sends waiting: the backstop remains.
    this.holdTimer = setTimeout(() => this.release(), MAX_HOLD_MS);
    worker.postMessage('held');
  }

  private release(): void {
    if (this.holdTimer === undefined) return;
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.gate.release();
  }

  /** Stops the worker after a last checkpoint; before the main connection closes. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.release();
    const worker = this.worker;
    this.worker = undefined;
    if (worker === undefined) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('stop');
    // A worker stuck in a checkpoint is cut short: the WAL it leaves is checkpointed at next open.
    const timeout = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(timeout);
  }
}

/** Only a database file has a WAL to checkpoint. */
export function hasWalFile(path: string): boolean {
  return path !== '' && path !== ':memory:' && !path.startsWith('file::memory:');
}
