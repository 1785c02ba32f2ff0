/**
 * Work queued under a key runs one batch at a time per key, in arrival order;
 * different keys run concurrently. What arrives while a batch runs waits and is
 * handed over, together, to the next batch (so a busy room commits many events
 * per transaction while a quiet one commits each at once).
 */
export type BatchRunner<T> = (key: string, pending: T[]) => Promise<void>;

export class KeyedBatchQueue<T> {
  private readonly queues = new Map<string, T[]>();
  private readonly running = new Set<Promise<void>>();

  /**
   * `runBatch` takes the items it handles from the front of `pending`, settles each of them
   * itself and never rejects. It may put items back at the front for another try, but must
   * make progress: the queue calls it again for as long as `pending` is not empty.
   */
  constructor(
    private readonly runBatch: BatchRunner<T>,
    /** Called if `runBatch` rejects after all; whatever was still queued under the key is dropped. */
    private readonly onRunnerFailure: (error: unknown, key: string, dropped: T[]) => void,
  ) {}

  push(key: string, item: T): void {
    const pending = this.queues.get(key);
    if (pending !== undefined) {
      pending.push(item);
      return;
    }
    const fresh = [item];
    this.queues.set(key, fresh);
    const drain = this.drain(key, fresh);
    this.running.add(drain);
    void drain.then(() => this.running.delete(drain));
  }

  /** Resolves once everything queued so far (and whatever it queues meanwhile) has run. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private async drain(key: string, pending: T[]): Promise<void> {
    try {
      while (pending.length > 0) {
        await this.runBatch(key, pending);
      }
    } catch (error) {
      this.onRunnerFailure(error, key, pending.splice(0));
    } finally {
      // Synchronously after the last check: an item pushed from now on starts a new queue.
      this.queues.delete(key);
    }
  }
}
