/**
 * Receipts and read markers (client-server "Receipts", "Fully read markers"),
 * and Myelin's delivery receipts.
 *
 * A receipt only moves forward in the room's stream order: a receipt for an
 * event older than the user's current one is accepted and ignored (as Synapse
 * does). `io.myelin.delivered` is recorded when sync first hands an event to
 * one of the user's devices; it travels in `m.receipt` like `m.read`, so a
 * sender sees each message sent (stored), delivered and read. `m.fully_read`
 * is not a receipt but the user's room account data.
 */
import type { JsonObject } from '../../protocol/events.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { ReceiptRecord } from '../../storage/receipt-store.js';
import type { Storage } from '../../storage/storage.js';
import {
  type DeliveredMark,
  DeliveryRecorder,
  type DeliveryWaiter,
  deliveryKey,
  RECEIPT_DELIVERED,
} from './delivery-receipts.js';
import { ReceiptChanges } from './receipt-changes.js';

export const RECEIPT_READ = 'm.read';
export const RECEIPT_READ_PRIVATE = 'm.read.private';
export { RECEIPT_DELIVERED };
export const FULLY_READ = 'm.fully_read';

/** Receipt types a client may post to /receipt (m.fully_read is handled as a read marker). */
export const CLIENT_RECEIPT_TYPES: readonly string[] = [RECEIPT_READ, RECEIPT_READ_PRIVATE, FULLY_READ];

/** What receipts and read markers wake: sync's notifier (absent until sync is composed). */
export interface ReceiptWakeup {
  notifyRooms(roomIds: Iterable<string>, stream: 'receipts'): void;
  notifyUsers(userIds: Iterable<string>, stream: 'account_data' | 'receipts'): void;
}

export interface ReceiptServiceOptions {
  readonly storage: Storage;
  readonly now?: () => number;
  readonly notifier?: () => ReceiptWakeup | undefined;
  /** (user, room) pairs whose latest delivered position is remembered (default 100,000). */
  readonly deliveredCacheSize?: number;
  /** How long delivery receipts of a room are gathered before one wake announces them (default 100 ms). */
  readonly deliveredAnnounceDelayMs?: number;
  /** How long deliveries gather before one write records them all (default 10 ms). */
  readonly deliveryBatchDelayMs?: number;
}

export interface ReceiptInput {
  readonly roomId: string;
  readonly userId: string;
  readonly receiptType: string;
  readonly eventId: string;
  /** 'main' or a thread root ID for a threaded receipt; null or absent for an unthreaded one. */
  readonly threadId?: string | null;
}

/** Hears of a user's read receipt moving forward (push: notifications up to it are read). */
export type ReadReceiptListener = (receipt: {
  userId: string;
  roomId: string;
  threadId: string | null;
  eventId: string;
}) => Promise<void>;

export class ReceiptService {
  private readonly readListeners: ReadReceiptListener[] = [];
  private readonly storage: Storage;
  private readonly now: () => number;
  private readonly notifier: () => ReceiptWakeup | undefined;
  /** `${userId} ${roomId}` -> the user's latest delivered event there and its stream ordering. */
  private readonly delivered: LazyLruCache<string, DeliveredMark>;
  /** Writes delivery receipts in batches, one write per batch. */
  private readonly deliveries: DeliveryRecorder;
  /** Per receipt key, the write in progress: read-compare-write runs one at a time per key. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /**
   * Senders with delivery receipts not yet announced. Delivery receipts are
   * shown only to the sender of the delivered event, so only senders are woken,
   * once per window however many recipients' syncs marked delivery meanwhile
   * (waking every member for every member's delivery is quadratic in room size).
   */
  private readonly deliveredSendersToAnnounce = new Set<string>();
  /** Promises, so the 1,000 members of a room marking one event delivered at once read it once. */
  private readonly eventSenders = new LazyLruCache<string, Promise<string | undefined>>({ max: 10_000 });
  /** Where receipts last changed, so that syncs with nothing new skip the read. */
  private readonly changes = new ReceiptChanges();
  private deliveredAnnounceTimer: NodeJS.Timeout | undefined;
  private readonly deliveredAnnounceDelayMs: number;

