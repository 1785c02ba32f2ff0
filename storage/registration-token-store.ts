/**
 * Operator-created registration tokens (client-server "Token-authenticated
 * registration", m.login.registration_token), with Synapse's admin-API shape:
 * a use is *pending* while a registration that presented the token is still
 * running its UIA flow, and *completed* once the account exists.
 */
export interface RegistrationToken {
  readonly token: string;
  /** Null: unlimited. */
  readonly usesAllowed: number | null;
  readonly pending: number;
  readonly completed: number;
  /** Null: never expires. Valid while now < expiryTs. */
  readonly expiryTs: number | null;
}

export interface RegistrationTokenReader {
  getRegistrationToken(token: string): Promise<RegistrationToken | null>;
  listRegistrationTokens(): Promise<RegistrationToken[]>;
}

export interface RegistrationTokenWriter {
  /** Throws CONFLICT for an existing token. */
  createRegistrationToken(token: {
    token: string;
    usesAllowed: number | null;
    expiryTs: number | null;
  }): Promise<void>;
  /** Throws NOT_FOUND for an unknown token. `undefined` fields are left alone. */
  updateRegistrationToken(
    token: string,
    update: { usesAllowed?: number | null; expiryTs?: number | null },
  ): Promise<void>;
  /** Throws NOT_FOUND for an unknown token. */
  deleteRegistrationToken(token: string): Promise<void>;
  /**
   * Atomically checks the token is valid at `nowTs` (exists, not expired:
   * `nowTs < expiryTs`, pending + completed < usesAllowed) and counts a pending
   * use. Resolves false (counting nothing) when it is not valid.
   */
  reserveRegistrationTokenUse(token: string, nowTs: number): Promise<boolean>;
  /**
   * Moves one pending use to completed (the account was created). Without a
   * pending use it still counts the completion; an unknown (deleted) token is not an error.
   */
  completeRegistrationTokenUse(token: string): Promise<void>;
  /** Gives a pending use back (the registration was abandoned or failed); no-op without one. */
  releaseRegistrationTokenUse(token: string): Promise<void>;
}

export interface RegistrationTokenStore extends RegistrationTokenReader, RegistrationTokenWriter {}
