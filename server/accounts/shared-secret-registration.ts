/**
 * Synapse-compatible shared-secret registration (`/_synapse/admin/v1/register`,
 * Synapse docs admin_api/register_api.md), so Synapse's
 * register_new_matrix_user and other existing tooling work unchanged:
 * GET issues a single-use nonce valid for a minute; POST carries the nonce,
 * the username, the password, the admin flag and
 * mac = hex HMAC-SHA1(secret, nonce \0 username \0 password \0 ("admin" | "notadmin") [\0 user_type]).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { MyelinConfig } from '../config/index.js';

/** Synapse's NONCE_TIMEOUT. */
export const NONCE_LIFETIME_MS = 60_000;
/** Outstanding nonces kept at most; a flood of GETs evicts the oldest rather than growing memory. */
const MAX_OUTSTANDING_NONCES = 10_000;

export interface SharedSecretRegistration {
  /** A fresh nonce, accepted once within NONCE_LIFETIME_MS. */
  issueNonce(): string;
  /** True if the nonce was issued and not yet used or expired; it is used up either way. */
  consumeNonce(nonce: string): boolean;
  /** Checks a MAC against the shared secret in constant time. */
  macMatches(fields: SharedSecretMacFields, mac: string): boolean;
}

export interface SharedSecretMacFields {
  readonly nonce: string;
  readonly username: string;
  readonly password: string;
  readonly admin: boolean;
  readonly userType?: string | null;
}

export function createSharedSecretRegistration(
  secret: string,
  options: { now?: () => number } = {},
): SharedSecretRegistration {
  const now = options.now ?? Date.now;
  const nonces = new LazyLruCache<string, number>({ max: MAX_OUTSTANDING_NONCES });
  return {
    issueNonce() {
      const nonce = randomBytes(32).toString('hex');
      nonces.set(nonce, now());
      return nonce;
    },
    consumeNonce(nonce) {
      const issuedTs = nonces.get(nonce);
      nonces.delete(nonce);
      return issuedTs !== undefined && now() - issuedTs <= NONCE_LIFETIME_MS;
    },
    macMatches(fields, mac) {
      const expected = Buffer.from(sharedSecretMac(secret, fields), 'utf8');
      const given = Buffer.from(mac.toLowerCase(), 'utf8');
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}

/** The MAC register_new_matrix_user computes (hex HMAC-SHA1 over the NUL-separated fields). */
export function sharedSecretMac(secret: string, fields: SharedSecretMacFields): string {
  const mac = createHmac('sha1', Buffer.from(secret, 'utf8'));
  mac.update(fields.nonce, 'utf8');
  mac.update('\0');
  mac.update(fields.username, 'utf8');
  mac.update('\0');
  mac.update(fields.password, 'utf8');
  mac.update('\0');
  mac.update(fields.admin ? 'admin' : 'notadmin');
  if (fields.userType) {
    mac.update('\0');
    mac.update(fields.userType, 'utf8');
  }
  return mac.digest('hex');
}

export function registrationSharedSecretPath(
  config: Pick<MyelinConfig, 'registration' | 'data_dir'>,
): string {
  return config.registration.shared_secret_path || path.join(config.data_dir, 'registration_shared_secret');
}

/** The shared secret from its file (surrounding whitespace ignored), or a new random one written there with mode 0600. */
export async function loadOrCreateRegistrationSharedSecret(
  config: Pick<MyelinConfig, 'registration' | 'data_dir'>,
  log: Logger,
): Promise<string> {
  const file = registrationSharedSecretPath(config);
  try {
    const secret = (await readFile(file, 'utf8')).trim();
    if (secret === '') throw new Error(`The registration shared secret file ${file} is empty`);
    return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = randomBytes(32).toString('base64url');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  log.info({ file }, 'Generated a new registration shared secret');
  return secret;
}
