import type { JsonObject } from '../../protocol/events.js';
import {
  RECEIPT_TYPE_DELIVERED,
  type ReceiptRecord,
  type ReceiptStore,
  type ReceiptUpdate,
  type ReceiptVisibility,
} from '../receipt-store.js';
import type { SqliteConnection } from './connection.js';
import { parameterChunks } from './parameter-chunks.js';
import { latestStreamPosition, nextStreamPosition } from './stream-positions.js';
import type { EnqueueWrite } from './write-queue.js';

/** Unthreaded receipts are stored under '' so that the primary key covers them. */
const UNTHREADED = '';

interface ReceiptRow {
  room_id: string;
  receipt_type: string;
  user_id: string;
  thread_id: string;
  event_id: string;
  data: string;
  stream_position: number;
}

const COLUMNS = 'room_id, receipt_type, user_id, thread_id, event_id, data, stream_position';

/**
 * With a viewer (the two trailing parameters), delivery receipts are kept only
 * on events the viewer sent: they exist for senders, and showing every
 * member's to every member would cost each sync work in proportion to the room.
 */
const DELIVERED_VISIBLE = `(? IS NULL OR receipts.receipt_type <> '${RECEIPT_TYPE_DELIVERED}'
  OR EXISTS (SELECT 1 FROM events WHERE events.event_id = receipts.event_id AND events.sender = ?))`;

export class SqliteReceiptStore implements ReceiptStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  putReceipt(receipt: ReceiptUpdate): Promise<number> {
    const row = {
      room_id: receipt.roomId,
      receipt_type: receipt.receiptType,
      user_id: receipt.userId,
      thread_id: receipt.threadId ?? UNTHREADED,
      event_id: receipt.eventId,
      data: JSON.stringify(receipt.data),
    };
    return this.enqueue(() => {
      const streamPosition = nextStreamPosition(this.connection.db, 'receipts');
      this.connection.sqlite
        .prepare(
          `INSERT INTO receipts (${COLUMNS})
           VALUES (@room_id, @receipt_type, @user_id, @thread_id, @event_id, @data, @stream_position)
           ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE SET
             event_id = excluded.event_id, data = excluded.data, stream_position = excluded.stream_position`,
        )
        .run({ ...row, stream_position: streamPosition });
      return streamPosition;
    });
  }

  async getReceipt(
    roomId: string,
    receiptType: string,
    userId: string,
    threadId: string | null,
  ): Promise<ReceiptRecord | null> {
    const row = this.connection.sqlite
      .prepare<[string, string, string, string], ReceiptRow>(
        `SELECT ${COLUMNS} FROM receipts
          WHERE room_id = ? AND receipt_type = ? AND user_id = ? AND thread_id = ?`,
      )
      .get(roomId, receiptType, userId, threadId ?? UNTHREADED);
    return row ? toRecord(row) : null;
  }

  async receiptsOfRooms(roomIds: readonly string[], options?: ReceiptVisibility): Promise<ReceiptRecord[]> {
    const statement = this.connection.sqlite.prepare<[string, string | null, string | null], ReceiptRow>(
      `SELECT ${COLUMNS} FROM receipts WHERE room_id IN (SELECT value FROM json_each(?)) AND ${DELIVERED_VISIBLE}`,
    );
    const viewer = options?.deliveredVisibleTo ?? null;
    const found: ReceiptRow[] = [];
    for (const chunk of parameterChunks([...new Set(roomIds)]))
      found.push(...statement.all(JSON.stringify(chunk), viewer, viewer));
    return found.sort((a, b) => a.stream_position - b.stream_position).map(toRecord);
  }

  async receiptsChangedBetween(
    roomIds: readonly string[],
    afterPosition: number,
    upToPosition: number,
    options?: ReceiptVisibility,
  ): Promise<ReceiptRecord[]> {
    const statement = this.connection.sqlite.prepare<
      [string, number, number, string | null, string | null],
      ReceiptRow
    >(
      `SELECT ${COLUMNS} FROM receipts
        WHERE room_id IN (SELECT value FROM json_each(?)) AND stream_position > ? AND stream_position <= ?
          AND ${DELIVERED_VISIBLE}`,
    );
    const viewer = options?.deliveredVisibleTo ?? null;
    const found: ReceiptRow[] = [];
    for (const chunk of parameterChunks([...new Set(roomIds)])) {
      found.push(...statement.all(JSON.stringify(chunk), afterPosition, upToPosition, viewer, viewer));
    }
    return found.sort((a, b) => a.stream_position - b.stream_position).map(toRecord);
  }

  async latestReceiptPosition(): Promise<number> {
    return latestStreamPosition(this.connection.db, 'receipts');
  }
}

function toRecord(row: ReceiptRow): ReceiptRecord {
  return {
    roomId: row.room_id,
    receiptType: row.receipt_type,
    userId: row.user_id,
    threadId: row.thread_id === UNTHREADED ? null : row.thread_id,
    eventId: row.event_id,
    data: JSON.parse(row.data) as JsonObject,
    streamPosition: row.stream_position,
  };
}
