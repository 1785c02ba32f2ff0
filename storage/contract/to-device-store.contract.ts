import { expect } from 'chai';
import type { ToDeviceRecipient, ToDeviceSend } from '../to-device-store.js';
import { type StorageFactory, useFreshStorage } from './contract-harness.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';

function send(fields: Partial<ToDeviceSend> & { recipients: readonly ToDeviceRecipient[] }): ToDeviceSend {
  return { sender: alice, senderDeviceId: 'A1', type: 'm.test', txnId: 't1', ...fields };
}

export function describeToDeviceStoreContract(makeStorage: StorageFactory): void {
  describe('ToDeviceStore', () => {
    const storage = useFreshStorage(makeStorage);
    beforeEach(async () => {
      for (const userId of [alice, bob]) await storage().accounts.createAccount({ userId, createdTs: 1 });
      await storage().devices.createDevice({ userId: alice, deviceId: 'A1', createdTs: 1 });
      for (const deviceId of ['B1', 'B2', 'B3'])
        await storage().devices.createDevice({ userId: bob, deviceId, createdTs: 1 });
    });
    const pending = (
      userId: string,
      deviceId: string,
      after = 0,
      upTo = Number.MAX_SAFE_INTEGER,
      limit = 100,
    ) => storage().toDevice.pendingToDevice(userId, deviceId, after, upTo, limit);

    it('stores a message for one device as {sender, type, content} at a new stream position', async () => {
      expect(await storage().toDevice.latestToDevicePosition()).to.equal(0);
      const result = await storage().toDevice.sendToDevices(
        send({ recipients: [{ userId: bob, deviceId: 'B1', content: { body: 'hé 🔐' } }] }),
      );
      expect(result).to.deep.equal({
        position: 1,
        repeated: false,
        delivered: [{ userId: bob, deviceId: 'B1' }],
      });
      expect(await storage().toDevice.latestToDevicePosition()).to.equal(1);
      expect(await pending(bob, 'B1')).to.deep.equal([
        { position: 1, event: { sender: alice, type: 'm.test', content: { body: 'hé 🔐' } } },
      ]);
      expect(await pending(bob, 'B2')).to.deep.equal([]);
    });

    it('sends to every device with *, a named device getting its own content; unknown users and devices are skipped', async () => {
      const result = await storage().toDevice.sendToDevices(
        send({
          recipients: [
            { userId: bob, deviceId: 'B2', content: { n: 'own' } },
            { userId: bob, deviceId: '*', content: { n: 'all' } },
            { userId: bob, deviceId: 'GONE', content: { n: 'x' } },
            { userId: '@nobody:example.org', deviceId: '*', content: { n: 'x' } },
            { userId: alice, deviceId: 'A1', content: { n: 'self' } },
          ],
        }),
      );
      expect(result.delivered.map((d) => `${d.userId}/${d.deviceId}`).sort()).to.deep.equal(
        [`${alice}/A1`, `${bob}/B1`, `${bob}/B2`, `${bob}/B3`].sort(),
      );
      expect((await pending(bob, 'B1'))[0]?.event.content).to.deep.equal({ n: 'all' });
      expect((await pending(bob, 'B2'))[0]?.event.content).to.deep.equal({ n: 'own' });
      expect((await pending(bob, 'B3'))[0]?.event.content).to.deep.equal({ n: 'all' });
      expect((await pending(alice, 'A1'))[0]?.event.content).to.deep.equal({ n: 'self' });
    });

    it('stores a send once per (sender, device, type, txnId)', async () => {
      const recipients = [{ userId: bob, deviceId: 'B1', content: { n: 1 } }];
      const first = await storage().toDevice.sendToDevices(send({ recipients }));
      const again = await storage().toDevice.sendToDevices(send({ recipients }));
      expect(again).to.deep.equal({ position: first.position, repeated: true, delivered: [] });
      expect(await pending(bob, 'B1')).to.have.length(1);
      // Another type or transaction ID is another send; so is a send without a device (never deduplicated).
      await storage().toDevice.sendToDevices(send({ recipients, type: 'm.other' }));
      await storage().toDevice.sendToDevices(send({ recipients, txnId: 't2' }));
      await storage().toDevice.sendToDevices(send({ recipients, senderDeviceId: null }));
      await storage().toDevice.sendToDevices(send({ recipients, senderDeviceId: null }));
      expect(await pending(bob, 'B1')).to.have.length(5);
    });

    it('stores one of several concurrent retransmissions', async () => {
      const recipients = [{ userId: bob, deviceId: 'B1', content: { n: 1 } }];
      const results = await Promise.all(
        Array.from({ length: 5 }, () =>
          storage().toDevice.sendToDevices(send({ recipients, txnId: 'race' })),
        ),
      );
      expect(results.filter((r) => !r.repeated)).to.have.length(1);
      expect(new Set(results.map((r) => r.position)).size).to.equal(1);
      expect(await pending(bob, 'B1')).to.have.length(1);
    });

    it('reads a range oldest first with a limit, and deletes up to a position', async () => {
      for (let i = 1; i <= 5; i++) {
        await storage().toDevice.sendToDevices(
          send({ txnId: `t${i}`, recipients: [{ userId: bob, deviceId: 'B1', content: { i } }] }),
        );
      }
      const contents = (messages: { event: { content?: unknown } }[]) =>
        messages.map((m) => (m.event.content as { i: number }).i);
      expect(contents(await pending(bob, 'B1', 0, 5, 3))).to.deep.equal([1, 2, 3]);
      expect(contents(await pending(bob, 'B1', 3, 4))).to.deep.equal([4]);
      expect(await pending(bob, 'B1', 3, 3)).to.deep.equal([]);
      expect(await storage().toDevice.deleteToDeviceUpTo(bob, 'B1', 2)).to.equal(2);
      expect(await storage().toDevice.deleteToDeviceUpTo(bob, 'B1', 2)).to.equal(0);
      expect(contents(await pending(bob, 'B1'))).to.deep.equal([3, 4, 5]);
    });

    it('forgets transaction IDs stored before a time', async () => {
      const recipients = [{ userId: bob, deviceId: 'B1', content: {} }];
      await storage().toDevice.sendToDevices(send({ recipients }));
      expect(await storage().toDevice.forgetToDeviceTransactionsBefore(Date.now() - 60_000)).to.equal(0);
      expect((await storage().toDevice.sendToDevices(send({ recipients }))).repeated).to.equal(true);
      expect(await storage().toDevice.forgetToDeviceTransactionsBefore(Date.now() + 1)).to.equal(1);
      expect((await storage().toDevice.sendToDevices(send({ recipients }))).repeated).to.equal(false);
    });

    it('stores a remote send once per (origin, message_id) until the ID is forgotten', async () => {
      const recipients = [{ userId: bob, deviceId: 'B1', content: { n: 1 } }];
      const remote = (origin: string, receivedTs = Date.now()) => ({
        ...send({ senderDeviceId: null, recipients }),
        remote: { origin, messageId: 'm1', receivedTs },
      });
      const first = await storage().toDevice.sendToDevices(remote('other.example', Date.now() - 10_000));
      expect(first.repeated).to.equal(false);
      expect(first.delivered).to.have.length(1);
      const repeat = await storage().toDevice.sendToDevices(remote('other.example'));
      expect(repeat.repeated).to.equal(true);
      expect(repeat.delivered).to.deep.equal([]);
      // The same ID from another server is another message.
      expect((await storage().toDevice.sendToDevices(remote('third.example'))).repeated).to.equal(false);
      expect(await pending(bob, 'B1')).to.have.length(2);
      expect(await storage().toDevice.forgetRemoteMessageIdsBefore(Date.now() - 5_000)).to.equal(1);
      expect((await storage().toDevice.sendToDevices(remote('other.example'))).repeated).to.equal(false);
      expect((await storage().toDevice.sendToDevices(remote('third.example'))).repeated).to.equal(true);
    });

    it("drops a deleted device's inbox and transactions", async () => {
      await storage().toDevice.sendToDevices(
        send({ recipients: [{ userId: bob, deviceId: '*', content: {} }] }),
      );
      await storage().devices.deleteDevices(bob, ['B1']);
      expect(await pending(bob, 'B1')).to.deep.equal([]);
      expect(await pending(bob, 'B2')).to.have.length(1);
      // A device made again under the same ID starts empty, and its sender's transactions were forgotten.
      await storage().devices.deleteDevices(alice, ['A1']);
      await storage().devices.createDevice({ userId: alice, deviceId: 'A1', createdTs: 2 });
      await storage().devices.createDevice({ userId: bob, deviceId: 'B1', createdTs: 2 });
      expect(await pending(bob, 'B1')).to.deep.equal([]);
      const again = await storage().toDevice.sendToDevices(
        send({ recipients: [{ userId: bob, deviceId: 'B1', content: {} }] }),
      );
      expect(again.repeated).to.equal(false);
    });
  });
}
