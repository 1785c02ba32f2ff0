/**
 * OpenID tokens (client-server "OpenID", server-server "OpenID"): a user asks for
 * one, hands it to a third party (an integration manager, a widget), and that party
 * asks this server's federation API who the token belongs to. The token is a
 * short-lived JWT under a key derived from the session secret (so it can never pass
 * for an access token, and stays valid across restarts and workers); it proves
 * identity only, and only while the account is active.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';

/** The spec's example and Synapse's lifetime: one hour. */
export const OPENID_TOKEN_LIFETIME_SECONDS = 3600;
const AUDIENCE = 'openid-userinfo';

export interface OpenIdTokens {
  issue(userId: string): Promise<{ token: string; expiresInSeconds: number }>;
  /** The user the token was issued to, or null when it is not a valid, unexpired token of ours. */
  userOf(token: string): Promise<string | null>;
}

export function createOpenIdTokens(sessionSecret: Uint8Array, serverName: string): OpenIdTokens {
  const key: KeyObject = createSecretKey(
    createHmac('sha256', sessionSecret).update('myelin openid tokens').digest(),
  );
  return {
    async issue(userId) {
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(userId)
        .setIssuer(serverName)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(`${OPENID_TOKEN_LIFETIME_SECONDS}s`)
        .sign(key);
      return { token, expiresInSeconds: OPENID_TOKEN_LIFETIME_SECONDS };
    },
    async userOf(token) {
      try {
        const { payload } = await jwtVerify(token, key, {
          issuer: serverName,
          audience: AUDIENCE,
          algorithms: ['HS256'],
        });
        return typeof payload.sub === 'string' ? payload.sub : null;
      } catch {
        return null;
      }
    },
  };
}
