import { expect } from 'chai';
import { stateTupleKey } from '../../protocol/events.js';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';
import { TestRoom } from './test-events.js';

export function describeEventStoreContract(makeStorage: StorageFactory): void {
  describe('EventStore', () => {
    const storage = useFreshStorage(makeStorage);

    it('round-trips an event with its flags, and knows nothing of unknown IDs', async () => {
      const room = new TestRoom('!room:example.org');
      const create = room.event({
        type: 'm.room.create',
        stateKey: '',
        content: { creator: '@alice:example.org' },
      });
      const persisted = await storage().events.persistEvent({
        event: create,
        stateBefore: { parentSnapshotId: null, delta: {} },
      });

      const stored = await storage().events.getEvent(create.eventId);
      expect(stored).to.not.equal(null);
      expect(stored!.eventId).to.equal(create.eventId);
      expect(stored!.roomId).to.equal(room.roomId);
      expect(stored!.pdu).to.deep.equal(create.pdu);
      expect(stored!.json).to.equal(JSON.stringify(create.pdu));
      expect(stored!.streamOrdering).to.equal(persisted.streamOrdering);
      expect(stored!.outlier).to.equal(false);
      expect(stored!.rejectionReason).to.equal(null);
      expect(stored!.stateBeforeSnapshotId).to.equal(persisted.stateBeforeSnapshotId);
      expect(stored!.stateAfterSnapshotId).to.equal(persisted.stateAfterSnapshotId);
      expect(await storage().events.getEvent('$unknown')).to.equal(null);
    });

    it('keeps the received JSON byte-exact: emoji, astral characters, escapes, key order and spacing', async () => {
      const room = new TestRoom('!emoji:example.org');
      const event = room.event({ content: { msgtype: 'm.text', body: 'placeholder' } });
      const body = 'héllo 🎉😀👩‍👩‍👧‍👦 𝄞 🏳️‍🌈 \u2028 "quoted" \\ tab\t';
      const received = `{ "type":"m.room.message",  "room_id":"${room.roomId}","sender":"@alice:example.org","origin_server_ts":1,"content":{"body":${JSON.stringify(body)},"msgtype":"m.text","escaped":"\\ud83c\\udf89"},"depth":1,"prev_events":[],"auth_events":[],"hashes":{"sha256":"aGFzaA"},"signatures":{} }`;
      await storage().events.persistEvent({ event, json: received });

      const stored = await storage().events.getEvent(event.eventId);
      expect(stored!.json).to.equal(received);
      expect(Buffer.from(stored!.json, 'utf8').equals(Buffer.from(received, 'utf8'))).to.equal(true);
      expect(stored!.pdu.content.body).to.equal(body);
      expect(stored!.pdu.content.escaped).to.equal('🎉');
    });

    it('assigns strictly increasing stream orderings and reports the latest', async () => {
      const room = new TestRoom('!order:example.org');
      expect(await storage().events.latestStreamOrdering()).to.equal(0);
      const orderings: number[] = [];
      let prev: string[] = [];
      for (let i = 0; i < 20; i++) {
        const event = room.event({ prevEvents: prev });
        orderings.push((await storage().events.persistEvent({ event })).streamOrdering);
        prev = [event.eventId];
      }
      // Concurrent persists (one group commit) are ordered too.
      const concurrent = await Promise.all(
        Array.from({ length: 20 }, () => storage().events.persistEvent({ event: room.event() })),
      );
      orderings.push(...concurrent.map((p) => p.streamOrdering));
      for (let i = 1; i < orderings.length; i++) expect(orderings[i]).to.be.greaterThan(orderings[i - 1]!);
      expect(await storage().events.latestStreamOrdering()).to.equal(orderings.at(-1));
    });

    it('gets many events by ID and tells which are stored', async () => {
      const room = new TestRoom('!many:example.org');
      const stored = Array.from({ length: 620 }, () => room.event());
      await Promise.all(stored.map((event) => storage().events.persistEvent({ event, outlier: true })));
      const ids = [...stored.map((e) => e.eventId), '$missing-1', '$missing-2'];

      const found = await storage().events.getEvents(ids);
      expect(found.size).to.equal(620);
      for (const event of stored) expect(found.get(event.eventId)!.pdu).to.deep.equal(event.pdu);
      const have = await storage().events.haveEvents(ids);
      expect(have.size).to.equal(620);
      expect(have.has('$missing-1')).to.equal(false);
      expect((await storage().events.getEvents([])).size).to.equal(0);
    });

    it('refuses a second copy of an event with CONFLICT and keeps no trace of the attempt', async () => {
      const room = new TestRoom('!dup:example.org');
      const event = room.event();
      await storage().events.persistEvent({ event });
      const latest = await storage().events.latestStreamOrdering();
      await expectStorageError(storage().events.persistEvent({ event }), 'CONFLICT');
      await expectStorageError(storage().events.persistEvent({ event, outlier: true }), 'CONFLICT');
      // Built here skips the lookup for a stored copy: the unique event ID still refuses it.
      await expectStorageError(storage().events.persistEvent({ event, builtHere: true }), 'CONFLICT');
      expect(await storage().events.latestStreamOrdering()).to.equal(latest);
      expect(await storage().state.forwardExtremities(room.roomId)).to.deep.equal([event.eventId]);
    });

    it('rolls the whole persist back when a part of it fails', async () => {
      const room = new TestRoom('!atomic:example.org');
      const first = room.event();
      await storage().events.persistEvent({ event: first });
      const latest = await storage().events.latestStreamOrdering();
      const second = room.event({ prevEvents: [first.eventId] });
      await expectStorageError(
        storage().events.persistEvent({
          event: second,
          stateBefore: { snapshotId: 987_654 },
          currentStateDelta: { set: new Map([[stateTupleKey('m.room.name', ''), second.eventId]]) },
        }),
        'MISSING_REFERENCE',
      );
      expect(await storage().events.getEvent(second.eventId)).to.equal(null);
      expect(await storage().events.latestStreamOrdering()).to.equal(latest);
      expect(await storage().state.forwardExtremities(room.roomId)).to.deep.equal([first.eventId]);
      expect((await storage().state.currentState(room.roomId)).size).to.equal(0);
    });

    it('pages a room timeline forwards and backwards, skipping other rooms, outliers and rejected events', async () => {
      const room = new TestRoom('!timeline:example.org');
      const other = new TestRoom('!other:example.org');
      const timeline: string[] = [];
      for (let i = 0; i < 10; i++) {
        const event = room.event({ prevEvents: timeline.slice(-1) });
        await storage().events.persistEvent({ event });
        timeline.push(event.eventId);
        await storage().events.persistEvent({ event: other.event() });
        if (i % 3 === 0) await storage().events.persistEvent({ event: room.event(), outlier: true });
        if (i % 4 === 0)
          await storage().events.persistEvent({ event: room.event(), rejectionReason: 'auth' });
      }

      const all = await storage().events.roomEventsAfter(room.roomId, 0, 100);
      expect(all.map((e) => e.eventId)).to.deep.equal(timeline);
      const firstPage = await storage().events.roomEventsAfter(room.roomId, 0, 4);
      expect(firstPage.map((e) => e.eventId)).to.deep.equal(timeline.slice(0, 4));
      const secondPage = await storage().events.roomEventsAfter(
        room.roomId,
        firstPage.at(-1)!.streamOrdering,
        4,
      );
      expect(secondPage.map((e) => e.eventId)).to.deep.equal(timeline.slice(4, 8));

      const latest = await storage().events.latestStreamOrdering();
      const back = await storage().events.roomEventsBefore(room.roomId, latest + 1, 3);
      expect(back.map((e) => e.eventId)).to.deep.equal(timeline.slice(-3).reverse());
      const further = await storage().events.roomEventsBefore(room.roomId, back.at(-1)!.streamOrdering, 100);
      expect(further.map((e) => e.eventId)).to.deep.equal(timeline.slice(0, -3).reverse());
      expect(await storage().events.roomEventsAfter(room.roomId, latest, 10)).to.deep.equal([]);
    });

    it('stores backfilled history below everything, newest first, without moving extremities', async () => {
      const room = new TestRoom('!backfill:example.org');
      const old1 = room.event();
      const old2 = room.event({ prevEvents: [old1.eventId] });
      const join = room.event({ prevEvents: [old2.eventId] });
      const empty = { parentSnapshotId: null, delta: {} };
      const live = await storage().events.persistEvent({ event: join, stateBefore: empty });
      // Checked oldest first elsewhere, persisted newest first: each gets a lower position.
      const second = await storage().events.persistEvent({
        event: old2,
        stateBefore: empty,
        backfilled: true,
      });
      const first = await storage().events.persistEvent({
        event: old1,
        stateBefore: empty,
        backfilled: true,
      });
      expect(second.streamOrdering).to.be.lessThan(0);
      expect(first.streamOrdering).to.be.lessThan(second.streamOrdering);
      expect(live.streamOrdering).to.be.greaterThan(0);
      const back = await storage().events.roomEventsBefore(room.roomId, live.streamOrdering + 1, 10);
      expect(back.map((e) => e.eventId)).to.deep.equal([join.eventId, old2.eventId, old1.eventId]);
      expect(await storage().state.forwardExtremities(room.roomId)).to.deep.equal([join.eventId]);
      // Live positions go on from where they were; a sync reading forward from 0 sees no backfill.
      expect(await storage().events.latestStreamOrdering()).to.equal(live.streamOrdering);
      const changed = await storage().events.roomsChangedBetween(0, live.streamOrdering);
      expect(changed.get(room.roomId)).to.equal(live.streamOrdering);
    });

    it('keeps outliers out of state and extremities, and promotes one that later joins the timeline', async () => {
      const room = new TestRoom('!outlier:example.org');
      const first = room.event();
      await storage().events.persistEvent({ event: first });
      const late = room.event({ prevEvents: [first.eventId] });
      const asOutlier = await storage().events.persistEvent({
        event: late,
        outlier: true,
        stateBefore: { parentSnapshotId: null, delta: {} },
      });
      expect(asOutlier.stateBeforeSnapshotId).to.equal(null);
      const outlier = await storage().events.getEvent(late.eventId);
      expect(outlier!.outlier).to.equal(true);
      expect(await storage().state.stateBeforeEvent(late.eventId)).to.equal(null);
      expect(await storage().state.forwardExtremities(room.roomId)).to.deep.equal([first.eventId]);

      const promoted = await storage().events.persistEvent({
        event: late,
        stateBefore: { parentSnapshotId: null, delta: {} },
      });
      expect(promoted.streamOrdering).to.be.greaterThan(asOutlier.streamOrdering);
      const stored = await storage().events.getEvent(late.eventId);
      expect(stored!.outlier).to.equal(false);
      expect(stored!.streamOrdering).to.equal(promoted.streamOrdering);
      expect(await storage().state.stateBeforeEvent(late.eventId)).to.deep.equal(new Map());
      expect(await storage().state.forwardExtremities(room.roomId)).to.deep.equal([late.eventId]);
      const timeline = await storage().events.roomEventsAfter(room.roomId, 0, 10);
      expect(timeline.map((e) => e.eventId)).to.deep.equal([first.eventId, late.eventId]);
    });

    it('marks events rejected and accepted again', async () => {
      const room = new TestRoom('!reject:example.org');
      const event = room.event();
      await storage().events.persistEvent({ event });
      await storage().events.setRejectionReason(event.eventId, 'not allowed by power levels');
      expect((await storage().events.getEvent(event.eventId))!.rejectionReason).to.equal(
        'not allowed by power levels',
      );
      expect(await storage().events.roomEventsAfter(room.roomId, 0, 10)).to.deep.equal([]);
      await storage().events.setRejectionReason(event.eventId, null);
      expect((await storage().events.getEvent(event.eventId))!.rejectionReason).to.equal(null);
      await expectStorageError(storage().events.setRejectionReason('$nope', 'x'), 'NOT_FOUND');
    });

    it('follows auth edges to the auth chain, stored or not', async () => {
      const room = new TestRoom('!auth:example.org');
      const create = room.event({ type: 'm.room.create', stateKey: '' });
      const member = room.event({
        type: 'm.room.member',
        stateKey: '@alice:example.org',
        authEvents: [create.eventId],
      });
      const power = room.event({
        type: 'm.room.power_levels',
        stateKey: '',
        authEvents: [create.eventId, member.eventId],
      });
      const message = room.event({
        authEvents: [create.eventId, member.eventId, power.eventId, '$never-seen'],
      });
      for (const event of [create, member, power, message])
        await storage().events.persistEvent({ event, outlier: true });

      expect(await storage().events.authChainEventIds([message.eventId])).to.deep.equal(
        new Set([create.eventId, member.eventId, power.eventId, '$never-seen']),
      );
      expect(await storage().events.authChainEventIds([power.eventId])).to.deep.equal(
        new Set([create.eventId, member.eventId]),
      );
      expect(await storage().events.authChainEventIds([create.eventId])).to.deep.equal(new Set());
      expect(await storage().events.authChainEventIds([])).to.deep.equal(new Set());
    });
  });
}
