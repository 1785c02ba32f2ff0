/**
 * Push delivery yields the CPU to sends, for a bounded time (issue #8: push delivery adds
 * nothing to send latency). On two CPUs a send's 100 gateway requests, run beside the
 * next sends, take CPU from them: the delivery worker's thread is at SCHED_IDLE, but its
 * isolate's GC and compile helpers, a gateway on the same host and the main thread's
 * share (posting, settlements) are not. So while events are being sent, push work waits
 * until no event was sent for `quietMs`, or until it has waited `maxHoldMs` (then
 * everything held goes: a server that never pauses still delivers, at most that much
 * later). Two places hold: the main thread's posts to the delivery line (held-posts.ts),
 * and the line's gateway requests (gateway-queues.ts: requests under way finish, and the
 * next one of a queue waits). A push's hold counts from its delivery to the first.
 *
 * The main thread counts its sends in a shared 32-bit counter (SendActivity: one
 * Atomics.add per persisted event); SendYield reads it when about to start something,
 * and notes the time it saw the count change. No clock is shared between threads: while
 * something is held it looks again every quietMs / 2, so a send is noticed at most that
 * late, and what is held starts between quietMs and 1.5 x quietMs after the last send.
 */

/** The send counter, on the thread that persists events. */
export class SendActivity {
  readonly buffer = new SharedArrayBuffer(4);
  private readonly count = new Int32Array(this.buffer);

  /** An event was persisted: delivery holds back new gateway requests for a while. */
  noteSend(): void {
    Atomics.add(this.count, 0, 1);
  }
}

export interface SendYieldOptions {
  /** SendActivity's buffer. */
  readonly sends: SharedArrayBuffer;
  /** push.delivery_quiet_ms: no send for this long, and held requests start. */
  readonly quietMs: number;
  /** push.delivery_max_hold_ms: a push ready this long ago starts regardless. */
  readonly maxHoldMs: number;
}

/** The delivery side: starts a request now, or holds it until the sends pause (bounded). */
export class SendYield {
  private readonly sends: Int32Array | undefined;
  private seen = 0;
  /** When the count was last seen to change (this thread's clock). */
  private lastSendAt = Number.NEGATIVE_INFINITY;
  private held: (() => void)[] = [];
  /** The earliest `readySince` among the held. */
  private oldest = Number.POSITIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  /** `options` undefined (or a zero duration): nothing is ever held. */
  constructor(
    private readonly options: SendYieldOptions | undefined,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.sends =
      options !== undefined && options.quietMs > 0 && options.maxHoldMs > 0
        ? new Int32Array(options.sends)
        : undefined;
    if (this.sends !== undefined) this.seen = Atomics.load(this.sends, 0);
  }

  /** The time to give as `readySince` for a push that is ready now. */
  now(): number {
    return this.sends === undefined ? 0 : this.clock();
  }

  /**
   * Runs `start` now when no send happened within quietMs or the push has been ready
   * since maxHoldMs ago, else once either holds.
   */
  start(readySince: number, start: () => void): void {
    if (this.sends === undefined) {
      start();
      return;
    }
    const now = this.clock();
    if (this.quiet(now)) {
      // What was held is older: it goes first.
      if (this.held.length > 0) this.release();
      start();
      return;
    }
    if (now - readySince >= this.options!.maxHoldMs) {
      start();
      return;
    }
    this.held.push(start);
    if (readySince < this.oldest) this.oldest = readySince;
    this.arm(now);
  }

  /** Starts everything held now, whatever the sends (stopping). */
  releaseHeld(): void {
    this.disarm();
    if (this.held.length > 0) this.release();
  }

  /** Drops what is held (the caller settles it) and the timer. */
  stop(): void {
    this.held = [];
    this.oldest = Number.POSITIVE_INFINITY;
    this.disarm();
  }

  /** Whether no send was seen within quietMs; notes a change of the count as a send now. */
  private quiet(now: number): boolean {
    const count = Atomics.load(this.sends!, 0);
    if (count !== this.seen) {
      this.seen = count;
      this.lastSendAt = now;
    }
    return now - this.lastSendAt >= this.options!.quietMs;
  }

  private check(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.held.length === 0) return;
    const now = this.clock();
    if (this.quiet(now) || now - this.oldest >= this.options!.maxHoldMs) this.release();
    else this.arm(now);
  }

  /** Looks again at the first of: the quiet end, the oldest's bound, quietMs / 2 from now. */
  private arm(now: number): void {
    const { quietMs, maxHoldMs } = this.options!;
    const at = Math.min(this.lastSendAt + quietMs, this.oldest + maxHoldMs, now + quietMs / 2);
    if (this.timer !== undefined && this.timerAt <= at) return;
    this.disarm();
    this.timerAt = at;
    this.timer = setTimeout(() => this.check(), Math.max(1, Math.ceil(at - now)));
    this.timer.unref();
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private release(): void {
    const held = this.held;
    this.held = [];
    this.oldest = Number.POSITIVE_INFINITY;
    this.disarm();
    for (const start of held) start();
  }
}
