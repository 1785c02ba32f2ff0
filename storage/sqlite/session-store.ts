import { and, eq, ne } from 'drizzle-orm';
import { StorageError } from '../errors.js';
import type { NewSession, Session, SessionStore } from '../session-store.js';
import type { SqliteConnection } from './connection.js';
import { sessions } from './schema.js';
import type { EnqueueWrite } from './write-queue.js';

export class SqliteSessionStore implements SessionStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  async getSession(sessionId: string): Promise<Session | null> {
    return this.connection.db.select().from(sessions).where(eq(sessions.sessionId, sessionId)).get() ?? null;
  }

  async findSessionByRefreshTokenHash(refreshTokenHash: string): Promise<Session | null> {
    return (
      this.connection.db
        .select()
        .from(sessions)
        .where(eq(sessions.refreshTokenHash, refreshTokenHash))
        .get() ?? null
    );
  }

  async listSessions(userId: string): Promise<Session[]> {
    return this.connection.db
      .select()
      .from(sessions)
      .where(eq(sessions.userId, userId))
      .orderBy(sessions.createdTs, sessions.sessionId)
      .all();
  }

  createSession(session: NewSession): Promise<void> {
    const row = {
      sessionId: session.sessionId,
      userId: session.userId,
      deviceId: session.deviceId,
      createdTs: session.createdTs,
      revoked: false,
      refreshTokenHash: session.refreshTokenHash ?? null,
      refreshTokenExpiresTs: session.refreshTokenExpiresTs ?? null,
    };
    return this.enqueue(() => {
      this.connection.db.insert(sessions).values(row).run();
    });
  }

  revokeSession(sessionId: string): Promise<void> {
    return this.enqueue(() => {
      const result = this.connection.db
        .update(sessions)
        .set({ revoked: true, refreshTokenHash: null, refreshTokenExpiresTs: null })
        .where(eq(sessions.sessionId, sessionId))
        .run();
      if (result.changes === 0) throw new StorageError('NOT_FOUND', `no session ${sessionId}`);
    });
  }

  revokeSessionsOfUser(userId: string, exceptSessionId?: string): Promise<number> {
    return this.enqueue(
      () =>
        this.connection.db
          .update(sessions)
          .set({ revoked: true, refreshTokenHash: null, refreshTokenExpiresTs: null })
          .where(
            and(
              eq(sessions.userId, userId),
              eq(sessions.revoked, false),
              exceptSessionId === undefined ? undefined : ne(sessions.sessionId, exceptSessionId),
            ),
          )
          .run().changes,
    );
  }

  revokeSessionsOfDevice(userId: string, deviceId: string): Promise<number> {
    return this.enqueue(
      () =>
        this.connection.db
          .update(sessions)
          .set({ revoked: true, refreshTokenHash: null, refreshTokenExpiresTs: null })
          .where(
            and(eq(sessions.userId, userId), eq(sessions.deviceId, deviceId), eq(sessions.revoked, false)),
          )
          .run().changes,
    );
  }

  rotateRefreshToken(sessionId: string, refreshTokenHash: string, expiresTs: number | null): Promise<void> {
    return this.enqueue(() => {
      const result = this.connection.db
        .update(sessions)
        .set({ refreshTokenHash, refreshTokenExpiresTs: expiresTs })
        .where(and(eq(sessions.sessionId, sessionId), eq(sessions.revoked, false)))
        .run();
      if (result.changes === 0) throw new StorageError('NOT_FOUND', `no live session ${sessionId}`);
    });
  }
}
