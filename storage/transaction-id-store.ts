import { StorageError } from './errors.js';

/** Client transaction IDs per (user, device), so a retried send returns the first event ID. */
export interface TransactionIdReader {
  eventIdForTransaction(userId: string, deviceId: string, txnId: string): Promise<string | null>;
}

/**
 * recordTransaction's CONFLICT: the transaction already produced another event, the one a
 * retried send must answer. Thrown inside the write transaction, it rolls the send back.
 */
export class TransactionAlreadySent extends StorageError {
  constructor(
    readonly userId: string,
    readonly deviceId: string,
    readonly txnId: string,
    readonly recordedEventId: string,
  ) {
    super('CONFLICT', `transaction ${txnId} of ${userId}/${deviceId} already sent ${recordedEventId}`);
  }
}

export interface TransactionIdWriter {
  /**
   * Records the event a transaction produced. Recording the same event again
   * is a no-op; a different event for a recorded transaction throws
   * TransactionAlreadySent (CONFLICT, naming the recorded event), so a send
   * that records its transaction before persisting its event rolls back as a
   * whole and can answer the first event instead.
   */
  recordTransaction(
    userId: string,
    deviceId: string,
    txnId: string,
    eventId: string,
    createdTs: number,
  ): Promise<void>;
  /** Forgets transactions recorded before `ts`; resolves to how many. */
  deleteTransactionsBefore(ts: number): Promise<number>;
  /** Forgets application services' deviceless transactions (session `appservice:<id>`) recorded before `ts`. */
  deleteAppserviceTransactionsBefore(ts: number): Promise<number>;
}

export interface TransactionIdStore extends TransactionIdReader, TransactionIdWriter {}
