import { expect } from 'chai';
import { type RoomEvent, stateTupleKey } from '../../protocol/events.js';
import type { Storage } from '../storage.js';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';
import { TestRoom } from './test-events.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';
const carol = '@carol:remote.example';

function memberEvent(room: TestRoom, userId: string, membership: string, sender = userId): RoomEvent {
  return room.event({ type: 'm.room.member', stateKey: userId, sender, content: { membership } });
}

/** Persists a member event as the new current state entry for its user, as the send path does. */
async function persistMember(
  storage: Storage,
  room: TestRoom,
  userId: string,
  membership: string,
  sender = userId,
): Promise<{ eventId: string; streamOrdering: number }> {
  const event = memberEvent(room, userId, membership, sender);
  const persisted = await storage.events.persistEvent({
    event,
    currentStateDelta: { set: new Map([[stateTupleKey('m.room.member', userId), event.eventId]]) },
  });
  return { eventId: event.eventId, streamOrdering: persisted.streamOrdering };
}

export function describeMembershipStoreContract(makeStorage: StorageFactory): void {
  describe('MembershipStore (derived by persistEvent)', () => {
    const storage = useFreshStorage(makeStorage);

    it('records the membership a persisted member event puts into current state', async () => {
      const room = new TestRoom('!room:example.org');
      const joined = await persistMember(storage(), room, alice, 'join');
      expect(await storage().memberships.getMembership(room.roomId, alice)).to.deep.equal({
        roomId: room.roomId,
        userId: alice,
        membership: 'join',
        eventId: joined.eventId,
        streamOrdering: joined.streamOrdering,
        forgotten: false,
      });
      expect(await storage().memberships.getMembership(room.roomId, bob)).to.equal(null);

      const invited = await persistMember(storage(), room, bob, 'invite', alice);
      expect(await storage().memberships.getMembership(room.roomId, bob)).to.include({
        membership: 'invite',
        eventId: invited.eventId,
      });
      const bobJoined = await persistMember(storage(), room, bob, 'join');
      expect(await storage().memberships.getMembership(room.roomId, bob)).to.include({
        membership: 'join',
        eventId: bobJoined.eventId,
        streamOrdering: bobJoined.streamOrdering,
      });
    });

    it('ignores events that do not change current state, and non-member state', async () => {
      const room = new TestRoom('!quiet:example.org');
      // An outlier or a member event persisted without a current-state delta (a fork side) changes nothing.
      await storage().events.persistEvent({ event: memberEvent(room, alice, 'join'), outlier: true });
      await storage().events.persistEvent({ event: memberEvent(room, bob, 'join') });
      const topic = room.event({ type: 'm.room.topic', stateKey: '', content: { topic: 'hi' } });
      await storage().events.persistEvent({
        event: topic,
        currentStateDelta: { set: new Map([[stateTupleKey('m.room.topic', ''), topic.eventId]]) },
      });
      expect(
        await storage().memberships.membersOfRoom(room.roomId, ['join', 'invite', 'leave']),
      ).to.deep.equal([]);
    });

    it('lists a user’s rooms, optionally by membership, oldest change first', async () => {
      const r1 = new TestRoom('!r1:example.org');
      const r2 = new TestRoom('!r2:example.org');
      const r3 = new TestRoom('!r3:example.org');
      await persistMember(storage(), r2, alice, 'join');
      await persistMember(storage(), r1, alice, 'invite', bob);
      await persistMember(storage(), r3, alice, 'join');
      await persistMember(storage(), r3, bob, 'join');
      await persistMember(storage(), r3, alice, 'leave');

      const all = await storage().memberships.membershipsOfUser(alice);
      expect(all.map((m) => [m.roomId, m.membership])).to.deep.equal([
        [r2.roomId, 'join'],
        [r1.roomId, 'invite'],
        [r3.roomId, 'leave'],
      ]);
      const active = await storage().memberships.membershipsOfUser(alice, ['join', 'invite']);
      expect(active.map((m) => m.roomId)).to.deep.equal([r2.roomId, r1.roomId]);
      expect(await storage().memberships.membershipsOfUser(alice, ['ban'])).to.deep.equal([]);
      expect(await storage().memberships.membershipsOfUser(alice, [])).to.deep.equal([]);
      expect((await storage().memberships.membershipsOfUser(bob)).map((m) => m.roomId)).to.deep.equal([
        r3.roomId,
      ]);
    });

    it('lists a room’s members by membership (joined by default) and counts joined members', async () => {
      const room = new TestRoom('!members:example.org');
      const empty = new TestRoom('!empty:example.org');
      await persistMember(storage(), room, bob, 'join');
      await persistMember(storage(), room, alice, 'join');
      await persistMember(storage(), room, carol, 'invite', alice);
      await persistMember(storage(), room, '@dave:example.org', 'ban', alice);
      await persistMember(storage(), room, '@erin:example.org', 'knock');
      await persistMember(storage(), empty, alice, 'leave');

      const joined = await storage().memberships.membersOfRoom(room.roomId);
      expect(joined.map((m) => m.userId)).to.deep.equal([alice, bob]);
      const pending = await storage().memberships.membersOfRoom(room.roomId, ['invite', 'knock']);
      expect(pending.map((m) => [m.userId, m.membership])).to.deep.equal([
        [carol, 'invite'],
        ['@erin:example.org', 'knock'],
      ]);
      const counts = await storage().memberships.joinedMemberCounts([room.roomId, empty.roomId, '!none:x']);
      expect(counts).to.deep.equal(
        new Map([
          [room.roomId, 2],
          [empty.roomId, 0],
          ['!none:x', 0],
        ]),
      );
      expect(await storage().memberships.joinedMemberCounts([])).to.deep.equal(new Map());
    });

    it('names each server with a joined member once, a port included, and no server of other memberships', async () => {
      const room = new TestRoom('!servers:example.org');
      await persistMember(storage(), room, alice, 'join');
      await persistMember(storage(), room, bob, 'join');
      await persistMember(storage(), room, '@frank:127.0.0.1:8448', 'join');
      await persistMember(storage(), room, carol, 'invite', alice);
      await persistMember(storage(), room, '@gina:left.example', 'leave');
      const servers = await storage().memberships.joinedServers(room.roomId);
      expect([...servers].sort()).to.deep.equal(['127.0.0.1:8448', 'example.org']);
      expect(await storage().memberships.joinedServers('!none:x')).to.deep.equal([]);
      // Follows later membership changes (a read in between must not pin the old answer).
      await persistMember(storage(), room, '@frank:127.0.0.1:8448', 'leave');
      await persistMember(storage(), room, carol, 'join');
      expect([...(await storage().memberships.joinedServers(room.roomId))].sort()).to.deep.equal([
        'example.org',
        'remote.example',
      ]);
    });

    it('reports a user’s membership changes in (after, upTo]', async () => {
      const r1 = new TestRoom('!c1:example.org');
      const r2 = new TestRoom('!c2:example.org');
      const a = await persistMember(storage(), r1, alice, 'join');
      const b = await persistMember(storage(), r2, alice, 'invite', bob);
      await persistMember(storage(), r2, bob, 'join');
      const c = await persistMember(storage(), r1, alice, 'leave');

      const since = (after: number, upTo: number) =>
        storage()
          .memberships.membershipChangesOfUser(alice, after, upTo)
          .then((list) => list.map((m) => [m.roomId, m.membership, m.streamOrdering]));
      expect(await since(0, c.streamOrdering)).to.deep.equal([
        [r2.roomId, 'invite', b.streamOrdering],
        [r1.roomId, 'leave', c.streamOrdering],
      ]);
      expect(await since(a.streamOrdering, b.streamOrdering)).to.deep.equal([
        [r2.roomId, 'invite', b.streamOrdering],
      ]);
      expect(await since(b.streamOrdering, c.streamOrdering - 1)).to.deep.equal([]);
      expect(await since(c.streamOrdering, c.streamOrdering + 100)).to.deep.equal([]);
    });

    it('follows a delta that names another stored event (state resolution), as of the persisted event', async () => {
      const room = new TestRoom('!resolved:example.org');
      const joined = await persistMember(storage(), room, alice, 'join');
      // A ban on a fork, stored without changing current state...
      const ban = memberEvent(room, alice, 'ban', bob);
      await storage().events.persistEvent({ event: ban });
      expect(await storage().memberships.getMembership(room.roomId, alice)).to.include({
        membership: 'join',
        eventId: joined.eventId,
      });
      // ...wins when a later event merges the fork.
      const merge = room.event({ content: { body: 'merge' } });
      const persisted = await storage().events.persistEvent({
        event: merge,
        currentStateDelta: { set: new Map([[stateTupleKey('m.room.member', alice), ban.eventId]]) },
      });
      expect(await storage().memberships.getMembership(room.roomId, alice)).to.include({
        membership: 'ban',
        eventId: ban.eventId,
        streamOrdering: persisted.streamOrdering,
      });
      const changes = await storage().memberships.membershipChangesOfUser(
        alice,
        persisted.streamOrdering - 1,
        persisted.streamOrdering,
      );
      expect(changes.map((m) => m.membership)).to.deep.equal(['ban']);
    });

    it('drops the row when the member entry leaves current state, also through StateStore', async () => {
      const room = new TestRoom('!removed:example.org');
      await persistMember(storage(), room, alice, 'join');
      await persistMember(storage(), room, bob, 'join');
      const other = room.event();
      await storage().events.persistEvent({
        event: other,
        currentStateDelta: { remove: [stateTupleKey('m.room.member', alice)] },
      });
      expect(await storage().memberships.getMembership(room.roomId, alice)).to.equal(null);

      const leave = memberEvent(room, bob, 'leave');
      await storage().events.persistEvent({ event: leave });
      await storage().state.applyCurrentStateDelta(room.roomId, {
        set: new Map([[stateTupleKey('m.room.member', bob), leave.eventId]]),
      });
      expect(await storage().memberships.getMembership(room.roomId, bob)).to.include({
        membership: 'leave',
        eventId: leave.eventId,
      });
      await storage().state.applyCurrentStateDelta(room.roomId, {
        remove: [stateTupleKey('m.room.member', bob)],
      });
      expect(await storage().memberships.membersOfRoom(room.roomId, ['join', 'leave'])).to.deep.equal([]);
    });

    it('forgets a room for a user until their membership changes again', async () => {
      const room = new TestRoom('!forget:example.org');
      await persistMember(storage(), room, alice, 'join');
      await persistMember(storage(), room, alice, 'leave');
      await storage().memberships.forgetRoom(alice, room.roomId);
      expect(await storage().memberships.getMembership(room.roomId, alice)).to.include({
        membership: 'leave',
        forgotten: true,
      });
      expect((await storage().memberships.membershipsOfUser(alice))[0]!.forgotten).to.equal(true);
      await expectStorageError(storage().memberships.forgetRoom(bob, room.roomId), 'NOT_FOUND');

      await persistMember(storage(), room, alice, 'invite', bob);
      expect(await storage().memberships.getMembership(room.roomId, alice)).to.include({
        membership: 'invite',
        forgotten: false,
      });
    });

    it('changes no membership when the persist rolls back', async () => {
      const room = new TestRoom('!rollback:example.org');
      const joined = await persistMember(storage(), room, alice, 'join');
      const leave = memberEvent(room, alice, 'leave');
      await expectStorageError(
        storage().events.persistEvent({
          event: leave,
          stateBefore: { snapshotId: 424_242 },
          currentStateDelta: { set: new Map([[stateTupleKey('m.room.member', alice), leave.eventId]]) },
        }),
        'MISSING_REFERENCE',
      );
      expect(await storage().memberships.getMembership(room.roomId, alice)).to.include({
        membership: 'join',
        eventId: joined.eventId,
      });
    });

    it('keeps no membership for a member event without a valid membership', async () => {
      const room = new TestRoom('!odd:example.org');
      await persistMember(storage(), room, alice, 'join');
      await persistMember(storage(), room, alice, 'dancing');
      expect(await storage().memberships.getMembership(room.roomId, alice)).to.equal(null);
    });
  });
}
