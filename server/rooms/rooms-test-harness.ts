/**
 * Real rooms services for tests and benches: a SQLite file database in a temporary
 * folder, a fresh signing key, and accounts to act as.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pdu } from '../../protocol/events.js';
import { type VerifyKeyLookup, verifyEventSignatures } from '../../protocol/hashing.js';
import type { RoomVersionRules } from '../../protocol/room-versions.js';
import { generateSigningKey, type SigningKey } from '../../protocol/signing.js';
import { openSqliteStorage, type SqliteStorage } from '../../storage/sqlite/sqlite-storage.js';
import { createRoomServices, type RoomServices, type RoomServicesOptions } from './room-services.js';

export const TEST_SERVER_NAME = 'rooms.test';

export interface RoomsHarness {
  readonly dir: string;
  readonly storage: SqliteStorage;
  readonly signingKey: SigningKey;
  readonly services: RoomServices;
  readonly lookupKey: VerifyKeyLookup;
  /** Creates a local account and returns its user ID. */
  account(localpart: string, profile?: { displayName?: string; avatarUrl?: string }): Promise<string>;
  /** Registers a device (transaction IDs belong to one). */
  device(userId: string, deviceId: string): Promise<void>;
  /** Whether our signature on the event verifies. */
  signatureVerifies(pdu: Pdu, rules: RoomVersionRules): boolean;
  close(): Promise<void>;
}

export async function openRoomsHarness(
  options: Partial<Omit<RoomServicesOptions, 'storage' | 'serverName' | 'signingKey'>> = {},
): Promise<RoomsHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'myelin-rooms-'));
  const storage = await openSqliteStorage({ path: join(dir, 'myelin.db') });
  const signingKey = generateSigningKey();
  const services = createRoomServices({ ...options, storage, serverName: TEST_SERVER_NAME, signingKey });
  const lookupKey: VerifyKeyLookup = (serverName, keyId) =>
    serverName === TEST_SERVER_NAME && keyId === signingKey.keyId
      ? { publicKey: signingKey.publicKey }
      : undefined;
  return {
    dir,
    storage,
    signingKey,
    services,
    lookupKey,
    async account(localpart, profile = {}) {
      const userId = `@${localpart}:${TEST_SERVER_NAME}`;
      await storage.accounts.createAccount({
        userId,
        createdTs: Date.now(),
        displayName: profile.displayName ?? null,
        avatarUrl: profile.avatarUrl ?? null,
      });
      return userId;
    },
    device(userId, deviceId) {
      return storage.devices.createDevice({ userId, deviceId, createdTs: Date.now() });
    },
    signatureVerifies(pdu, rules) {
      return verifyEventSignatures(pdu, rules, lookupKey).ok;
    },
    async close() {
      await services.close();
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
