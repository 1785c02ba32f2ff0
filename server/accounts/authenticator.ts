/**
 * Who an access token belongs to (client-server "Using access tokens"): the
 * JWT's signature and lifetime, then its session, alive right now, then the
 * account's flags. A token once verified is remembered until it expires, so
 * the steady state is two map lookups.
 */

import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import {
  authenticateAppservice,
  type IdentityAssertionDependencies,
} from '../appservice/identity-assertion.js';
import { MatrixError } from '../errors.js';
import type { AuthenticatedUser, Authenticator, RequestOrigin } from '../http/auth.js';
import type { AccessTokenClaims } from './access-tokens.js';
import type { SessionService } from './session-service.js';

const VERIFIED_TOKEN_CACHE_SIZE = 50_000;

export function createAccountsAuthenticator(
  sessions: SessionService,
  authenticateServer: Authenticator['authenticateServer'],
  /** Application services' as_tokens authenticate too (absent or empty: none are configured). */
  appservices?: IdentityAssertionDependencies,
): Authenticator {
  const appserviceAuth = appservices !== undefined && appservices.registry.size > 0 ? appservices : undefined;
  const verified = new LazyLruCache<string, AccessTokenClaims>({ max: VERIFIED_TOKEN_CACHE_SIZE });

  const claimsOf = async (token: string): Promise<AccessTokenClaims> => {
    const cached = verified.get(token);
    if (cached && (cached.expiresAtMs === undefined || cached.expiresAtMs > Date.now())) return cached;
    if (cached) verified.delete(token);
    const verdict = await sessions.tokens.verify(token);
    switch (verdict.kind) {
      case 'valid':
        verified.set(token, verdict.claims);
        return verdict.claims;
      case 'expired': {
        // spec "Soft logout": the session lives on and its refresh token can revive it.
        const state = await sessions.sessionState(verdict.claims.sessionId);
        throw MatrixError.unknownToken('Access token has expired.', state.alive && state.hasRefreshToken);
      }
      case 'invalid':
        throw MatrixError.unknownToken();
    }
  };

  /** The token's session is alive and is the token user's. */
  const sessionHolds = (
    claims: AccessTokenClaims,
    state: Awaited<ReturnType<SessionService['sessionState']>>,
  ) => state.alive && state.userId === claims.userId;

  const userOf = (
    claims: AccessTokenClaims,
    state: Awaited<ReturnType<SessionService['sessionState']>>,
    account: Awaited<ReturnType<SessionService['accountFlags']>>,
    origin: RequestOrigin | undefined,
  ): AuthenticatedUser => {
    if (!sessionHolds(claims, state)) throw MatrixError.unknownToken();
    if (!account.exists || account.deactivated) throw MatrixError.unknownToken();
    sessions.tokenUsed(claims);
    sessions.lastSeen.record(claims.userId, claims.deviceId, origin?.ip ?? null, origin?.userAgent ?? null);
    return {
      kind: 'user',
      userId: claims.userId,
      deviceId: claims.deviceId,
      isGuest: account.isGuest,
      sessionId: claims.sessionId,
      isAdmin: account.isAdmin,
      isLocked: account.locked,
      isSuspended: account.suspended,
    };
  };

  const authenticateSlowly = async (token: string, origin?: RequestOrigin): Promise<AuthenticatedUser> => {
    const claims = await claimsOf(token);
    const state = await sessions.sessionState(claims.sessionId);
    // A dead session is refused before its account's flags are loaded.
    if (!sessionHolds(claims, state)) throw MatrixError.unknownToken();
    return userOf(claims, state, await sessions.accountFlags(claims.userId), origin);
  };

  return {
    authenticateAccessToken(
      token: string,
      origin?: RequestOrigin,
      query?: Readonly<Record<string, unknown>>,
    ): Promise<AuthenticatedUser> {
      if (appserviceAuth !== undefined) {
        const service = appserviceAuth.registry.withToken(token);
        if (service !== undefined) return authenticateAppservice(service, appserviceAuth, query);
      }
      // The steady state (token, session and account all cached) answers without an await.
      const claims = verified.get(token);
      if (claims !== undefined && (claims.expiresAtMs === undefined || claims.expiresAtMs > Date.now())) {
        const state = sessions.sessionState(claims.sessionId);
        const account = state instanceof Promise ? undefined : sessions.accountFlags(claims.userId);
        if (!(state instanceof Promise) && account !== undefined && !(account instanceof Promise)) {
          try {
            return Promise.resolve(userOf(claims, state, account, origin));
          } catch (error) {
            return Promise.reject(error);
          }
        }
      }
      return authenticateSlowly(token, origin);
    },
    authenticateServer,
  };
}
