import { expect } from 'chai';
import type { JsonObject } from '../../protocol/events.js';
import type { Storage } from '../storage.js';
import { type StorageFactory, useFreshStorage } from './contract-harness.js';
import { TestRoom } from './test-events.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';
const carol = '@carol:example.org';

interface Sent {
  readonly eventId: string;
  readonly streamOrdering: number;
}

async function send(
  storage: Storage,
  room: TestRoom,
  content: JsonObject,
  options: { sender?: string; type?: string; outlier?: boolean; rejectionReason?: string } = {},
): Promise<Sent> {
  const event = room.event({ content, sender: options.sender ?? alice, type: options.type });
  const persisted = await storage.events.persistEvent({
    event,
    outlier: options.outlier,
    rejectionReason: options.rejectionReason,
  });
  return { eventId: event.eventId, streamOrdering: persisted.streamOrdering };
}

const reaction = (eventId: string, key: string) => ({
  'm.relates_to': { rel_type: 'm.annotation', event_id: eventId, key },
});
const threadReply = (root: string, body = 'reply') => ({
  msgtype: 'm.text',
  body,
  'm.relates_to': { rel_type: 'm.thread', event_id: root, is_falling_back: true },
});
const edit = (eventId: string, body: string) => ({
  msgtype: 'm.text',
  body: `* ${body}`,
  'm.new_content': { msgtype: 'm.text', body },
  'm.relates_to': { rel_type: 'm.replace', event_id: eventId },
});

