import { lt } from 'drizzle-orm';
import { TransactionAlreadySent, type TransactionIdStore } from '../transaction-id-store.js';
import type { SqliteConnection } from './connection.js';
import type { EventStatements } from './event-statements.js';
import { transactionIds } from './schema.js';
import type { EnqueueWrite } from './write-queue.js';

export class SqliteTransactionIdStore implements TransactionIdStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
    private readonly statements: EventStatements,
  ) {}

  async eventIdForTransaction(userId: string, deviceId: string, txnId: string): Promise<string | null> {
    return this.lookup(userId, deviceId, txnId);
  }

  recordTransaction(
    userId: string,
    deviceId: string,
    txnId: string,
    eventId: string,
    createdTs: number,
  ): Promise<void> {
    return this.enqueue(() => {
      const inserted = this.statements.insertTransaction.run(userId, deviceId, txnId, eventId, createdTs);
      if (inserted.changes === 1) return;
      // The primary key held: the row exists (read inside the write transaction, no lock of its own).
      const recorded = this.lookup(userId, deviceId, txnId)!;
      if (recorded !== eventId) throw new TransactionAlreadySent(userId, deviceId, txnId, recorded);
    });
  }

  deleteTransactionsBefore(ts: number): Promise<number> {
    return this.enqueue(
      () => this.connection.db.delete(transactionIds).where(lt(transactionIds.createdTs, ts)).run().changes,
    );
  }

  deleteAppserviceTransactionsBefore(ts: number): Promise<number> {
    return this.enqueue(
      () =>
        this.connection.sqlite
          .prepare("DELETE FROM transaction_ids WHERE device_id LIKE 'appservice:%' AND created_ts < ?")
          .run(ts).changes,
    );
  }

  private lookup(userId: string, deviceId: string, txnId: string): string | null {
    return this.statements.transactionEvent.get(userId, deviceId, txnId)?.event_id ?? null;
  }
}
