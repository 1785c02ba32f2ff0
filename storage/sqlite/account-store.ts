import { count, eq } from 'drizzle-orm';
import type { Account, AccountStore, NewAccount, ProfileUpdate } from '../account-store.js';
import { StorageError } from '../errors.js';
import type { SqliteConnection } from './connection.js';
import { accounts } from './schema.js';
import type { EnqueueWrite } from './write-queue.js';

export class SqliteAccountStore implements AccountStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  async getAccount(userId: string): Promise<Account | null> {
    return this.connection.db.select().from(accounts).where(eq(accounts.userId, userId)).get() ?? null;
  }

  async countAccounts(): Promise<number> {
    return this.connection.db.select({ n: count() }).from(accounts).get()?.n ?? 0;
  }

  createAccount(account: NewAccount): Promise<void> {
    const row = {
      userId: account.userId,
      passwordHash: account.passwordHash ?? null,
      isAdmin: account.isAdmin ?? false,
      isGuest: account.isGuest ?? false,
      deactivated: false,
      createdTs: account.createdTs,
      displayName: account.displayName ?? null,
      avatarUrl: account.avatarUrl ?? null,
    };
    return this.enqueue(() => {
      this.connection.db.insert(accounts).values(row).run();
    });
  }

  setPasswordHash(userId: string, passwordHash: string | null): Promise<void> {
    return this.update(userId, { passwordHash });
  }

  setAdmin(userId: string, isAdmin: boolean): Promise<void> {
    return this.update(userId, { isAdmin });
  }

  setDeactivated(userId: string, deactivated: boolean): Promise<void> {
    return this.update(userId, { deactivated });
  }

  updateProfile(userId: string, update: ProfileUpdate): Promise<void> {
    const changes: Partial<typeof accounts.$inferInsert> = {};
    if (update.displayName !== undefined) changes.displayName = update.displayName;
    if (update.avatarUrl !== undefined) changes.avatarUrl = update.avatarUrl;
    return this.update(userId, changes);
  }

  private update(userId: string, changes: Partial<typeof accounts.$inferInsert>): Promise<void> {
    return this.enqueue(() => {
      const exists =
        Object.keys(changes).length === 0
          ? this.connection.db
              .select({ userId: accounts.userId })
              .from(accounts)
              .where(eq(accounts.userId, userId))
              .get()
          : this.connection.db
              .update(accounts)
              .set(changes)
              .where(eq(accounts.userId, userId))
              .returning({ userId: accounts.userId })
              .get();
      if (!exists) throw new StorageError('NOT_FOUND', `no account ${userId}`);
    });
  }
}