  constructor(options: ReceiptServiceOptions) {
    this.storage = options.storage;
    this.now = options.now ?? Date.now;
    this.notifier = options.notifier ?? (() => undefined);
    this.deliveredAnnounceDelayMs = options.deliveredAnnounceDelayMs ?? 100;
    this.delivered = new LazyLruCache({ max: options.deliveredCacheSize ?? 100_000 });
    this.deliveries = new DeliveryRecorder({
      storage: this.storage,
      now: this.now,
      delivered: this.delivered,
      senderOf: (eventId) => this.senderOf(eventId),
      begin: (write) => this.changes.begin(write),
      end: (write, position) => this.changes.end(write, position),
      recorded: (senders) => {
        for (const sender of senders) this.announceDeliveredLater(sender);
      },
      ...(options.deliveryBatchDelayMs !== undefined ? { batchDelayMs: options.deliveryBatchDelayMs } : {}),
    });
  }

  /** Called, and awaited, after an m.read or m.read.private receipt moved and before syncs wake. */
  onReadReceipt(listener: ReadReceiptListener): void {
    this.readListeners.push(listener);
  }

  /**
   * Stores a receipt (or, for m.fully_read, the read marker) unless the user's
   * current one already points at the same or a later event. The caller has
   * checked that the event is in the room and visible to the user.
   */
  async setReceipt(input: ReceiptInput): Promise<void> {
    if (input.receiptType === FULLY_READ) {
      await this.setFullyRead(input.roomId, input.userId, input.eventId);
      return;
    }
    const threadId = input.threadId ?? null;
    const key = receiptKey(input.roomId, input.receiptType, input.userId, threadId);
    await this.oneAtATime(key, async () => {
      const current = await this.storage.receipts.getReceipt(
        input.roomId,
        input.receiptType,
        input.userId,
        threadId,
      );
      if (current?.eventId === input.eventId) return;
      if (current !== null && !(await this.isLater(input.eventId, current.eventId))) return;
      const data: JsonObject = { ts: this.now() };
      await this.tracked({ roomId: input.roomId }, () =>
        this.storage.receipts.putReceipt({
          roomId: input.roomId,
          receiptType: input.receiptType,
          userId: input.userId,
          threadId,
          eventId: input.eventId,
          data,
        }),
      );
      if (input.receiptType === RECEIPT_READ || input.receiptType === RECEIPT_READ_PRIVATE) {
        const moved = { userId: input.userId, roomId: input.roomId, threadId, eventId: input.eventId };
        for (const listener of this.readListeners) await listener(moved);
      }
      this.notifier()?.notifyRooms([input.roomId], 'receipts');
    });
  }

  /**
   * Records that `eventId` (and so everything before it in the room) reached one
   * of the user's devices. Cheap when nothing moves: the user's latest delivered
   * ordering per room is remembered, so repeated calls cost no database write.
   * `streamOrdering` may be given when the caller knows it (sync does), sparing a read.
   */
  async markDelivered(
    userId: string,
    roomId: string,
    eventId: string,
    streamOrdering?: number,
  ): Promise<void> {
    if (this.alreadyDelivered(deliveryKey(userId, roomId), eventId, streamOrdering ?? Infinity)) return;
    const ordering = streamOrdering ?? (await this.orderingInRoom(eventId, roomId));
    if (ordering === undefined) return;
    await this.deliveries.record(userId, roomId, eventId, ordering);
  }

  /**
   * As `markDelivered` with the ordering known, making no promise: `waiter` hears how it
   * went (sync records a delivery for each of the thousand members one message woke).
   */
  noteDelivered(
    userId: string,
    roomId: string,
    eventId: string,
    streamOrdering: number,
    waiter: DeliveryWaiter,
  ): void {
    const key = deliveryKey(userId, roomId);
    if (this.alreadyDelivered(key, eventId, streamOrdering)) return;
    this.deliveries.note(userId, roomId, eventId, streamOrdering, waiter, key);
  }

