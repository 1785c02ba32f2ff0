import { expect } from 'chai';
import { type JsonObject, stateTupleKey } from '../../protocol/events.js';
import { TestRoom } from '../../storage/contract/test-events.js';
import { openSqliteStorage, type SqliteStorage } from '../../storage/sqlite/sqlite-storage.js';
import { createRoomMembershipView, type RoomMembershipView } from './room-membership-view.js';

describe('RoomMembershipView over current state', () => {
  let storage: SqliteStorage;
  let view: RoomMembershipView;
  const rooms = new Map<string, TestRoom>();

  const setState = async (roomId: string, type: string, stateKey: string, content: JsonObject) => {
    let room = rooms.get(roomId);
    if (!room) {
      room = new TestRoom(roomId);
      rooms.set(roomId, room);
    }
    const event = room.event({
      type,
      stateKey,
      content,
      sender: stateKey.startsWith('@') ? stateKey : '@admin:x',
    });
    await storage.events.persistEvent({
      event,
      updateForwardExtremities: false,
      currentStateDelta: { set: new Map([[stateTupleKey(type, stateKey), event.eventId]]) },
    });
  };
  const member = (roomId: string, userId: string, membership: string) =>
    setState(roomId, 'm.room.member', userId, { membership });

  beforeEach(async () => {
    storage = await openSqliteStorage({ path: ':memory:' });
    view = createRoomMembershipView(storage);
    rooms.clear();
  });
  afterEach(() => storage.close());

  it('counts joins only, and follows leaves', async () => {
    await member('!a:x', '@alice:x', 'join');
    await member('!a:x', '@bob:x', 'join');
    await member('!a:x', '@carol:x', 'invite');
    await member('!b:x', '@alice:x', 'join');
    await member('!b:x', '@dan:x', 'join');
    await member('!c:x', '@alice:x', 'ban');

    expect((await view.joinedRooms('@alice:x')).sort()).to.deep.equal(['!a:x', '!b:x']);
    expect([...(await view.usersSharingRoomWith('@alice:x'))].sort()).to.deep.equal([
      '@alice:x',
      '@bob:x',
      '@dan:x',
    ]);
    expect(await view.sharesRoomWith('@bob:x', '@dan:x')).to.equal(false);
    expect(await view.sharesRoomWith('@bob:x', '@alice:x')).to.equal(true);
    expect(await view.sharesRoomWith('@carol:x', '@alice:x')).to.equal(false);
    expect(await view.sharesRoomWith('@carol:x', '@carol:x'), 'not joined anywhere').to.equal(false);

    await member('!a:x', '@bob:x', 'leave');
    expect(await view.sharesRoomWith('@bob:x', '@alice:x')).to.equal(false);
    expect(await view.joinedRooms('@bob:x')).to.deep.equal([]);
  });

  it('treats rooms with a public join rule or world-readable history as public', async () => {
    await member('!private:x', '@p:x', 'join');
    await setState('!private:x', 'm.room.join_rules', '', { join_rule: 'invite' });
    await member('!open:x', '@o:x', 'join');
    await setState('!open:x', 'm.room.join_rules', '', { join_rule: 'public' });
    await member('!readable:x', '@r:x', 'join');
    await setState('!readable:x', 'm.room.join_rules', '', { join_rule: 'invite' });
    await setState('!readable:x', 'm.room.history_visibility', '', { history_visibility: 'world_readable' });

    expect(await view.isInPublicRoom('@p:x')).to.equal(false);
    expect(await view.isInPublicRoom('@o:x')).to.equal(true);
    expect(await view.isInPublicRoom('@r:x')).to.equal(true);
    expect(await view.isInPublicRoom('@nobody:x')).to.equal(false);

    await setState('!open:x', 'm.room.join_rules', '', { join_rule: 'knock' });
    expect(await view.isInPublicRoom('@o:x')).to.equal(false);
  });
});
