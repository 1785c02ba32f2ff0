/**
 * Typing, receipts (read, private, threaded, delivered), read markers, account
 * data and tags over real HTTP. Rooms are set up through the room services;
 * what other members see is read from the same services sync serves them from.
 */
import { expect } from 'chai';
import type { JsonObject } from '../protocol/events.js';
import type { HomeserverContext } from '../server/context.js';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const enc = encodeURIComponent;
const typingPath = (roomId: string, userId: string) =>
  `/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(userId)}`;
const receiptPath = (roomId: string, type: string, eventId: string) =>
  `/_matrix/client/v3/rooms/${enc(roomId)}/receipt/${enc(type)}/${enc(eventId)}`;
const readMarkersPath = (roomId: string) => `/_matrix/client/v3/rooms/${enc(roomId)}/read_markers`;
const globalDataPath = (userId: string, type: string) =>
  `/_matrix/client/v3/user/${enc(userId)}/account_data/${enc(type)}`;
const roomDataPath = (userId: string, roomId: string, type: string) =>
  `/_matrix/client/v3/user/${enc(userId)}/rooms/${enc(roomId)}/account_data/${enc(type)}`;
const tagsPath = (userId: string, roomId: string, tag?: string) =>
  `/_matrix/client/v3/user/${enc(userId)}/rooms/${enc(roomId)}/tags${tag === undefined ? '' : `/${enc(tag)}`}`;

interface SyncEvent {
  readonly type: string;
  readonly content: Record<string, unknown>;
}
interface SyncBody {
  readonly next_batch: string;
  readonly account_data?: { events: SyncEvent[] };
  readonly rooms?: {
    join?: Record<string, { ephemeral?: { events: SyncEvent[] }; account_data?: { events: SyncEvent[] } }>;
  };
}

function roomEphemeral(body: SyncBody, roomId: string, type: string): SyncEvent | undefined {
  return body.rooms?.join?.[roomId]?.ephemeral?.events.find((event) => event.type === type);
}

/** m.receipt content: event ID -> receipt type -> user ID -> receipt. */
type ReceiptContent = Record<string, Record<string, Record<string, { ts: number; thread_id?: string }>>>;

function receiptIn(content: ReceiptContent, eventId: string, type: string, userId: string) {
  return content[eventId]?.[type]?.[userId];
}

