import { expect } from 'chai';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';
import { TestRoom } from './test-events.js';

const alice = '@alice:example.org';

/** The EventStore queries and writes that rooms, sync and redactions rely on. */
export function describeEventStoreRoomsContract(makeStorage: StorageFactory): void {
  describe('EventStore: sync, timestamps, transactions and redactions', () => {
    const storage = useFreshStorage(makeStorage);

    it('tells which rooms have timeline events in (after, upTo], with their latest ordering', async () => {
      const r1 = new TestRoom('!one:example.org');
      const r2 = new TestRoom('!two:example.org');
      const r3 = new TestRoom('!three:example.org');
      const a = await storage().events.persistEvent({ event: r1.event() });
      const b = await storage().events.persistEvent({ event: r2.event() });
      const c = await storage().events.persistEvent({ event: r1.event() });
      await storage().events.persistEvent({ event: r3.event(), outlier: true });
      const d = await storage().events.persistEvent({ event: r3.event(), rejectionReason: 'auth' });
      const e = await storage().events.persistEvent({ event: r2.event() });

      expect(await storage().events.roomsChangedBetween(0, e.streamOrdering)).to.deep.equal(
        new Map([
          [r1.roomId, c.streamOrdering],
          [r2.roomId, e.streamOrdering],
        ]),
      );
      expect(await storage().events.roomsChangedBetween(a.streamOrdering, c.streamOrdering)).to.deep.equal(
        new Map([
          [r2.roomId, b.streamOrdering],
          [r1.roomId, c.streamOrdering],
        ]),
      );
      expect(await storage().events.roomsChangedBetween(c.streamOrdering, d.streamOrdering)).to.deep.equal(
        new Map(),
      );
      expect(
        await storage().events.roomsChangedBetween(e.streamOrdering, e.streamOrdering + 5),
      ).to.deep.equal(new Map());
    });

    it('gives each room the ordering of its latest accepted event of the asked types', async () => {
      const r1 = new TestRoom('!bump1:example.org');
      const r2 = new TestRoom('!bump2:example.org');
      const r3 = new TestRoom('!bump3:example.org');
      const create = await storage().events.persistEvent({
        event: r1.event({ type: 'm.room.create', stateKey: '', content: {} }),
      });
      const message = await storage().events.persistEvent({ event: r1.event() });
      await storage().events.persistEvent({ event: r1.event({ type: 'm.reaction', content: {} }) });
      await storage().events.persistEvent({ event: r1.event(), rejectionReason: 'auth' });
      await storage().events.persistEvent({ event: r1.event(), outlier: true });
      await storage().events.persistEvent({ event: r2.event({ type: 'm.reaction', content: {} }) });
      const r3Create = await storage().events.persistEvent({
        event: r3.event({ type: 'm.room.create', stateKey: '', content: {} }),
      });

      const types = ['m.room.create', 'm.room.message'];
      expect(
        await storage().events.latestOrderingOfTypes([r1.roomId, r2.roomId, r3.roomId], types),
      ).to.deep.equal(
        new Map([
          [r1.roomId, message.streamOrdering],
          [r3.roomId, r3Create.streamOrdering],
        ]),
      );
      expect(await storage().events.latestOrderingOfTypes([r1.roomId], ['m.room.create'])).to.deep.equal(
        new Map([[r1.roomId, create.streamOrdering]]),
      );
      expect(await storage().events.latestOrderingOfTypes([], types)).to.deep.equal(new Map());
    });

    it('finds the timeline event closest to a timestamp in either direction', async () => {
      const room = new TestRoom('!ts:example.org');
      const other = new TestRoom('!ts-other:example.org');
      const at100 = room.event({ originServerTs: 100 });
      const at200 = room.event({ originServerTs: 200 });
      const at200too = room.event({ originServerTs: 200 });
      const at300 = room.event({ originServerTs: 300 });
      for (const event of [at100, at200, at200too, at300]) await storage().events.persistEvent({ event });
      await storage().events.persistEvent({ event: room.event({ originServerTs: 150 }), outlier: true });
      await storage().events.persistEvent({
        event: room.event({ originServerTs: 250 }),
        rejectionReason: 'no',
      });
      await storage().events.persistEvent({ event: other.event({ originServerTs: 120 }) });

      const closest = async (ts: number, direction: 'f' | 'b') =>
        (await storage().events.closestEventByTimestamp(room.roomId, ts, direction))?.eventId ?? null;
      expect(await closest(100, 'f')).to.equal(at100.eventId);
      expect(await closest(101, 'f')).to.equal(at200.eventId);
      expect(await closest(199, 'b')).to.equal(at100.eventId);
      expect(await closest(200, 'b')).to.equal(at200too.eventId);
      expect(await closest(260, 'b')).to.equal(at200too.eventId);
      expect(await closest(260, 'f')).to.equal(at300.eventId);
      expect(await closest(50, 'f')).to.equal(at100.eventId);
      expect(await closest(50, 'b')).to.equal(null);
      expect(await closest(301, 'f')).to.equal(null);
      const found = await storage().events.closestEventByTimestamp(room.roomId, 300, 'b');
      expect(found!.pdu).to.deep.equal(at300.pdu);
    });

    it('tells which client transaction produced an event', async () => {
      await storage().accounts.createAccount({ userId: alice, createdTs: 1 });
      await storage().devices.createDevice({ userId: alice, deviceId: 'PHONE', createdTs: 1 });
      const room = new TestRoom('!txn:example.org');
      const event = room.event({ sender: alice });
      await storage().transaction((tx) => {
        tx.events.persistEvent({ event, transaction: { deviceId: 'PHONE', txnId: 'm123.4' } });
        tx.transactionIds.recordTransaction(alice, 'PHONE', 'm123.4', event.eventId, 10);
      });
      expect(await storage().events.transactionOfEvent(event.eventId)).to.deep.equal({
        userId: alice,
        deviceId: 'PHONE',
        txnId: 'm123.4',
      });
      const federated = room.event({ sender: '@remote:elsewhere.example' });
      await storage().events.persistEvent({ event: federated });
      expect(await storage().events.transactionOfEvent(federated.eventId)).to.equal(null);
    });

    it("forgets an event's transaction with the device that sent it", async () => {
      await storage().accounts.createAccount({ userId: alice, createdTs: 1 });
      await storage().devices.createDevice({ userId: alice, deviceId: 'PHONE', createdTs: 1 });
      const room = new TestRoom('!txn-gone:example.org');
      const event = room.event({ sender: alice });
      await storage().transaction((tx) => {
        tx.events.persistEvent({ event, transaction: { deviceId: 'PHONE', txnId: 'm1' } });
        tx.transactionIds.recordTransaction(alice, 'PHONE', 'm1', event.eventId, 10);
      });
      await storage().devices.deleteDevices(alice, ['PHONE']);
      // A new device given the same ID did not send it: no transaction_id is echoed to it.
      await storage().devices.createDevice({ userId: alice, deviceId: 'PHONE', createdTs: 2 });
      expect(await storage().events.transactionOfEvent(event.eventId)).to.equal(null);
      expect(await storage().transactionIds.eventIdForTransaction(alice, 'PHONE', 'm1')).to.equal(null);
    });

    it('applies a redaction: replaces the stored JSON and records the redaction, idempotently', async () => {
      const room = new TestRoom('!redact:example.org');
      const target = room.event({ content: { msgtype: 'm.text', body: 'oops, my password' } });
      const persisted = await storage().events.persistEvent({ event: target });
      const redaction = room.event({ type: 'm.room.redaction', content: { redacts: target.eventId } });
      const redactedJson = JSON.stringify({ ...target.pdu, content: {} });
      expect(await storage().events.redactionOf(target.eventId)).to.equal(null);

      await storage().transaction((tx) => {
        tx.events.persistEvent({ event: redaction });
        tx.events.applyRedaction(target.eventId, redactedJson, redaction.eventId);
      });
      const stored = await storage().events.getEvent(target.eventId);
      expect(stored!.json).to.equal(redactedJson);
      expect(stored!.pdu.content).to.deep.equal({});
      expect(stored!.streamOrdering).to.equal(persisted.streamOrdering);
      expect((await storage().events.roomEventsAfter(room.roomId, 0, 10))[0]!.json).to.equal(redactedJson);
      expect(await storage().events.redactionOf(target.eventId)).to.equal(redaction.eventId);
      expect(await storage().events.redactionOf(redaction.eventId)).to.equal(null);

      // Applying it again, or a second redaction of the same event, changes nothing visible.
      await storage().events.applyRedaction(target.eventId, redactedJson, redaction.eventId);
      await storage().events.applyRedaction(target.eventId, redactedJson, '$second-redaction');
      expect(await storage().events.redactionOf(target.eventId)).to.equal(redaction.eventId);
      expect((await storage().events.getEvent(target.eventId))!.json).to.equal(redactedJson);

      await expectStorageError(
        storage().events.applyRedaction('$not-here', '{}', redaction.eventId),
        'NOT_FOUND',
      );
      expect(await storage().events.redactionOf('$not-here')).to.equal(null);
    });

    it('applies a redaction that arrived before its target in the write that stores the target', async () => {
      const room = new TestRoom('!late-redaction:example.org');
      const target = room.event({
        sender: '@bob:remote.example',
        content: {
          msgtype: 'm.text',
          body: 'secret',
          'm.relates_to': { rel_type: 'm.thread', event_id: '$root' },
        },
      });
      const redaction = room.event({ type: 'm.room.redaction', sender: '@mod:other.example' });
      await storage().events.persistEvent({ event: redaction });
      const pending = {
        redactionEventId: redaction.eventId,
        targetEventId: target.eventId,
        roomId: room.roomId,
        roomVersion: '10',
        senderServer: 'other.example',
        senderMayRedactAny: true,
      };
      await storage().events.redactWhenStored(pending);
      // Recorded twice (a retried transaction): still one redaction.
      await storage().events.redactWhenStored(pending);
      expect(await storage().events.redactionOf(target.eventId)).to.equal(null);

      // Backfilled (any persist path): stored redacted, never readable with its content.
      await storage().events.persistEvent({ event: target, backfilled: true });
      const stored = await storage().events.getEvent(target.eventId);
      expect(stored!.pdu.content).to.deep.equal({});
      expect(stored!.pdu.sender).to.equal('@bob:remote.example');
      expect(await storage().events.redactionOf(target.eventId)).to.equal(redaction.eventId);
      const contents = await storage().events.timelineContentsBetween(
        stored!.streamOrdering - 1,
        stored!.streamOrdering,
        ['m.room.message'],
      );
      expect(contents.map((c) => c.contentJson)).to.deep.equal(['{}']);
      // Its relation went with its content.
      expect(await storage().relations.relationsOf('$root', { limit: 10, direction: 'f' })).to.deep.equal([]);

      // Applied once: recording it again after the fact changes nothing.
      await storage().events.redactWhenStored(pending);
      expect((await storage().events.getEvent(target.eventId))!.json).to.equal(stored!.json);
    });

    it('applies a redaction at once when its target is stored, as the room version redacts', async () => {
      const room = new TestRoom('!now-redaction:example.org');
      const target = room.event({
        type: 'm.room.member',
        stateKey: '@bob:remote.example',
        sender: '@bob:remote.example',
        content: { membership: 'join', displayname: 'Bob' },
      });
      await storage().events.persistEvent({ event: target });
      await storage().events.redactWhenStored({
        redactionEventId: '$own-server',
        targetEventId: target.eventId,
        roomId: room.roomId,
        roomVersion: '11',
        senderServer: 'remote.example',
        senderMayRedactAny: false,
      });
      expect((await storage().events.getEvent(target.eventId))!.pdu.content).to.deep.equal({
        membership: 'join',
      });
      expect(await storage().events.redactionOf(target.eventId)).to.equal('$own-server');
    });

    it('does not apply a waiting redaction its sender may not make', async () => {
      const room = new TestRoom('!denied-redaction:example.org');
      const target = room.event({
        sender: '@bob:remote.example',
        content: { msgtype: 'm.text', body: 'mine' },
      });
      const create = room.event({ type: 'm.room.create', stateKey: '', content: { room_version: '10' } });
      const elsewhere = new TestRoom('!elsewhere:example.org').event({ content: { body: 'other room' } });
      for (const targetEventId of [target.eventId, create.eventId, elsewhere.eventId]) {
        await storage().events.redactWhenStored({
          redactionEventId: `$r-${targetEventId}`,
          targetEventId,
          roomId: room.roomId,
          roomVersion: '10',
          // Another server, without the redact level; a create event and another room's event never.
          senderServer: targetEventId === target.eventId ? 'other.example' : 'example.org',
          senderMayRedactAny: targetEventId !== target.eventId,
        });
      }
      await storage().events.persistEvent({ event: create });
      await storage().events.persistEvent({ event: target });
      await storage().events.persistEvent({ event: elsewhere });
      for (const event of [target, create, elsewhere]) {
        expect((await storage().events.getEvent(event.eventId))!.pdu.content).to.deep.equal(
          event.pdu.content,
        );
        expect(await storage().events.redactionOf(event.eventId)).to.equal(null);
      }
    });

    it('keeps a redaction applied to an outlier when the outlier joins the timeline', async () => {
      const room = new TestRoom('!redact-outlier:example.org');
      const target = room.event({ content: { body: 'secret' } });
      await storage().events.persistEvent({ event: target, outlier: true });
      const redactedJson = JSON.stringify({ ...target.pdu, content: {} });
      await storage().events.applyRedaction(target.eventId, redactedJson, '$r');
      await storage().events.persistEvent({ event: target });
      const stored = await storage().events.getEvent(target.eventId);
      expect(stored!.outlier).to.equal(false);
      expect(stored!.json).to.equal(redactedJson);
    });
  });
}
