import { expect } from 'chai';
import type { JsonObject } from '../../protocol/events.js';
import { createHistoryVisibility } from './history-visibility.js';
import { createRelationService, type RelationService, relatesToOf } from './relations.js';
import { openRoomsHarness, type RoomsHarness } from './rooms-test-harness.js';

describe('RelationService', () => {
  let harness: RoomsHarness;
  let relations: RelationService;
  let alice: string;
  let bob: string;
  let roomId: string;
  /** Every event gets this origin_server_ts, so ties between edits are decided by event ID. */
  const FIXED_TS = 1_700_000_000_000;

  before(async () => {
    harness = await openRoomsHarness({ now: () => FIXED_TS });
    const visibility = createHistoryVisibility(harness.storage);
    relations = createRelationService({ storage: harness.storage, visibility: () => visibility });
    alice = await harness.account('alice');
    bob = await harness.account('bob');
    roomId = (await harness.services.createRoom(alice, { preset: 'public_chat' })).roomId;
    await harness.services.membership.join(roomId, bob);
  });

  after(async () => {
    await harness?.close();
  });

  async function send(sender: string, type: string, content: JsonObject): Promise<string> {
    await relations.checkNewRelation(roomId, sender, type, content);
    return (await harness.services.sender.sendEvent({ roomId, sender, type, content })).eventId;
  }

  /** unsigned["m.relations"] of the event for the requester; {} when it has none. */
  async function bundleOf(eventId: string, requester: string): Promise<JsonObject> {
    const event = await harness.storage.events.getEvent(eventId);
    return (await relations.bundledAggregations([event!], requester)).get(eventId) ?? {};
  }

  const thread = (rootId: string) => ({ 'm.relates_to': { rel_type: 'm.thread', event_id: rootId } });

  it('reads m.relates_to only when it names a rel_type and an event_id', () => {
    expect(
      relatesToOf({ 'm.relates_to': { rel_type: 'm.annotation', event_id: '$a', key: 'k' } }),
    ).to.deep.equal({
      relType: 'm.annotation',
      eventId: '$a',
      key: 'k',
    });
    expect(relatesToOf({ 'm.relates_to': { 'm.in_reply_to': { event_id: '$a' } } })).to.equal(null);
    expect(relatesToOf({ 'm.relates_to': { rel_type: 'm.thread', event_id: 7 } })).to.equal(null);
    expect(relatesToOf({ 'm.relates_to': ['m.thread'] })).to.equal(null);
    expect(relatesToOf({ body: 'plain' })).to.equal(null);
  });

  it('lets exactly one of several identical reactions sent at once through, as the send guard', async () => {
    const target = await send(alice, 'm.room.message', { body: 'race' });
    await harness.device(bob, 'DEV');
    const content = { 'm.relates_to': { rel_type: 'm.annotation', event_id: target, key: '🏁' } };
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) =>
        harness.services.sender.sendEvent({
          roomId,
          sender: bob,
          type: 'm.reaction',
          content,
          txn: { deviceId: 'DEV', txnId: `race-${i}` },
          guard: () => relations.checkNewRelation(roomId, bob, 'm.reaction', content),
        }),
      ),
    );
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).to.have.length(1);
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') expect(outcome.reason.errcode).to.equal('M_DUPLICATE_ANNOTATION');
    }
    const stored = await harness.storage.relations.relationsOf(target, { limit: 10, direction: 'b' });
    expect(stored).to.have.length(1);
    // Once that send has settled, storage refuses the next one.
    await expectDuplicate(relations.checkNewRelation(roomId, bob, 'm.reaction', content));
  });

  async function expectDuplicate(check: Promise<unknown>): Promise<void> {
    const error = await check.then(
      () => null,
      (thrown: unknown) => thrown,
    );
    expect(error).to.have.property('errcode', 'M_DUPLICATE_ANNOTATION');
  }

  it('lets unknown relation types and replies through', async () => {
    const target = await send(alice, 'm.room.message', { body: 'target' });
    await relations.checkNewRelation(roomId, bob, 'org.example', {
      'm.relates_to': { rel_type: 'org.example.custom', event_id: target },
    });
    await relations.checkNewRelation(roomId, bob, 'm.room.message', {
      'm.relates_to': { 'm.in_reply_to': { event_id: '$not-even-stored' } },
    });
  });

  it('picks the edit with the largest event ID when origin_server_ts ties', async () => {
    const original = await send(alice, 'm.room.message', { body: 'tie' });
    const editIds: string[] = [];
    for (const body of ['one', 'two', 'three', 'four']) {
      editIds.push(
        await send(alice, 'm.room.message', {
          body: `* ${body}`,
          'm.new_content': { body },
          'm.relates_to': { rel_type: 'm.replace', event_id: original },
        }),
      );
    }
    const largest = [...editIds].sort().at(-1);
    const replacement = (await bundleOf(original, bob))['m.replace'] as JsonObject;
    expect(replacement.event_id).to.equal(largest);
  });

  it('accepts and bundles an encrypted edit, whose m.new_content is inside the ciphertext', async () => {
    const original = await send(alice, 'm.room.encrypted', {
      algorithm: 'm.megolm.v1.aes-sha2',
      ciphertext: 'AAA',
    });
    const edit = await send(alice, 'm.room.encrypted', {
      algorithm: 'm.megolm.v1.aes-sha2',
      ciphertext: 'BBB',
      'm.relates_to': { rel_type: 'm.replace', event_id: original },
    });
    expect(((await bundleOf(original, bob))['m.replace'] as JsonObject).event_id).to.equal(edit);
  });

  it('refuses to replace a state event', async () => {
    const nameEvent = await harness.services.sender.sendEvent({
      roomId,
      sender: alice,
      type: 'm.room.name',
      stateKey: '',
      content: { name: 'Room' },
    });
    let error: unknown;
    try {
      await relations.checkNewRelation(roomId, alice, 'm.room.name', {
        'm.new_content': { name: 'Other' },
        'm.relates_to': { rel_type: 'm.replace', event_id: nameEvent.eventId },
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).to.include({ errcode: 'M_INVALID_PARAM', status: 400 });
  });

  it("leaves ignored users' replies out of a thread's count and latest event, and their references", async () => {
    const carol = await harness.account('carol');
    await harness.services.membership.join(roomId, carol);
    const root = await send(alice, 'm.room.message', { body: 'root' });
    const fromBob = await send(bob, 'm.room.message', { body: 'bob', ...thread(root) });
    await send(carol, 'm.room.message', { body: 'carol', ...thread(root) });
    await send(carol, 'm.note', { 'm.relates_to': { rel_type: 'm.reference', event_id: root } });

    const unfiltered = await bundleOf(root, alice);
    expect(unfiltered['m.thread']).to.include({ count: 2 });
    expect((unfiltered['m.reference'] as { chunk: unknown[] }).chunk).to.have.length(1);

    await harness.storage.accountData.putAccountData(alice, null, 'm.ignored_user_list', {
      ignored_users: { [carol]: {} },
    });
    const filtered = await bundleOf(root, alice);
    const summary = filtered['m.thread'] as JsonObject;
    expect(summary.count).to.equal(1);
    expect((summary.latest_event as JsonObject).event_id).to.equal(fromBob);
    expect(filtered).to.not.have.property('m.reference');
    // Bob ignores nobody and still sees both replies.
    expect((await bundleOf(root, bob))['m.thread']).to.include({ count: 2 });
  });

  it('gives state events no bundled aggregations', async () => {
    const topic = await harness.services.sender.sendEvent({
      roomId,
      sender: alice,
      type: 'm.room.topic',
      stateKey: '',
      content: { topic: 'relations' },
    });
    await send(bob, 'm.reaction', {
      'm.relates_to': { rel_type: 'm.annotation', event_id: topic.eventId, key: '👀' },
    });
    await send(bob, 'm.room.message', { body: 'threaded off state', ...thread(topic.eventId) });
    expect(await bundleOf(topic.eventId, alice)).to.deep.equal({});
  });
});
