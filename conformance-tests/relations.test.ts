/**
 * Relations over real HTTP: reactions, edits, threads and references, as the
 * client-server modules "Forming relationships between events", "Event
 * annotations and reactions", "Event replacements", "Threading" and "Reference
 * relations" describe them.
 */
import { expect } from 'chai';
import type { JsonObject } from '../protocol/events.js';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

// biome-ignore lint/suspicious/noExplicitAny: the tests walk deep into response JSON
type Json = Record<string, any>;

describe('Relations (reactions, edits, threads, references)', () => {
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let roomId: string;
  let txnCounter = 0;

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    alice = await createUser(hs, 'alice');
    bob = await createUser(hs, 'bob');
    carol = await createUser(hs, 'carol');
    roomId = await createRoom(alice, { preset: 'public_chat' });
    await join(bob, roomId);
  });

  after(async () => {
    await hs?.stop();
  });

  async function createRoom(user: TestUser, body: Json): Promise<string> {
    const res = await call(hs, user, 'POST', '/_matrix/client/v3/createRoom', body);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body.room_id as string;
  }

  async function join(user: TestUser, room: string): Promise<void> {
    const res = await call(hs, user, 'POST', `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/join`, {});
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
  }

  async function trySend(user: TestUser, room: string, type: string, content: JsonObject) {
    txnCounter += 1;
    return call(
      hs,
      user,
      'PUT',
      `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/send/${encodeURIComponent(type)}/rel${txnCounter}`,
      content,
    );
  }

  async function send(user: TestUser, type: string, content: JsonObject, room = roomId): Promise<string> {
    const res = await trySend(user, room, type, content);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body.event_id as string;
  }

  const message = (user: TestUser, body: string, room = roomId) =>
    send(user, 'm.room.message', { msgtype: 'm.text', body }, room);

  const react = (user: TestUser, eventId: string, key: string) =>
    send(user, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: eventId, key } });

  const edit = (user: TestUser, eventId: string, body: string) =>
    send(user, 'm.room.message', {
      msgtype: 'm.text',
      body: `* ${body}`,
      'm.new_content': { msgtype: 'm.text', body },
      'm.relates_to': { rel_type: 'm.replace', event_id: eventId },
    });

  const threadReply = (user: TestUser, rootId: string, body: string) =>
    send(user, 'm.room.message', {
      msgtype: 'm.text',
      body,
      'm.relates_to': { rel_type: 'm.thread', event_id: rootId },
    });

  async function redact(user: TestUser, eventId: string): Promise<void> {
    txnCounter += 1;
    const res = await call(
      hs,
      user,
      'PUT',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/redact/${encodeURIComponent(eventId)}/rel${txnCounter}`,
      {},
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
  }

  function relationsPath(eventId: string, suffix = '', query = '', room = roomId): string {
    return (
      `/_matrix/client/v1/rooms/${encodeURIComponent(room)}/relations/${encodeURIComponent(eventId)}${suffix}` +
      (query === '' ? '' : `?${query}`)
    );
  }

  async function relations(user: TestUser, eventId: string, suffix = '', query = ''): Promise<Json> {
    const res = await call(hs, user, 'GET', relationsPath(eventId, suffix, query));
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body;
  }

  async function threads(user: TestUser, query = '', room = roomId): Promise<Json> {
    const res = await call(
      hs,
      user,
      'GET',
      `/_matrix/client/v1/rooms/${encodeURIComponent(room)}/threads${query === '' ? '' : `?${query}`}`,
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body;
  }

  /** unsigned["m.relations"] of the event as GET /rooms/{roomId}/event/{eventId} serves it to `user`. */
  async function bundleOf(user: TestUser, eventId: string): Promise<Json | undefined> {
    const res = await call(
      hs,
      user,
      'GET',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(eventId)}`,
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return (res.body as Json).unsigned?.['m.relations'];
  }

  const ids = (chunk: Json[]) => chunk.map((event) => event.event_id as string);

  describe('reactions (m.annotation)', () => {
    it('lists the reactions of two users through /relations, filtered by rel type and event type', async () => {
      const target = await message(alice, 'react to me 🎉');
      const fromAlice = await react(alice, target, '👍');
      const fromBob = await react(bob, target, '👍🏽');

      const all = await relations(bob, target);
      expect(ids(all.chunk)).to.deep.equal([fromBob, fromAlice]);
      expect(all.chunk[0].content['m.relates_to']).to.deep.equal({
        rel_type: 'm.annotation',
        event_id: target,
        key: '👍🏽',
      });
      // Served like any client event: the sending device sees its transaction ID, others do not.
      expect(all.chunk[0].unsigned.transaction_id).to.be.a('string');
      expect(all.chunk[1].unsigned).to.not.have.property('transaction_id');
      expect(all).to.not.have.property('next_batch');
      expect(all).to.not.have.property('recursion_depth');

      expect(ids((await relations(alice, target, '/m.annotation')).chunk)).to.deep.equal([
        fromBob,
        fromAlice,
      ]);
      expect(ids((await relations(alice, target, '/m.annotation/m.reaction')).chunk)).to.deep.equal([
        fromBob,
        fromAlice,
      ]);
      expect((await relations(alice, target, '/m.annotation/m.room.message')).chunk).to.deep.equal([]);
      expect((await relations(alice, target, '/m.replace')).chunk).to.deep.equal([]);
    });

    it('refuses a second identical reaction from the same user with M_DUPLICATE_ANNOTATION', async () => {
      const target = await message(alice, 'only once');
      await react(bob, target, '❤️');
      const again = await trySend(bob, roomId, 'm.reaction', {
        'm.relates_to': { rel_type: 'm.annotation', event_id: target, key: '❤️' },
      });
      expect(again.status).to.equal(400);
      expect(again.body.errcode).to.equal('M_DUPLICATE_ANNOTATION');
      // Another key, or the same key from another user, is fine.
      await react(bob, target, '😂');
      await react(alice, target, '❤️');
      expect((await relations(alice, target, '/m.annotation')).chunk).to.have.length(3);
    });

    it('stores exactly one of two identical reactions sent at the same instant; the other is M_DUPLICATE_ANNOTATION', async () => {
      const target = await message(alice, 'race me');
      const content = { 'm.relates_to': { rel_type: 'm.annotation', event_id: target, key: '🏁' } };
      const answers = await Promise.all(
        Array.from({ length: 8 }, () => trySend(bob, roomId, 'm.reaction', content)),
      );
      expect(answers.filter((answer) => answer.status === 200)).to.have.length(1);
      for (const answer of answers.filter((a) => a.status === 400)) {
        expect(answer.body.errcode).to.equal('M_DUPLICATE_ANNOTATION');
      }
      expect((await relations(alice, target, '/m.annotation')).chunk).to.have.length(1);
    });

    it('answers a retried reaction transaction with its event ID, not as a duplicate', async () => {
      const target = await message(alice, 'retry me');
      const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.reaction/retry-${target.slice(1, 9)}`;
      const content = { 'm.relates_to': { rel_type: 'm.annotation', event_id: target, key: '🔁' } };
      const first = await call(hs, bob, 'PUT', path, content);
      const again = await call(hs, bob, 'PUT', path, content);
      expect(first.status).to.equal(200);
      expect(again.status, JSON.stringify(again.body)).to.equal(200);
      expect(again.body.event_id).to.equal(first.body.event_id);
    });

    it('drops a redacted reaction from the aggregation, after which it may be sent again', async () => {
      const target = await message(alice, 'changing my mind');
      const reaction = await react(bob, target, '👎');
      await redact(bob, reaction);
      expect((await relations(alice, target, '/m.annotation')).chunk).to.deep.equal([]);
      const again = await react(bob, target, '👎');
      expect(ids((await relations(alice, target, '/m.annotation')).chunk)).to.deep.equal([again]);
    });

    it('refuses an annotation without a string key', async () => {
      const target = await message(alice, 'keyless');
      const res = await trySend(bob, roomId, 'm.reaction', {
        'm.relates_to': { rel_type: 'm.annotation', event_id: target },
      });
      expect(res.status).to.equal(400);
      expect(res.body.errcode).to.equal('M_INVALID_PARAM');
    });

    it('does not bundle annotations (spec v1.7: m.annotation is not aggregated)', async () => {
      const target = await message(alice, 'no bundle');
      await react(bob, target, '🙂');
      expect(await bundleOf(alice, target)).to.equal(undefined);
    });
  });

  describe('edits (m.replace)', () => {
    it('bundles the most recent edit by the original sender, formatted as a whole event', async () => {
      const original = await message(alice, 'I like cake');
      await edit(alice, original, 'I like chocolate cake');
      const latest = await edit(alice, original, 'I like chocolate cake a lot');

      const bundle = await bundleOf(bob, original);
      const replacement = bundle?.['m.replace'];
      expect(replacement.event_id).to.equal(latest);
      expect(replacement.sender).to.equal(alice.userId);
      expect(replacement.type).to.equal('m.room.message');
      expect(replacement.content['m.new_content']).to.deep.equal({
        msgtype: 'm.text',
        body: 'I like chocolate cake a lot',
      });
      // The original's content is left intact.
      const event = await hs.homeserver.context.storage.events.getEvent(original);
      expect(event?.pdu.content.body).to.equal('I like cake');
      expect(ids((await relations(bob, original, '/m.replace')).chunk)).to.have.length(2);

      // /messages serves the same bundle.
      const messages = await call(
        hs,
        bob,
        'GET',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=5`,
      );
      expect(messages.status, JSON.stringify(messages.body)).to.equal(200);
      const served = (messages.body.chunk as Json[]).find((event) => event.event_id === original);
      expect(served?.unsigned['m.relations']['m.replace'].event_id).to.equal(latest);
    });

    it("refuses at send an edit of another user's event, of another type, without m.new_content, or of an edit", async () => {
      const original = await message(alice, 'mine');
      const byBob = await trySend(bob, roomId, 'm.room.message', {
        msgtype: 'm.text',
        body: '* hijacked',
        'm.new_content': { msgtype: 'm.text', body: 'hijacked' },
        'm.relates_to': { rel_type: 'm.replace', event_id: original },
      });
      expect(byBob.status).to.equal(400);
      expect(byBob.body.errcode).to.equal('M_INVALID_PARAM');

      const otherType = await trySend(alice, roomId, 'm.sticker', {
        body: 'sticker',
        url: 'mxc://localhost/abc',
        info: {},
        'm.new_content': { body: 'x' },
        'm.relates_to': { rel_type: 'm.replace', event_id: original },
      });
      expect(otherType.status).to.equal(400);
      expect(otherType.body.errcode).to.equal('M_INVALID_PARAM');

      const noNewContent = await trySend(alice, roomId, 'm.room.message', {
        msgtype: 'm.text',
        body: '* nothing new',
        'm.relates_to': { rel_type: 'm.replace', event_id: original },
      });
      expect(noNewContent.status).to.equal(400);
      expect(noNewContent.body.errcode).to.equal('M_INVALID_PARAM');

      const anEdit = await edit(alice, original, 'mine, edited');
      const editOfEdit = await trySend(alice, roomId, 'm.room.message', {
        msgtype: 'm.text',
        body: '* twice',
        'm.new_content': { msgtype: 'm.text', body: 'twice' },
        'm.relates_to': { rel_type: 'm.replace', event_id: anEdit },
      });
      expect(editOfEdit.status).to.equal(400);
      expect(editOfEdit.body.errcode).to.equal('M_INVALID_PARAM');

      expect((await bundleOf(alice, original))?.['m.replace'].event_id).to.equal(anEdit);
    });

    it('does not bundle an invalid edit that arrived without the send checks (as over federation)', async () => {
      const original = await message(alice, 'federated original');
      // Straight through the sender: no checkNewRelation, as for an event from another server.
      await hs.homeserver.context.rooms.sender.sendEvent({
        roomId,
        sender: bob.userId,
        type: 'm.room.message',
        content: {
          msgtype: 'm.text',
          body: '* not yours',
          'm.new_content': { msgtype: 'm.text', body: 'not yours' },
          'm.relates_to': { rel_type: 'm.replace', event_id: original },
        },
      });
      expect(await bundleOf(alice, original)).to.equal(undefined);
      // It is still a child event that /relations lists.
      expect((await relations(alice, original, '/m.replace')).chunk).to.have.length(1);
    });

    it('bundles no edit once the original is redacted', async () => {
      const original = await message(alice, 'to be removed');
      await edit(alice, original, 'to be removed, edited');
      expect(await bundleOf(alice, original)).to.have.property('m.replace');
      await redact(alice, original);
      expect(await bundleOf(alice, original)).to.equal(undefined);
    });
  });

  describe('threads (m.thread)', () => {
    let aliceRoot: string;
    let bobRoot: string;
    let lastReply: string;
    let lastReplyEdit: string;

    before(async () => {
      aliceRoot = await message(alice, 'thread root by alice');
      await threadReply(bob, aliceRoot, 'first reply');
      lastReply = await threadReply(bob, aliceRoot, 'second reply');
      lastReplyEdit = await edit(bob, lastReply, 'second reply, edited');
      bobRoot = await message(bob, 'thread root by bob');
      await threadReply(bob, bobRoot, 'bob talks to himself');
    });

    it('bundles the thread summary: count, latest event (with its own edit), participation', async () => {
      const forAlice = (await bundleOf(alice, aliceRoot))?.['m.thread'];
      expect(forAlice.count).to.equal(2);
      expect(forAlice.current_user_participated).to.equal(true); // the root's sender
      expect(forAlice.latest_event.event_id).to.equal(lastReply);
      expect(forAlice.latest_event.content.body).to.equal('second reply');
      expect(forAlice.latest_event.unsigned['m.relations']['m.replace'].event_id).to.equal(lastReplyEdit);

      expect((await bundleOf(bob, aliceRoot))?.['m.thread'].current_user_participated).to.equal(true);
      expect((await bundleOf(alice, bobRoot))?.['m.thread'].current_user_participated).to.equal(false);
    });

    it('lists thread roots with /threads, all or only those the user participated in', async () => {
      const all = await threads(alice);
      const allIds = ids(all.chunk);
      expect(allIds).to.include.members([aliceRoot, bobRoot]);
      expect(allIds.indexOf(bobRoot)).to.be.lessThan(allIds.indexOf(aliceRoot)); // most recently active first
      const root = all.chunk.find((event: Json) => event.event_id === aliceRoot);
      expect(root.unsigned['m.relations']['m.thread'].count).to.equal(2);
      expect(root.unsigned['m.relations']['m.thread'].latest_event.event_id).to.equal(lastReply);

      const participated = ids((await threads(alice, 'include=participated')).chunk);
      expect(participated).to.include(aliceRoot);
      expect(participated).to.not.include(bobRoot);
      expect(ids((await threads(bob, 'include=participated')).chunk)).to.include.members([
        aliceRoot,
        bobRoot,
      ]);
    });

    it('paginates /threads with next_batch', async () => {
      const first = await threads(alice, 'limit=1');
      expect(first.chunk).to.have.length(1);
      expect(first.next_batch).to.be.a('string');
      const second = await threads(alice, `limit=1&from=${encodeURIComponent(first.next_batch)}`);
      expect(second.chunk).to.have.length(1);
      expect(second.chunk[0].event_id).to.not.equal(first.chunk[0].event_id);
    });

    it('lists the replies of a thread through /relations/{root}/m.thread with their bundled edits', async () => {
      const page = await relations(alice, aliceRoot, '/m.thread');
      expect(page.chunk).to.have.length(2);
      expect(page.chunk[0].event_id).to.equal(lastReply);
      expect(page.chunk[0].unsigned['m.relations']['m.replace'].event_id).to.equal(lastReplyEdit);
    });

    it('refuses to start a thread from an event that is itself a relation (400 M_UNKNOWN)', async () => {
      const res = await trySend(alice, roomId, 'm.room.message', {
        msgtype: 'm.text',
        body: 'nested',
        'm.relates_to': { rel_type: 'm.thread', event_id: lastReply },
      });
      expect(res.status).to.equal(400);
      expect(res.body.errcode).to.equal('M_UNKNOWN');
    });

    it('includes indirect relations with recurse=true and says how deep it went', async () => {
      const reactionToReply = await react(alice, lastReply, '🧵');
      const direct = await relations(alice, aliceRoot, '', 'recurse=false');
      expect(ids(direct.chunk)).to.not.include(reactionToReply);
      expect(direct.recursion_depth).to.equal(1);
      const deep = await relations(alice, aliceRoot, '', 'recurse=true');
      expect(ids(deep.chunk)).to.include.members([reactionToReply, lastReply, lastReplyEdit]);
      expect(deep.recursion_depth).to.equal(3);
      const annotationsOnly = await relations(alice, aliceRoot, '/m.annotation', 'recurse=true');
      expect(ids(annotationsOnly.chunk)).to.deep.equal([reactionToReply]);
    });
  });

  describe('in /sync', () => {
    it('bundles the latest edit and the thread summary on timeline events, per requester', async () => {
      const room = await createRoom(alice, { preset: 'public_chat' });
      await join(bob, room);
      await join(carol, room);
      const original = await message(alice, 'sync me', room);
      const latestEdit = await send(
        alice,
        'm.room.message',
        {
          msgtype: 'm.text',
          body: '* sync me, edited',
          'm.new_content': { msgtype: 'm.text', body: 'sync me, edited' },
          'm.relates_to': { rel_type: 'm.replace', event_id: original },
        },
        room,
      );
      const reply = await send(
        bob,
        'm.room.message',
        {
          msgtype: 'm.text',
          body: 'in thread',
          'm.relates_to': { rel_type: 'm.thread', event_id: original },
        },
        room,
      );
      const filter = encodeURIComponent(JSON.stringify({ room: { rooms: [room], timeline: { limit: 3 } } }));
      for (const [user, participated] of [
        [alice, true],
        [bob, true],
        [carol, false],
      ] as const) {
        const res = await call(hs, user, 'GET', `/_matrix/client/v3/sync?filter=${filter}&timeout=0`);
        expect(res.status, JSON.stringify(res.body)).to.equal(200);
        const timeline = (res.body as Json).rooms.join[room].timeline;
        expect(timeline.limited).to.equal(true);
        const served = (timeline.events as Json[]).find((event) => event.event_id === original);
        const bundle = served?.unsigned['m.relations'];
        expect(bundle['m.replace'].event_id).to.equal(latestEdit);
        expect(bundle['m.thread'].latest_event.event_id).to.equal(reply);
        expect(bundle['m.thread'].count).to.equal(1);
        expect(bundle['m.thread'].current_user_participated).to.equal(participated);
      }
    });
  });

  describe('references (m.reference)', () => {
    it('bundles the referencing event IDs in a chunk', async () => {
      const target = await message(alice, 'referenced');
      const first = await send(bob, 'm.room.message', {
        msgtype: 'm.text',
        body: 'see above',
        'm.relates_to': { rel_type: 'm.reference', event_id: target },
      });
      const second = await send(alice, 'org.example.note', {
        'm.relates_to': { rel_type: 'm.reference', event_id: target },
      });
      expect((await bundleOf(alice, target))?.['m.reference']).to.deep.equal({
        chunk: [{ event_id: first }, { event_id: second }],
      });
    });
  });

  describe('pagination of /relations', () => {
    let target: string;
    let reactions: string[];

    before(async () => {
      target = await message(alice, 'many reactions');
      reactions = [];
      for (const key of ['1️⃣', '2️⃣', '3️⃣', '4️⃣', '5️⃣']) reactions.push(await react(alice, target, key));
    });

    it('pages backwards (the default) newest first until next_batch disappears', async () => {
      const seen: string[] = [];
      let from: string | undefined;
      for (let page = 0; page < 5; page++) {
        const body = await relations(
          alice,
          target,
          '',
          `limit=2${from ? `&from=${encodeURIComponent(from)}` : ''}`,
        );
        seen.push(...ids(body.chunk));
        if (from !== undefined) expect(body.prev_batch).to.equal(from);
        from = body.next_batch;
        if (from === undefined) break;
      }
      expect(from).to.equal(undefined);
      expect(seen).to.deep.equal([...reactions].reverse());
    });

    it('pages forwards with dir=f oldest first', async () => {
      const first = await relations(alice, target, '', 'dir=f&limit=3');
      expect(ids(first.chunk)).to.deep.equal(reactions.slice(0, 3));
      const second = await relations(
        alice,
        target,
        '',
        `dir=f&limit=3&from=${encodeURIComponent(first.next_batch)}`,
      );
      expect(ids(second.chunk)).to.deep.equal(reactions.slice(3));
      expect(second).to.not.have.property('next_batch');
    });

    it('stops at `to` (a from token of page 1 and a to token of page 2 cover the same range)', async () => {
      const page1 = await relations(alice, target, '', 'limit=2');
      const page2 = await relations(
        alice,
        target,
        '',
        `limit=2&from=${encodeURIComponent(page1.next_batch)}`,
      );
      const range = await relations(alice, target, '', `limit=10&to=${encodeURIComponent(page2.next_batch)}`);
      expect(ids(range.chunk)).to.deep.equal([...reactions].reverse().slice(0, 4));
    });
  });

  describe('visibility and bad input', () => {
    it('answers 404 for the relations of an event the user cannot see, and 403 for /threads', async () => {
      const target = await message(alice, 'members only');
      await react(bob, target, '🔒');
      const privateRoom = await createRoom(alice, { preset: 'private_chat' });
      const secret = await message(alice, 'secret', privateRoom);

      const outsider = await call(hs, carol, 'GET', relationsPath(secret, '', '', privateRoom));
      expect(outsider.status).to.equal(404);
      expect(outsider.body.errcode).to.equal('M_NOT_FOUND');
      const threadsRes = await call(
        hs,
        carol,
        'GET',
        `/_matrix/client/v1/rooms/${encodeURIComponent(privateRoom)}/threads`,
      );
      expect(threadsRes.status).to.equal(403);
      expect(threadsRes.body.errcode).to.equal('M_FORBIDDEN');
      // The parent named under another room is not found either.
      const wrongRoom = await call(hs, alice, 'GET', relationsPath(target, '', '', privateRoom));
      expect(wrongRoom.status).to.equal(404);
    });

    it('hides history from before a join in a room with history_visibility joined', async () => {
      const room = await createRoom(alice, {
        preset: 'public_chat',
        initial_state: [
          { type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } },
        ],
      });
      const early = await message(alice, 'before carol', room);
      await join(carol, room);
      const res = await call(hs, carol, 'GET', relationsPath(early, '', '', room));
      expect(res.status).to.equal(404);
      const late = await message(alice, 'after carol', room);
      const ok = await call(hs, carol, 'GET', relationsPath(late, '', '', room));
      expect(ok.status).to.equal(200);
    });

    it('never answers bad parameters with a 500', async () => {
      const target = await message(alice, 'robust');
      const cases: [string, number, string][] = [
        [relationsPath(target, '', 'limit=-1'), 400, 'M_INVALID_PARAM'],
        [relationsPath(target, '', 'limit=abc'), 400, 'M_INVALID_PARAM'],
        [relationsPath(target, '', 'dir=sideways'), 400, 'M_INVALID_PARAM'],
        [relationsPath(target, '', 'recurse=perhaps'), 400, 'M_INVALID_PARAM'],
        [relationsPath(target, '', 'from=not-a-token'), 400, 'M_INVALID_PARAM'],
        [relationsPath(target, '', 'to=%F0%9F%98%80'), 400, 'M_INVALID_PARAM'],
        [relationsPath('$nonexistent:localhost'), 404, 'M_NOT_FOUND'],
        [relationsPath('not-an-event-id'), 404, 'M_NOT_FOUND'],
        [relationsPath(target, '', '', 'not-a-room'), 400, 'M_INVALID_PARAM'],
        [
          `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/threads?include=some`,
          400,
          'M_INVALID_PARAM',
        ],
        [`/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/threads?limit=0`, 400, 'M_INVALID_PARAM'],
        [`/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/threads?from=zzz`, 400, 'M_INVALID_PARAM'],
      ];
      for (const [path, status, errcode] of cases) {
        const res = await call(hs, alice, 'GET', path);
        expect(res.status, `${path}: ${JSON.stringify(res.body)}`).to.equal(status);
        expect(res.body.errcode, path).to.equal(errcode);
      }
      const huge = await relations(alice, target, '', 'limit=100000');
      expect(huge.chunk).to.deep.equal([]);
      const unauthenticated = await call(hs, undefined, 'GET', relationsPath(target));
      expect(unauthenticated.status).to.equal(401);
    });

    it('refuses a relation to an unknown event or to an event of another room', async () => {
      const unknown = await trySend(alice, roomId, 'm.reaction', {
        'm.relates_to': { rel_type: 'm.annotation', event_id: '$missing:localhost', key: 'x' },
      });
      expect(unknown.status).to.equal(400);
      const otherRoom = await createRoom(alice, { preset: 'private_chat' });
      const elsewhere = await message(alice, 'elsewhere', otherRoom);
      const crossRoom = await trySend(alice, roomId, 'm.reaction', {
        'm.relates_to': { rel_type: 'm.annotation', event_id: elsewhere, key: 'x' },
      });
      expect(crossRoom.status).to.equal(400);
    });
  });
});
