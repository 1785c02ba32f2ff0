import { expect } from 'chai';
import { stateTupleKey } from '../../protocol/events.js';
import { StorageError } from '../errors.js';
import type { PersistedEvent } from '../event-store.js';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';
import { TestRoom } from './test-events.js';

const alice = '@alice:example.org';

export function describeTransactionContract(makeStorage: StorageFactory): void {
  describe('Storage.transaction', () => {
    const storage = useFreshStorage(makeStorage);
    beforeEach(async () => {
      await storage().accounts.createAccount({ userId: alice, createdTs: 1 });
      await storage().devices.createDevice({ userId: alice, deviceId: 'PHONE', createdTs: 1 });
    });

    it('commits writes of several stores together and resolves each write after the commit', async () => {
      const room = new TestRoom('!send:example.org');
      const event = room.event();
      let persisted: Promise<PersistedEvent> | undefined;
      let position: Promise<number> | undefined;
      await storage().transaction((tx) => {
        persisted = tx.events.persistEvent({ event });
        tx.transactionIds.recordTransaction(alice, 'PHONE', 'txn-1', event.eventId, 10);
        position = tx.accountData.putAccountData(alice, room.roomId, 'm.fully_read', {
          event_id: event.eventId,
        });
      });
      expect((await persisted!).eventId).to.equal(event.eventId);
      expect(await position!).to.be.a('number');
      expect(await storage().events.getEvent(event.eventId)).to.not.equal(null);
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'PHONE', 'txn-1')).to.equal(
        event.eventId,
      );
      expect(
        (await storage().accountData.getAccountData(alice, room.roomId, 'm.fully_read'))!.content,
      ).to.deep.equal({
        event_id: event.eventId,
      });
    });

    it('keeps nothing when one write fails, and rejects every write with that error', async () => {
      const room = new TestRoom('!retry:example.org');
      const first = room.event();
      await storage().transaction((tx) => {
        tx.events.persistEvent({ event: first });
        tx.transactionIds.recordTransaction(alice, 'PHONE', 'txn-1', first.eventId, 10);
      });
      const latest = await storage().events.latestStreamOrdering();

      // A retried send that raced past the txn ID check builds a second event: it must not be kept.
      const duplicate = room.event({ prevEvents: [first.eventId] });
      let persisted: Promise<PersistedEvent> | undefined;
      const attempt = storage().transaction((tx) => {
        persisted = tx.events.persistEvent({
          event: duplicate,
          currentStateDelta: { set: new Map([[stateTupleKey('m.room.topic', ''), duplicate.eventId]]) },
        });
        tx.accounts.updateProfile(alice, { displayName: 'should not stick' });
        tx.transactionIds.recordTransaction(alice, 'PHONE', 'txn-1', duplicate.eventId, 11);
      });
      await expectStorageError(attempt, 'CONFLICT');
      await expectStorageError(persisted!, 'CONFLICT');
      expect(await storage().events.getEvent(duplicate.eventId)).to.equal(null);
      expect(await storage().events.latestStreamOrdering()).to.equal(latest);
      expect(await storage().state.forwardExtremities(room.roomId)).to.deep.equal([first.eventId]);
      expect(await storage().state.currentState(room.roomId)).to.deep.equal(new Map());
      expect((await storage().accounts.getAccount(alice))!.displayName).to.equal(null);
    });

    it('isolates transactions committed in the same turn: a failing one does not undo the others', async () => {
      const results = await Promise.allSettled([
        storage().transaction((tx) => {
          tx.accounts.createAccount({ userId: '@one:example.org', createdTs: 1 });
        }),
        storage().transaction((tx) => {
          tx.accounts.createAccount({ userId: '@two:example.org', createdTs: 1 });
          tx.accounts.createAccount({ userId: alice, createdTs: 1 });
        }),
        storage().accounts.createAccount({ userId: '@three:example.org', createdTs: 1 }),
        storage().accounts.createAccount({ userId: '@three:example.org', createdTs: 2 }),
      ]);
      expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
      expect(await storage().accounts.getAccount('@one:example.org')).to.not.equal(null);
      expect(await storage().accounts.getAccount('@two:example.org')).to.equal(null);
      expect((await storage().accounts.getAccount('@three:example.org'))!.createdTs).to.equal(1);
    });

    it('refuses async callbacks and writes queued after the callback returned', async () => {
      await expectStorageError(
        storage().transaction(async (tx) => {
          await tx.accounts.createAccount({ userId: '@async:example.org', createdTs: 1 });
        }),
        'INVALID_TRANSACTION',
      );
      expect(await storage().accounts.getAccount('@async:example.org')).to.equal(null);

      let leaked: Parameters<Parameters<ReturnType<typeof storage>['transaction']>[0]>[0] | undefined;
      await storage().transaction((tx) => {
        leaked = tx;
      });
      expect(() => leaked!.accounts.createAccount({ userId: '@late:example.org', createdTs: 1 })).to.throw(
        StorageError,
        /after its transaction/,
      );
    });

    it('rejects a callback that throws, keeping none of its writes', async () => {
      const thrown = new Error('changed my mind');
      try {
        await storage().transaction((tx) => {
          tx.accounts.createAccount({ userId: '@maybe:example.org', createdTs: 1 });
          throw thrown;
        });
        expect.fail('the transaction should have rejected');
      } catch (error) {
        expect(error).to.equal(thrown);
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(await storage().accounts.getAccount('@maybe:example.org')).to.equal(null);
    });

    it('rejects every call once closed', async () => {
      await storage().close();
      await expectStorageError(
        storage().accounts.createAccount({ userId: '@x:example.org', createdTs: 1 }),
        'CLOSED',
      );
      await expectStorageError(
        storage().transaction(() => {}),
        'CLOSED',
      );
      await storage().close();
    });

    it('finishes queued writes when closed', async () => {
      const pending = storage().accounts.createAccount({ userId: '@queued:example.org', createdTs: 1 });
      await storage().close();
      await pending;
    });
  });
}
