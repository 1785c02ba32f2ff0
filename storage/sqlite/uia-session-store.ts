import { eq, lt } from 'drizzle-orm';
import type { JsonObject, JsonValue } from '../../protocol/events.js';
import { StorageError } from '../errors.js';
import type { UiaSession, UiaSessionStore } from '../uia-session-store.js';
import type { SqliteConnection } from './connection.js';
import { uiaSessions } from './schema.js';
import type { EnqueueWrite } from './write-queue.js';

export class SqliteUiaSessionStore implements UiaSessionStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  createUiaSession(session: Omit<UiaSession, 'completed' | 'params'>): Promise<void> {
    const row = {
      sessionId: session.sessionId,
      createdTs: session.createdTs,
      method: session.method,
      uri: session.uri,
      clientDict: JSON.stringify(session.clientDict),
    };
    return this.enqueue(() => {
      this.connection.db.insert(uiaSessions).values(row).run();
    });
  }

  async getUiaSession(sessionId: string): Promise<UiaSession | null> {
    const row = this.connection.db
      .select()
      .from(uiaSessions)
      .where(eq(uiaSessions.sessionId, sessionId))
      .get();
    return row ? toUiaSession(row) : null;
  }

  markUiaStageCompleted(sessionId: string, stage: string, result: JsonValue): Promise<void> {
    return this.updateObjectColumn(sessionId, 'completed', stage, result);
  }

  setUiaSessionParam(sessionId: string, key: string, value: JsonValue): Promise<void> {
    return this.updateObjectColumn(sessionId, 'params', key, value);
  }

  deleteUiaSession(sessionId: string): Promise<void> {
    return this.enqueue(() => {
      this.connection.db.delete(uiaSessions).where(eq(uiaSessions.sessionId, sessionId)).run();
    });
  }

  deleteUiaSessionsCreatedBefore(ts: number): Promise<number> {
    return this.enqueue(
      () => this.connection.db.delete(uiaSessions).where(lt(uiaSessions.createdTs, ts)).run().changes,
    );
  }

  takeUiaSessionsCreatedBefore(ts: number): Promise<UiaSession[]> {
    return this.enqueue(() =>
      this.connection.db
        .delete(uiaSessions)
        .where(lt(uiaSessions.createdTs, ts))
        .returning()
        .all()
        .map(toUiaSession),
    );
  }

  /** Read, change and write back inside the write transaction, so concurrent updates of one session all land. */
  private updateObjectColumn(
    sessionId: string,
    column: 'completed' | 'params',
    key: string,
    value: JsonValue,
  ): Promise<void> {
    return this.enqueue(() => {
      const row = this.connection.db
        .select({ json: uiaSessions[column] })
        .from(uiaSessions)
        .where(eq(uiaSessions.sessionId, sessionId))
        .get();
      if (!row) throw new StorageError('NOT_FOUND', `no UIA session ${sessionId}`);
      // fromEntries defines own properties, so even a key named __proto__ is kept as data.
      const object = Object.fromEntries([
        ...Object.entries(JSON.parse(row.json) as JsonObject),
        [key, value],
      ]);
      this.connection.db
        .update(uiaSessions)
        .set({ [column]: JSON.stringify(object) })
        .where(eq(uiaSessions.sessionId, sessionId))
        .run();
    });
  }
}

function toUiaSession(row: typeof uiaSessions.$inferSelect): UiaSession {
  return {
    sessionId: row.sessionId,
    createdTs: row.createdTs,
    method: row.method,
    uri: row.uri,
    clientDict: JSON.parse(row.clientDict) as JsonObject,
    completed: JSON.parse(row.completed) as Record<string, JsonValue>,
    params: JSON.parse(row.params) as Record<string, JsonValue>,
  };
}
