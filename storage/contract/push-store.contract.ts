import { expect } from 'chai';
import type { NewNotification, PusherRecord } from '../push-store.js';
import type { Storage } from '../storage.js';
import { type StorageFactory, useFreshStorage } from './contract-harness.js';
import { TestRoom } from './test-events.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';
const room = '!room:example.org';
const other = '!other:example.org';

function pusher(fields: Partial<PusherRecord> = {}): PusherRecord {
  return {
    userId: alice,
    deviceId: 'DEV',
    kind: 'http',
    appId: 'org.example.app',
    pushkey: 'key1',
    appDisplayName: 'App',
    deviceDisplayName: 'Phone',
    profileTag: null,
    lang: 'en',
    data: { url: 'https://push.example.org/_matrix/push/v1/notify' },
    createdTs: 1000,
    ...fields,
  };
}

function notification(streamOrdering: number, fields: Partial<NewNotification> = {}): NewNotification {
  return {
    userId: alice,
    roomId: room,
    streamOrdering,
    threadId: 'main',
    actions: ['notify'],
    highlight: false,
    ...fields,
  };
}

/** Stores `count` events (stream orderings 1..count on a fresh storage); returns their IDs by ordering. */
async function storeEvents(
  storage: Storage,
  count: number,
): Promise<Map<number, { eventId: string; ts: number }>> {
  const testRoom = new TestRoom(room);
  const events = new Map<number, { eventId: string; ts: number }>();
  for (let i = 0; i < count; i++) {
    const event = testRoom.event();
    const persisted = await storage.events.persistEvent({ event });
    events.set(persisted.streamOrdering, { eventId: event.eventId, ts: event.pdu.origin_server_ts });
  }
  return events;
}

