/**
 * Delivery receipts (`io.myelin.delivered`) recorded in batches. One message in
 * a room of a thousand members is handed to a thousand devices within a few
 * milliseconds; recorded one by one, that was a thousand queued writes, each
 * with its own stream position. Here every delivery of one short window is
 * written at once, all or nothing: one queued write, its stream positions taken
 * in one step (the schema keeps positions unique, so a batch holds a range).
 *
 * Exactness: per (user, room) only the newest delivered event counts, and the
 * stored receipt never moves back — flushes run one at a time and compare with
 * what the previous one committed. A failed write records nothing (it is one
 * savepoint), so nothing is half-written or duplicated; its deliveries are
 * queued again (merged with newer ones) and retried a few times before the
 * callers are told.
 */

import type { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import { PairKeys } from '../../storage/pair-keys.js';
import type { ReceiptUpdate } from '../../storage/receipt-store.js';
import type { Storage } from '../../storage/storage.js';

export const RECEIPT_DELIVERED = 'io.myelin.delivered';

/** The user's latest delivered event in a room and its stream ordering. */
export interface DeliveredMark {
  readonly eventId: string;
  readonly ordering: number;
}

/** Told once a delivery is stored or superseded, or that it could not be. */
export interface DeliveryWaiter {
  resolve(): void;
  reject(error: unknown): void;
}

interface PendingDelivery {
  /** deliveryKey(userId, roomId), made once. */
  readonly key: string;
  readonly userId: string;
  readonly roomId: string;
  eventId: string;
  ordering: number;
  attempts: number;
  readonly waiters: DeliveryWaiter[];
}

export interface DeliveryRecorderOptions {
  readonly storage: Storage;
  readonly now: () => number;
  /** `${userId} ${roomId}` -> latest committed delivery (shared with the service's fast path). */
  readonly delivered: LazyLruCache<string, DeliveredMark>;
  /** The sender of an event (delivery receipts are shown to the sender only). */
  senderOf(eventId: string): Promise<string | undefined>;
  /** Announces the write (receipt-changes tracking); `end` gets the position, undefined if it failed. */
  begin(write: { roomId: string; deliveredTo?: string }): void;
  end(write: { roomId: string; deliveredTo?: string }, position: number | undefined): void;
  /** After a commit: senders whose events others got. */
  recorded(senders: readonly string[]): void;
  /**
   * How long deliveries gather before one write (default 10 ms); while they keep coming
   * (a fan-out still handing a message to a room's members), the write waits for a pause
   * of that length, up to `maxBatchDelayMs` (default 100 ms) after the first.
   */
  readonly batchDelayMs?: number;
  readonly maxBatchDelayMs?: number;
  /** Writes tried per delivery before its callers see the failure (default 3). */
  readonly maxAttempts?: number;
}

/** Made once per (user, room): every woken member's delivery is looked up per message. */
const deliveryKeys = new PairKeys(' ');

/** `${userId} ${roomId}`, the same string object each time while remembered. */
export function deliveryKey(userId: string, roomId: string): string {
  return deliveryKeys.of(userId, roomId);
}

export class DeliveryRecorder {
  private pending = new Map<string, PendingDelivery>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly batchDelayMs: number;
  private readonly maxBatchDelayMs: number;
  private readonly maxAttempts: number;
  /** Deliveries queued since the timer was (re)armed: the write waits while they come. */
  private queuedSinceArmed = 0;
  /** When the first delivery of the batch gathering now was queued (performance.now()). */
  private batchStartedAt = 0;
  private readonly timerFired = () => this.timerFiredNow();

  constructor(private readonly options: DeliveryRecorderOptions) {
    this.batchDelayMs = Math.max(0, options.batchDelayMs ?? 10);
    this.maxBatchDelayMs = Math.max(this.batchDelayMs, options.maxBatchDelayMs ?? 100);
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  }

  /** Queues the delivery of `eventId` (at `ordering`) to the user; resolves once it is stored or superseded. */
  record(userId: string, roomId: string, eventId: string, ordering: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.note(userId, roomId, eventId, ordering, { resolve, reject }),
    );
  }

  /**
   * As `record`, telling `waiter` instead of making a promise: sync records a delivery for
   * every member woken, and shares one waiter (a logger) among them all.
   */
  note(
    userId: string,
    roomId: string,
    eventId: string,
    ordering: number,
    waiter: DeliveryWaiter,
    key = deliveryKey(userId, roomId),
  ): void {
    this.enqueue({ key, userId, roomId, eventId, ordering, attempts: 0, waiters: [waiter] });
  }

  /** Writes what is queued now (shutdown, tests). */
  flushNow(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    return this.scheduleFlush();
  }

  private enqueue(delivery: PendingDelivery): void {
    const queued = this.pending.get(delivery.key);
    if (queued === undefined) this.pending.set(delivery.key, delivery);
    else {
      if (delivery.ordering > queued.ordering) {
        queued.eventId = delivery.eventId;
        queued.ordering = delivery.ordering;
        queued.attempts = delivery.attempts;
      }
      for (const waiter of delivery.waiters) queued.waiters.push(waiter);
    }
    if (this.timer === undefined) {
      this.batchStartedAt = performance.now();
      this.queuedSinceArmed = 0;
      this.timer = setTimeout(this.timerFired, this.batchDelayMs);
    } else this.queuedSinceArmed++;
  }

  /**
   * A write holds the main thread for the whole batch: in the middle of a fan-out it
   * would hold back the members not yet answered. While deliveries still come, it waits
   * for a pause (bounded), and then also carries any of the members' next deliveries.
   */
  private timerFiredNow(): void {
    const waited = performance.now() - this.batchStartedAt;
    if (this.queuedSinceArmed > 0 && waited + this.batchDelayMs <= this.maxBatchDelayMs) {
      this.queuedSinceArmed = 0;
      this.timer = setTimeout(this.timerFired, this.batchDelayMs);
      return;
    }
    this.timer = undefined;
    void this.scheduleFlush();
  }

  /** Flushes run one after another, so each compares with what the previous one committed. */
  private scheduleFlush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flush());
    return this.flushing;
  }

  private async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    const { delivered } = this.options;

    const toWrite: PendingDelivery[] = [];
    for (const delivery of batch) {
      const { key } = delivery;
      let latest = delivered.get(key);
      if (latest === undefined) {
        try {
          latest = await this.storedMark(delivery.userId, delivery.roomId);
        } catch (error) {
          this.failed([delivery], error);
          continue;
        }
        if (latest !== undefined) delivered.set(key, latest);
      }
      if (latest !== undefined && delivery.ordering <= latest.ordering) settle(delivery);
      else toWrite.push(delivery);
    }
    if (toWrite.length === 0) return;

    let senders: (string | undefined)[];
    try {
      // A fan-out delivers the same few events to everyone: each sender is looked up once.
      const byEvent = new Map<string, Promise<string | undefined>>();
      for (const { eventId } of toWrite) {
        if (!byEvent.has(eventId)) byEvent.set(eventId, this.options.senderOf(eventId));
      }
      senders = await Promise.all(toWrite.map((delivery) => byEvent.get(delivery.eventId)));
    } catch (error) {
      this.failed(toWrite, error);
      return;
    }
    // One `data` for the batch (storage serialises it once); the sender is known, not looked up per row.
    const data = { ts: this.options.now() };
    const rows: ReceiptUpdate[] = toWrite.map(({ roomId, userId, eventId }, i) => {
      const eventSender = senders[i];
      const receiptType = RECEIPT_DELIVERED;
      return eventSender === undefined
        ? { roomId, receiptType, userId, threadId: null, eventId, data }
        : { roomId, receiptType, userId, threadId: null, eventId, data, eventSender };
    });
    // Shown only to the sender; with the sender unknown, counted as a change for the room.
    const writes = toWrite.map((delivery, i) => {
      const sender = senders[i];
      return sender === undefined
        ? { roomId: delivery.roomId }
        : { roomId: delivery.roomId, deliveredTo: sender };
    });
    for (const write of writes) this.options.begin(write);
    let position: number | undefined;
    try {
      position = await this.options.storage.receipts.putReceipts(rows);
    } catch (error) {
      this.failed(toWrite, error);
      return;
    } finally {
      for (const write of writes) this.options.end(write, position);
    }

    const announce = new Set<string>();
    toWrite.forEach((delivery, i) => {
      delivered.set(delivery.key, {
        eventId: delivery.eventId,
        ordering: delivery.ordering,
      });
      const sender = senders[i];
      if (sender !== undefined && sender !== delivery.userId) announce.add(sender);
      settle(delivery);
    });
    if (announce.size > 0) this.options.recorded([...announce]);
  }

  /** Queued again for another try (merged with anything newer), or given up on: callers see the error. */
  private failed(deliveries: readonly PendingDelivery[], error: unknown): void {
    for (const delivery of deliveries) {
      delivery.attempts++;
      if (delivery.attempts < this.maxAttempts) this.enqueue(delivery);
      else for (const waiter of delivery.waiters) waiter.reject(error);
    }
  }

  private async storedMark(userId: string, roomId: string): Promise<DeliveredMark | undefined> {
    const { storage } = this.options;
    const current = await storage.receipts.getReceipt(roomId, RECEIPT_DELIVERED, userId, null);
    if (current === null) return undefined;
    const event = await storage.events.getEvent(current.eventId);
    return { eventId: current.eventId, ordering: event?.streamOrdering ?? -1 };
  }
}

function settle(delivery: PendingDelivery): void {
  for (const waiter of delivery.waiters) waiter.resolve();
}
