import { StorageError } from '../errors.js';

/** Maps SQLite constraint failures (possibly wrapped by drizzle) onto StorageError codes. */
export function translateSqliteError(error: unknown): unknown {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof StorageError) return cause;
    const code = (cause as { code?: unknown }).code;
    if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
      return new StorageError('CONFLICT', cause.message, { cause: error });
    }
    if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      return new StorageError('MISSING_REFERENCE', cause.message, { cause: error });
    }
  }
  return error;
}
