/**
 * The authentication seam of the request pipeline. The pipeline finds the
 * credentials (client-server "Using access tokens"); an Authenticator says who
 * they belong to. The accounts work supplies the real one; until then no token
 * can exist, so every token is unknown.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { MatrixError } from '../errors.js';

export interface AuthenticatedUser {
  readonly kind: 'user';
  readonly userId: string;
  readonly deviceId: string | null;
  readonly isGuest: boolean;
  /** The login session the access token belongs to (what logout ends). */
  readonly sessionId: string;
  /** A server admin (config rate_limits.exempt_admins, admin APIs). */
  readonly isAdmin: boolean;
  /** client-server "Account locking": the pipeline refuses every route but logout. */
  readonly isLocked: boolean;
  /** client-server "Account suspension": routes that act in rooms or on the profile refuse (assertNotSuspended). */
  readonly isSuspended: boolean;
  /**
   * Set when an application service's as_token authenticated the request (application-service
   * "Identity assertion"): the user is its sender or the user it masquerades as.
   */
  readonly appservice?: AppserviceRequester;
}

export interface AppserviceRequester {
  readonly id: string;
  /** Whether this request draws from the rate limits (the registration's rate_limited; never for its sender). */
  readonly rateLimited: boolean;
}

/** Where an authenticated request came from: recorded as the device's last seen IP and user agent. */
export interface RequestOrigin {
  readonly ip: string;
  readonly userAgent: string | undefined;
}

export interface AuthenticatedServer {
  readonly kind: 'server';
  readonly serverName: string;
}

/** What an X-Matrix check needs: the signed request's method, URI (path and query, as sent) and body. */
export interface SignedRequest {
  readonly method: string;
  readonly uri: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawBody: Uint8Array | undefined;
}

export interface Authenticator {
  /**
   * Throws MatrixError (M_UNKNOWN_TOKEN, M_USER_LOCKED...) when the token does not authenticate.
   * `query` is read only for an application service's token (its identity assertion).
   */
  authenticateAccessToken(
    token: string,
    origin?: RequestOrigin,
    query?: Readonly<Record<string, unknown>>,
  ): Promise<AuthenticatedUser>;
  /** Throws MatrixError (M_UNAUTHORIZED, M_FORBIDDEN) when the signature does not authenticate. */
  authenticateServer(request: SignedRequest): Promise<AuthenticatedServer>;
}

/** Before accounts exist: no token is known and no server signature can be checked yet. */
export const authenticatorWithoutAccounts: Authenticator = {
  async authenticateAccessToken() {
    throw MatrixError.unknownToken();
  },
  async authenticateServer() {
    throw MatrixError.unauthorized('Server authentication is not available.');
  },
};

const ANY_SPACE = /\s/;

/**
 * client-server "Using access tokens": the Authorization Bearer header or the
 * deprecated access_token query parameter, never both. Undefined when neither.
 */
export function accessTokenOf(
  headers: IncomingHttpHeaders,
  query: Record<string, unknown>,
): string | undefined {
  const header = headers.authorization;
  const fromQuery = query.access_token;
  if (header !== undefined && fromQuery !== undefined) {
    throw MatrixError.missingToken('Mixing Authorization headers and access_token query parameters.');
  }
  if (header !== undefined) {
    // The usual form, `Bearer <token>`, without the regular expression's match array.
    if (header.startsWith('Bearer ') && header.length > 7 && !ANY_SPACE.test(header.slice(7))) {
      return header.slice(7);
    }
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (!match) throw MatrixError.missingToken('Invalid Authorization header.');
    return match[1];
  }
  if (fromQuery === undefined) return undefined;
  if (typeof fromQuery !== 'string' || fromQuery === '') {
    throw MatrixError.missingToken('Invalid access_token query parameter.');
  }
  return fromQuery;
}
