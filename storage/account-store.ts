export interface Account {
  readonly userId: string;
  /** Null for accounts that cannot log in with a password (guests, SSO-only, appservice users). */
  readonly passwordHash: string | null;
  readonly isAdmin: boolean;
  readonly isGuest: boolean;
  readonly deactivated: boolean;
  readonly createdTs: number;
  readonly displayName: string | null;
  readonly avatarUrl: string | null;
}

export interface NewAccount {
  readonly userId: string;
  readonly passwordHash?: string | null;
  readonly isAdmin?: boolean;
  readonly isGuest?: boolean;
  readonly createdTs: number;
  readonly displayName?: string | null;
  readonly avatarUrl?: string | null;
}

export interface ProfileUpdate {
  /** `undefined` leaves the field alone; `null` clears it. */
  readonly displayName?: string | null;
  readonly avatarUrl?: string | null;
}

export interface AccountReader {
  getAccount(userId: string): Promise<Account | null>;
  countAccounts(): Promise<number>;
}

export interface AccountWriter {
  /** Throws CONFLICT when the user ID is taken. */
  createAccount(account: NewAccount): Promise<void>;
  /** These throw NOT_FOUND for an unknown user. */
  setPasswordHash(userId: string, passwordHash: string | null): Promise<void>;
  setAdmin(userId: string, isAdmin: boolean): Promise<void>;
  setDeactivated(userId: string, deactivated: boolean): Promise<void>;
  updateProfile(userId: string, update: ProfileUpdate): Promise<void>;
}

export interface AccountStore extends AccountReader, AccountWriter {}
