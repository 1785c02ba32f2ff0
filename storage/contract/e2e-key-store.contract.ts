import { expect } from 'chai';
import { stateTupleKey } from '../../protocol/events.js';
import type { CrossSigningKeyRecord, DeviceListChange } from '../e2e-key-store.js';
import type { Storage } from '../storage.js';
import { type StorageFactory, useFreshStorage } from './contract-harness.js';
import { TestRoom } from './test-events.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';

function deviceKeys(deviceId: string, ed25519 = 'edkey'): Record<string, unknown> {
  return {
    user_id: alice,
    device_id: deviceId,
    algorithms: ['m.olm.v1.curve25519-aes-sha2'],
    keys: { [`ed25519:${deviceId}`]: ed25519, [`curve25519:${deviceId}`]: 'ckey' },
    signatures: { [alice]: { [`ed25519:${deviceId}`]: 'sig' } },
  };
}

function otk(keyId: string, key = `k-${keyId}`) {
  return { algorithm: 'signed_curve25519', keyId, key: { key, signatures: {} } };
}

function changesOf(changes: DeviceListChange[]): [string, string, string | null][] {
  return changes.map((c) => [c.userId, c.change, c.roomId]);
}

async function join(storage: Storage, room: TestRoom, userId: string, membership = 'join'): Promise<void> {
  const event = room.event({
    type: 'm.room.member',
    stateKey: userId,
    sender: userId,
    content: { membership },
  });
  await storage.events.persistEvent({
    event,
    currentStateDelta: { set: new Map([[stateTupleKey('m.room.member', userId), event.eventId]]) },
  });
}

