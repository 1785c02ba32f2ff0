/**
 * Stored passwords: scrypt (memory-hard, node:crypto's async API so the work
 * runs on the libuv pool, not the event loop), kept as a PHC-style string
 * `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` so parameters can change later and old
 * hashes still verify.
 */
import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';
import type { MyelinConfig } from '../config/index.js';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Constant-time; the parameters come from `stored`. False for a malformed hash. */
  verify(password: string, stored: string): Promise<boolean>;
  /**
   * Spends as long as a real verification with the configured cost, then
   * resolves false: login calls it for unknown users so timing reveals nothing.
   */
  verifyDummy(password: string): Promise<false>;
}

interface ScryptParameters {
  readonly logN: number;
  readonly r: number;
  readonly p: number;
}

const SALT_BYTES = 16;
const KEY_BYTES = 32;
const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;
/** Refuse stored hashes whose cost would exhaust memory (a corrupted or hostile row). */
const MAX_LOG_N = 22;
const MAX_R = 32;
const MAX_P = 16;

export function createPasswordHasher(config: MyelinConfig['password_hashing']): PasswordHasher {
  const configured: ScryptParameters = { logN: config.scrypt_log_n, r: config.scrypt_r, p: config.scrypt_p };
  const pool = createHashingPool();
  let dummyHash: Promise<string> | undefined;

  const hash = async (password: string): Promise<string> => {
    const salt = randomBytes(SALT_BYTES);
    const key = await pool.run(() => derive(password, salt, configured, KEY_BYTES));
    const { logN, r, p } = configured;
    return `$scrypt$ln=${logN},r=${r},p=${p}$${unpadded(salt)}$${unpadded(key)}`;
  };

  const verify = async (password: string, stored: string): Promise<boolean> => {
    const parsed = parsePhc(stored);
    if (!parsed) return false;
    const key = await pool.run(() => derive(password, parsed.salt, parsed.parameters, parsed.key.length));
    return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
  };

  return {
    hash,
    verify,
    async verifyDummy(password) {
      dummyHash ??= hash(randomBytes(SALT_BYTES).toString('base64'));
      await verify(password, await dummyHash);
      return false;
    },
  };
}

function parsePhc(stored: string): { parameters: ScryptParameters; salt: Buffer; key: Buffer } | undefined {
  const match = PHC.exec(stored);
  if (!match) return undefined;
  const parameters = { logN: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  const { logN, r, p } = parameters;
  if (logN < 1 || logN > MAX_LOG_N || r < 1 || r > MAX_R || p < 1 || p > MAX_P) {
    return undefined;
  }
  const salt = Buffer.from(match[4]!, 'base64');
  const key = Buffer.from(match[5]!, 'base64');
  if (salt.length === 0 || key.length < 16) return undefined;
  return { parameters, salt, key };
}

function derive(
  password: string,
  salt: Buffer,
  parameters: ScryptParameters,
  keyBytes: number,
): Promise<Buffer> {
  const N = 2 ** parameters.logN;
  const options: ScryptOptions = {
    N,
    r: parameters.r,
    p: parameters.p,
    // scrypt needs 128·N·r bytes for V plus 128·r·p for B; OpenSSL refuses anything over maxmem.
    maxmem: 128 * parameters.r * (N + parameters.p + 2) + 1024 * 1024,
  };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, keyBytes, options, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

function unpadded(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}

/**
 * At most (libuv pool size - 1) hashes run at once, so a burst of logins
 * leaves a pool thread for file system work and does not hold 128 MiB per
 * queued hash; the rest wait here, in order.
 */
function createHashingPool(): { run<T>(work: () => Promise<T>): Promise<T> } {
  const poolSize = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  const limit = Math.max(1, poolSize - 1);
  let running = 0;
  const waiting: (() => void)[] = [];
  return {
    async run(work) {
      if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
      running++;
      try {
        return await work();
      } finally {
        running--;
        waiting.shift()?.();
      }
    },
  };
}
