import { and, eq, ne, or, sql } from 'drizzle-orm';
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
    return (
      this.connection.db
        .select(sessionColumns)
        .from(sessions)
        .where(eq(sessions.sessionId, sessionId))
        .get() ?? null
    );
  }

  async findSessionByRefreshTokenHash(refreshTokenHash: string): Promise<Session | null> {
    return (
      this.connection.db
        .select(sessionColumns)
        .from(sessions)
        .where(eq(sessions.refreshTokenHash, refreshTokenHash))
        .get() ?? null
    );
  }

  async findRefreshToken(refreshTokenHash: string): Promise<{ session: Session; isCurrent: boolean } | null> {
    // One statement, so a rotation cannot fall between looking at the current and the replaced token.
    const row = this.connection.db
      .select({ ...sessionColumns, replacedRefreshTokenHash: sessions.replacedRefreshTokenHash })
      .from(sessions)
      .where(
        or(
          eq(sessions.refreshTokenHash, refreshTokenHash),
          eq(sessions.replacedRefreshTokenHash, refreshTokenHash),
        ),
      )
      // Should one session hold the hash as current and another as replaced, the current one answers.
      .orderBy(sql`${sessions.refreshTokenHash} IS ${refreshTokenHash} DESC`)
      .get();
    if (!row) return null;
    const { replacedRefreshTokenHash: _replaced, ...session } = row;
    return { session, isCurrent: session.refreshTokenHash === refreshTokenHash };
  }

  async listSessions(userId: string): Promise<Session[]> {
    return this.connection.db
      .select(sessionColumns)
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
        .set(revokedColumns)
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
          .set(revokedColumns)
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
          .set(revokedColumns)
          .where(
            and(eq(sessions.userId, userId), eq(sessions.deviceId, deviceId), eq(sessions.revoked, false)),
          )
          .run().changes,
    );
  }

  rotateRefreshToken(
    sessionId: string,
    refreshTokenHash: string,
    expiresTs: number | null,
    expectedRefreshTokenHash?: string,
  ): Promise<void> {
    return this.enqueue(() => {
      const live = and(eq(sessions.sessionId, sessionId), eq(sessions.revoked, false));
      const result = this.connection.db
        .update(sessions)
        .set({
          refreshTokenHash,
          refreshTokenExpiresTs: expiresTs,
          replacedRefreshTokenHash: sql`${sessions.refreshTokenHash}`,
        })
        .where(
          expectedRefreshTokenHash === undefined
            ? live
            : and(live, eq(sessions.refreshTokenHash, expectedRefreshTokenHash)),
        )
        .run();
      if (result.changes > 0) return;
      if (
        expectedRefreshTokenHash !== undefined &&
        this.connection.db.select({ id: sessions.sessionId }).from(sessions).where(live).get()
      ) {
        throw new StorageError('CONFLICT', `the refresh token of session ${sessionId} was already rotated`);
      }
      throw new StorageError('NOT_FOUND', `no live session ${sessionId}`);
    });
  }
}

/** The columns a Session exposes (the replaced refresh token stays inside storage). */
const sessionColumns = {
  sessionId: sessions.sessionId,
  userId: sessions.userId,
  deviceId: sessions.deviceId,
  createdTs: sessions.createdTs,
  revoked: sessions.revoked,
  refreshTokenHash: sessions.refreshTokenHash,
  refreshTokenExpiresTs: sessions.refreshTokenExpiresTs,
};

const revokedColumns = {
  revoked: true,
  refreshTokenHash: null,
  refreshTokenExpiresTs: null,
  replacedRefreshTokenHash: null,
};
