/**
 * Access tokens are JWTs signed by this server (HS256 over a 256-bit secret
 * kept in a file of its own). A token names its session; the signature says
 * the server issued it, the session check (session-service.ts) says it has not
 * been revoked since. Refresh and login tokens are opaque random strings of
 * which only a SHA-256 hash is stored.
 */
import { createHash, createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { Logger } from 'pino';
import type { MyelinConfig } from '../config/index.js';

export interface AccessTokenClaims {
  readonly userId: string;
  readonly deviceId: string;
  readonly sessionId: string;
  /** Unique per token: lets a refresh be confirmed by the first use of the token it issued. */
  readonly tokenId: string;
  readonly issuedAtMs: number;
  /** Only tokens issued together with a refresh token expire. */
  readonly expiresAtMs: number | undefined;
}

/** The typed outcome of checking a token's signature and lifetime (not its session). */
export type AccessTokenVerdict =
  | { readonly kind: 'valid'; readonly claims: AccessTokenClaims }
  /** Genuinely ours but past its `exp`: the session may still be alive (soft logout). */
  | { readonly kind: 'expired'; readonly claims: AccessTokenClaims }
  | { readonly kind: 'invalid' };

export interface AccessTokenCodec {
  issue(
    claims: Omit<AccessTokenClaims, 'tokenId' | 'issuedAtMs'>,
  ): Promise<{ token: string; tokenId: string }>;
  verify(token: string): Promise<AccessTokenVerdict>;
}

const SECRET_BYTES = 32;
const ALGORITHM = 'HS256';
/** A JWT for a 255-byte user ID stays well under this; longer strings are not worth parsing. */
const MAX_TOKEN_LENGTH = 2048;

export function createAccessTokenCodec(secret: Uint8Array, issuer: string): AccessTokenCodec {
  const key: KeyObject = createSecretKey(secret);
  return {
    async issue(claims) {
      const tokenId = randomToken(12);
      const issuedAtMs = Date.now();
      const jwt = new SignJWT({ device_id: claims.deviceId, sid: claims.sessionId })
        .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
        .setSubject(claims.userId)
        .setIssuer(issuer)
        .setJti(tokenId)
        .setIssuedAt(Math.floor(issuedAtMs / 1000));
      if (claims.expiresAtMs !== undefined) jwt.setExpirationTime(Math.floor(claims.expiresAtMs / 1000));
      return { token: await jwt.sign(key), tokenId };
    },
    async verify(token) {
      if (token.length > MAX_TOKEN_LENGTH) return { kind: 'invalid' };
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: [ALGORITHM], issuer });
        const claims = claimsOf(payload);
        return claims ? { kind: 'valid', claims } : { kind: 'invalid' };
      } catch (error) {
        // jose checks the signature before the claims, so an expired token's payload is authentic.
        if (error instanceof joseErrors.JWTExpired) {
          const claims = claimsOf(error.payload);
          if (claims) return { kind: 'expired', claims };
        }
        return { kind: 'invalid' };
      }
    },
  };
}

function claimsOf(payload: Record<string, unknown>): AccessTokenClaims | undefined {
  const { sub, device_id: deviceId, sid, jti, iat, exp } = payload;
  if (typeof sub !== 'string' || typeof deviceId !== 'string' || typeof sid !== 'string') return undefined;
  if (typeof jti !== 'string' || typeof iat !== 'number') return undefined;
  if (exp !== undefined && typeof exp !== 'number') return undefined;
  return {
    userId: sub,
    deviceId,
    sessionId: sid,
    tokenId: jti,
    issuedAtMs: iat * 1000,
    expiresAtMs: exp === undefined ? undefined : exp * 1000,
  };
}

/** URL-safe random string of `bytes` random bytes. */
export function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** What is stored for refresh and login tokens: their SHA-256, so a database leak yields no usable token. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** The session key file: config.sessions.secret_path, else DATA_DIR/session.key; made (mode 0600) on first start. */
export async function loadOrCreateSessionSecret(config: MyelinConfig, log: Logger): Promise<Uint8Array> {
  const file = config.sessions.secret_path || path.join(config.data_dir, 'session.key');
  try {
    return parseSecret(await readFile(file, 'utf8'), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = randomBytes(SECRET_BYTES);
  await mkdir(path.dirname(file), { recursive: true });
  try {
    await writeFile(file, `${secret.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another process made it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      return parseSecret(await readFile(file, 'utf8'), file);
    throw error;
  }
  log.info({ file }, 'Generated a new access token signing key');
  return secret;
}

function parseSecret(text: string, file: string): Uint8Array {
  const secret = Buffer.from(text.trim(), 'base64');
  if (secret.length < SECRET_BYTES) {
    throw new Error(`${file} must hold at least ${SECRET_BYTES} bytes of base64-encoded key`);
  }
  return secret;
}
