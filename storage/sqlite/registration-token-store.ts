import { and, asc, eq, gt, isNull, or, sql } from 'drizzle-orm';
import type { SQLiteUpdateSetSource } from 'drizzle-orm/sqlite-core';
import { StorageError } from '../errors.js';
import type { RegistrationToken, RegistrationTokenStore } from '../registration-token-store.js';
import type { SqliteConnection } from './connection.js';
import { registrationTokens } from './schema.js';
import type { EnqueueWrite } from './write-queue.js';

export class SqliteRegistrationTokenStore implements RegistrationTokenStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  async getRegistrationToken(token: string): Promise<RegistrationToken | null> {
    return (
      this.connection.db.select().from(registrationTokens).where(eq(registrationTokens.token, token)).get() ??
      null
    );
  }

  async listRegistrationTokens(): Promise<RegistrationToken[]> {
    return this.connection.db.select().from(registrationTokens).orderBy(asc(registrationTokens.token)).all();
  }

  createRegistrationToken(token: {
    token: string;
    usesAllowed: number | null;
    expiryTs: number | null;
  }): Promise<void> {
    const row = { token: token.token, usesAllowed: token.usesAllowed, expiryTs: token.expiryTs };
    return this.enqueue(() => {
      this.connection.db.insert(registrationTokens).values(row).run();
    });
  }

  updateRegistrationToken(
    token: string,
    update: { usesAllowed?: number | null; expiryTs?: number | null },
  ): Promise<void> {
    const changes: SQLiteUpdateSetSource<typeof registrationTokens> = {};
    if (update.usesAllowed !== undefined) changes.usesAllowed = update.usesAllowed;
    if (update.expiryTs !== undefined) changes.expiryTs = update.expiryTs;
    // Setting the token to itself keeps one statement that also tells whether it exists.
    if (Object.keys(changes).length === 0) changes.token = token;
    return this.enqueue(() => {
      const result = this.connection.db
        .update(registrationTokens)
        .set(changes)
        .where(eq(registrationTokens.token, token))
        .run();
      if (result.changes === 0) throw new StorageError('NOT_FOUND', `no registration token ${token}`);
    });
  }

  deleteRegistrationToken(token: string): Promise<void> {
    return this.enqueue(() => {
      const result = this.connection.db
        .delete(registrationTokens)
        .where(eq(registrationTokens.token, token))
        .run();
      if (result.changes === 0) throw new StorageError('NOT_FOUND', `no registration token ${token}`);
    });
  }

  reserveRegistrationTokenUse(token: string, nowTs: number): Promise<boolean> {
    return this.enqueue(() => {
      // Check and count in one UPDATE: concurrent reservations can never exceed uses_allowed.
      const result = this.connection.db
        .update(registrationTokens)
        .set({ pending: sql`${registrationTokens.pending} + 1` })
        .where(
          and(
            eq(registrationTokens.token, token),
            or(isNull(registrationTokens.expiryTs), gt(registrationTokens.expiryTs, nowTs)),
            or(
              isNull(registrationTokens.usesAllowed),
              sql`${registrationTokens.pending} + ${registrationTokens.completed} < ${registrationTokens.usesAllowed}`,
            ),
          ),
        )
        .run();
      return result.changes > 0;
    });
  }

  completeRegistrationTokenUse(token: string): Promise<void> {
    return this.enqueue(() => {
      this.connection.db
        .update(registrationTokens)
        .set({
          pending: sql`max(${registrationTokens.pending} - 1, 0)`,
          completed: sql`${registrationTokens.completed} + 1`,
        })
        .where(eq(registrationTokens.token, token))
        .run();
    });
  }

  releaseRegistrationTokenUse(token: string): Promise<void> {
    return this.enqueue(() => {
      this.connection.db
        .update(registrationTokens)
        .set({ pending: sql`${registrationTokens.pending} - 1` })
        .where(and(eq(registrationTokens.token, token), gt(registrationTokens.pending, 0)))
        .run();
    });
  }
}