export function describeRelationStoreContract(makeStorage: StorageFactory): void {
  describe('RelationStore (derived by persistEvent)', () => {
    const storage = useFreshStorage(makeStorage);

    it('indexes accepted timeline events with a rel_type and event_id, encrypted ones included', async () => {
      const room = new TestRoom('!rel:example.org');
      const target = await send(storage(), room, { msgtype: 'm.text', body: 'hello' });
      const like = await send(storage(), room, reaction(target.eventId, '👍'), { type: 'm.reaction' });
      const encrypted = await send(
        storage(),
        room,
        {
          algorithm: 'm.megolm.v1.aes-sha2',
          ciphertext: 'AwgA',
          'm.relates_to': { rel_type: 'm.thread', event_id: target.eventId },
        },
        { type: 'm.room.encrypted', sender: bob },
      );
      // Not relations: no rel_type (a plain reply), a non-string event_id, outliers, rejected events.
      await send(storage(), room, {
        body: 'r',
        'm.relates_to': { 'm.in_reply_to': { event_id: target.eventId } },
      });
      await send(storage(), room, { 'm.relates_to': { rel_type: 'm.reference', event_id: 7 } });
      await send(storage(), room, reaction(target.eventId, '👎'), { type: 'm.reaction', outlier: true });
      await send(storage(), room, reaction(target.eventId, '👎'), {
        type: 'm.reaction',
        rejectionReason: 'auth',
      });

      const relations = await storage().relations.relationsOf(target.eventId, { limit: 10, direction: 'f' });
      expect(relations).to.deep.equal([
        {
          eventId: like.eventId,
          roomId: room.roomId,
          relatesTo: target.eventId,
          relType: 'm.annotation',
          eventType: 'm.reaction',
          sender: alice,
          aggregationKey: '👍',
          streamOrdering: like.streamOrdering,
          originServerTs: (await storage().events.getEvent(like.eventId))!.pdu.origin_server_ts,
        },
        {
          eventId: encrypted.eventId,
          roomId: room.roomId,
          relatesTo: target.eventId,
          relType: 'm.thread',
          eventType: 'm.room.encrypted',
          sender: bob,
          aggregationKey: null,
          streamOrdering: encrypted.streamOrdering,
          originServerTs: (await storage().events.getEvent(encrypted.eventId))!.pdu.origin_server_ts,
        },
      ]);
    });

    it('filters relations by rel_type and event type and pages them both ways', async () => {
      const room = new TestRoom('!page:example.org');
      const target = await send(storage(), room, { body: 'root' });
      const replies: Sent[] = [];
      for (let i = 0; i < 5; i++)
        replies.push(await send(storage(), room, threadReply(target.eventId, `${i}`)));
      const like = await send(storage(), room, reaction(target.eventId, '🎉'), { type: 'm.reaction' });
      const ids = (list: { eventId: string }[]) => list.map((r) => r.eventId);
      const replyIds = ids(replies);

      expect(
        ids(await storage().relations.relationsOf(target.eventId, { limit: 10, direction: 'b' })),
      ).to.deep.equal([like.eventId, ...[...replyIds].reverse()]);
      const threadOnly = { relType: 'm.thread', limit: 2, direction: 'b' } as const;
      const page1 = await storage().relations.relationsOf(target.eventId, threadOnly);
      expect(ids(page1)).to.deep.equal([replyIds[4], replyIds[3]]);
      const page2 = await storage().relations.relationsOf(target.eventId, {
        ...threadOnly,
        from: page1.at(-1)!.streamOrdering,
      });
      expect(ids(page2)).to.deep.equal([replyIds[2], replyIds[1]]);
      const forward = await storage().relations.relationsOf(target.eventId, {
        relType: 'm.thread',
        eventType: 'm.room.message',
        from: replies[0]!.streamOrdering,
        to: replies[4]!.streamOrdering,
        limit: 10,
        direction: 'f',
      });
      expect(ids(forward)).to.deep.equal(replyIds.slice(1, 4));
      const backwardTo = await storage().relations.relationsOf(target.eventId, {
        relType: 'm.thread',
        to: replies[2]!.streamOrdering,
        limit: 10,
        direction: 'b',
      });
      expect(ids(backwardTo)).to.deep.equal([replyIds[4], replyIds[3]]);
      expect(
        await storage().relations.relationsOf(target.eventId, {
          relType: 'm.thread',
          eventType: 'm.reaction',
          limit: 10,
          direction: 'b',
        }),
      ).to.deep.equal([]);
      expect(
        await storage().relations.relationsOf('$unrelated', { limit: 10, direction: 'b' }),
      ).to.deep.equal([]);
    });

    it('reads one rel_type for many events at once, oldest first, capped per event', async () => {
      const room = new TestRoom('!each:example.org');
      const first = await send(storage(), room, { body: 'first' });
      const second = await send(storage(), room, { body: 'second' });
      const lonely = await send(storage(), room, { body: 'no relations' });
      const reference = (eventId: string) => ({
        'm.relates_to': { rel_type: 'm.reference', event_id: eventId },
      });
      const r1 = await send(storage(), room, reference(first.eventId));
      const r2 = await send(storage(), room, reference(first.eventId), { sender: bob });
      const r3 = await send(storage(), room, reference(first.eventId), { sender: carol });
      const r4 = await send(storage(), room, reference(second.eventId));
      await send(storage(), room, reaction(second.eventId, '👍'));
      const found = await storage().relations.relationsOfEach(
        [first.eventId, second.eventId, lonely.eventId],
        'm.reference',
        2,
      );
      expect([...found.keys()].sort()).to.deep.equal([first.eventId, second.eventId].sort());
      expect(found.get(first.eventId)!.map((r) => r.eventId)).to.deep.equal([r1.eventId, r2.eventId]);
      expect(found.get(second.eventId)!.map((r) => r.eventId)).to.deep.equal([r4.eventId]);
      expect(r3.streamOrdering).to.be.greaterThan(r2.streamOrdering);
      expect((await storage().relations.relationsOfEach([first.eventId], 'm.reference', 0)).size).to.equal(0);
    });

    it('counts annotations per (type, key), most used first, and spots duplicates', async () => {
      const room = new TestRoom('!react:example.org');
      const a = await send(storage(), room, { body: 'a' });
      const b = await send(storage(), room, { body: 'b' });
      await send(storage(), room, reaction(a.eventId, '👍'), { type: 'm.reaction' });
      await send(storage(), room, reaction(a.eventId, '❤️'), { type: 'm.reaction', sender: bob });
      await send(storage(), room, reaction(a.eventId, '❤️'), { type: 'm.reaction', sender: carol });
      await send(storage(), room, reaction(a.eventId, '👍'), { type: 'org.example.vote', sender: bob });
      await send(storage(), room, reaction(b.eventId, 'ok'), { type: 'm.reaction' });

      const counts = await storage().relations.annotationCounts([a.eventId, b.eventId, '$none']);
      expect(counts.get(a.eventId)).to.deep.equal([
        { eventType: 'm.reaction', key: '❤️', count: 2 },
        { eventType: 'm.reaction', key: '👍', count: 1 },
        { eventType: 'org.example.vote', key: '👍', count: 1 },
      ]);
      expect(counts.get(b.eventId)).to.deep.equal([{ eventType: 'm.reaction', key: 'ok', count: 1 }]);
      expect(counts.has('$none')).to.equal(false);

      expect(await storage().relations.hasAnnotation(a.eventId, bob, 'm.reaction', '❤️')).to.equal(true);
      expect(await storage().relations.hasAnnotation(a.eventId, bob, 'm.reaction', '👍')).to.equal(false);
      expect(await storage().relations.hasAnnotation(a.eventId, alice, 'org.example.vote', '👍')).to.equal(
        false,
      );
      expect(await storage().relations.hasAnnotation(b.eventId, bob, 'm.reaction', 'ok')).to.equal(false);
    });

    it('lists the edits of events, oldest first', async () => {
      const room = new TestRoom('!edit:example.org');
      const original = await send(storage(), room, { body: 'tpyo' });
      const untouched = await send(storage(), room, { body: 'fine' });
      const first = await send(storage(), room, edit(original.eventId, 'typo?'));
      const second = await send(storage(), room, edit(original.eventId, 'typo!'));
      const edits = await storage().relations.replacementsOf([original.eventId, untouched.eventId]);
      expect(edits.get(original.eventId)!.map((r) => r.eventId)).to.deep.equal([
        first.eventId,
        second.eventId,
      ]);
      expect(edits.has(untouched.eventId)).to.equal(false);
    });

    it('summarises threads and lists a room’s threads by latest reply, for a participant too', async () => {
      const room = new TestRoom('!threads:example.org');
      const other = new TestRoom('!elsewhere:example.org');
      const rootA = await send(storage(), room, { body: 'A' }, { sender: alice });
      const rootB = await send(storage(), room, { body: 'B' }, { sender: bob });
      const rootC = await send(storage(), room, { body: 'C' }, { sender: carol });
      await send(storage(), room, threadReply(rootA.eventId), { sender: bob });
      await send(storage(), room, threadReply(rootB.eventId), { sender: bob });
      const lastA = await send(storage(), room, threadReply(rootA.eventId), { sender: carol });
      const lastC = await send(storage(), room, threadReply(rootC.eventId), { sender: carol });
      const lastB = await send(storage(), room, threadReply(rootB.eventId), { sender: bob });
      const elsewhere = await send(storage(), other, { body: 'x' });
      await send(storage(), other, threadReply(elsewhere.eventId));

      const summaries = await storage().relations.threadSummaries([
        rootA.eventId,
        rootB.eventId,
        '$no-replies',
      ]);
      expect(summaries.get(rootA.eventId)).to.deep.equal({
        rootEventId: rootA.eventId,
        count: 2,
        latestEventId: lastA.eventId,
        latestStreamOrdering: lastA.streamOrdering,
      });
      expect(summaries.get(rootB.eventId)).to.include({ count: 2, latestEventId: lastB.eventId });
      expect(summaries.has('$no-replies')).to.equal(false);

      const participants = await storage().relations.threadParticipants([rootA.eventId, rootB.eventId]);
      expect(participants.get(rootA.eventId)).to.deep.equal(new Set([bob, carol]));
      expect(participants.get(rootB.eventId)).to.deep.equal(new Set([bob]));

      const roots = (list: { rootEventId: string }[]) => list.map((t) => t.rootEventId);
      const all = await storage().relations.threadsOfRoom(room.roomId, { limit: 10 });
      expect(roots(all)).to.deep.equal([rootB.eventId, rootC.eventId, rootA.eventId]);
      expect(all[1]).to.deep.equal({
        rootEventId: rootC.eventId,
        count: 1,
        latestEventId: lastC.eventId,
        latestStreamOrdering: lastC.streamOrdering,
      });
      const page1 = await storage().relations.threadsOfRoom(room.roomId, { limit: 2 });
      expect(roots(page1)).to.deep.equal([rootB.eventId, rootC.eventId]);
      const page2 = await storage().relations.threadsOfRoom(room.roomId, {
        limit: 2,
        beforeOrdering: page1.at(-1)!.latestStreamOrdering,
      });
      expect(roots(page2)).to.deep.equal([rootA.eventId]);
      // alice only wrote root A; bob replied to A and B; carol wrote C and replied to A.
      expect(
        roots(await storage().relations.threadsOfRoom(room.roomId, { limit: 10, participant: alice })),
      ).to.deep.equal([rootA.eventId]);
      expect(
        roots(await storage().relations.threadsOfRoom(room.roomId, { limit: 10, participant: bob })),
      ).to.deep.equal([rootB.eventId, rootA.eventId]);
      expect(
        roots(await storage().relations.threadsOfRoom(room.roomId, { limit: 10, participant: carol })),
      ).to.deep.equal([rootC.eventId, rootA.eventId]);
      expect(
        await storage().relations.threadsOfRoom(room.roomId, {
          limit: 10,
          participant: '@nobody:example.org',
        }),
      ).to.deep.equal([]);
    });

    it('forgets the relation of a redacted event, and indexes promoted or re-accepted events', async () => {
      const room = new TestRoom('!redact:example.org');
      const root = await send(storage(), room, { body: 'root' });
      const first = await send(storage(), room, threadReply(root.eventId, 'one'));
      const latest = await send(storage(), room, threadReply(root.eventId, 'two'));
      const like = await send(storage(), room, reaction(root.eventId, '👍'), { type: 'm.reaction' });

      const redactedJson = (eventId: string) =>
        storage()
          .events.getEvent(eventId)
          .then((e) => JSON.stringify({ ...e!.pdu, content: {} }));
      await storage().events.applyRedaction(
        latest.eventId,
        await redactedJson(latest.eventId),
        '$redaction1',
      );
      await storage().events.applyRedaction(like.eventId, await redactedJson(like.eventId), '$redaction2');
      expect((await storage().relations.threadSummaries([root.eventId])).get(root.eventId)).to.include({
        count: 1,
        latestEventId: first.eventId,
      });
      expect(await storage().relations.annotationCounts([root.eventId])).to.deep.equal(new Map());
      expect(await storage().relations.hasAnnotation(root.eventId, alice, 'm.reaction', '👍')).to.equal(
        false,
      );

      // Rejected later: no longer a relation; accepted again: back.
      await storage().events.setRejectionReason(first.eventId, 'soft-failed');
      expect(await storage().relations.threadSummaries([root.eventId])).to.deep.equal(new Map());
      await storage().events.setRejectionReason(first.eventId, null);
      expect((await storage().relations.threadSummaries([root.eventId])).get(root.eventId)).to.include({
        count: 1,
      });
      // A redacted event accepted again stays without its relation.
      await storage().events.setRejectionReason(latest.eventId, null);
      expect((await storage().relations.threadSummaries([root.eventId])).get(root.eventId)).to.include({
        count: 1,
      });

      // An outlier joins the timeline: now it is a relation.
      const late = room.event({ content: reaction(root.eventId, '🎉'), type: 'm.reaction', sender: bob });
      await storage().events.persistEvent({ event: late, outlier: true });
      expect(await storage().relations.hasAnnotation(root.eventId, bob, 'm.reaction', '🎉')).to.equal(false);
      await storage().events.persistEvent({ event: late });
      expect(await storage().relations.hasAnnotation(root.eventId, bob, 'm.reaction', '🎉')).to.equal(true);
    });
  });
}
