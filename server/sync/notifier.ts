/**
 * Wakes waiting syncs (long-polls and WebSockets) for what concerns their user
 * only (ARCHITECTURE "Hot paths"). A waiter registers under its user and the
 * rooms it is in; a room notification wakes the waiters of that room, a user
 * notification the waiters of that user. Wakes run in bounded slices, one slice
 * per macrotask, so a thousand waiters resuming do not hold the loop in one turn
 * (nor interleave too many computations, see DEFAULT_WAKE_SLICE).
 *
 * Race-free by marks: a sync takes `mark()` before it reads stream positions and
 * passes it to `waitForChange`; anything notified for its user or rooms after the
 * mark makes the wait return at once instead of sleeping through it.
 */
import type { RoomEvent } from '../../protocol/events.js';

export type RoomStream = 'events' | 'typing' | 'receipts' | 'account_data' | 'presence' | 'device_lists';
export type UserStream = 'account_data' | 'presence' | 'to_device' | 'device_lists' | 'receipts' | 'invites';

export interface WaitRequest {
  readonly userId: string;
  /** The rooms whose changes concern the user (joined, invited, knocked...). */
  readonly roomIds: Iterable<string>;
  /** From `mark()`, taken before the caller read the positions it is waiting beyond. */
  readonly sinceMark: number;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Room streams whose changes this wait does not care about (a sliding sync without the receipts extension). */
  readonly ignoredRoomStreams?: ReadonlySet<RoomStream>;
}

/** Why a wait ended. */
export type WaitOutcome = 'changed' | 'timeout' | 'aborted';

/**
 * One waiting sync: a single record holding what its wait needs (it is its own abort
 * listener and its timer's argument), so a wait costs this, a timer and a promise
 * rather than chains of closures. Waits outlive several young-generation collections,
 * so whatever they hold is copied and promoted: the less the better.
 */
class Waiter {
  /** A receipts-only wake waiting for more receipts to come along. */
  deferredWake: NodeJS.Timeout | undefined = undefined;
  /** Its own timer (short waits), or undefined when a shared bucket times it out (long ones). */
  timer: NodeJS.Timeout | undefined = undefined;
  /** The shared bucket it is in, if any. */
  bucket: Bucket | undefined = undefined;
  /** The waits of its signal, if it has one (held here: no lookup by signal to leave them). */
  signalWaits: SignalWaits | undefined = undefined;
  /** In the notifier's indexes by user and room (taken out once: on wake, or when settled). */
  registered = false;
  private settled = false;

  constructor(
    private readonly notifier: SyncNotifier,
    readonly userId: string,
    readonly roomIds: readonly string[],
    readonly ignoredRoomStreams: ReadonlySet<RoomStream> | undefined,
    readonly signal: AbortSignal | undefined,
    private readonly resolve: (outcome: WaitOutcome) => void,
  ) {}

  settle(outcome: WaitOutcome): void {
    if (this.settled) return;
    this.settled = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.deferredWake !== undefined) clearTimeout(this.deferredWake);
    this.notifier.release(this);
    this.resolve(outcome);
  }
}

/**
 * Waits this long or longer end in shared buckets of BUCKET_MS (one timer each) rather
 * than a timer each: a WebSocket waits 30 s at every round, a thousand of them a round
 * per message, and nearly every wait is woken long before its end. They end up to
 * BUCKET_MS late, never early.
 */
const BUCKETED_WAIT_MS = 2_000;
const BUCKET_MS = 250;

function timeOut(waiter: Waiter): void {
  waiter.settle('timeout');
}

/** The waiters of one room or user: most rooms have one (a DM, a user's own room), held without a Set. */
type Waiters = Waiter | Set<Waiter>;

/** Long waits ending together (see BUCKETED_WAIT_MS), with their timer. */
interface Bucket {
  readonly end: number;
  readonly waiters: Set<Waiter>;
  readonly timer: NodeJS.Timeout;
}

/**
 * The waits made with one signal, and the signal's one abort listener: made at its first
 * wait and kept for its life (a WebSocket's sync stream waits on the same signal at every round).
 */
