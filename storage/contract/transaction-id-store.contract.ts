import { expect } from 'chai';
import { TransactionAlreadySent } from '../transaction-id-store.js';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';

const alice = '@alice:example.org';

export function describeTransactionIdStoreContract(makeStorage: StorageFactory): void {
  describe('TransactionIdStore', () => {
    const storage = useFreshStorage(makeStorage);
    beforeEach(async () => {
      await storage().accounts.createAccount({ userId: alice, createdTs: 1 });
      await storage().devices.createDevice({ userId: alice, deviceId: 'PHONE', createdTs: 1 });
      await storage().devices.createDevice({ userId: alice, deviceId: 'LAPTOP', createdTs: 1 });
    });

    it('remembers the event a transaction produced, per device', async () => {
      await storage().transactionIds.recordTransaction(alice, 'PHONE', 'm1', '$event1', 100);
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'PHONE', 'm1')).to.equal('$event1');
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'LAPTOP', 'm1')).to.equal(null);
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'PHONE', 'm2')).to.equal(null);
      await storage().transactionIds.recordTransaction(alice, 'LAPTOP', 'm1', '$event2', 100);
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'LAPTOP', 'm1')).to.equal('$event2');
    });

    it('is idempotent for the same event and refuses another event with CONFLICT', async () => {
      await storage().transactionIds.recordTransaction(alice, 'PHONE', 'm1', '$event1', 100);
      await storage().transactionIds.recordTransaction(alice, 'PHONE', 'm1', '$event1', 200);
      const conflict = await expectStorageError(
        storage().transactionIds.recordTransaction(alice, 'PHONE', 'm1', '$other', 300),
        'CONFLICT',
      );
      // It names the event recorded first: a retried send answers that one (room-event-sender.ts).
      expect(conflict).to.be.instanceOf(TransactionAlreadySent);
      expect(conflict).to.include({
        userId: alice,
        deviceId: 'PHONE',
        txnId: 'm1',
        recordedEventId: '$event1',
      });
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'PHONE', 'm1')).to.equal('$event1');
    });

    it("keeps an application service's transactions (no device), and forgets a deleted device's", async () => {
      await storage().transactionIds.recordTransaction(alice, 'appservice:irc', 'm1', '$bridged', 100);
      await storage().transactionIds.recordTransaction(alice, 'PHONE', 'm1', '$phone', 100);
      await storage().devices.deleteDevices(alice, ['PHONE']);
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'PHONE', 'm1')).to.equal(null);
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'appservice:irc', 'm1')).to.equal(
        '$bridged',
      );
    });

    it("prunes only application services' old transactions by age; devices keep theirs", async () => {
      const ids = storage().transactionIds;
      await ids.recordTransaction(alice, 'appservice:irc', 'old', '$old', 100);
      await ids.recordTransaction(alice, 'appservice:irc', 'new', '$new', 200);
      await ids.recordTransaction(alice, 'PHONE', 'old', '$phone', 100);
      expect(await ids.deleteAppserviceTransactionsBefore(150)).to.equal(1);
      expect(await ids.eventIdForTransaction(alice, 'appservice:irc', 'old')).to.equal(null);
      expect(await ids.eventIdForTransaction(alice, 'appservice:irc', 'new')).to.equal('$new');
      expect(await ids.eventIdForTransaction(alice, 'PHONE', 'old')).to.equal('$phone');
    });

    it('forgets old transactions', async () => {
      await storage().transactionIds.recordTransaction(alice, 'PHONE', 'old', '$1', 100);
      await storage().transactionIds.recordTransaction(alice, 'PHONE', 'new', '$2', 200);
      expect(await storage().transactionIds.deleteTransactionsBefore(150)).to.equal(1);
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'PHONE', 'old')).to.equal(null);
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'PHONE', 'new')).to.equal('$2');
    });
  });
}
