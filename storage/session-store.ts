/**
 * A login session. Access tokens are JWTs that name the session; checking the
 * session row (not revoked, still present) is what makes them revocable.
 */
export interface Session {
  readonly sessionId: string;
  readonly userId: string;
  readonly deviceId: string;
  readonly createdTs: number;
  readonly revoked: boolean;
  /** Hash of the current refresh token; null when the session has none. */
  readonly refreshTokenHash: string | null;
  readonly refreshTokenExpiresTs: number | null;
}

export interface NewSession {
  readonly sessionId: string;
  readonly userId: string;
  readonly deviceId: string;
  readonly createdTs: number;
  readonly refreshTokenHash?: string | null;
  readonly refreshTokenExpiresTs?: number | null;
}

export interface SessionReader {
  getSession(sessionId: string): Promise<Session | null>;
  findSessionByRefreshTokenHash(refreshTokenHash: string): Promise<Session | null>;
  /**
   * The session a refresh token belongs to, whether it is the session's current
   * refresh token or the one it replaced (`isCurrent: false`): presenting a
   * replaced token again means it was stolen or replayed, and the caller revokes the session.
   */
  findRefreshToken(refreshTokenHash: string): Promise<{ session: Session; isCurrent: boolean } | null>;
  /** Sessions of a user, revoked ones included, oldest first. */
  listSessions(userId: string): Promise<Session[]>;
}

export interface SessionWriter {
  /** Throws CONFLICT for a reused session ID or refresh token hash, MISSING_REFERENCE for an unknown device. */
  createSession(session: NewSession): Promise<void>;
  /** Throws NOT_FOUND for an unknown session. Forgets its refresh tokens (current and replaced). */
  revokeSession(sessionId: string): Promise<void>;
  /** Revokes every session of the user but `exceptSessionId`; resolves to how many were revoked. */
  revokeSessionsOfUser(userId: string, exceptSessionId?: string): Promise<number>;
  revokeSessionsOfDevice(userId: string, deviceId: string): Promise<number>;
  /**
   * Replaces the refresh token of a live session, remembering the replaced one
   * (see findRefreshToken; only the latest replaced token is remembered);
   * throws NOT_FOUND if it is unknown or revoked. With `expectedRefreshTokenHash`
   * it rotates only if that is still the current token, and throws CONFLICT
   * otherwise: of two concurrent refreshes with the same token, one wins.
   */
  rotateRefreshToken(
    sessionId: string,
    refreshTokenHash: string,
    expiresTs: number | null,
    expectedRefreshTokenHash?: string,
  ): Promise<void>;
}

export interface SessionStore extends SessionReader, SessionWriter {}