class SignalWaits {
  waiters: Waiters | undefined = undefined;

  add(waiter: Waiter): void {
    const waiters = this.waiters;
    if (waiters === undefined) this.waiters = waiter;
    else if (waiters instanceof Set) waiters.add(waiter);
    else this.waiters = new Set([waiters, waiter]);
  }

  remove(waiter: Waiter): void {
    const waiters = this.waiters;
    if (waiters === waiter) this.waiters = undefined;
    else if (waiters instanceof Set) waiters.delete(waiter);
  }

  abortAll(): void {
    const waiters = this.waiters;
    this.waiters = undefined;
    if (waiters instanceof Set) for (const waiter of [...waiters]) waiter.settle('aborted');
    else waiters?.settle('aborted');
  }
}

/**
 * Waiters woken per turn of the event loop. Woken syncs compute and answer within the
 * turn, interleaving at every `await`: the more woken together, the more computations'
 * intermediate objects are alive at once and outlive young-generation collections (each
 * promoted, then collected by a full one). 20 rather than 200 halves what a wake of 100
 * connections promotes (bench/README.md, wake-gc); one by one costs more in turns of the loop.
 */
const DEFAULT_WAKE_SLICE = 20;
/**
 * Every member's delivery receipt for a message is a receipt change in the room, and a
 * thousand members going idle a thousand presence changes: receipts-only and
 * presence-only wakes wait this long so that a burst of them makes one response.
 */
const DEFAULT_RECEIPT_COALESCE_MS = 50;

export class SyncNotifier {
  private sequence = 0;
  private readonly roomMarks = new Map<string, number>();
  private readonly userMarks = new Map<string, number>();
  private readonly waitersByRoom = new Map<string, Waiters>();
  private readonly waitersByUser = new Map<string, Waiters>();
  private readonly wakeQueue: Waiter[] = [];
  private wakeScheduled = false;
  private waiterCount = 0;
  private readonly wakeSlice: number;
  private readonly receiptCoalesceMs: number;
  private readonly wakeNextSlice = () => this.wakeSliceOfQueue();
  private readonly queueWakeOf = (waiter: Waiter) => this.queueWake(waiter);
  /**
   * The waits of each signal: one abort listener per signal for all its waits (a WebSocket's
   * sync stream keeps one signal for every round) instead of an add and a remove at every wait.
   */
  private readonly signalWaits = new WeakMap<AbortSignal, SignalWaits>();
  /** Long waits by the end of their bucket (see BUCKETED_WAIT_MS). */
  private readonly buckets = new Map<number, Bucket>();

  private readonly bucketedWaitMs: number;
  private readonly bucketMs: number;

  constructor(
    options: {
      wakeSlice?: number;
      receiptCoalesceMs?: number;
      bucketedWaitMs?: number;
      bucketMs?: number;
    } = {},
  ) {
    this.wakeSlice = Math.max(1, options.wakeSlice ?? DEFAULT_WAKE_SLICE);
    this.bucketedWaitMs = options.bucketedWaitMs ?? BUCKETED_WAIT_MS;
    this.bucketMs = Math.max(1, options.bucketMs ?? BUCKET_MS);
    this.receiptCoalesceMs = Math.max(0, options.receiptCoalesceMs ?? DEFAULT_RECEIPT_COALESCE_MS);
  }

  /** The current notification sequence: take it before reading stream positions. */
  mark(): number {
    return this.sequence;
  }

  /** Something changed in these rooms on `stream`: wakes their members' waiters. */
  notifyRooms(roomIds: Iterable<string>, stream: RoomStream): void {
    const mark = ++this.sequence;
    // Receipts and presence are not worth a wake each: a room's members going idle, or
    // receiving a message, make bursts of them that one answer can carry.
    const defer = (stream === 'receipts' || stream === 'presence') && this.receiptCoalesceMs > 0;
    for (const roomId of roomIds) {
      this.roomMarks.set(roomId, mark);
      forEachWaiter(this.waitersByRoom.get(roomId), (waiter) => {
        if (waiter.ignoredRoomStreams?.has(stream)) return;
        if (defer) this.deferWake(waiter);
        else this.queueWake(waiter);
      });
    }
  }

