import { eq, sql } from 'drizzle-orm';
import type { SqliteDatabase } from './connection.js';
import { streamPositions } from './schema.js';

/** Streams whose positions live in the stream_positions table (seeded by the migrations). */
export type StreamName = 'events' | 'account_data' | 'presence' | 'receipts' | 'to_device' | 'device_lists';

/** Takes the next position of a stream; call only inside a write transaction, so a rollback returns it. */
export function nextStreamPosition(db: SqliteDatabase, stream: StreamName): number {
  const row = db
    .update(streamPositions)
    .set({ position: sql`${streamPositions.position} + 1` })
    .where(eq(streamPositions.stream, stream))
    .returning({ position: streamPositions.position })
    .get();
  if (!row) throw new Error(`stream ${stream} is not seeded`);
  return row.position;
}

export function latestStreamPosition(db: SqliteDatabase, stream: StreamName): number {
  return (
    db
      .select({ position: streamPositions.position })
      .from(streamPositions)
      .where(eq(streamPositions.stream, stream))
      .get()?.position ?? 0
  );
}
