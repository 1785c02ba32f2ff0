/**
 * Wakes waiting syncs (long-polls and WebSockets) for what concerns their user
 * only (ARCHITECTURE "Hot paths"). A waiter registers under its user and the
 * rooms it is in; a room notification wakes the waiters of that room, a user
 * notification the waiters of that user. Wakes run in bounded slices, one slice
 * per macrotask, so a thousand waiters resuming do not hold the loop in one turn.
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

interface Waiter {
  readonly userId: string;
  readonly roomIds: readonly string[];
  readonly ignoredRoomStreams: ReadonlySet<RoomStream> | undefined;
  /** A receipts-only wake waiting for more receipts to come along. */
  deferredWake?: NodeJS.Timeout;
  settle(outcome: WaitOutcome): void;
}

const DEFAULT_WAKE_SLICE = 200;
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
  private readonly waitersByRoom = new Map<string, Set<Waiter>>();
  private readonly waitersByUser = new Map<string, Set<Waiter>>();
  private readonly wakeQueue: Waiter[] = [];
  private wakeScheduled = false;
  private readonly wakeSlice: number;
  private readonly receiptCoalesceMs: number;

  constructor(options: { wakeSlice?: number; receiptCoalesceMs?: number } = {}) {
    this.wakeSlice = Math.max(1, options.wakeSlice ?? DEFAULT_WAKE_SLICE);
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
      const waiters = this.waitersByRoom.get(roomId);
      if (waiters === undefined) continue;
      for (const waiter of waiters) {
        if (waiter.ignoredRoomStreams?.has(stream)) continue;
        if (defer) this.deferWake(waiter);
        else this.queueWake(waiter);
      }
    }
  }

  /** Something changed for these users on `stream` (their account data, presence they see, invites...). */
  notifyUsers(userIds: Iterable<string>, _stream: UserStream): void {
    const mark = ++this.sequence;
    for (const userId of userIds) {
      this.userMarks.set(userId, mark);
      const waiters = this.waitersByUser.get(userId);
      if (waiters !== undefined) for (const waiter of waiters) this.queueWake(waiter);
    }
  }

  /** Resolves when something concerning the user or the rooms is notified after `sinceMark`, or at the timeout or abort. */
  waitForChange(request: WaitRequest): Promise<WaitOutcome> {
    const roomIds = [...request.roomIds];
    if (this.changedSince(request.userId, roomIds, request.sinceMark)) return Promise.resolve('changed');
    if (request.signal?.aborted) return Promise.resolve('aborted');
    if (request.timeoutMs <= 0) return Promise.resolve('timeout');
    return new Promise<WaitOutcome>((resolve) => {
      let settled = false;
      const waiter: Waiter = {
        userId: request.userId,
        roomIds,
        ignoredRoomStreams: request.ignoredRoomStreams,
        settle: (outcome) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          clearTimeout(waiter.deferredWake);
          request.signal?.removeEventListener('abort', onAbort);
          this.unregister(waiter);
          resolve(outcome);
        },
      };
      const onAbort = () => waiter.settle('aborted');
      const timer = setTimeout(() => waiter.settle('timeout'), request.timeoutMs);
      request.signal?.addEventListener('abort', onAbort, { once: true });
      this.register(waiter);
    });
  }

  /** How many waits are registered (metrics, tests). */
  get waiting(): number {
    let count = 0;
    for (const waiters of this.waitersByUser.values()) count += waiters.size;
    return count;
  }

  private changedSince(userId: string, roomIds: readonly string[], sinceMark: number): boolean {
    if (this.sequence <= sinceMark) return false;
    if ((this.userMarks.get(userId) ?? 0) > sinceMark) return true;
    return roomIds.some((roomId) => (this.roomMarks.get(roomId) ?? 0) > sinceMark);
  }

  private register(waiter: Waiter): void {
    addTo(this.waitersByUser, waiter.userId, waiter);
    for (const roomId of waiter.roomIds) addTo(this.waitersByRoom, roomId, waiter);
  }

  private unregister(waiter: Waiter): void {
    removeFrom(this.waitersByUser, waiter.userId, waiter);
    for (const roomId of waiter.roomIds) removeFrom(this.waitersByRoom, roomId, waiter);
  }

  private deferWake(waiter: Waiter): void {
    waiter.deferredWake ??= setTimeout(() => this.queueWake(waiter), this.receiptCoalesceMs);
  }

  private queueWake(waiter: Waiter): void {
    clearTimeout(waiter.deferredWake);
    // Taken out of the indexes now, so a burst of notifications queues it once.
    this.unregister(waiter);
    this.wakeQueue.push(waiter);
    if (!this.wakeScheduled) {
      this.wakeScheduled = true;
      setImmediate(() => this.wakeSliceOfQueue());
    }
  }

  private wakeSliceOfQueue(): void {
    const slice = this.wakeQueue.splice(0, this.wakeSlice);
    for (const waiter of slice) waiter.settle('changed');
    if (this.wakeQueue.length > 0) setImmediate(() => this.wakeSliceOfQueue());
    else this.wakeScheduled = false;
  }
}

function addTo(index: Map<string, Set<Waiter>>, key: string, waiter: Waiter): void {
  let set = index.get(key);
  if (set === undefined) {
    set = new Set();
    index.set(key, set);
  }
  set.add(waiter);
}

function removeFrom(index: Map<string, Set<Waiter>>, key: string, waiter: Waiter): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(waiter);
  if (set.size === 0) index.delete(key);
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
