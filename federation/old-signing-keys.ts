/**
 * Keys this server signed with before a rotation, kept so that what they
 * signed still verifies: published as old_verify_keys with the time they
 * stopped being used (server-server "Retrieving server keys").
 * The file is JSON: { "old_verify_keys": { "ed25519:x": { "key": "...", "expired_ts": 123 } } }.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { OldVerifyKey } from '../protocol/server-keys.js';

export function oldSigningKeysPath(config: {
  signing_key_path: string;
  federation: { old_signing_keys_path: string };
}): string {
  return config.federation.old_signing_keys_path || `${config.signing_key_path}.old.json`;
}

/** The old keys in the file; none when it does not exist. */
export async function readOldSigningKeys(file: string): Promise<OldVerifyKey[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const parsed = JSON.parse(text) as {
    old_verify_keys?: Record<string, { key?: unknown; expired_ts?: unknown }>;
  };
  const keys: OldVerifyKey[] = [];
  for (const [keyId, entry] of Object.entries(parsed.old_verify_keys ?? {})) {
    if (typeof entry.key !== 'string' || typeof entry.expired_ts !== 'number') {
      throw new Error(`${file}: old key ${keyId} needs a string key and a numeric expired_ts`);
    }
    keys.push({ keyId, publicKey: entry.key, expiredTs: entry.expired_ts });
  }
  return keys;
}

/** Rewrites the file atomically (write, then rename). */
export async function writeOldSigningKeys(file: string, keys: readonly OldVerifyKey[]): Promise<void> {
  const json: Record<string, { key: string; expired_ts: number }> = {};
  for (const key of keys) json[key.keyId] = { key: key.publicKey, expired_ts: key.expiredTs };
  const temporary = `${file}.tmp`;
  await writeFile(temporary, `${JSON.stringify({ old_verify_keys: json }, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
}
