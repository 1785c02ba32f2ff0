import { and, asc, eq, gt, inArray, ne } from 'drizzle-orm';
import type { PresenceRecord, PresenceStore, PresenceUpdate } from '../presence-store.js';
import type { SqliteConnection } from './connection.js';
import { parameterChunks } from './parameter-chunks.js';
import { presence } from './schema.js';
import { latestStreamPosition, nextStreamPosition } from './stream-positions.js';
import type { EnqueueWrite } from './write-queue.js';

export class SqlitePresenceStore implements PresenceStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  async getPresence(userId: string): Promise<PresenceRecord | null> {
    return this.connection.db.select().from(presence).where(eq(presence.userId, userId)).get() ?? null;
  }

  async getPresences(userIds: readonly string[]): Promise<Map<string, PresenceRecord>> {
    const records = new Map<string, PresenceRecord>();
    for (const chunk of parameterChunks([...new Set(userIds)])) {
      for (const row of this.connection.db
        .select()
        .from(presence)
        .where(inArray(presence.userId, chunk))
        .all()) {
        records.set(row.userId, row);
      }
    }
    return records;
  }

  setPresence(update: PresenceUpdate): Promise<number> {
    const row = {
      userId: update.userId,
      state: update.state,
      statusMsg: update.statusMsg,
      lastActiveTs: update.lastActiveTs,
      updatedTs: update.updatedTs,
      currentlyActive: update.currentlyActive,
    };
    return this.enqueue(() => {
      // Taken inside the write transaction, so positions only grow and a rollback hands it back.
      const streamPosition = nextStreamPosition(this.connection.db, 'presence');
      this.connection.db
        .insert(presence)
        .values({ ...row, streamPosition })
        .onConflictDoUpdate({ target: presence.userId, set: { ...row, streamPosition } })
        .run();
      return streamPosition;
    });
  }

  async presenceChangedSince(
    position: number,
    userIds: readonly string[],
    limit: number,
  ): Promise<PresenceRecord[]> {
    const max = Math.max(0, Math.trunc(limit));
    if (max === 0) return [];
    // Each slice yields its oldest `max`; the oldest `max` of their union are the answer.
    const found: PresenceRecord[] = [];
    for (const chunk of parameterChunks([...new Set(userIds)])) {
      found.push(
        ...this.connection.db
          .select()
          .from(presence)
          .where(and(gt(presence.streamPosition, position), inArray(presence.userId, chunk)))
          .orderBy(asc(presence.streamPosition))
          .limit(max)
          .all(),
      );
    }
    return found.sort((a, b) => a.streamPosition - b.streamPosition).slice(0, max);
  }

  async latestPresencePosition(): Promise<number> {
    return latestStreamPosition(this.connection.db, 'presence');
  }

  async listNotOffline(): Promise<PresenceRecord[]> {
    return this.connection.db
      .select()
      .from(presence)
      .where(ne(presence.state, 'offline'))
      .orderBy(asc(presence.userId))
      .all();
  }
}
