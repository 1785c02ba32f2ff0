import { eq, lte } from 'drizzle-orm';
import type { LoginTokenStore } from '../login-token-store.js';
import type { SqliteConnection } from './connection.js';
import { loginTokens } from './schema.js';
import type { EnqueueWrite } from './write-queue.js';

export class SqliteLoginTokenStore implements LoginTokenStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  createLoginToken(token: {
    tokenHash: string;
    userId: string;
    createdTs: number;
    expiresTs: number;
  }): Promise<void> {
    const row = {
      tokenHash: token.tokenHash,
      userId: token.userId,
      createdTs: token.createdTs,
      expiresTs: token.expiresTs,
    };
    return this.enqueue(() => {
      this.connection.db.insert(loginTokens).values(row).run();
    });
  }

  consumeLoginToken(tokenHash: string, nowTs: number): Promise<string | null> {
    return this.enqueue(() => {
      // DELETE ... RETURNING: only the statement that removes the row sees it.
      const row = this.connection.db
        .delete(loginTokens)
        .where(eq(loginTokens.tokenHash, tokenHash))
        .returning({ userId: loginTokens.userId, expiresTs: loginTokens.expiresTs })
        .get();
      return row && nowTs < row.expiresTs ? row.userId : null;
    });
  }

  deleteExpiredLoginTokens(nowTs: number): Promise<number> {
    return this.enqueue(
      () => this.connection.db.delete(loginTokens).where(lte(loginTokens.expiresTs, nowTs)).run().changes,
    );
  }
}