export function describeE2eKeyStoreContract(makeStorage: StorageFactory): void {
  describe('E2eKeyStore', () => {
    const storage = useFreshStorage(makeStorage);
    beforeEach(async () => {
      await storage().accounts.createAccount({ userId: alice, createdTs: 1 });
      await storage().devices.createDevice({ userId: alice, deviceId: 'PHONE', createdTs: 1 });
      await storage().devices.createDevice({ userId: alice, deviceId: 'LAPTOP', createdTs: 1 });
    });

    it('stores device keys, reports whether they changed and lists them per user', async () => {
      const keys = deviceKeys('PHONE');
      expect(await storage().e2eKeys.setDeviceKeys(alice, 'PHONE', keys as never)).to.equal(true);
      expect(await storage().e2eKeys.setDeviceKeys(alice, 'PHONE', keys as never)).to.equal(false);
      await storage().e2eKeys.setDeviceKeys(alice, 'LAPTOP', deviceKeys('LAPTOP') as never);
      const all = await storage().e2eKeys.deviceKeys(alice);
      expect([...all.keys()]).to.deep.equal(['LAPTOP', 'PHONE']);
      expect(all.get('PHONE')).to.deep.equal(keys);
      expect([...(await storage().e2eKeys.deviceKeys(alice, ['PHONE', 'NONE'])).keys()]).to.deep.equal([
        'PHONE',
      ]);
    });

    it('counts one-time keys, keeps an ID once and hands keys out in upload order, each once', async () => {
      // Read before each change too: counts may be kept between reads, never past a change.
      expect(await storage().e2eKeys.oneTimeKeyCounts(alice, 'PHONE')).to.deep.equal({});
      await storage().e2eKeys.addOneTimeKeys(alice, 'PHONE', [otk('A2'), otk('A1')]);
      expect(await storage().e2eKeys.oneTimeKeyCounts(alice, 'PHONE')).to.deep.equal({
        signed_curve25519: 2,
      });
      await storage().e2eKeys.addOneTimeKeys(alice, 'PHONE', [otk('A0'), otk('A1', 'other')]);
      await storage().e2eKeys.addOneTimeKeys(alice, 'PHONE', [
        { algorithm: 'curve25519', keyId: 'X', key: 'plain' },
      ]);
      expect(await storage().e2eKeys.oneTimeKeyCounts(alice, 'PHONE')).to.deep.equal({
        signed_curve25519: 3,
        curve25519: 1,
      });
      const named = await storage().e2eKeys.oneTimeKeysNamed(alice, 'PHONE', [
        'signed_curve25519:A1',
        'x:none',
      ]);
      expect([...named]).to.deep.equal([['signed_curve25519:A1', { key: 'k-A1', signatures: {} }]]);

      const request = { userId: alice, deviceId: 'PHONE', algorithm: 'signed_curve25519' };
      const claimed = [];
      for (let i = 0; i < 4; i++) claimed.push(...(await storage().e2eKeys.claimKeys([request])));
      // The first upload (A1, A2) goes first; A0 came in a later upload.
      expect(claimed.map((c) => c.keyId)).to.deep.equal(['A1', 'A2', 'A0']);
      expect(claimed.every((c) => !c.fallback)).to.equal(true);
      expect(await storage().e2eKeys.oneTimeKeyCounts(alice, 'PHONE')).to.deep.equal({ curve25519: 1 });
    });

    it('gives each one-time key to exactly one of many concurrent claims', async () => {
      await storage().e2eKeys.addOneTimeKeys(alice, 'PHONE', [otk('ONLY')]);
      const request = { userId: alice, deviceId: 'PHONE', algorithm: 'signed_curve25519' };
      const results = await Promise.all(
        Array.from({ length: 20 }, () => storage().e2eKeys.claimKeys([request])),
      );
      expect(results.flat().map((c) => c.keyId)).to.deep.equal(['ONLY']);
    });

    it('falls back to the fallback key, marks it used, and a new key replaces it unused', async () => {
      const request = { userId: alice, deviceId: 'PHONE', algorithm: 'signed_curve25519' };
      expect(await storage().e2eKeys.claimKeys([request])).to.deep.equal([]);
      await storage().e2eKeys.setFallbackKeys(alice, 'PHONE', [otk('F1')]);
      expect(await storage().e2eKeys.unusedFallbackKeyTypes(alice, 'PHONE')).to.deep.equal([
        'signed_curve25519',
      ]);
      const [first] = await storage().e2eKeys.claimKeys([request]);
      expect(first).to.include({ keyId: 'F1', fallback: true });
      const [again] = await storage().e2eKeys.claimKeys([request]);
      expect(again).to.include({ keyId: 'F1', fallback: true });
      expect(await storage().e2eKeys.unusedFallbackKeyTypes(alice, 'PHONE')).to.deep.equal([]);
      // The same key uploaded again stays used; a new one is unused.
      await storage().e2eKeys.setFallbackKeys(alice, 'PHONE', [otk('F1')]);
      expect(await storage().e2eKeys.unusedFallbackKeyTypes(alice, 'PHONE')).to.deep.equal([]);
      await storage().e2eKeys.setFallbackKeys(alice, 'PHONE', [otk('F2')]);
      expect(await storage().e2eKeys.unusedFallbackKeyTypes(alice, 'PHONE')).to.deep.equal([
        'signed_curve25519',
      ]);
      const [third] = await storage().e2eKeys.claimKeys([request]);
      expect(third).to.include({ keyId: 'F2' });
    });

    it('stores cross-signing keys per usage and signatures per signer and key', async () => {
      const master: CrossSigningKeyRecord = {
        userId: alice,
        usage: 'master',
        publicKey: 'MPK',
        key: { user_id: alice, usage: ['master'], keys: { 'ed25519:MPK': 'MPK' } },
      };
      await storage().e2eKeys.setCrossSigningKeys(alice, [master]);
      await storage().e2eKeys.setCrossSigningKeys(alice, [{ ...master, publicKey: 'MPK2' }]);
      expect((await storage().e2eKeys.crossSigningKeys(alice)).get('master')?.publicKey).to.equal('MPK2');
      const signature = {
        targetUserId: alice,
        targetKeyId: 'PHONE',
        signerUserId: alice,
        signerKeyId: 'ed25519:SSK',
        signature: 's1',
      };
      await storage().e2eKeys.addSignatures([signature], [alice]);
      await storage().e2eKeys.addSignatures([{ ...signature, signature: 's2' }], []);
      expect(await storage().e2eKeys.signaturesOn([alice, bob])).to.deep.equal([
        { ...signature, signature: 's2' },
      ]);
    });

    it('deletes a device with its keys and signatures, recording each device change on the stream', async () => {
      const start = await storage().e2eKeys.latestDeviceListPosition();
      await storage().e2eKeys.setDeviceKeys(alice, 'PHONE', deviceKeys('PHONE') as never);
      await storage().e2eKeys.addOneTimeKeys(alice, 'PHONE', [otk('A')]);
      await storage().e2eKeys.setFallbackKeys(alice, 'PHONE', [otk('F')]);
      await storage().e2eKeys.addSignatures(
        [
          {
            targetUserId: alice,
            targetKeyId: 'PHONE',
            signerUserId: alice,
            signerKeyId: 'ed25519:S',
            signature: 's',
          },
        ],
        [],
      );
      await storage().devices.setDisplayName(alice, 'LAPTOP', 'Laptop');
      expect(await storage().e2eKeys.oneTimeKeyCounts(alice, 'PHONE')).to.deep.equal({
        signed_curve25519: 1,
      });
      expect(await storage().e2eKeys.unusedFallbackKeyTypes(alice, 'PHONE')).to.deep.equal([
        'signed_curve25519',
      ]);
      await storage().devices.deleteDevices(alice, ['PHONE']);
      expect(await storage().e2eKeys.deviceKeys(alice)).to.deep.equal(new Map());
      expect(await storage().e2eKeys.oneTimeKeyCounts(alice, 'PHONE')).to.deep.equal({});
      expect(await storage().e2eKeys.unusedFallbackKeyTypes(alice, 'PHONE')).to.deep.equal([]);
      expect(await storage().e2eKeys.signaturesOn([alice])).to.deep.equal([]);
      const end = await storage().e2eKeys.latestDeviceListPosition();
      const changes = await storage().e2eKeys.deviceListChangesBetween(start, end);
      // Keys uploaded, the rename, the deletion.
      expect(changesOf(changes)).to.deep.equal([
        [alice, 'keys', null],
        [alice, 'keys', null],
        [alice, 'keys', null],
      ]);
      expect(changes.map((c) => c.position)).to.deep.equal([start + 1, start + 2, start + 3]);
      expect(await storage().e2eKeys.deviceListChangesBetween(end, end)).to.deep.equal([]);
    });

    it('records a change for a new device, and for joins and leaves of rooms', async () => {
      const start = await storage().e2eKeys.latestDeviceListPosition();
      await storage().devices.createDevice({ userId: alice, deviceId: 'TABLET', createdTs: 2 });
      const room = new TestRoom('!room:example.org');
      await join(storage(), room, bob, 'invite');
      await join(storage(), room, bob);
      await join(storage(), room, bob);
      await join(storage(), room, bob, 'leave');
      await storage().e2eKeys.recordDeviceListChange(bob);
      const changes = await storage().e2eKeys.deviceListChangesBetween(
        start,
        await storage().e2eKeys.latestDeviceListPosition(),
      );
      expect(changesOf(changes)).to.deep.equal([
        [alice, 'keys', null],
        [bob, 'joined', room.roomId],
        [bob, 'left', room.roomId],
        [bob, 'keys', null],
      ]);
    });
  });
}