describe('Ephemeral and per-user data (typing, receipts, read markers, account data, tags)', () => {
  let hs: TestHomeserver;
  let context: HomeserverContext;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let roomId: string;
  let otherRoomId: string;

  async function send(
    sender: TestUser,
    body: string,
    room = roomId,
    extra: JsonObject = {},
  ): Promise<string> {
    const sent = await context.rooms.sender.sendEvent({
      roomId: room,
      sender: sender.userId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body, ...extra },
    });
    return sent.eventId;
  }

  /** The m.receipt content `viewer` gets for the room in an initial sync. */
  async function receiptsSeenBy(viewer: TestUser, room = roomId): Promise<ReceiptContent> {
    const upTo = await context.receipts.position();
    const contents = await context.receipts.receiptContentForRooms(viewer.userId, [room], null, upTo);
    return (contents.get(room) ?? {}) as ReceiptContent;
  }

  /** Whether `work` wakes a sync of `user` waiting on the rooms. */
  async function wakes(user: TestUser, roomIds: string[], work: () => Promise<unknown>): Promise<boolean> {
    const sinceMark = context.notifier.mark();
    await work();
    const outcome = await context.notifier.waitForChange({
      userId: user.userId,
      roomIds,
      sinceMark,
      timeoutMs: 200,
    });
    return outcome === 'changed';
  }

  /** One /sync of `user` (long-polling up to `timeout` ms after `since`). */
  async function sync(user: TestUser, since?: string, timeout = 0): Promise<SyncBody> {
    const query = new URLSearchParams({ timeout: String(timeout) });
    if (since !== undefined) query.set('since', since);
    const res = await call(hs, user, 'GET', `/_matrix/client/v3/sync?${query}`);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body as unknown as SyncBody;
  }

  /** Syncs `user` from `since` until `found` returns something (or gives up after a few long-polls). */
  async function syncUntil<T>(
    user: TestUser,
    since: string,
    found: (body: SyncBody) => T | undefined,
  ): Promise<{ value: T; nextBatch: string }> {
    let token = since;
    for (let attempt = 0; attempt < 5; attempt++) {
      const body = await sync(user, token, 2_000);
      const value = found(body);
      if (value !== undefined) return { value, nextBatch: body.next_batch };
      token = body.next_batch;
    }
    throw new Error('The sync never showed what was expected');
  }

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    context = hs.homeserver.context;
    [alice, bob, carol] = await Promise.all([
      createUser(hs, 'eph-alice'),
      createUser(hs, 'eph-bob'),
      createUser(hs, 'eph-carol'),
    ]);
    roomId = (await context.rooms.createRoom(alice.userId, { preset: 'public_chat' })).roomId;
    await context.rooms.membership.join(roomId, bob.userId);
    otherRoomId = (await context.rooms.createRoom(carol.userId, { preset: 'public_chat' })).roomId;
  });
  after(() => hs.stop());

  describe('typing', () => {
    it('shows a member typing to the room and stops when told', async () => {
      const before = context.typing.position();
      const woke = await wakes(alice, [roomId], () =>
        call(hs, bob, 'PUT', typingPath(roomId, bob.userId), { typing: true, timeout: 30_000 }),
      );
      expect(woke).to.equal(true);
      expect(context.typing.typingContent(roomId)).to.deep.equal({ user_ids: [bob.userId] });
      expect(context.typing.changedRoomsSince(before).has(roomId)).to.equal(true);

      const stopped = await call(hs, bob, 'PUT', typingPath(roomId, bob.userId), { typing: false });
      expect(stopped).to.deep.equal({ status: 200, body: {} });
      expect(context.typing.typingUsers(roomId)).to.deep.equal([]);
    });

    it('ends typing by itself after the timeout', async () => {
      const res = await call(hs, alice, 'PUT', typingPath(roomId, alice.userId), {
        typing: true,
        timeout: 100,
      });
      expect(res.status).to.equal(200);
      const started = context.typing.position();
      expect(context.typing.typingUsers(roomId)).to.deep.equal([alice.userId]);
      await sleep(800);
      expect(context.typing.typingUsers(roomId)).to.deep.equal([]);
      // The sweep recorded the expiry as a change, so incremental syncs hear of it.
      expect(context.typing.position()).to.be.greaterThan(started);
      expect(context.typing.changedRoomsSince(started).has(roomId)).to.equal(true);
    });

    it('refuses typing for someone else or in a room one is not joined to', async () => {
      const forOther = await call(hs, alice, 'PUT', typingPath(roomId, bob.userId), { typing: true });
      expect(forOther.status).to.equal(403);
      expect(forOther.body.errcode).to.equal('M_FORBIDDEN');
      const notMember = await call(hs, carol, 'PUT', typingPath(roomId, carol.userId), { typing: true });
      expect(notMember.status).to.equal(403);
      expect(notMember.body.errcode).to.equal('M_FORBIDDEN');
      expect(context.typing.typingUsers(roomId)).to.not.include(carol.userId);
    });

    it('answers bad input with 400, never 500', async () => {
      const path = typingPath(roomId, bob.userId);
      const cases: [unknown, string][] = [
        [{}, 'M_MISSING_PARAM'],
        [{ typing: 'yes' }, 'M_BAD_JSON'],
        [{ typing: true, timeout: -5 }, 'M_BAD_JSON'],
        [{ typing: true, timeout: 'soon' }, 'M_BAD_JSON'],
        ['[1,2]', 'M_BAD_JSON'],
      ];
      for (const [body, errcode] of cases) {
        const res = await call(hs, bob, 'PUT', path, body);
        expect(res.status, JSON.stringify(body)).to.equal(400);
        expect(res.body.errcode, JSON.stringify(body)).to.equal(errcode);
      }
      const badRoom = await call(hs, bob, 'PUT', typingPath('not-a-room', bob.userId), { typing: true });
      expect(badRoom.status).to.equal(400);
      const noToken = await call(hs, undefined, 'PUT', path, { typing: true });
      expect(noToken.status).to.equal(401);
    });
  });

  describe('receipts', () => {
    it('shows an m.read receipt to the other members', async () => {
      const message = await send(alice, 'read me');
      const woke = await wakes(alice, [roomId], () =>
        call(hs, bob, 'POST', receiptPath(roomId, 'm.read', message), {}),
      );
      expect(woke).to.equal(true);
      const seen = await receiptsSeenBy(alice);
      const receipt = receiptIn(seen, message, 'm.read', bob.userId);
      expect(receipt?.ts).to.be.a('number');
      expect(receipt).to.not.have.property('thread_id');
    });

    it('accepts a receipt with no body at all', async () => {
      const message = await send(alice, 'no body');
      const res = await hs.fetch(receiptPath(roomId, 'm.read', message), {
        method: 'POST',
        headers: { Authorization: `Bearer ${bob.accessToken}` },
      });
      expect(res.status).to.equal(200);
      expect(receiptIn(await receiptsSeenBy(alice), message, 'm.read', bob.userId)).to.not.equal(undefined);
    });

    it('keeps m.read.private from everyone but its owner', async () => {
      const message = await send(alice, 'private read');
      const res = await call(hs, bob, 'POST', receiptPath(roomId, 'm.read.private', message), {});
      expect(res.status).to.equal(200);
      expect(receiptIn(await receiptsSeenBy(bob), message, 'm.read.private', bob.userId)).to.not.equal(
        undefined,
      );
      const seenByAlice = await receiptsSeenBy(alice);
      expect(JSON.stringify(seenByAlice)).to.not.include('m.read.private');
    });

    it('never moves a receipt backwards', async () => {
      const older = await send(alice, 'older');
      const newer = await send(alice, 'newer');
      expect((await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', newer), {})).status).to.equal(200);
      const back = await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', older), {});
      expect(back.status).to.equal(200);
      const stored = await context.storage.receipts.getReceipt(roomId, 'm.read', bob.userId, null);
      expect(stored?.eventId).to.equal(newer);
      const seen = await receiptsSeenBy(alice);
      expect(receiptIn(seen, older, 'm.read', bob.userId)).to.equal(undefined);
      expect(receiptIn(seen, newer, 'm.read', bob.userId)).to.not.equal(undefined);
    });

    it('keeps threaded receipts apart from the unthreaded one', async () => {
      const root = await send(alice, 'thread root');
      const reply = await send(alice, 'in the thread', roomId, {
        'm.relates_to': { rel_type: 'm.thread', event_id: root },
      });
      const main = await send(alice, 'main timeline');
      const inThread = await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', reply), { thread_id: root });
      expect(inThread.status).to.equal(200);
      const onMain = await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', main), { thread_id: 'main' });
      expect(onMain.status).to.equal(200);
      const seen = await receiptsSeenBy(alice);
      expect(receiptIn(seen, reply, 'm.read', bob.userId)?.thread_id).to.equal(root);
      expect(receiptIn(seen, main, 'm.read', bob.userId)?.thread_id).to.equal('main');
      // A threaded receipt on a later event leaves the unthreaded one where it was.
      const unthreaded = await context.storage.receipts.getReceipt(roomId, 'm.read', bob.userId, null);
      expect(unthreaded?.eventId).to.not.equal(main);

      const wrongThread = await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', reply), {
        thread_id: 'main',
      });
      expect(wrongThread.status).to.equal(400);
      expect(wrongThread.body.errcode).to.equal('M_INVALID_PARAM');
      for (const threadId of ['', 42, 'not-an-event']) {
        const bad = await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', main), { thread_id: threadId });
        expect(bad.status, String(threadId)).to.equal(400);
      }
      const fullyReadThreaded = await call(hs, bob, 'POST', receiptPath(roomId, 'm.fully_read', main), {
        thread_id: 'main',
      });
      expect(fullyReadThreaded.status).to.equal(400);
    });

    it('refuses receipts for unknown, foreign or malformed events and from non-members', async () => {
      const message = await send(alice, 'target');
      const unknown = await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', '$nope:localhost'), {});
      expect(unknown.status).to.equal(404);
      expect(unknown.body.errcode).to.equal('M_NOT_FOUND');
      const foreign = await send(carol, 'elsewhere', otherRoomId);
      const wrongRoom = await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', foreign), {});
      expect(wrongRoom.status).to.equal(404);
      const notMember = await call(hs, carol, 'POST', receiptPath(roomId, 'm.read', message), {});
      expect(notMember.status).to.equal(403);
      expect(notMember.body.errcode).to.equal('M_FORBIDDEN');
      const badType = await call(hs, bob, 'POST', receiptPath(roomId, 'm.nonsense', message), {});
      expect(badType.status).to.equal(400);
      const badEventId = await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', 'no-sigil'), {});
      expect(badEventId.status).to.equal(400);
      const badRoom = await call(hs, bob, 'POST', receiptPath('!', 'm.read', message), {});
      expect(badRoom.status).to.equal(400);
      const badBody = await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', message), '"text"');
      expect(badBody.status).to.equal(400);
    });

    it('refuses a receipt for an event the user may not see', async () => {
      const { roomId: privateHistory } = await context.rooms.createRoom(alice.userId, {
        preset: 'public_chat',
        initial_state: [
          { type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } },
        ],
      });
      const beforeJoin = await send(alice, 'before bob joined', privateHistory);
      await context.rooms.membership.join(privateHistory, bob.userId);
      const afterJoin = await send(alice, 'after bob joined', privateHistory);
      const hidden = await call(hs, bob, 'POST', receiptPath(privateHistory, 'm.read', beforeJoin), {});
      expect(hidden.status).to.equal(404);
      const visible = await call(hs, bob, 'POST', receiptPath(privateHistory, 'm.read', afterJoin), {});
      expect(visible.status).to.equal(200);
    });

    it('lets a sender see its message delivered, then read', async () => {
      const message = await send(alice, 'did you get this?');
      expect((await receiptsSeenBy(alice))[message]).to.equal(undefined);

      // Sync hands the message to one of bob's devices.
      const woke = await wakes(alice, [roomId], () =>
        context.receipts.markDelivered(bob.userId, roomId, message),
      );
      expect(woke).to.equal(true);
      const delivered = await receiptsSeenBy(alice);
      expect(receiptIn(delivered, message, 'io.myelin.delivered', bob.userId)?.ts).to.be.a('number');
      expect(delivered[message]?.['m.read']).to.equal(undefined);

      const read = await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', message), {});
      expect(read.status).to.equal(200);
      const seen = await receiptsSeenBy(alice);
      expect(receiptIn(seen, message, 'io.myelin.delivered', bob.userId)).to.not.equal(undefined);
      expect(receiptIn(seen, message, 'm.read', bob.userId)).to.not.equal(undefined);
    });

    it('records delivery only forward and skips repeated marks', async () => {
      const first = await send(alice, 'first');
      const second = await send(alice, 'second');
      await context.receipts.markDelivered(bob.userId, roomId, second);
      const position = await context.receipts.position();
      await context.receipts.markDelivered(bob.userId, roomId, second);
      await context.receipts.markDelivered(bob.userId, roomId, first);
      expect(await context.receipts.position()).to.equal(position);
      const stored = await context.storage.receipts.getReceipt(
        roomId,
        'io.myelin.delivered',
        bob.userId,
        null,
      );
      expect(stored?.eventId).to.equal(second);
    });

    it('sends only what changed to an incremental sync', async () => {
      const message = await send(alice, 'incremental');
      const since = await context.receipts.position();
      await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', message), {});
      const upTo = await context.receipts.position();
      const contents = await context.receipts.receiptContentForRooms(alice.userId, [roomId], since, upTo);
      const changed = contents.get(roomId) as ReceiptContent;
      const ts = receiptIn(changed, message, 'm.read', bob.userId)?.ts;
      expect(ts).to.be.a('number');
      expect(changed).to.deep.equal({ [message]: { 'm.read': { [bob.userId]: { ts } } } });
      const nothingNew = await context.receipts.receiptContentForRooms(alice.userId, [roomId], upTo, upTo);
      expect(nothingNew.size).to.equal(0);
    });
  });

  describe('read markers', () => {
    it('sets the fully read marker and the receipts in one call', async () => {
      const earlier = await send(alice, 'earlier');
      const later = await send(alice, 'later');
      const woke = await wakes(bob, [], () =>
        call(hs, bob, 'POST', readMarkersPath(roomId), {
          'm.fully_read': later,
          'm.read': later,
          'm.read.private': later,
        }),
      );
      expect(woke).to.equal(true);
      const marker = await call(hs, bob, 'GET', roomDataPath(bob.userId, roomId, 'm.fully_read'));
      expect(marker).to.deep.equal({ status: 200, body: { event_id: later } });
      const seen = await receiptsSeenBy(alice);
      expect(receiptIn(seen, later, 'm.read', bob.userId)).to.not.equal(undefined);
      expect(JSON.stringify(seen)).to.not.include('m.fully_read');

      // Backwards: accepted, not moved.
      const back = await call(hs, bob, 'POST', readMarkersPath(roomId), { 'm.fully_read': earlier });
      expect(back.status).to.equal(200);
      const still = await call(hs, bob, 'GET', roomDataPath(bob.userId, roomId, 'm.fully_read'));
      expect(still.body).to.deep.equal({ event_id: later });
    });

    it('sets the fully read marker through /receipt/m.fully_read', async () => {
      const message = await send(alice, 'fully read via receipt');
      const res = await call(hs, bob, 'POST', receiptPath(roomId, 'm.fully_read', message), {});
      expect(res.status).to.equal(200);
      const marker = await call(hs, bob, 'GET', roomDataPath(bob.userId, roomId, 'm.fully_read'));
      expect(marker.body).to.deep.equal({ event_id: message });
    });

    it('moves nothing when one of the events is bad', async () => {
      const message = await send(alice, 'atomic');
      const before = await call(hs, bob, 'GET', roomDataPath(bob.userId, roomId, 'm.fully_read'));
      const res = await call(hs, bob, 'POST', readMarkersPath(roomId), {
        'm.fully_read': message,
        'm.read': '$missing:localhost',
      });
      expect(res.status).to.equal(404);
      const after = await call(hs, bob, 'GET', roomDataPath(bob.userId, roomId, 'm.fully_read'));
      expect(after.body).to.deep.equal(before.body);
      const wrongType = await call(hs, bob, 'POST', readMarkersPath(roomId), { 'm.fully_read': 7 });
      expect(wrongType.status).to.equal(400);
      const notMember = await call(hs, carol, 'POST', readMarkersPath(roomId), { 'm.fully_read': message });
      expect(notMember.status).to.equal(403);
    });
  });

  describe('account data', () => {
    it('round-trips global and room account data, each in its own scope', async () => {
      const content = { theme: 'dark', emoji: '👩🏽‍💻', nested: { list: [1, 2, 3] } };
      const woke = await wakes(alice, [], () =>
        call(hs, alice, 'PUT', globalDataPath(alice.userId, 'org.example.settings'), content),
      );
      expect(woke).to.equal(true);
      const global = await call(hs, alice, 'GET', globalDataPath(alice.userId, 'org.example.settings'));
      expect(global).to.deep.equal({ status: 200, body: content });

      const roomContent = { pinned: true };
      const put = await call(
        hs,
        alice,
        'PUT',
        roomDataPath(alice.userId, roomId, 'org.example.room'),
        roomContent,
      );
      expect(put).to.deep.equal({ status: 200, body: {} });
      const got = await call(hs, alice, 'GET', roomDataPath(alice.userId, roomId, 'org.example.room'));
      expect(got.body).to.deep.equal(roomContent);

      // No inheritance between the scopes.
      const notInRoom = await call(
        hs,
        alice,
        'GET',
        roomDataPath(alice.userId, roomId, 'org.example.settings'),
      );
      expect(notInRoom.status).to.equal(404);
      expect(notInRoom.body.errcode).to.equal('M_NOT_FOUND');
      const notGlobal = await call(hs, alice, 'GET', globalDataPath(alice.userId, 'org.example.room'));
      expect(notGlobal.status).to.equal(404);

      const replaced = await call(hs, alice, 'PUT', globalDataPath(alice.userId, 'org.example.settings'), {
        theme: 'light',
      });
      expect(replaced.status).to.equal(200);
      const after = await call(hs, alice, 'GET', globalDataPath(alice.userId, 'org.example.settings'));
      expect(after.body).to.deep.equal({ theme: 'light' });
    });

    it("refuses someone else's account data", async () => {
      for (const [method, path] of [
        ['GET', globalDataPath(alice.userId, 'org.example.settings')],
        ['PUT', globalDataPath(alice.userId, 'org.example.settings')],
        ['GET', roomDataPath(alice.userId, roomId, 'org.example.room')],
        ['PUT', roomDataPath(alice.userId, roomId, 'org.example.room')],
      ] as const) {
        const res = await call(hs, bob, method, path, method === 'PUT' ? { hacked: true } : undefined);
        expect(res.status, `${method} ${path}`).to.equal(403);
        expect(res.body.errcode).to.equal('M_FORBIDDEN');
      }
      const untouched = await call(hs, alice, 'GET', globalDataPath(alice.userId, 'org.example.settings'));
      expect(untouched.body).to.not.have.property('hacked');
    });

    it('refuses the types the server manages, with 405 M_BAD_JSON', async () => {
      for (const path of [
        globalDataPath(alice.userId, 'm.fully_read'),
        globalDataPath(alice.userId, 'm.push_rules'),
        roomDataPath(alice.userId, roomId, 'm.fully_read'),
        roomDataPath(alice.userId, roomId, 'm.push_rules'),
      ]) {
        const res = await call(hs, alice, 'PUT', path, { event_id: '$x:localhost' });
        expect(res.status, path).to.equal(405);
        expect(res.body.errcode).to.equal('M_BAD_JSON');
      }
    });

    it('answers bad input with 400, never 500', async () => {
      const notObject = await call(hs, alice, 'PUT', globalDataPath(alice.userId, 'org.example.x'), '[1]');
      expect(notObject.status).to.equal(400);
      const notJson = await call(hs, alice, 'PUT', globalDataPath(alice.userId, 'org.example.x'), '{oops');
      expect(notJson.status).to.equal(400);
      expect(notJson.body.errcode).to.equal('M_NOT_JSON');
      const badRoom = await call(hs, alice, 'PUT', roomDataPath(alice.userId, 'nope', 'org.example.x'), {});
      expect(badRoom.status).to.equal(400);
      expect(badRoom.body.errcode).to.equal('M_INVALID_PARAM');
      const badRoomGet = await call(hs, alice, 'GET', roomDataPath(alice.userId, 'nope', 'org.example.x'));
      expect(badRoomGet.status).to.equal(400);
    });
  });

  describe('tags', () => {
    it('adds, lists, replaces and removes tags, kept as m.tag room account data', async () => {
      expect(await call(hs, bob, 'GET', tagsPath(bob.userId, roomId))).to.deep.equal({
        status: 200,
        body: { tags: {} },
      });
      const woke = await wakes(bob, [], () =>
        call(hs, bob, 'PUT', tagsPath(bob.userId, roomId, 'm.favourite'), { order: 0.25 }),
      );
      expect(woke).to.equal(true);
      // Two tags added at once are both kept.
      const [work, later] = await Promise.all([
        call(hs, bob, 'PUT', tagsPath(bob.userId, roomId, 'u.work'), {}),
        call(hs, bob, 'PUT', tagsPath(bob.userId, roomId, 'u.later 🕒'), { order: 1 }),
      ]);
      expect([work.status, later.status]).to.deep.equal([200, 200]);
      const listed = await call(hs, bob, 'GET', tagsPath(bob.userId, roomId));
      expect(listed.body).to.deep.equal({
        tags: { 'm.favourite': { order: 0.25 }, 'u.work': {}, 'u.later 🕒': { order: 1 } },
      });
      const asAccountData = await call(hs, bob, 'GET', roomDataPath(bob.userId, roomId, 'm.tag'));
      expect(asAccountData.body).to.deep.equal(listed.body);

      await call(hs, bob, 'PUT', tagsPath(bob.userId, roomId, 'm.favourite'), { order: 0.5 });
      expect((await call(hs, bob, 'DELETE', tagsPath(bob.userId, roomId, 'u.work'))).status).to.equal(200);
      expect((await call(hs, bob, 'DELETE', tagsPath(bob.userId, roomId, 'u.absent'))).status).to.equal(200);
      const after = await call(hs, bob, 'GET', tagsPath(bob.userId, roomId));
      expect(after.body).to.deep.equal({
        tags: { 'm.favourite': { order: 0.5 }, 'u.later 🕒': { order: 1 } },
      });
    });

    it("refuses someone else's tags and bad input", async () => {
      expect((await call(hs, alice, 'GET', tagsPath(bob.userId, roomId))).status).to.equal(403);
      expect((await call(hs, alice, 'PUT', tagsPath(bob.userId, roomId, 'u.x'), {})).status).to.equal(403);
      expect((await call(hs, alice, 'DELETE', tagsPath(bob.userId, roomId, 'm.favourite'))).status).to.equal(
        403,
      );
      const outOfRange = await call(hs, bob, 'PUT', tagsPath(bob.userId, roomId, 'u.x'), { order: 2 });
      expect(outOfRange.status).to.equal(400);
      const notNumber = await call(hs, bob, 'PUT', tagsPath(bob.userId, roomId, 'u.x'), { order: 'first' });
      expect(notNumber.status).to.equal(400);
      const longName = await call(hs, bob, 'PUT', tagsPath(bob.userId, roomId, `u.${'é'.repeat(127)}`), {});
      expect(longName.status).to.equal(400);
      const badRoom = await call(hs, bob, 'GET', tagsPath(bob.userId, 'nope'));
      expect(badRoom.status).to.equal(400);
      const tags = await call(hs, bob, 'GET', tagsPath(bob.userId, roomId));
      expect(tags.body.tags).to.not.have.property('u.x');
    });
  });

  describe('through /sync', () => {
    it('shows typing to another member, and its end', async () => {
      const { next_batch: since } = await sync(alice);
      await call(hs, bob, 'PUT', typingPath(roomId, bob.userId), { typing: true, timeout: 30_000 });
      const started = await syncUntil(alice, since, (body) => roomEphemeral(body, roomId, 'm.typing'));
      expect(started.value.content).to.deep.equal({ user_ids: [bob.userId] });
      await call(hs, bob, 'PUT', typingPath(roomId, bob.userId), { typing: false });
      const stopped = await syncUntil(alice, started.nextBatch, (body) =>
        roomEphemeral(body, roomId, 'm.typing'),
      );
      expect(stopped.value.content).to.deep.equal({ user_ids: [] });
    });

    it('lets a sender see its message delivered when the recipient syncs, then read', async () => {
      const { next_batch: aliceSince } = await sync(alice);
      const { next_batch: bobSince } = await sync(bob);
      const message = await send(alice, 'are you there?');
      const bobSync = await sync(bob, bobSince, 2_000);
      expect(JSON.stringify(bobSync.rooms?.join?.[roomId])).to.include(message);

      const delivered = await syncUntil(alice, aliceSince, (body) => {
        const content = roomEphemeral(body, roomId, 'm.receipt')?.content as ReceiptContent | undefined;
        return content && receiptIn(content, message, 'io.myelin.delivered', bob.userId);
      });
      expect(delivered.value.ts).to.be.a('number');

      await call(hs, bob, 'POST', receiptPath(roomId, 'm.read', message), {});
      const read = await syncUntil(alice, delivered.nextBatch, (body) => {
        const content = roomEphemeral(body, roomId, 'm.receipt')?.content as ReceiptContent | undefined;
        return content && receiptIn(content, message, 'm.read', bob.userId);
      });
      expect(read.value.ts).to.be.a('number');
    });

    it('carries account data, tags and the fully read marker to the user only', async () => {
      const { next_batch: since } = await sync(bob);
      const marker = await send(alice, 'marker');
      await call(hs, bob, 'PUT', globalDataPath(bob.userId, 'org.example.sync'), { n: 1 });
      await call(hs, bob, 'PUT', tagsPath(bob.userId, roomId, 'u.synced'), { order: 0.5 });
      await call(hs, bob, 'POST', readMarkersPath(roomId), { 'm.fully_read': marker });
      const seen = new Map<string, SyncEvent>();
      await syncUntil(bob, since, (body) => {
        for (const event of body.account_data?.events ?? []) seen.set(`global ${event.type}`, event);
        for (const event of body.rooms?.join?.[roomId]?.account_data?.events ?? [])
          seen.set(event.type, event);
        return seen.has('global org.example.sync') && seen.has('m.tag') && seen.has('m.fully_read')
          ? true
          : undefined;
      });
      expect(seen.get('global org.example.sync')?.content).to.deep.equal({ n: 1 });
      expect(seen.get('m.tag')?.content.tags).to.have.deep.property('u.synced', { order: 0.5 });
      expect(seen.get('m.fully_read')?.content).to.deep.equal({ event_id: marker });

      const aliceView = await sync(alice);
      expect(JSON.stringify(aliceView.account_data ?? {})).to.not.include('org.example.sync');
      expect(JSON.stringify(aliceView.rooms?.join?.[roomId]?.account_data ?? {})).to.not.include('u.synced');
    });
  });
});
