import type { JsonObject } from '../../protocol/events.js';
import type { ReceiptRecord, ReceiptStore, ReceiptUpdate } from '../receipt-store.js';
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

  async receiptsOfRooms(roomIds: readonly string[]): Promise<ReceiptRecord[]> {
    const statement = this.connection.sqlite.prepare<[string], ReceiptRow>(
      `SELECT ${COLUMNS} FROM receipts WHERE room_id IN (SELECT value FROM json_each(?))`,
    );
    const found: ReceiptRow[] = [];
    for (const chunk of parameterChunks([...new Set(roomIds)]))
      found.push(...statement.all(JSON.stringify(chunk)));
    return found.sort((a, b) => a.stream_position - b.stream_position).map(toRecord);
  }

  async receiptsChangedBetween(
    roomIds: readonly string[],
    afterPosition: number,
    upToPosition: number,
  ): Promise<ReceiptRecord[]> {
    const statement = this.connection.sqlite.prepare<[string, number, number], ReceiptRow>(
      `SELECT ${COLUMNS} FROM receipts
        WHERE room_id IN (SELECT value FROM json_each(?)) AND stream_position > ? AND stream_position <= ?`,
    );
    const found: ReceiptRow[] = [];
    for (const chunk of parameterChunks([...new Set(roomIds)])) {
      found.push(...statement.all(JSON.stringify(chunk), afterPosition, upToPosition));
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
