/**
 * The one error type storage/ throws for conditions a caller may handle.
 * Backends translate their driver errors into these codes so callers never
 * look at SQLite or PostgreSQL error shapes.
 */
export type StorageErrorCode =
  /** A unique key already exists (user ID taken, duplicate event, txn ID reused for another event). */
  | 'CONFLICT'
  /** The row an update addresses does not exist. */
  | 'NOT_FOUND'
  /** A write refers to a row that does not exist (device of an unknown user, unknown snapshot). */
  | 'MISSING_REFERENCE'
  /** A transaction callback was async or used its writers after returning. */
  | 'INVALID_TRANSACTION'
  /** The storage was closed. */
  | 'CLOSED'
  /** A migration failed; the database stays at the version before it. */
  | 'MIGRATION_FAILED'
  /** The database was migrated by a newer release, or an applied migration was edited. */
  | 'SCHEMA_MISMATCH';

export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}
