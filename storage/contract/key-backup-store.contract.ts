import { expect } from 'chai';
import type { BackedUpKey } from '../key-backup-store.js';
import { type StorageFactory, useFreshStorage } from './contract-harness.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';
const ALGORITHM = 'm.megolm_backup.v1.curve25519-aes-sha2';

function key(fields: Partial<BackedUpKey> = {}): BackedUpKey {
  return {
    roomId: '!r:example.org',
    sessionId: 'S1',
    firstMessageIndex: 5,
    forwardedCount: 1,
    isVerified: false,
    sessionData: { ciphertext: 'c', ephemeral: 'e', mac: 'm' },
    ...fields,
  };
}

export function describeKeyBackupStoreContract(makeStorage: StorageFactory): void {
  describe('KeyBackupStore', () => {
    const storage = useFreshStorage(makeStorage);
    const backups = () => storage().keyBackups;
    beforeEach(async () => {
      for (const userId of [alice, bob]) await storage().accounts.createAccount({ userId, createdTs: 1 });
    });

    it('numbers versions per user; the newest undeleted one is current', async () => {
      expect(await backups().getBackupVersion(alice)).to.equal(null);
      expect(await backups().createBackupVersion(alice, ALGORITHM, { public_key: 'k1' })).to.equal(1);
      expect(await backups().createBackupVersion(alice, ALGORITHM, { public_key: 'k2' })).to.equal(2);
      expect(await backups().createBackupVersion(bob, ALGORITHM, {})).to.equal(1);
      expect(await backups().getBackupVersion(alice)).to.deep.equal({
        version: 2,
        algorithm: ALGORITHM,
        authData: { public_key: 'k2' },
        etag: 0,
        count: 0,
      });
      expect((await backups().getBackupVersion(alice, 1))?.authData).to.deep.equal({ public_key: 'k1' });
      expect(await backups().updateBackupAuthData(alice, 1, { public_key: 'k1b' })).to.equal(true);
      expect((await backups().getBackupVersion(alice, 1))?.authData).to.deep.equal({ public_key: 'k1b' });

      expect(await backups().deleteBackupVersion(alice, 2)).to.equal('deleted');
      expect(await backups().deleteBackupVersion(alice, 2)).to.equal('already-deleted');
      expect(await backups().deleteBackupVersion(alice, 9)).to.equal('unknown');
      expect(await backups().getBackupVersion(alice, 2)).to.equal(null);
      expect(await backups().updateBackupAuthData(alice, 2, {})).to.equal(false);
      expect((await backups().getBackupVersion(alice))?.version).to.equal(1);
      // A deleted version's number is not given out again.
      expect(await backups().createBackupVersion(alice, ALGORITHM, {})).to.equal(3);
    });

    it('stores keys only in the current version, with etag and count', async () => {
      const v1 = await backups().createBackupVersion(alice, ALGORITHM, {});
      const first = await backups().putBackedUpKeys(alice, v1, [key(), key({ sessionId: 'S2' })]);
      expect(first).to.deep.equal({ outcome: 'written', etag: 1, count: 2 });
      expect(await backups().getBackupVersion(alice, v1)).to.include({ etag: 1, count: 2 });
      const v2 = await backups().createBackupVersion(alice, ALGORITHM, {});
      expect(await backups().putBackedUpKeys(alice, v1, [key()])).to.deep.equal({
        outcome: 'not-current',
        currentVersion: v2,
      });
      expect(await backups().putBackedUpKeys(bob, 1, [key()])).to.deep.equal({
        outcome: 'not-current',
        currentVersion: null,
      });
      // The old version can still be read.
      expect(await backups().backedUpKeys(alice, v1, {})).to.have.length(2);
      expect(await backups().backedUpKeys(alice, v2, {})).to.deep.equal([]);
    });

    it('replaces a stored key only by a better one; the etag moves only when a key changes', async () => {
      const v = await backups().createBackupVersion(alice, ALGORITHM, {});
      await backups().putBackedUpKeys(alice, v, [key()]);
      const stored = async () =>
        (await backups().backedUpKeys(alice, v, { roomId: key().roomId, sessionId: 'S1' }))[0];

      expect(
        await backups().putBackedUpKeys(alice, v, [key({ firstMessageIndex: 9, sessionData: { x: 1 } })]),
      ).to.deep.equal({ outcome: 'written', etag: 1, count: 1 });
      expect((await stored())?.sessionData).to.deep.equal(key().sessionData);

      await backups().putBackedUpKeys(alice, v, [key({ forwardedCount: 0, sessionData: { x: 2 } })]);
      expect((await stored())?.sessionData).to.deep.equal({ x: 2 });
      await backups().putBackedUpKeys(alice, v, [
        key({ firstMessageIndex: 0, forwardedCount: 3, sessionData: { x: 3 } }),
      ]);
      expect((await stored())?.sessionData).to.deep.equal({ x: 3 });
      const verified = await backups().putBackedUpKeys(alice, v, [
        key({ isVerified: true, firstMessageIndex: 50, forwardedCount: 9, sessionData: { x: 4 } }),
      ]);
      expect(verified).to.deep.equal({ outcome: 'written', etag: 4, count: 1 });
      expect(await stored()).to.deep.equal(
        key({ isVerified: true, firstMessageIndex: 50, forwardedCount: 9, sessionData: { x: 4 } }),
      );
    });

    it('reads and deletes keys for the whole version, a room, or a session', async () => {
      const v = await backups().createBackupVersion(alice, ALGORITHM, {});
      const r1 = '!one:example.org';
      const r2 = '!two:example.org';
      await backups().putBackedUpKeys(alice, v, [
        key({ roomId: r2, sessionId: 'B' }),
        key({ roomId: r1, sessionId: 'B' }),
        key({ roomId: r1, sessionId: 'A' }),
      ]);
      const ids = (keys: BackedUpKey[]) => keys.map((k) => `${k.roomId}/${k.sessionId}`);
      expect(ids(await backups().backedUpKeys(alice, v, {}))).to.deep.equal([
        `${r1}/A`,
        `${r1}/B`,
        `${r2}/B`,
      ]);
      expect(ids(await backups().backedUpKeys(alice, v, { roomId: r1 }))).to.deep.equal([
        `${r1}/A`,
        `${r1}/B`,
      ]);
      expect(ids(await backups().backedUpKeys(alice, v, { roomId: r2, sessionId: 'B' }))).to.deep.equal([
        `${r2}/B`,
      ]);

      expect(await backups().deleteBackedUpKeys(alice, v, { roomId: r1, sessionId: 'A' })).to.deep.equal({
        etag: 2,
        count: 2,
      });
      expect(await backups().deleteBackedUpKeys(alice, v, { roomId: r1, sessionId: 'A' })).to.deep.equal({
        etag: 2,
        count: 2,
      });
      expect(await backups().deleteBackedUpKeys(alice, v, { roomId: r1 })).to.deep.equal({
        etag: 3,
        count: 1,
      });
      expect(await backups().deleteBackedUpKeys(alice, v, {})).to.deep.equal({ etag: 4, count: 0 });
      expect(await backups().deleteBackedUpKeys(alice, 99, {})).to.equal(null);
    });

    it('deleting a version deletes its keys', async () => {
      const v = await backups().createBackupVersion(alice, ALGORITHM, {});
      await backups().putBackedUpKeys(alice, v, [key()]);
      await backups().deleteBackupVersion(alice, v);
      expect(await backups().backedUpKeys(alice, v, {})).to.deep.equal([]);
      expect(await backups().deleteBackedUpKeys(alice, v, {})).to.equal(null);
    });
  });
}