  /** Something changed for these users on `stream` (their account data, presence they see, invites...). */
  notifyUsers(userIds: Iterable<string>, _stream: UserStream): void {
    const mark = ++this.sequence;
    for (const userId of userIds) {
      this.userMarks.set(userId, mark);
      forEachWaiter(this.waitersByUser.get(userId), this.queueWakeOf);
    }
  }

  /**
   * Resolves when something concerning the user or the rooms is notified after `sinceMark`,
   * or at the timeout or abort. An array of `roomIds` is held as it is: the caller must not
   * change it while the wait lasts.
   */
  waitForChange(request: WaitRequest): Promise<WaitOutcome> {
    const roomIds = Array.isArray(request.roomIds)
      ? (request.roomIds as readonly string[])
      : [...request.roomIds];
    if (this.changedSince(request.userId, roomIds, request.sinceMark)) return Promise.resolve('changed');
    const { signal } = request;
    if (signal?.aborted) return Promise.resolve('aborted');
    if (request.timeoutMs <= 0) return Promise.resolve('timeout');
    return new Promise<WaitOutcome>((resolve) => {
      const waiter = new Waiter(this, request.userId, roomIds, request.ignoredRoomStreams, signal, resolve);
      if (request.timeoutMs >= this.bucketedWaitMs) this.addToBucket(waiter, request.timeoutMs);
      else waiter.timer = setTimeout(timeOut, request.timeoutMs, waiter);
      if (signal !== undefined) this.listenTo(signal, waiter);
      this.register(waiter);
    });
  }

  /** Takes a settled waiter out of everything that could still end it. */
  release(waiter: Waiter): void {
    if (waiter.registered) this.unregister(waiter);
    waiter.signalWaits?.remove(waiter);
    const bucket = waiter.bucket;
    if (bucket?.waiters.delete(waiter) && bucket.waiters.size === 0) {
      // No timer left behind for nobody (it would keep the process up until it fires).
      clearTimeout(bucket.timer);
      if (this.buckets.get(bucket.end) === bucket) this.buckets.delete(bucket.end);
    }
  }

  private listenTo(signal: AbortSignal, waiter: Waiter): void {
    let waits = this.signalWaits.get(signal);
    if (waits === undefined) {
      const made = new SignalWaits();
      waits = made;
      this.signalWaits.set(signal, made);
      // Stays for the signal's life (it fires once): later waits on it need no listener of their own.
      signal.addEventListener('abort', () => made.abortAll(), { once: true });
    }
    waits.add(waiter);
    waiter.signalWaits = waits;
  }

  private addToBucket(waiter: Waiter, timeoutMs: number): void {
    const end = Math.ceil((performance.now() + timeoutMs) / this.bucketMs) * this.bucketMs;
    let bucket = this.buckets.get(end);
    if (bucket === undefined) {
      const timer = setTimeout(this.endBucketOf, Math.max(0, end - performance.now()), end);
      bucket = { end, waiters: new Set(), timer };
      this.buckets.set(end, bucket);
    }
    bucket.waiters.add(waiter);
    waiter.bucket = bucket;
  }

  private readonly endBucketOf = (end: number) => {
    const bucket = this.buckets.get(end);
    this.buckets.delete(end);
    if (bucket !== undefined) for (const waiter of [...bucket.waiters]) waiter.settle('timeout');
  };

  /** How many waits are registered (metrics, tests). */
  get waiting(): number {
    return this.waiterCount;
  }

  private changedSince(userId: string, roomIds: readonly string[], sinceMark: number): boolean {
    if (this.sequence <= sinceMark) return false;
    if ((this.userMarks.get(userId) ?? 0) > sinceMark) return true;
    return roomIds.some((roomId) => (this.roomMarks.get(roomId) ?? 0) > sinceMark);
  }

