import { expect } from 'chai';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';

const alice = '@alice:example.org';

export function describeDeviceStoreContract(makeStorage: StorageFactory): void {
  describe('DeviceStore', () => {
    const storage = useFreshStorage(makeStorage);
    beforeEach(async () => {
      await storage().accounts.createAccount({ userId: alice, createdTs: 1 });
    });

    it('creates, reads and lists devices', async () => {
      await storage().devices.createDevice({
        userId: alice,
        deviceId: 'PHONE',
        displayName: 'Phone 📱',
        createdTs: 10,
      });
      await storage().devices.createDevice({ userId: alice, deviceId: 'LAPTOP', createdTs: 11 });
      expect(await storage().devices.getDevice(alice, 'PHONE')).to.deep.equal({
        userId: alice,
        deviceId: 'PHONE',
        displayName: 'Phone 📱',
        createdTs: 10,
        lastSeenIp: null,
        lastSeenTs: null,
        lastSeenUserAgent: null,
      });
      expect((await storage().devices.listDevices(alice)).map((d) => d.deviceId)).to.deep.equal([
        'LAPTOP',
        'PHONE',
      ]);
      expect(await storage().devices.getDevice(alice, 'TABLET')).to.equal(null);
      expect(await storage().devices.listDevices('@bob:example.org')).to.deep.equal([]);
    });

    it('refuses a duplicate device with CONFLICT and a device of an unknown user with MISSING_REFERENCE', async () => {
      await storage().devices.createDevice({ userId: alice, deviceId: 'D', createdTs: 1 });
      await expectStorageError(
        storage().devices.createDevice({ userId: alice, deviceId: 'D', createdTs: 2 }),
        'CONFLICT',
      );
      await expectStorageError(
        storage().devices.createDevice({ userId: '@ghost:example.org', deviceId: 'D', createdTs: 1 }),
        'MISSING_REFERENCE',
      );
    });

    it('renames a device, and reports an unknown one as NOT_FOUND', async () => {
      await storage().devices.createDevice({
        userId: alice,
        deviceId: 'D',
        displayName: 'old',
        createdTs: 1,
      });
      await storage().devices.setDisplayName(alice, 'D', 'new');
      expect((await storage().devices.getDevice(alice, 'D'))!.displayName).to.equal('new');
      await storage().devices.setDisplayName(alice, 'D', null);
      expect((await storage().devices.getDevice(alice, 'D'))!.displayName).to.equal(null);
      await expectStorageError(storage().devices.setDisplayName(alice, 'NOPE', 'x'), 'NOT_FOUND');
    });

    it('records last-seen data for many devices in one batch, never going back in time', async () => {
      await storage().accounts.createAccount({ userId: '@bob:example.org', createdTs: 1 });
      await storage().devices.createDevice({ userId: alice, deviceId: 'A1', createdTs: 1 });
      await storage().devices.createDevice({ userId: alice, deviceId: 'A2', createdTs: 1 });
      await storage().devices.createDevice({ userId: '@bob:example.org', deviceId: 'B1', createdTs: 1 });
      await storage().devices.recordLastSeen([
        { userId: alice, deviceId: 'A1', ip: '10.0.0.1', ts: 100, userAgent: 'Element/1' },
        { userId: '@bob:example.org', deviceId: 'B1', ip: '::1', ts: 200, userAgent: null },
        { userId: alice, deviceId: 'UNKNOWN', ip: '10.0.0.9', ts: 300, userAgent: 'x' },
      ]);
      await storage().devices.recordLastSeen([
        { userId: alice, deviceId: 'A1', ip: '10.0.0.2', ts: 50, userAgent: 'stale' },
        { userId: '@bob:example.org', deviceId: 'B1', ip: '::2', ts: 250, userAgent: 'Fluffy' },
      ]);
      expect(await storage().devices.getDevice(alice, 'A1')).to.include({
        lastSeenIp: '10.0.0.1',
        lastSeenTs: 100,
        lastSeenUserAgent: 'Element/1',
      });
      expect(await storage().devices.getDevice(alice, 'A2')).to.include({
        lastSeenIp: null,
        lastSeenTs: null,
      });
      expect(await storage().devices.getDevice('@bob:example.org', 'B1')).to.include({
        lastSeenIp: '::2',
        lastSeenTs: 250,
        lastSeenUserAgent: 'Fluffy',
      });
      await storage().devices.recordLastSeen([]);
    });

    it('deletes devices together with their sessions and transaction IDs', async () => {
      for (const deviceId of ['D1', 'D2', 'D3']) {
        await storage().devices.createDevice({ userId: alice, deviceId, createdTs: 1 });
        await storage().sessions.createSession({
          sessionId: `s-${deviceId}`,
          userId: alice,
          deviceId,
          createdTs: 1,
        });
        await storage().transactionIds.recordTransaction(alice, deviceId, 'txn1', `$e-${deviceId}`, 1);
      }
      await storage().devices.deleteDevices(alice, ['D1', 'D3', 'NOT-THERE']);
      expect((await storage().devices.listDevices(alice)).map((d) => d.deviceId)).to.deep.equal(['D2']);
      expect(await storage().sessions.getSession('s-D1')).to.equal(null);
      expect(await storage().sessions.getSession('s-D2')).to.not.equal(null);
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'D3', 'txn1')).to.equal(null);
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'D2', 'txn1')).to.equal('$e-D2');
      await storage().devices.deleteDevices(alice, []);
    });
  });
}