  /** The user's stored delivery in the room is this event or a later one. */
  private alreadyDelivered(key: string, eventId: string, streamOrdering: number): boolean {
    const known = this.delivered.get(key);
    return known !== undefined && (known.eventId === eventId || streamOrdering <= known.ordering);
  }

  /** Writes the delivery receipts still gathering (shutdown, tests). */
  flushDeliveries(): Promise<void> {
    return this.deliveries.flushNow();
  }

  /** A receipt write, announced to `changes` before it starts and recorded once it committed. */
  private async tracked(
    write: { roomId: string; deliveredTo?: string },
    put: () => Promise<number>,
  ): Promise<void> {
    this.changes.begin(write);
    let position: number | undefined;
    try {
      position = await put();
    } finally {
      this.changes.end(write, position);
    }
  }

  private senderOf(eventId: string): Promise<string | undefined> {
    let sender = this.eventSenders.get(eventId);
    if (sender === undefined) {
      const reading = this.storage.events.getEvent(eventId).then((event) => event?.pdu.sender);
      sender = reading;
      this.eventSenders.set(eventId, reading);
      // Not cached when unknown (or failed): the event may be stored later.
      reading.then(
        (found) => {
          if (found === undefined && this.eventSenders.get(eventId) === reading)
            this.eventSenders.delete(eventId);
        },
        () => {
          if (this.eventSenders.get(eventId) === reading) this.eventSenders.delete(eventId);
        },
      );
    }
    return sender;
  }

  private announceDeliveredLater(sender: string): void {
    this.deliveredSendersToAnnounce.add(sender);
    if (this.deliveredAnnounceTimer !== undefined) return;
    this.deliveredAnnounceTimer = setTimeout(() => this.announceDelivered(), this.deliveredAnnounceDelayMs);
    this.deliveredAnnounceTimer.unref();
  }

  private announceDelivered(): void {
    this.deliveredAnnounceTimer = undefined;
    const senders = [...this.deliveredSendersToAnnounce];
    this.deliveredSendersToAnnounce.clear();
    if (senders.length > 0) this.notifier()?.notifyUsers(senders, 'receipts');
  }

  /** Announces pending delivery receipts now (shutdown). */
  flushDeliveredAnnouncements(): void {
    clearTimeout(this.deliveredAnnounceTimer);
    this.announceDelivered();
  }

  /** Starts following receipt writes from the stream's current position (at start-up; idempotent). */
  async trackChanges(): Promise<void> {
    this.changes.startAt(await this.storage.receipts.latestReceiptPosition());
  }

  /** The receipts stream's current position (for sync tokens). */
  position(): Promise<number> {
    return this.storage.receipts.latestReceiptPosition();
  }

  /**
   * Whether nothing `viewer` could see in `roomIds` changed in (sincePosition, upToPosition]
   * (false when unsure): a sync may then skip receipts without reading them.
   */
  unchangedFor(
    viewer: string,
    roomIds: readonly string[],
    sincePosition: number,
    upToPosition: number,
  ): boolean {
    if (sincePosition >= upToPosition) return true;
    return this.changes.unchangedSince(viewer, roomIds, sincePosition);
  }