  private register(waiter: Waiter): void {
    waiter.registered = true;
    this.waiterCount++;
    addTo(this.waitersByUser, waiter.userId, waiter);
    for (const roomId of waiter.roomIds) addTo(this.waitersByRoom, roomId, waiter);
  }

  /** Takes the waiter out of the indexes (once: it is woken or settled, or both). */
  unregister(waiter: Waiter): void {
    waiter.registered = false;
    if (!removeFrom(this.waitersByUser, waiter.userId, waiter)) return;
    this.waiterCount--;
    for (const roomId of waiter.roomIds) removeFrom(this.waitersByRoom, roomId, waiter);
  }

  private deferWake(waiter: Waiter): void {
    waiter.deferredWake ??= setTimeout(() => this.queueWake(waiter), this.receiptCoalesceMs);
  }

  private queueWake(waiter: Waiter): void {
    if (waiter.deferredWake !== undefined) clearTimeout(waiter.deferredWake);
    // Taken out of the indexes now, so a burst of notifications queues it once.
    this.unregister(waiter);
    this.wakeQueue.push(waiter);
    if (!this.wakeScheduled) {
      this.wakeScheduled = true;
      setImmediate(this.wakeNextSlice);
    }
  }

  private wakeSliceOfQueue(): void {
    const slice = this.wakeQueue.splice(0, this.wakeSlice);
    for (const waiter of slice) waiter.settle('changed');
    if (this.wakeQueue.length > 0) setImmediate(this.wakeNextSlice);
    else this.wakeScheduled = false;
  }
}

/** Waking takes a waiter out of its indexes as it goes: a Set's iteration carries on past such deletes. */
function forEachWaiter(waiters: Waiters | undefined, visit: (waiter: Waiter) => void): void {
  if (waiters instanceof Set) for (const waiter of waiters) visit(waiter);
  else if (waiters !== undefined) visit(waiters);
}

function addTo(index: Map<string, Waiters>, key: string, waiter: Waiter): void {
  const waiters = index.get(key);
  if (waiters === undefined) index.set(key, waiter);
  else if (waiters instanceof Set) waiters.add(waiter);
  else index.set(key, new Set([waiters, waiter]));
}

/** Whether the waiter was there. */
function removeFrom(index: Map<string, Waiters>, key: string, waiter: Waiter): boolean {
  const waiters = index.get(key);
  if (waiters === waiter) {
    index.delete(key);
    return true;
  }
  if (!(waiters instanceof Set) || !waiters.delete(waiter)) return false;
  if (waiters.size === 1) index.set(key, waiters.values().next().value as Waiter);
  return true;
}

/**
 * Wakes the room's waiters for each persisted event, and the target of a membership
 * event too (an invitee, a user joined or kicked elsewhere is not yet/no longer among
 * the room's waiters). Returns an unsubscribe.
 */
export function notifyOnRoomEvents(
  notifier: SyncNotifier,
  sender: { onEventPersisted(listener: (persisted: { event: RoomEvent }) => void): () => void },
): () => void {
  return sender.onEventPersisted(({ event }) => {
    notifier.notifyRooms([event.roomId], 'events');
    const { type, state_key: stateKey } = event.pdu;
    if (type === 'm.room.member' && typeof stateKey === 'string') notifier.notifyUsers([stateKey], 'invites');
  });
}

/**
 * Wakes the user and the members of their joined rooms on each presence change
 * (presence is sent to users who share a room, client-server "Presence").
 */
export function notifyOnPresence(
  notifier: SyncNotifier,
  presence: { onPresenceChanged(listener: (record: { userId: string }) => void): () => void },
  membership: { joinedRooms(userId: string): Promise<string[]> },
  onError: (error: unknown) => void,
): () => void {
  return presence.onPresenceChanged(({ userId }) => {
    notifier.notifyUsers([userId], 'presence');
    membership.joinedRooms(userId).then((roomIds) => notifier.notifyRooms(roomIds, 'presence'), onError);
  });
}
