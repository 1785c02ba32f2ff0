import { and, asc, count, eq, or, sql } from 'drizzle-orm';
import type { SQLiteUpdateSetSource } from 'drizzle-orm/sqlite-core';
import type { JsonValue } from '../../protocol/events.js';
import type {
  Account,
  AccountStore,
  NewAccount,
  ProfileFieldValue,
  ProfileUpdate,
} from '../account-store.js';
import { StorageError } from '../errors.js';
import type { SqliteConnection, SqliteDatabase } from './connection.js';
import { accounts, profileFields } from './schema.js';
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

  async findAccountsCaseInsensitive(userId: string): Promise<Account[]> {
    return accountsByUserIdIgnoringCase(this.connection.db, userId).all();
  }

  async searchAccounts(term: string, limit: number): Promise<Account[]> {
    const pattern = `%${escapeLikePattern(term)}%`;
    return this.connection.db
      .select()
      .from(accounts)
      .where(
        and(
          eq(accounts.deactivated, false),
          eq(accounts.isGuest, false),
          or(
            sql`${accounts.userId} LIKE ${pattern} ESCAPE '\\'`,
            sql`${accounts.displayName} LIKE ${pattern} ESCAPE '\\'`,
          ),
        ),
      )
      .orderBy(asc(accounts.userId))
      .limit(Math.max(0, Math.trunc(limit)))
      .all();
  }

  async getProfileFields(userId: string): Promise<Record<string, ProfileFieldValue>> {
    const rows = this.connection.db
      .select({ key: profileFields.key, value: profileFields.value })
      .from(profileFields)
      .where(eq(profileFields.userId, userId))
      .orderBy(asc(profileFields.key))
      .all();
    // fromEntries defines own properties, so even a key named __proto__ is kept as data.
    return Object.fromEntries(rows.map((row) => [row.key, JSON.parse(row.value) as JsonValue]));
  }

  createAccount(account: NewAccount): Promise<void> {
    const row = {
      userId: account.userId,
      passwordHash: account.passwordHash ?? null,
      isAdmin: account.isAdmin ?? false,
      isGuest: account.isGuest ?? false,
      deactivated: false,
      erased: false,
      locked: false,
      suspended: false,
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

  setDeactivated(userId: string, deactivated: boolean, erase = false): Promise<void> {
    // An erasure request, once made, stays until the account is reactivated.
    return this.update(userId, {
      deactivated,
      erased: deactivated ? (erase ? true : sql`${accounts.erased}`) : false,
    });
  }

  setLocked(userId: string, locked: boolean): Promise<void> {
    return this.update(userId, { locked });
  }

  setSuspended(userId: string, suspended: boolean): Promise<void> {
    return this.update(userId, { suspended });
  }

  updateProfile(userId: string, update: ProfileUpdate): Promise<void> {
    const changes: AccountChanges = {};
    if (update.displayName !== undefined) changes.displayName = update.displayName;
    if (update.avatarUrl !== undefined) changes.avatarUrl = update.avatarUrl;
    return this.update(userId, changes);
  }

  setProfileField(userId: string, key: string, value: ProfileFieldValue | null): Promise<void> {
    const json = value === null ? null : JSON.stringify(value);
    return this.enqueue(() => {
      const exists = this.connection.db
        .select({ userId: accounts.userId })
        .from(accounts)
        .where(eq(accounts.userId, userId))
        .get();
      if (!exists) throw new StorageError('NOT_FOUND', `no account ${userId}`);
      if (json === null) {
        this.connection.db
          .delete(profileFields)
          .where(and(eq(profileFields.userId, userId), eq(profileFields.key, key)))
          .run();
      } else {
        this.connection.db
          .insert(profileFields)
          .values({ userId, key, value: json })
          .onConflictDoUpdate({ target: [profileFields.userId, profileFields.key], set: { value: json } })
          .run();
      }
    });
  }

  private update(userId: string, changes: AccountChanges): Promise<void> {
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

/** Exported so a test can check the query plan: the lower(user_id) expression index, not a table scan. */
export function accountsByUserIdIgnoringCase(db: SqliteDatabase, userId: string) {
  return db
    .select()
    .from(accounts)
    .where(sql`lower(${accounts.userId}) = lower(${userId})`)
    .orderBy(asc(accounts.createdTs), asc(accounts.userId));
}

type AccountChanges = SQLiteUpdateSetSource<typeof accounts>;

/** Makes `%`, `_` and the escape character itself match literally under `LIKE ... ESCAPE '\'`. */
function escapeLikePattern(term: string): string {
  return term.replace(/[\\%_]/g, (c) => `\\${c}`);
}