  /**
   * The `m.receipt` content per room for a sync: every current receipt when
   * `sincePosition` is null (initial sync), else those changed in
   * (sincePosition, upToPosition]. Other users' m.read.private are left out;
   * rooms with nothing to show are absent.
   */
  async receiptContentForRooms(
    requesterUserId: string,
    roomIds: readonly string[],
    sincePosition: number | null,
    upToPosition: number,
  ): Promise<Map<string, JsonObject>> {
    const contents = new Map<string, JsonObject>();
    if (roomIds.length === 0) return contents;
    if (sincePosition !== null && sincePosition < upToPosition) {
      if (!this.changes.tracking) this.changes.startAt(await this.storage.receipts.latestReceiptPosition());
      // The stream moves with every member's delivery; most of those concern someone else.
      if (this.changes.unchangedSince(requesterUserId, roomIds, sincePosition)) return contents;
    }
    // Delivery receipts are for the senders of the delivered events only.
    const visibility = { deliveredVisibleTo: requesterUserId };
    const records =
      sincePosition === null
        ? (await this.storage.receipts.receiptsOfRooms(roomIds, visibility)).filter(
            (record) => record.streamPosition <= upToPosition,
          )
        : sincePosition >= upToPosition
          ? []
          : await this.storage.receipts.receiptsChangedBetween(
              roomIds,
              sincePosition,
              upToPosition,
              visibility,
            );
    for (const record of records) {
      if (record.receiptType === RECEIPT_READ_PRIVATE && record.userId !== requesterUserId) continue;
      let content = contents.get(record.roomId);
      if (content === undefined) {
        content = {};
        contents.set(record.roomId, content);
      }
      addToReceiptContent(content, record);
    }
    return contents;
  }

  /** spec "Fully read markers": stored as the user's m.fully_read room account data; moves only forward. */
  private async setFullyRead(roomId: string, userId: string, eventId: string): Promise<void> {
    const key = receiptKey(roomId, FULLY_READ, userId, null);
    await this.oneAtATime(key, async () => {
      const current = await this.storage.accountData.getAccountData(userId, roomId, FULLY_READ);
      const currentEventId = current?.content.event_id;
      if (currentEventId === eventId) return;
      if (typeof currentEventId === 'string' && !(await this.isLater(eventId, currentEventId))) return;
      await this.storage.accountData.putAccountData(userId, roomId, FULLY_READ, { event_id: eventId });
      this.notifier()?.notifyUsers([userId], 'account_data');
    });
  }

  /** Whether `eventId` comes after `thanEventId` in stream order (an unknown current event counts as earlier). */
  private async isLater(eventId: string, thanEventId: string): Promise<boolean> {
    const events = await this.storage.events.getEvents([eventId, thanEventId]);
    const candidate = events.get(eventId);
    const current = events.get(thanEventId);
    if (current === undefined) return true;
    if (candidate === undefined) return false;
    return candidate.streamOrdering > current.streamOrdering;
  }

  private async orderingInRoom(eventId: string, roomId: string): Promise<number | undefined> {
    const event = await this.storage.events.getEvent(eventId);
    return event?.roomId === roomId ? event.streamOrdering : undefined;
  }

  private async oneAtATime(key: string, work: () => Promise<void>): Promise<void> {
    const previous = this.inFlight.get(key) ?? Promise.resolve();
    const run = previous.then(work, work);
    const settled = run.catch(() => {});
    this.inFlight.set(key, settled);
    try {
      await run;
    } finally {
      if (this.inFlight.get(key) === settled) this.inFlight.delete(key);
    }
  }
}

function receiptKey(roomId: string, receiptType: string, userId: string, threadId: string | null): string {
  return JSON.stringify([roomId, receiptType, userId, threadId]);
}

/** spec "Receipts": content is {eventId: {receiptType: {userId: {ts, thread_id?}}}}. */
function addToReceiptContent(content: JsonObject, record: ReceiptRecord): void {
  const byType = childObject(content, record.eventId);
  const byUser = childObject(byType, record.receiptType);
  const receipt: JsonObject = { ...record.data };
  if (record.threadId !== null) receipt.thread_id = record.threadId;
  byUser[record.userId] = receipt;
}

function childObject(parent: JsonObject, key: string): JsonObject {
  const existing = parent[key];
  if (typeof existing === 'object' && existing !== null && !Array.isArray(existing)) return existing;
  const created: JsonObject = {};
  parent[key] = created;
  return created;
}
