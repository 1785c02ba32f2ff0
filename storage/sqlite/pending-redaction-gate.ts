import type Database from 'better-sqlite3';

/**
 * Whether pending_redactions may hold rows, so that persisting an event skips the lookup
 * of redactions waiting for it while the table is empty (nearly always: a redaction
 * waits only when it arrives over federation before its target). One per connection.
 *
 * "Known empty" is only ever concluded from committed state, read outside any write
 * transaction: an insert (even one later rolled back) opens the gate, and a delete inside
 * a transaction that might still roll back never closes it.
 */
export class PendingRedactionGate {
  private knownEmpty: boolean;
  private readonly anyPending: Database.Statement<[], { found: number }>;

  constructor(private readonly sqlite: Database.Database) {
    this.anyPending = sqlite.prepare('SELECT EXISTS (SELECT 1 FROM pending_redactions) AS found');
    this.knownEmpty = this.anyPending.get()?.found === 0;
  }

  /** False when no event can have a redaction waiting for it. */
  get mayHoldRows(): boolean {
    return !this.knownEmpty;
  }

  /** A row is being inserted (inside a write transaction). */
  opened(): void {
    this.knownEmpty = false;
  }

  /** After the commit of a write that consumed rows: closes the gate if none are left. */
  recheck(): void {
    // Only committed state counts; writes run synchronously inside flushes, never here.
    if (this.sqlite.inTransaction) return;
    this.knownEmpty = this.anyPending.get()?.found === 0;
  }
}
