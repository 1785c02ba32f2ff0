/**
 * While pushes wait too long, the delivery worker leaves SCHED_IDLE for its nice value,
 * and goes back once it has caught up. At SCHED_IDLE it gets almost nothing of a saturated
 * CPU (weight 3 against 1,024), so a busy server would fill the backlog bound and drop
 * notifications (push-delivery.ts); at nice 10 (weight 110) they are delayed instead.
 * Runs on the main thread, which sees the backlog and is not starved itself.
 *
 * The age of the oldest waiting push is that of the oldest notify message not settled,
 * taken first in, first out: messages settle about in order, and where they do not the
 * age read is younger than the true one, so the worker is raised a little later, never
 * sooner. Where leaving SCHED_IDLE is refused (an unprivileged server: see
 * setThreadPolicy), it is said once and not tried again: the backlog bound still holds.
 */

export interface BacklogPriorityOptions {
  /** The oldest waiting push is older than this: the worker is raised. */
  readonly raiseAfterMs: number;
  /** Sets the worker's policy; resolves with null when done, else why not. */
  readonly setPolicy: (policy: 'idle' | 'other') => Promise<string | null>;
  readonly log: {
    warn(fields: object, message: string): void;
    info(fields: object, message: string): void;
  };
}

/** Compacted once this many settled entries lead the list. */
const COMPACT_AFTER = 1_024;

export class BacklogPriority {
  /** When each notify message not yet settled was posted (performance.now()), from `head` on. */
  private postedAt: number[] = [];
  private head = 0;
  private raised = false;
  private switching = false;
  /** A switch was refused: the worker stays as it is. */
  private refused = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: BacklogPriorityOptions) {}

  /** A notify message went to the worker. */
  posted(): void {
    this.postedAt.push(performance.now());
    this.watch();
  }

  /** The worker finished with `count` notify messages. */
  settled(count: number): void {
    this.head = Math.min(this.head + count, this.postedAt.length);
    if (this.head === this.postedAt.length) {
      this.postedAt = [];
      this.head = 0;
      // Caught up: back to SCHED_IDLE at once.
      if (this.raised) this.check();
    } else if (this.head >= COMPACT_AFTER) {
      this.postedAt = this.postedAt.slice(this.head);
      this.head = 0;
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Looks a few times per raiseAfterMs while anything waits or the worker is raised. */
  private watch(): void {
    if (this.timer !== undefined || this.stopped || this.refused) return;
    this.timer = setInterval(() => this.check(), Math.max(1, this.options.raiseAfterMs / 4));
    this.timer.unref();
  }

  private check(): void {
    const waiting = this.postedAt.length - this.head;
    const oldest = waiting === 0 ? 0 : performance.now() - this.postedAt[this.head]!;
    if (!this.raised && oldest >= this.options.raiseAfterMs) this.switchTo('other', oldest);
    // Lowered again once nothing waits longer than a quarter of the threshold.
    else if (this.raised && oldest < this.options.raiseAfterMs / 4) this.switchTo('idle', oldest);
    else if (!this.raised && waiting === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private switchTo(policy: 'idle' | 'other', oldestMs: number): void {
    if (this.switching || this.refused || this.stopped) return;
    this.switching = true;
    void this.options.setPolicy(policy).then((refusal) => {
      this.switching = false;
      if (refusal === null) {
        this.raised = policy === 'other';
        this.options.log.info(
          { oldestWaitingMs: Math.round(oldestMs) },
          this.raised
            ? 'Push delivery is behind: its worker runs at its nice value until it catches up'
            : 'Push delivery caught up: its worker is back at SCHED_IDLE',
        );
        // What settled meanwhile was not acted on (a switch was under way).
        this.check();
        return;
      }
      this.refused = true;
      this.stop();
      this.options.log.warn(
        { reason: refusal },
        policy === 'other'
          ? 'Push delivery is behind but its worker cannot leave SCHED_IDLE (needs CAP_SYS_NICE or RLIMIT_NICE >= 10, e.g. systemd LimitNICE=10); pushes may be dropped while the CPU is saturated'
          : 'Push delivery worker cannot return to SCHED_IDLE; it stays at its nice value',
      );
    });
  }
}
