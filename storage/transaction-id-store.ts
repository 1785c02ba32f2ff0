/** Client transaction IDs per (user, device), so a retried send returns the first event ID. */
export interface TransactionIdReader {
  eventIdForTransaction(userId: string, deviceId: string, txnId: string): Promise<string | null>;
}

export interface TransactionIdWriter {
  /**
   * Records the event a transaction produced. Recording the same event again
   * is a no-op; a different event for a recorded transaction throws CONFLICT
   * (so a racing duplicate send rolls back with it).
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
