import { expect } from 'chai';
import type { RoomRecord } from '../room-store.js';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';
import { TestRoom } from './test-events.js';

const alice = '@alice:example.org';

function room(roomId: string, isPublic = false): RoomRecord {
  return { roomId, roomVersion: '11', creator: alice, createdTs: 5, isPublic };
}

export function describeRoomStoreContract(makeStorage: StorageFactory): void {
  describe('RoomStore', () => {
    const storage = useFreshStorage(makeStorage);

    it('records a room once and reads it back', async () => {
      await storage().rooms.createRoom(room('!a:example.org'));
      expect(await storage().rooms.getRoom('!a:example.org')).to.deep.equal(room('!a:example.org'));
      expect(await storage().rooms.getRoom('!unknown:example.org')).to.equal(null);
      await expectStorageError(storage().rooms.createRoom(room('!a:example.org', true)), 'CONFLICT');
      expect((await storage().rooms.getRoom('!a:example.org'))!.isPublic).to.equal(false);
    });

    it('lists public rooms by room ID in pages and counts them', async () => {
      for (const id of ['!d', '!b', '!a', '!c', '!e']) {
        await storage().rooms.createRoom(room(`${id}:example.org`, id !== '!c'));
      }
      expect(await storage().rooms.countPublicRooms()).to.equal(4);
      const first = await storage().rooms.listPublicRooms(null, 2);
      expect(first.map((r) => r.roomId)).to.deep.equal(['!a:example.org', '!b:example.org']);
      const second = await storage().rooms.listPublicRooms(first.at(-1)!.roomId, 2);
      expect(second.map((r) => r.roomId)).to.deep.equal(['!d:example.org', '!e:example.org']);
      expect(await storage().rooms.listPublicRooms('!e:example.org', 2)).to.deep.equal([]);

      await storage().rooms.setRoomPublic('!c:example.org', true);
      await storage().rooms.setRoomPublic('!a:example.org', false);
      expect((await storage().rooms.listPublicRooms(null, 10)).map((r) => r.roomId)).to.deep.equal([
        '!b:example.org',
        '!c:example.org',
        '!d:example.org',
        '!e:example.org',
      ]);
      expect(await storage().rooms.countPublicRooms()).to.equal(4);
      await expectStorageError(storage().rooms.setRoomPublic('!nope:example.org', true), 'NOT_FOUND');
    });

    it('creates, finds, lists and deletes aliases; an alias is unique', async () => {
      await storage().rooms.createRoom(room('!a:example.org'));
      const alias = { alias: '#lobby:example.org', roomId: '!a:example.org', creator: alice, createdTs: 7 };
      await storage().rooms.createAlias(alias);
      await storage().rooms.createAlias({ ...alias, alias: '#hall:example.org', createdTs: 8 });
      await storage().rooms.createAlias({ ...alias, alias: '#other:example.org', roomId: '!b:example.org' });
      expect(await storage().rooms.getAlias('#lobby:example.org')).to.deep.equal(alias);
      expect(await storage().rooms.getAlias('#unknown:example.org')).to.equal(null);
      await expectStorageError(
        storage().rooms.createAlias({ ...alias, roomId: '!b:example.org' }),
        'CONFLICT',
      );
      expect((await storage().rooms.aliasesOfRoom('!a:example.org')).map((a) => a.alias)).to.deep.equal([
        '#lobby:example.org',
        '#hall:example.org',
      ]);

      await storage().rooms.deleteAlias('#lobby:example.org');
      expect(await storage().rooms.getAlias('#lobby:example.org')).to.equal(null);
      await expectStorageError(storage().rooms.deleteAlias('#lobby:example.org'), 'NOT_FOUND');
      expect((await storage().rooms.aliasesOfRoom('!a:example.org')).map((a) => a.alias)).to.deep.equal([
        '#hall:example.org',
      ]);
    });

    it('records a room atomically with its events in a transaction', async () => {
      const test = new TestRoom('!tx:example.org');
      const create = test.event({ type: 'm.room.create', stateKey: '' });
      await storage().transaction((tx) => {
        tx.rooms.createRoom(room(test.roomId));
        tx.events.persistEvent({ event: create });
      });
      expect(await storage().rooms.getRoom(test.roomId)).to.not.equal(null);

      // The room exists already: the whole second transaction, events included, is undone.
      const again = new TestRoom('!tx:example.org').event({ type: 'm.room.create', stateKey: '' });
      await expectStorageError(
        storage().transaction((tx) => {
          tx.events.persistEvent({ event: again });
          tx.rooms.createRoom(room(test.roomId, true));
        }),
        'CONFLICT',
      );
      expect(await storage().events.getEvent(again.eventId)).to.equal(null);
      expect((await storage().rooms.getRoom(test.roomId))!.isPublic).to.equal(false);
    });
  });
}
