/**
 * Short-lived, single-use login tokens for `m.login.token` (client-server
 * "POST /login/get_token"). Only a hash of each token is stored.
 */
export interface LoginTokenStore {
  /** Throws CONFLICT for a hash already stored, MISSING_REFERENCE for an unknown user. */
  createLoginToken(token: {
    tokenHash: string;
    userId: string;
    createdTs: number;
    expiresTs: number;
  }): Promise<void>;
  /**
   * Deletes the token and resolves to its user if it existed and had not expired
   * at `nowTs` (`nowTs < expiresTs`); null otherwise. At most one caller ever
   * gets the user for a given token.
   */
  consumeLoginToken(tokenHash: string, nowTs: number): Promise<string | null>;
  /** Removes tokens expired at `nowTs` (`expiresTs <= nowTs`); resolves to how many. */
  deleteExpiredLoginTokens(nowTs: number): Promise<number>;
}
