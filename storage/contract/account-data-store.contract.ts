import { expect } from 'chai';
import { type StorageFactory, useFreshStorage } from './contract-harness.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';

export function describeAccountDataStoreContract(makeStorage: StorageFactory): void {
  describe('AccountDataStore', () => {
    const storage = useFreshStorage(makeStorage);
    beforeEach(async () => {
      await storage().accounts.createAccount({ userId: alice, createdTs: 1 });
      await storage().accounts.createAccount({ userId: bob, createdTs: 1 });
    });

    it('stores global and per-room account data apart', async () => {
      const direct = { [bob]: ['!dm:example.org'] };
      const p1 = await storage().accountData.putAccountData(alice, null, 'm.direct', direct);
      const p2 = await storage().accountData.putAccountData(alice, '!room:example.org', 'm.fully_read', {
        event_id: '$e',
      });
      const p3 = await storage().accountData.putAccountData(alice, '!room:example.org', 'm.direct', {
        room: true,
      });
      expect(await storage().accountData.getAccountData(alice, null, 'm.direct')).to.deep.equal({
        userId: alice,
        roomId: null,
        type: 'm.direct',
        content: direct,
        streamPosition: p1,
      });
      expect(
        (await storage().accountData.getAccountData(alice, '!room:example.org', 'm.direct'))!.content,
      ).to.deep.equal({
        room: true,
      });
      expect((await storage().accountData.globalAccountData(alice)).map((e) => e.type)).to.deep.equal([
        'm.direct',
      ]);
      const roomData = await storage().accountData.roomAccountData(alice, '!room:example.org');
      expect(roomData.map((e) => [e.type, e.streamPosition])).to.deep.equal([
        ['m.direct', p3],
        ['m.fully_read', p2],
      ]);
      expect(await storage().accountData.getAccountData(bob, null, 'm.direct')).to.equal(null);
      expect(await storage().accountData.getAccountData(alice, '!other:example.org', 'm.direct')).to.equal(
        null,
      );
    });

    it('replaces an entry on a second put and moves it to a new stream position', async () => {
      const first = await storage().accountData.putAccountData(alice, null, 'org.example.theme', {
        colour: 'blue',
      });
      const second = await storage().accountData.putAccountData(alice, null, 'org.example.theme', {
        colour: 'red',
        emoji: '🎨🦄',
      });
      expect(second).to.be.greaterThan(first);
      const entry = await storage().accountData.getAccountData(alice, null, 'org.example.theme');
      expect(entry!.content).to.deep.equal({ colour: 'red', emoji: '🎨🦄' });
      expect(entry!.streamPosition).to.equal(second);
      expect(await storage().accountData.globalAccountData(alice)).to.have.length(1);
      expect(await storage().accountData.latestAccountDataPosition()).to.equal(second);
    });

    it('lists what changed for a user since a stream position, oldest change first', async () => {
      expect(await storage().accountData.latestAccountDataPosition()).to.equal(0);
      const a = await storage().accountData.putAccountData(alice, null, 'a', {});
      await storage().accountData.putAccountData(bob, null, 'b', {});
      const c = await storage().accountData.putAccountData(alice, '!r:example.org', 'c', {});
      const a2 = await storage().accountData.putAccountData(alice, null, 'a', { again: true });

      const since = await storage().accountData.accountDataChangedSince(alice, a);
      expect(since.map((e) => [e.type, e.roomId, e.streamPosition])).to.deep.equal([
        ['c', '!r:example.org', c],
        ['a', null, a2],
      ]);
      expect(
        (await storage().accountData.accountDataChangedSince(alice, 0)).map((e) => e.type),
      ).to.deep.equal(['c', 'a']);
      expect(await storage().accountData.accountDataChangedSince(alice, a2)).to.deep.equal([]);
      expect((await storage().accountData.accountDataChangedSince(bob, 0)).map((e) => e.type)).to.deep.equal([
        'b',
      ]);
    });
  });
}
