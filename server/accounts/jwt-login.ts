/**
 * org.matrix.login.jwt (Synapse's JWT login, MSC-less but widely deployed):
 * POST /login with `{"type": "org.matrix.login.jwt", "token": "<JWT>"}` signed
 * by the organisation's identity provider. The key (shared secret for HS*, a
 * PEM public key or a JWKS file for the rest), accepted algorithms, issuer,
 * audiences and the claim naming the user come from config.jwt_login, read
 * once at start-up. Any failure is 403 M_FORBIDDEN.
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  createLocalJWKSet,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import type { MyelinConfig } from '../config/index.js';
import { MatrixError } from '../errors.js';

export interface JwtLoginVerifier {
  /** The user ID the JWT names on this server (not yet checked to exist); throws 403 M_FORBIDDEN. */
  verify(token: string): Promise<string>;
}

/** A JWT longer than this is not a login token. */
const MAX_JWT_LENGTH = 16_384;

/** Reads the configured keys; undefined when JWT login is off. Throws on a config that cannot work. */
export async function loadJwtLoginVerifier(config: MyelinConfig): Promise<JwtLoginVerifier | undefined> {
  const jwt = config.jwt_login;
  if (!jwt.enabled) return undefined;
  const secret = jwt.secret_path ? createSecretKey(await readSecret(jwt.secret_path)) : undefined;
  const publicKey = jwt.public_key_path
    ? createPublicKey(await readFile(jwt.public_key_path, 'utf8'))
    : undefined;
  const jwks = jwt.jwks_path
    ? createLocalJWKSet(JSON.parse(await readFile(jwt.jwks_path, 'utf8')) as JSONWebKeySet)
    : undefined;
  if (jwt.algorithms.length === 0) throw new Error('jwt_login.algorithms must name at least one algorithm');
  for (const algorithm of jwt.algorithms) {
    const symmetric = algorithm.startsWith('HS');
    if (symmetric && !secret) throw new Error(`jwt_login: ${algorithm} needs jwt_login.secret_path`);
    if (!symmetric && !publicKey && !jwks) {
      throw new Error(`jwt_login: ${algorithm} needs jwt_login.public_key_path or jwt_login.jwks_path`);
    }
  }

  const keyFor: JWTVerifyGetKey = async (header: JWSHeaderParameters, token) => {
    if (header.alg?.startsWith('HS')) {
      if (!secret) throw new joseErrors.JWKSNoMatchingKey();
      return secret;
    }
    if (jwks) return jwks(header, token);
    if (!publicKey) throw new joseErrors.JWKSNoMatchingKey();
    return publicKey as KeyObject;
  };
  const serverName = config.server_name;

  return {
    async verify(token) {
      if (token.length > MAX_JWT_LENGTH) throw MatrixError.forbidden('Invalid JWT.');
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, keyFor, {
          algorithms: jwt.algorithms,
          ...(jwt.issuer ? { issuer: jwt.issuer } : {}),
          ...(jwt.audiences.length > 0 ? { audience: jwt.audiences } : {}),
        }));
      } catch (error) {
        throw MatrixError.forbidden(describeFailure(error));
      }
      // No audience configured: a token meant for some audience is not meant for us.
      if (jwt.audiences.length === 0 && payload.aud !== undefined) {
        throw MatrixError.forbidden('JWT has an audience, and none is accepted.');
      }
      const subject = payload[jwt.subject_claim];
      if (typeof subject !== 'string' || subject === '') {
        throw MatrixError.forbidden(`JWT has no '${jwt.subject_claim}' claim.`);
      }
      return userIdOf(subject, serverName);
    },
  };
}

function userIdOf(subject: string, serverName: string): string {
  if (!subject.startsWith('@')) return `@${subject}:${serverName}`;
  const colon = subject.indexOf(':');
  if (colon < 0 || subject.slice(colon + 1) !== serverName) {
    throw MatrixError.forbidden('The JWT names a user of another server.');
  }
  return subject;
}

function describeFailure(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'JWT has expired.';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    return error.claim === 'nbf' ? 'JWT is not valid yet.' : `JWT '${error.claim}' claim is not accepted.`;
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'JWT algorithm is not accepted.';
  return 'Invalid JWT.';
}

async function readSecret(file: string): Promise<Uint8Array> {
  const text = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  if (text === '') throw new Error(`jwt_login.secret_path ${file} is empty`);
  return Buffer.from(text, 'utf8');
}
