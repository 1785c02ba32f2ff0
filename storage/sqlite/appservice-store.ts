import type Database from 'better-sqlite3';
import type {
  AppserviceOutboxItem,
  AppserviceStore,
  ClaimedAppserviceTransaction,
} from '../appservice-store.js';
import type { StreamOrdering } from '../event-store.js';
import type { SqliteConnection } from './connection.js';
import type { EnqueueWrite } from './write-queue.js';

interface OutboxRow {
  position: number;
  json: string;
  txn_id: string | null;
}

export class SqliteAppserviceStore implements AppserviceStore {
  /** Statements prepared once each. */
  private readonly statements = new Map<string, Database.Statement>();

  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueueWrite: EnqueueWrite,
  ) {}

  private prepare<P extends unknown[] = unknown[], R = unknown>(sql: string): Database.Statement<P, R> {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.connection.sqlite.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement as unknown as Database.Statement<P, R>;
  }

  async fanOutPosition(): Promise<StreamOrdering | null> {
    const row = this.prepare<[], { position: number }>(
      'SELECT position FROM appservice_fan_out WHERE id = 1',
    ).get();
    return row?.position ?? null;
  }

  async eventIdsAfter(
    afterOrdering: StreamOrdering,
    limit: number,
  ): Promise<{ eventId: string; streamOrdering: StreamOrdering }[]> {
    return this.prepare<[number, number], { event_id: string; stream_ordering: number }>(
      `SELECT event_id, stream_ordering FROM events e
        WHERE stream_ordering > ? AND rejection_reason IS NULL AND outlier = 0
          AND NOT EXISTS (SELECT 1 FROM appservice_out_of_band o WHERE o.event_id = e.event_id)
        ORDER BY stream_ordering LIMIT ?`,
    )
      .all(afterOrdering, limit)
      .map((row) => ({ eventId: row.event_id, streamOrdering: row.stream_ordering }));
  }

  enqueue(items: readonly AppserviceOutboxItem[], fanOutPosition?: StreamOrdering): Promise<void> {
    return this.enqueueWrite(() => {
      this.insertItems(items);
      if (fanOutPosition === undefined) return;
      this.prepare(
        `INSERT INTO appservice_fan_out (id, position) VALUES (1, ?)
           ON CONFLICT (id) DO UPDATE SET position = excluded.position`,
      ).run(fanOutPosition);
    });
  }

  enqueueOutOfBand(eventId: string, items: readonly AppserviceOutboxItem[]): Promise<boolean> {
    return this.enqueueWrite(() => {
      const first = this.prepare('INSERT OR IGNORE INTO appservice_out_of_band (event_id) VALUES (?)').run(
        eventId,
      );
      if (first.changes === 0) return false;
      this.insertItems(items);
      return true;
    });
  }

  private insertItems(items: readonly AppserviceOutboxItem[]): void {
    if (items.length === 0) return;
    const insert = this.prepare('INSERT INTO appservice_outbox (appservice_id, json) VALUES (?, ?)');
    for (const item of items) insert.run(item.appserviceId, item.json);
  }

  claimTransaction(appserviceId: string, maxEvents: number): Promise<ClaimedAppserviceTransaction | null> {
    return this.enqueueWrite(() => {
      const claimed = this.prepare<[string], OutboxRow>(
        `SELECT position, json, txn_id FROM appservice_outbox
          WHERE appservice_id = ? AND txn_id IS NOT NULL ORDER BY position`,
      ).all(appserviceId);
      if (claimed.length > 0) return transactionOf(claimed[0]!.txn_id!, claimed);
      const rows = this.prepare<[string, number], OutboxRow>(
        `SELECT position, json, txn_id FROM appservice_outbox
          WHERE appservice_id = ? AND txn_id IS NULL ORDER BY position LIMIT ?`,
      ).all(appserviceId, maxEvents);
      if (rows.length === 0) return null;
      // Positions are never reused (AUTOINCREMENT): the first one names a transaction no other shares.
      const txnId = String(rows[0]!.position);
      this.prepare(
        'UPDATE appservice_outbox SET txn_id = ? WHERE appservice_id = ? AND txn_id IS NULL AND position <= ?',
      ).run(txnId, appserviceId, rows[rows.length - 1]!.position);
      return transactionOf(txnId, rows);
    });
  }

  completeTransaction(appserviceId: string, txnId: string): Promise<void> {
    return this.enqueueWrite(() => {
      this.prepare('DELETE FROM appservice_outbox WHERE appservice_id = ? AND txn_id = ?').run(
        appserviceId,
        txnId,
      );
    });
  }

  async pendingAppservices(): Promise<string[]> {
    return this.prepare<[], { appservice_id: string }>('SELECT DISTINCT appservice_id FROM appservice_outbox')
      .all()
      .map((row) => row.appservice_id);
  }

  setRoomListed(appserviceId: string, networkId: string, roomId: string, listed: boolean): Promise<void> {
    return this.enqueueWrite(() => {
      if (listed) {
        this.prepare(
          'INSERT OR IGNORE INTO appservice_room_list (appservice_id, network_id, room_id) VALUES (?, ?, ?)',
        ).run(appserviceId, networkId, roomId);
      } else {
        this.prepare(
          'DELETE FROM appservice_room_list WHERE appservice_id = ? AND network_id = ? AND room_id = ?',
        ).run(appserviceId, networkId, roomId);
      }
    });
  }

  async listedRoomIds(network?: { appserviceId: string; networkId: string }): Promise<string[]> {
    if (network === undefined) {
      return this.prepare<[], { room_id: string }>('SELECT DISTINCT room_id FROM appservice_room_list')
        .all()
        .map((row) => row.room_id);
    }
    return this.prepare<[string, string], { room_id: string }>(
      'SELECT room_id FROM appservice_room_list WHERE appservice_id = ? AND network_id = ?',
    )
      .all(network.appserviceId, network.networkId)
      .map((row) => row.room_id);
  }
}

function transactionOf(txnId: string, rows: readonly OutboxRow[]): ClaimedAppserviceTransaction {
  return { txnId, events: rows.map((row) => row.json) };
}
