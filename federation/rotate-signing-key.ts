/**
 * `myelin rotate-signing-key`: a new signing key replaces the current one,
 * which is kept as an old key (published in old_verify_keys with the time it
 * stopped being used) so that what it signed still verifies elsewhere. The
 * old-keys file is written first: an interruption can leave an extra old
 * key, never a lost one. A running server picks the new key up on restart.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { formatSigningKeyFile, generateSigningKey, parseSigningKeyFile } from '../protocol/signing.js';
import type { MyelinConfig } from '../server/config/index.js';
import { oldSigningKeysPath, readOldSigningKeys, writeOldSigningKeys } from './old-signing-keys.js';

export interface RotatedKey {
  readonly oldKeyId: string;
  readonly newKeyId: string;
  readonly oldKeysFile: string;
}

export async function rotateSigningKey(config: MyelinConfig, now = Date.now()): Promise<RotatedKey> {
  const current = parseSigningKeyFile(await readFile(config.signing_key_path, 'utf8'));
  const oldKeysFile = oldSigningKeysPath(config);
  const oldKeys = (await readOldSigningKeys(oldKeysFile)).filter((key) => key.keyId !== current.keyId);
  let next = generateSigningKey();
  while (next.keyId === current.keyId || oldKeys.some((key) => key.keyId === next.keyId))
    next = generateSigningKey();
  await writeOldSigningKeys(oldKeysFile, [
    ...oldKeys,
    { keyId: current.keyId, publicKey: current.publicKey, expiredTs: now },
  ]);
  const temporary = `${config.signing_key_path}.tmp`;
  await writeFile(temporary, formatSigningKeyFile(next), { mode: 0o600 });
  await rename(temporary, config.signing_key_path);
  return { oldKeyId: current.keyId, newKeyId: next.keyId, oldKeysFile };
}
