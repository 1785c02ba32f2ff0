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
 * The worker starts with the first burst of commits, so an idle server and a short
 * test never pay for a thread.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** WAL pages (4 KiB) past which the committing connection checkpoints itself after all. */
const BACKSTOP_PAGES = 16_384;
/** Commits counted before the worker is started. */
const COMMITS_BEFORE_START = 64;
const INTERVAL_MS = 100;
const MAX_STARTS = 3;

// Runs in the worker (CommonJS, `eval`): checkpoints every interval until told to stop.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { timeout: 1000 });
db.pragma('busy_timeout = 1000');
const timer = setInterval(() => {
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {}
}, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {}
  db.close();
  process.exit(0);
});
`;

export class BackgroundCheckpointer {
  private worker: Worker | undefined;
  private commits = 0;
  private starts = 0;
  private stopped = false;

  /** `path` is the database file; the main connection must already be in WAL mode. */
  constructor(
    private readonly path: string,
    sqlite: Database.Database,
  ) {
    sqlite.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
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
      },
      // The server's own flags (--import tsx, --cpu-prof) are not for this thread.
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: 16 },
    });
    // A checkpointer that fails leaves the backstop to do its work; nothing to report upward.
    worker.on('error', () => {});
    worker.once('exit', () => {
      if (this.worker === worker) this.worker = undefined;
    });
    worker.unref();
    this.worker = worker;
  }

  /** Stops the worker after a last checkpoint; before the main connection closes. */
  async stop(): Promise<void> {
    this.stopped = true;
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