export function describePushStoreContract(makeStorage: StorageFactory): void {
  describe('PushStore', () => {
    const storage = useFreshStorage(makeStorage);

    it("keeps each user's push rule changes", async () => {
      expect(await storage().push.getPushRules(alice)).to.equal(null);
      await storage().push.putPushRules(alice, {
        custom: {},
        defaults: { '.m.rule.master': { enabled: true } },
      });
      await storage().push.putPushRules(alice, { custom: { room: [] }, defaults: {} });
      expect(await storage().push.getPushRules(alice)).to.deep.equal({ custom: { room: [] }, defaults: {} });
      expect(await storage().push.getPushRules(bob)).to.equal(null);
    });

    it('sets, replaces, appends and deletes pushers', async () => {
      await storage().push.setPusher(pusher(), false);
      await storage().push.setPusher(pusher({ lang: 'fr' }), false);
      expect(await storage().push.pushersOfUser(alice)).to.deep.equal([pusher({ lang: 'fr' })]);
      // Without append, the same app ID and pushkey leaves other users.
      await storage().push.setPusher(pusher({ userId: bob }), false);
      expect(await storage().push.pushersOfUser(alice)).to.deep.equal([]);
      await storage().push.setPusher(pusher(), true);
      expect((await storage().push.pushersOfUsers([alice, bob])).map((p) => p.userId).sort()).to.deep.equal([
        alice,
        bob,
      ]);
      expect((await storage().push.usersWithPushers('http')).sort()).to.deep.equal([alice, bob].sort());
      expect(await storage().push.usersWithPushers('email')).to.deep.equal([]);
      expect(await storage().push.deletePusher(alice, 'org.example.app', 'key1')).to.equal(true);
      expect(await storage().push.deletePusher(alice, 'org.example.app', 'key1')).to.equal(false);
      expect(await storage().push.deletePushkey('org.example.app', 'key1')).to.equal(1);
      expect(await storage().push.pushersOfUser(bob)).to.deep.equal([]);
    });

    it('counts notifications after the read marks, per room and per thread', async () => {
      await storage().push.addNotifications([
        notification(1),
        notification(2, { highlight: true }),
        notification(3, { threadId: '$root' }),
        notification(4, { threadId: '$root', highlight: true }),
        notification(5, { roomId: other }),
        notification(6, { userId: bob }),
      ]);
      let counts = await storage().push.unreadCounts(alice, [room, other, '!none:example.org']);
      expect([...counts.keys()].sort()).to.deep.equal([room, other].sort());
      expect(counts.get(room)).to.deep.include({ notificationCount: 4, highlightCount: 2 });
      expect(counts.get(room)!.threads.get('$root')).to.deep.equal({
        notificationCount: 2,
        highlightCount: 1,
      });
      expect(await storage().push.totalUnread(alice)).to.equal(5);

      // A threaded receipt on the main timeline clears it alone; an unthreaded one clears every thread.
      await storage().push.advanceReadMark({
        userId: alice,
        roomId: room,
        threadId: 'main',
        streamOrdering: 2,
      });
      counts = await storage().push.unreadCounts(alice, [room]);
      expect(counts.get(room)).to.deep.include({ notificationCount: 2, highlightCount: 1 });
      await storage().push.advanceReadMark({
        userId: alice,
        roomId: room,
        threadId: null,
        streamOrdering: 3,
      });
      await storage().push.advanceReadMark({
        userId: alice,
        roomId: room,
        threadId: null,
        streamOrdering: 1,
      });
      counts = await storage().push.unreadCounts(alice, [room]);
      expect(counts.get(room)).to.deep.include({ notificationCount: 1, highlightCount: 1 });
      await storage().push.advanceReadMark({
        userId: alice,
        roomId: room,
        threadId: '$root',
        streamOrdering: 4,
      });
      expect((await storage().push.unreadCounts(alice, [room])).has(room)).to.equal(false);
    });

    it('keeps counts right as notifications arrive after a count (per thread, read threads, the same row again)', async () => {
      await storage().push.addNotifications([notification(1)]);
      expect((await storage().push.unreadCounts(alice, [room])).get(room)).to.deep.include({
        notificationCount: 1,
      });
      await storage().push.advanceReadMark({
        userId: alice,
        roomId: room,
        threadId: '$read',
        streamOrdering: 10,
      });
      expect((await storage().push.unreadCounts(alice, [room])).get(room)).to.deep.include({
        notificationCount: 1,
      });
      await storage().push.addNotifications([
        notification(2, { highlight: true }),
        notification(3, { threadId: '$root' }),
        notification(4, { threadId: '$read' }),
      ]);
      let counts = (await storage().push.unreadCounts(alice, [room])).get(room)!;
      expect(counts).to.deep.include({ notificationCount: 3, highlightCount: 1 });
      expect(counts.threads.get('$root')).to.deep.equal({ notificationCount: 1, highlightCount: 0 });
      expect(counts.threads.has('$read')).to.equal(false);
      // The same event evaluated again replaces its row: still counted once.
      await storage().push.addNotifications([notification(3, { threadId: '$root' })]);
      counts = (await storage().push.unreadCounts(alice, [room])).get(room)!;
      expect(counts).to.deep.include({ notificationCount: 3, highlightCount: 1 });
      await storage().push.addNotifications([notification(11, { threadId: '$read', highlight: true })]);
      counts = (await storage().push.unreadCounts(alice, [room])).get(room)!;
      expect(counts).to.deep.include({ notificationCount: 4, highlightCount: 2 });
      expect(counts.threads.get('$read')).to.deep.equal({ notificationCount: 1, highlightCount: 1 });
      await storage().push.advanceReadMark({
        userId: alice,
        roomId: room,
        threadId: null,
        streamOrdering: 11,
      });
      expect((await storage().push.unreadCounts(alice, [room])).has(room)).to.equal(false);
    });

    it('counts a read mark moved by sending at once, per thread, and never moves it back', async () => {
      await storeEvents(storage(), 5);
      await storage().push.addNotifications([
        notification(1),
        notification(2, { threadId: '$root' }),
        notification(3, { highlight: true }),
        notification(4, { threadId: '$root' }),
        notification(5),
      ]);
      expect((await storage().push.unreadCounts(alice, [room])).get(room)).to.deep.include({
        notificationCount: 5,
        highlightCount: 1,
      });
      storage().push.advanceReadMarkSoon({
        userId: alice,
        roomId: room,
        threadId: '$root',
        streamOrdering: 4,
      });
      let counts = (await storage().push.unreadCounts(alice, [room])).get(room)!;
      expect(counts).to.deep.include({ notificationCount: 3, highlightCount: 1 });
      expect(counts.threads.has('$root')).to.equal(false);
      storage().push.advanceReadMarkSoon({ userId: alice, roomId: room, threadId: null, streamOrdering: 3 });
      // A durable mark behind the pending one does not move it back.
      await storage().push.advanceReadMark({
        userId: alice,
        roomId: room,
        threadId: null,
        streamOrdering: 1,
      });
      counts = (await storage().push.unreadCounts(alice, [room])).get(room)!;
      expect(counts).to.deep.include({ notificationCount: 1, highlightCount: 0 });
      expect(await storage().push.totalUnread(alice)).to.equal(1);
      const listed = await storage().push.notificationsOf(alice, { limit: 10, onlyHighlight: false });
      expect(listed.map((n) => [n.streamOrdering, n.read])).to.deep.equal([
        [5, false],
        [4, true],
        [3, true],
        [2, true],
        [1, true],
      ]);
      // Once the backend has written the marks (SQLite: within 100 ms), the counts stay the same.
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect((await storage().push.unreadCounts(alice, [room])).get(room)).to.deep.include({
        notificationCount: 1,
      });
      storage().push.advanceReadMarkSoon({ userId: alice, roomId: room, threadId: null, streamOrdering: 5 });
      expect((await storage().push.unreadCounts(alice, [room])).has(room)).to.equal(false);
    });

    it('lists notifications newest first, paged, highlights only on request, with read flags', async () => {
      const events = await storeEvents(storage(), 4);
      expect([...events.keys()]).to.deep.equal([1, 2, 3, 4]);
      await storage().push.addNotifications(
        [1, 2, 3, 4].map((n) => notification(n, { highlight: n % 2 === 0 })),
      );
      await storage().push.advanceReadMark({
        userId: alice,
        roomId: room,
        threadId: null,
        streamOrdering: 2,
      });
      const page = await storage().push.notificationsOf(alice, { limit: 2, onlyHighlight: false });
      expect(page.map((n) => [n.streamOrdering, n.read])).to.deep.equal([
        [4, false],
        [3, false],
      ]);
      const next = await storage().push.notificationsOf(alice, { before: 3, limit: 5, onlyHighlight: false });
      expect(next.map((n) => [n.streamOrdering, n.read])).to.deep.equal([
        [2, true],
        [1, true],
      ]);
      const highlights = await storage().push.notificationsOf(alice, { limit: 5, onlyHighlight: true });
      expect(highlights.map((n) => n.eventId)).to.deep.equal([
        events.get(4)!.eventId,
        events.get(2)!.eventId,
      ]);
      expect(highlights[0]).to.deep.include({ actions: ['notify'], ts: events.get(4)!.ts, threadId: 'main' });
    });
  });
}
