import { and, eq, lt } from 'drizzle-orm';
import { StorageError } from '../errors.js';
import type { TransactionIdStore } from '../transaction-id-store.js';
import type { SqliteConnection } from './connection.js';
import { transactionIds } from './schema.js';
import type { EnqueueWrite } from './write-queue.js';

export class SqliteTransactionIdStore implements TransactionIdStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
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
      const inserted = this.connection.db
        .insert(transactionIds)
        .values({ userId, deviceId, txnId, eventId, createdTs })
        .onConflictDoNothing()
        .run();
      if (inserted.changes === 1) return;
      const recorded = this.lookup(userId, deviceId, txnId);
      if (recorded !== eventId) {
        throw new StorageError(
          'CONFLICT',
          `transaction ${txnId} of ${userId}/${deviceId} already sent ${recorded}`,
        );
      }
    });
  }

  deleteTransactionsBefore(ts: number): Promise<number> {
    return this.enqueue(
      () => this.connection.db.delete(transactionIds).where(lt(transactionIds.createdTs, ts)).run().changes,
    );
  }

  private lookup(userId: string, deviceId: string, txnId: string): string | null {
    return (
      this.connection.db
        .select({ eventId: transactionIds.eventId })
        .from(transactionIds)
        .where(
          and(
            eq(transactionIds.userId, userId),
            eq(transactionIds.deviceId, deviceId),
            eq(transactionIds.txnId, txnId),
          ),
        )
        .get()?.eventId ?? null
    );
  }
}
