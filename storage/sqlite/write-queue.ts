import type Database from 'better-sqlite3';
import { StorageError } from '../errors.js';
import type { CommitGate } from './checkpointer.js';

/** Queues one synchronous write and resolves with its result once it has committed. */
export type EnqueueWrite = <T>(write: () => T) => Promise<T>;

interface QueuedWrite {
  readonly write: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** The writes of one `Storage.transaction` call (or of one standalone writer call): all or nothing. */
export class WriteBatch {
  readonly writes: QueuedWrite[] = [];
  private sealed = false;

  constructor(private readonly settleQuietly: boolean) {}

  readonly enqueue: EnqueueWrite = <T>(write: () => T): Promise<T> => {
    if (this.sealed) {
      throw new StorageError(
        'INVALID_TRANSACTION',
        'a write was queued after its transaction callback returned (was the callback async?)',
      );
    }
    const promise = new Promise<T>((resolve, reject) => {
      this.writes.push({ write, resolve: resolve as (value: unknown) => void, reject });
    });
    // Inside a transaction the caller may await only the transaction itself; a rollback must not
    // then surface as an unhandled rejection of each write's promise.
    if (this.settleQuietly) promise.catch(() => {});
    return promise;
  };

  seal(): void {
    this.sealed = true;
  }
}

interface SubmittedBatch {
  readonly batch: WriteBatch;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

type BatchOutcome =
  | { readonly ok: true; readonly values: unknown[] }
  | { readonly ok: false; readonly error: unknown };

/**
 * Group commit: every batch submitted during one event-loop turn is written in
 * one SQLite transaction on the next turn, each batch inside its own savepoint
 * so that one failing batch rolls back alone. Writes are synchronous inside
 * the transaction; nothing awaits there. While held (checkpointer.ts), batches
 * wait in the queue and are committed together on release.
 */
export class SqliteWriteQueue implements CommitGate {
  private pending: SubmittedBatch[] = [];
  private flushScheduled: NodeJS.Immediate | null = null;
  private held = false;
  /** Transactions committed so far (benchmarks count commits per event). */
  commits = 0;
  /** Nested in runGroup it is a savepoint; a group of one batch runs it alone (its failure holds nothing else). */
  private readonly runBatch: Database.Transaction<(batch: WriteBatch) => unknown[]>;
  private readonly runGroup: Database.Transaction<(batches: readonly SubmittedBatch[]) => BatchOutcome[]>;

  constructor(
    sqlite: Database.Database,
    private readonly translateError: (error: unknown) => unknown,
    /** Called after each committed group (the checkpointer counts them). */
    private readonly afterCommit: () => void = () => {},
  ) {
    // Called inside runGroup, better-sqlite3 turns this nested transaction into a savepoint.
    this.runBatch = sqlite.transaction((batch: WriteBatch) => batch.writes.map((queued) => queued.write()));
    this.runGroup = sqlite.transaction((batches: readonly SubmittedBatch[]) =>
      batches.map((submitted): BatchOutcome => {
        try {
          return { ok: true, values: this.runBatch(submitted.batch) };
        } catch (error) {
          return { ok: false, error: this.translateError(error) };
        }
      }),
    );
  }

  submit(batch: WriteBatch): Promise<void> {
    batch.seal();
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ batch, resolve, reject });
      this.scheduleFlush();
    });
  }

  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    if (this.pending.length > 0) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    this.flushScheduled ??= setImmediate(() => {
      this.flushScheduled = null;
      if (!this.held) this.commitPending();
    });
  }

  /** Writes everything queued so far, now, held or not. */
  flush(): void {
    this.commitPending();
  }

  private commitPending(): void {
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = null;
    const batches = this.pending;
    this.pending = [];
    if (batches.length === 0) return;

    let outcomes: BatchOutcome[];
    try {
      outcomes =
        batches.length === 1
          ? [{ ok: true, values: this.runBatch.immediate(batches[0]!.batch) }]
          : this.runGroup.immediate(batches);
      this.commits++;
      this.afterCommit();
    } catch (error) {
      // The commit itself failed (disk full, lock timeout), or a group's only batch did: nothing was kept.
      const translated = this.translateError(error);
      outcomes = batches.map(() => ({ ok: false, error: translated }));
    }
    batches.forEach((submitted, index) => {
      settle(submitted, outcomes[index]!);
    });
  }
}

function settle(submitted: SubmittedBatch, outcome: BatchOutcome): void {
  const { writes } = submitted.batch;
  if (outcome.ok) {
    writes.forEach((queued, index) => {
      queued.resolve(outcome.values[index]);
    });
    submitted.resolve();
  } else {
    for (const queued of writes) queued.reject(outcome.error);
    submitted.reject(outcome.error);
  }
}
