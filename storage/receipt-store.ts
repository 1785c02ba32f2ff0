/**
 * Receipts (client-server "Receipts"): m.read, m.read.private, and Myelin's
 * io.myelin.delivered, one per (room, type, user, thread), on a 'receipts'
 * stream so sync can send what changed.
 */
import type { JsonObject } from '../protocol/events.js';

export interface ReceiptRecord {
  readonly roomId: string;
  readonly receiptType: string;
  readonly userId: string;
  /** null for an unthreaded receipt; 'main' or a thread root ID for threaded ones. */
  readonly threadId: string | null;
  readonly eventId: string;
  /** Receipt data as clients see it (at least `ts`). */
  readonly data: JsonObject;
  readonly streamPosition: number;
}

export type ReceiptUpdate = Omit<ReceiptRecord, 'streamPosition'> & {
  /** For a delivery receipt: the delivered event's sender, when the caller knows it (spares a lookup). */
  readonly eventSender?: string;
};

/** Myelin's delivery receipt type (issue #4): which event each recipient's devices were last handed. */
export const RECEIPT_TYPE_DELIVERED = 'io.myelin.delivered';

export interface ReceiptVisibility {
  /** Return delivery receipts only on events this user sent (the sender is who they are for). */
  readonly deliveredVisibleTo?: string;
}

export interface ReceiptStore {
  /** Inserts or replaces the receipt for (room, type, user, thread); resolves to its new stream position. */
  putReceipt(receipt: ReceiptUpdate): Promise<number>;
  /**
   * Inserts or replaces several receipts (distinct (room, type, user, thread) keys) in one write,
   * all or nothing, at consecutive new stream positions taken at once; resolves to the last of
   * them (the latest position if empty).
   */
  putReceipts(receipts: readonly ReceiptUpdate[]): Promise<number>;
  getReceipt(
    roomId: string,
    receiptType: string,
    userId: string,
    threadId: string | null,
  ): Promise<ReceiptRecord | null>;
  /** Every current receipt of the rooms (for an initial sync). */
  receiptsOfRooms(roomIds: readonly string[], options?: ReceiptVisibility): Promise<ReceiptRecord[]>;
  /** Receipts of the rooms changed in (afterPosition, upToPosition], oldest first. */
  receiptsChangedBetween(
    roomIds: readonly string[],
    afterPosition: number,
    upToPosition: number,
    options?: ReceiptVisibility,
  ): Promise<ReceiptRecord[]>;
  latestReceiptPosition(): Promise<number>;
}
