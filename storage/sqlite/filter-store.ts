import { and, eq } from 'drizzle-orm';
import type { JsonObject } from '../../protocol/events.js';
import type { FilterStore } from '../filter-store.js';
import type { SqliteConnection } from './connection.js';
import { filters } from './schema.js';
import type { EnqueueWrite } from './write-queue.js';

export class SqliteFilterStore implements FilterStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  createFilter(userId: string, filter: JsonObject): Promise<string> {
    const json = JSON.stringify(filter);
    return this.enqueue(() => {
      // A counter per user (0, 1, 2, ...): writes are serialised, so the next number is free.
      const next = this.connection.sqlite
        .prepare<[string], { next: number }>(
          'SELECT coalesce(max(CAST(filter_id AS INTEGER)), -1) + 1 AS next FROM filters WHERE user_id = ?',
        )
        .get(userId)!.next;
      const filterId = String(next);
      this.connection.db.insert(filters).values({ userId, filterId, filter: json }).run();
      return filterId;
    });
  }

  async getFilter(userId: string, filterId: string): Promise<JsonObject | null> {
    const row = this.connection.db
      .select({ filter: filters.filter })
      .from(filters)
      .where(and(eq(filters.userId, userId), eq(filters.filterId, filterId)))
      .get();
    return row ? (JSON.parse(row.filter) as JsonObject) : null;
  }
}
