import type { Statement } from 'better-sqlite3';
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
import { latestStreamPosition, nextStreamPositions } from './stream-positions.js';
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

const DELIVERED = `'${RECEIPT_TYPE_DELIVERED}'`;
/** Matches the partial indexes of migration 4 word for word, so that SQLite uses them. */
const SHOWN_TO_ALL = `receipt_type <> ${DELIVERED}`;
const DELIVERED_ONLY = `receipt_type = ${DELIVERED}`;
const IN_ROOMS = 'room_id IN (SELECT value FROM json_each(?))';

type Range = [after: number, upTo: number];

/**
 * Receipts of rooms, optionally in a stream range. With a viewer, delivery receipts
 * are kept only on events the viewer sent: they exist for senders. They are then read
 * in two parts, each through its own index: the receipts everyone sees, and the
 * delivery receipts of the viewer's events (by event_sender), so that a sync never
 * scans the delivery receipts of every member of a big room. Without a viewer, the
 * delivery receipts come by the primary key's (room_id, receipt_type) prefix: no index
 * holds every receipt by position, as each delivery would rewrite its entry there.
 */
function receiptsQuery(
  sqlite: SqliteConnection['sqlite'],
  roomIds: readonly string[],
  range: Range | null,
  viewer: string | null,
): ReceiptRow[] {
  const inRange = range === null ? '' : ' AND stream_position > ? AND stream_position <= ?';
  const rangeValues = range ?? [];
  const found: ReceiptRow[] = [];
  for (const chunk of parameterChunks([...new Set(roomIds)])) {
    const rooms = JSON.stringify(chunk);
    found.push(
      ...cached(
        sqlite,
        `SELECT ${COLUMNS} FROM receipts WHERE ${IN_ROOMS} AND ${SHOWN_TO_ALL}${inRange}`,
      ).all(rooms, ...rangeValues),
      ...(viewer === null
        ? // Every delivery receipt of the rooms: the primary key's (room_id, receipt_type) prefix.
          cached(
            sqlite,
            `SELECT ${COLUMNS} FROM receipts WHERE ${IN_ROOMS} AND ${DELIVERED_ONLY}${inRange}`,
          ).all(rooms, ...rangeValues)
        : cached(
            sqlite,
            `SELECT ${COLUMNS} FROM receipts WHERE event_sender = ? AND ${DELIVERED_ONLY}${inRange} AND ${IN_ROOMS}`,
          ).all(viewer, ...rangeValues, rooms)),
    );
  }
  return found.sort((a, b) => a.stream_position - b.stream_position);
}

const statementCache = new WeakMap<
  SqliteConnection['sqlite'],
  Map<string, Statement<unknown[], ReceiptRow>>
>();

function cached(sqlite: SqliteConnection['sqlite'], text: string): Statement<unknown[], ReceiptRow> {
  let statements = statementCache.get(sqlite);
  if (statements === undefined) {
    statements = new Map();
    statementCache.set(sqlite, statements);
  }
  let statement = statements.get(text);
  if (statement === undefined) {
    statement = sqlite.prepare<unknown[], ReceiptRow>(text);
    statements.set(text, statement);
  }
  return statement;
}

/** Rows per upsert statement, largest first: a batch is written with the fewest runs of a few prepared statements. */
const ROWS_PER_INSERT = [64, 16, 4, 1] as const;

const ROW_VALUES = `(?, ?, ?, ?, ?, ?, ?, CASE WHEN ? = ${DELIVERED}
  THEN COALESCE(?, (SELECT sender FROM events WHERE event_id = ?)) END)`;

/** The upsert of n receipts for each n of ROWS_PER_INSERT; a later row of a key replaces an earlier one, as separate statements would. */
const UPSERTS = new Map(
  ROWS_PER_INSERT.map((rows) => [
    rows,
    `INSERT INTO receipts (${COLUMNS}, event_sender)
     VALUES ${Array.from({ length: rows }, () => ROW_VALUES).join(', ')}
     ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE SET
       event_id = excluded.event_id, data = excluded.data, stream_position = excluded.stream_position,
       event_sender = excluded.event_sender`,
  ]),
);

export class SqliteReceiptStore implements ReceiptStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  putReceipt(receipt: ReceiptUpdate): Promise<number> {
    return this.putReceipts([receipt]);
  }

  putReceipts(receipts: readonly ReceiptUpdate[]): Promise<number> {
    if (receipts.length === 0) return Promise.resolve(latestStreamPosition(this.connection.db, 'receipts'));
    // A batch of delivery receipts shares one `data` ({ts}): serialised once.
    let lastData: JsonObject | undefined;
    let lastJson = '';
    const rows = [...receipts];
    const jsons = rows.map((receipt) => {
      if (receipt.data !== lastData) {
        lastData = receipt.data;
        lastJson = JSON.stringify(receipt.data);
      }
      return lastJson;
    });
    return this.enqueue(() => {
      const last = nextStreamPositions(this.connection.db, 'receipts', rows.length);
      let streamPosition = last - rows.length;
      // Several rows per statement, positional parameters: a fan-out writes a thousand rows,
      // and each statement run has its own cost of binding, stepping and resetting.
      const values: unknown[] = [];
      let next = 0;
      for (const size of ROWS_PER_INSERT) {
        const insert = cached(this.connection.sqlite, UPSERTS.get(size)!);
        while (rows.length - next >= size) {
          values.length = 0;
          for (const row of rows.slice(next, next + size)) {
            values.push(
              row.roomId,
              row.receiptType,
              row.userId,
              row.threadId ?? UNTHREADED,
              row.eventId,
              jsons[next],
              ++streamPosition,
              row.receiptType,
              row.eventSender ?? null,
              row.eventId,
            );
            next++;
          }
          insert.run(values);
        }
      }
      return last;
    });
  }

  async getReceipt(
    roomId: string,
    receiptType: string,
    userId: string,
    threadId: string | null,
  ): Promise<ReceiptRecord | null> {
    const row = cached(
      this.connection.sqlite,
      `SELECT ${COLUMNS} FROM receipts WHERE room_id = ? AND receipt_type = ? AND user_id = ? AND thread_id = ?`,
    ).get(roomId, receiptType, userId, threadId ?? UNTHREADED);
    return row ? toRecord(row) : null;
  }

  async receiptsOfRooms(roomIds: readonly string[], options?: ReceiptVisibility): Promise<ReceiptRecord[]> {
    return receiptsQuery(this.connection.sqlite, roomIds, null, options?.deliveredVisibleTo ?? null).map(
      toRecord,
    );
  }

  async receiptsChangedBetween(
    roomIds: readonly string[],
    afterPosition: number,
    upToPosition: number,
    options?: ReceiptVisibility,
  ): Promise<ReceiptRecord[]> {
    return receiptsQuery(
      this.connection.sqlite,
      roomIds,
      [afterPosition, upToPosition],
      options?.deliveredVisibleTo ?? null,
    ).map(toRecord);
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
