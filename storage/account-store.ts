export interface Account {
  readonly userId: string;
  /** Null for accounts that cannot log in with a password (guests, SSO-only, appservice users). */
  readonly passwordHash: string | null;
  readonly isAdmin: boolean;
  readonly isGuest: boolean;
  readonly deactivated: boolean;
  /** Deactivated with `erase: true`: a later GDPR erasure job must remove the user's data. */
  readonly erased: boolean;
  /** client-server "Account locking": every request but logout answers M_USER_LOCKED. */
  readonly locked: boolean;
  /** client-server "Account suspension": reads go on, acting in rooms and on the profile does not. */
  readonly suspended: boolean;
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

/** A custom profile field value (client-server "Profiles", v1.16 custom fields): any JSON value. */
export type ProfileFieldValue = import('../protocol/events.js').JsonValue;

export interface AccountReader {
  getAccount(userId: string): Promise<Account | null>;
  countAccounts(): Promise<number>;
  /** Accounts whose user ID equals `userId` ignoring ASCII case (login is case-insensitive), oldest first. */
  findAccountsCaseInsensitive(userId: string): Promise<Account[]>;
  /**
   * Non-deactivated, non-guest accounts whose user ID or display name contains
   * `term` (case-insensitive), ordered by user ID, at most `limit`.
   */
  searchAccounts(term: string, limit: number): Promise<Account[]>;
  /** Custom profile fields (not displayname/avatar_url, which live on Account). */
  getProfileFields(userId: string): Promise<Record<string, ProfileFieldValue>>;
}

export interface AccountWriter {
  /** Throws CONFLICT when the user ID is taken. */
  createAccount(account: NewAccount): Promise<void>;
  /** These throw NOT_FOUND for an unknown user. */
  setPasswordHash(userId: string, passwordHash: string | null): Promise<void>;
  setAdmin(userId: string, isAdmin: boolean): Promise<void>;
  /** `erase` records the deactivation's GDPR erasure request (client-server "Account deactivation"). */
  setDeactivated(userId: string, deactivated: boolean, erase?: boolean): Promise<void>;
  setLocked(userId: string, locked: boolean): Promise<void>;
  setSuspended(userId: string, suspended: boolean): Promise<void>;
  updateProfile(userId: string, update: ProfileUpdate): Promise<void>;
  /** Sets a custom profile field; `null` deletes it. NOT_FOUND for an unknown user. */
  setProfileField(userId: string, key: string, value: ProfileFieldValue | null): Promise<void>;
}

export interface AccountStore extends AccountReader, AccountWriter {}
