import type Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from './connection.js';

/** Streams whose positions live in the stream_positions table (seeded by the migrations). */
export type StreamName = 'events' | 'account_data' | 'presence' | 'receipts' | 'to_device' | 'device_lists';

interface PositionStatements {
  readonly advance: Statement<[number, string], { position: number }>;
  readonly latest: Statement<[string], { position: number }>;
}

/**
 * Prepared once per connection: every write of a stream and every sync reads these,
 * and building and compiling them per call cost more than running them.
 */
const statementsByConnection = new WeakMap<Database.Database, PositionStatements>();

function statementsOf(db: SqliteDatabase): PositionStatements {
  // drizzle keeps the better-sqlite3 connection it wraps here.
  const sqlite = (db as SqliteDatabase & { readonly $client: Database.Database }).$client;
  let statements = statementsByConnection.get(sqlite);
  if (statements === undefined) {
    statements = {
      advance: sqlite.prepare(
        'UPDATE stream_positions SET position = position + ? WHERE stream = ? RETURNING position',
      ),
      latest: sqlite.prepare('SELECT position FROM stream_positions WHERE stream = ?'),
    };
    statementsByConnection.set(sqlite, statements);
  }
  return statements;
}

/** Takes the next position of a stream; call only inside a write transaction, so a rollback returns it. */
export function nextStreamPosition(db: SqliteDatabase, stream: StreamName): number {
  return nextStreamPositions(db, stream, 1);
}

/**
 * Takes the next `count` positions of a stream in one step (inside a write transaction);
 * returns the last of them: the batch holds (last - count, last].
 */
export function nextStreamPositions(db: SqliteDatabase, stream: StreamName, count: number): number {
  const row = statementsOf(db).advance.get(count, stream);
  if (!row) throw new Error(`stream ${stream} is not seeded`);
  return row.position;
}

export function latestStreamPosition(db: SqliteDatabase, stream: StreamName): number {
  return statementsOf(db).latest.get(stream)?.position ?? 0;
}
