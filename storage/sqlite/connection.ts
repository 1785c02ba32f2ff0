import Database from 'better-sqlite3';
import { type BetterSQLite3Database, drizzle } from 'drizzle-orm/better-sqlite3';
import type { AppliedMigration, Migration, MigrationTarget } from '../migrations.js';
import { sqliteSchema } from './schema.js';

export type SqliteDatabase = BetterSQLite3Database<typeof sqliteSchema>;

/** The raw connection (transactions, pragmas) and drizzle over it (typed queries), always used together. */
export interface SqliteConnection {
  readonly sqlite: Database.Database;
  readonly db: SqliteDatabase;
}

export interface SqliteConnectionOptions {
  /** A file path, or ':memory:' for a private in-memory database. */
  readonly path: string;
  /** How long a write waits for another process's lock before failing; default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /** Folder of cold-storage segments; default: `cold-archive` beside the database file (none for ':memory:'). */
  readonly coldDirectory?: string;
}

export function openSqliteConnection(options: SqliteConnectionOptions): SqliteConnection {
  const sqlite = new Database(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
  try {
    sqlite.pragma('journal_mode = WAL');
    // WAL with NORMAL survives a process crash; only an OS crash or power loss can drop the last commits.
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    // Group commits hold each batch in a savepoint, whose journal SQLite spills to a fresh
    // temporary file past 64 KiB (open, unlink, a write per page): nearly every commit of
    // a busy send path. In memory it is a copy of the pages the batch touches, no syscalls.
    sqlite.pragma('temp_store = MEMORY');
    sqlite.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
  } catch (error) {
    sqlite.close();
    throw error;
  }
  return { sqlite, db: drizzle({ client: sqlite, schema: sqliteSchema }) };
}

export function sqliteMigrationTarget(sqlite: Database.Database): MigrationTarget {
  const ensureTable = () =>
    sqlite.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY NOT NULL,
      name TEXT NOT NULL,
      checksum TEXT NOT NULL,
      applied_ts INTEGER NOT NULL
    ) STRICT`);
  return {
    async appliedMigrations(): Promise<AppliedMigration[]> {
      ensureTable();
      return sqlite
        .prepare<[], AppliedMigration>('SELECT version, checksum FROM schema_migrations ORDER BY version')
        .all();
    },
    async applyMigration(migration: Migration, checksum: string): Promise<void> {
      const apply = sqlite.transaction(() => {
        const done = sqlite
          .prepare('SELECT 1 FROM schema_migrations WHERE version = ?')
          .get(migration.version);
        if (done) return;
        sqlite.exec(migration.sql);
        sqlite
          .prepare('INSERT INTO schema_migrations (version, name, checksum, applied_ts) VALUES (?, ?, ?, ?)')
          .run(migration.version, migration.name, checksum, Date.now());
      });
      // IMMEDIATE takes the write lock first, so two processes opening at once do not both migrate.
      apply.immediate();
    },
  };
}
