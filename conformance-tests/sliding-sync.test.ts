/**
 * Simplified sliding sync (MSC4186), black box over HTTP as Element X speaks it
 * (`pos` and `timeout` in the query, `ranges`, [type, state_key] required_state):
 * a user in 300 rooms gets the newest 20 first with their requested state; a
 * message in an old room brings it to the top; subscriptions send the requested
 * state; to-device and e2ee extensions deliver what /sync would; invites and
 * leaves appear; no event is sent twice on one connection; an unknown `pos` is
 * refused with M_UNKNOWN_POS; a waiting request wakes at once for a new message.
 * Rooms are built through the room services directly (fast); syncs go over HTTP.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import type { HomeserverContext } from '../server/context.js';
import { createHomeserver } from '../server/homeserver.js';
import { call, createUser, fastAccounts, login, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const SLIDING = '/_matrix/client/unstable/org.matrix.simplified_msc3575/sync';
const ROOM_COUNT = 300;

type Room = {
  initial?: boolean;
  name?: string;
  bump_stamp?: number;
  membership?: string;
  required_state?: { type: string; state_key: string; event_id: string; content: Record<string, unknown> }[];
  timeline?: { type: string; event_id: string; sender: string; content: Record<string, unknown> }[];
  invite_state?: { type: string; state_key: string }[];
  limited?: boolean;
  num_live?: number;
  joined_count?: number;
  invited_count?: number;
  prev_batch?: string;
  heroes?: { user_id: string; displayname?: string }[];
  lists?: string[];
};
type SlidingResponse = {
  pos: string;
  lists: Record<string, { count: number }>;
  rooms: Record<string, Room>;
  extensions: Record<string, Record<string, unknown>>;
};

async function slidingSync(
  hs: TestHomeserver,
  user: TestUser,
  body: Record<string, unknown>,
  query: { pos?: string; timeout?: number } = {},
): Promise<SlidingResponse> {
  const params = new URLSearchParams();
  if (query.pos !== undefined) params.set('pos', query.pos);
  if (query.timeout !== undefined) params.set('timeout', String(query.timeout));
  const res = await call(hs, user, 'POST', `${SLIDING}?${params}`, body);
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return res.body as unknown as SlidingResponse;
}

const allRoomsList = (range: [number, number], timelineLimit = 1) => ({
  all_rooms: {
    ranges: [range],
    timeline_limit: timelineLimit,
    required_state: [
      ['m.room.name', ''],
      ['m.room.create', ''],
      ['m.room.member', '$LAZY'],
      ['m.room.member', '$ME'],
    ],
  },
});

describe('simplified sliding sync (MSC4186)', function () {
  this.timeout(120_000);
  let hs: TestHomeserver;
  let ctx: HomeserverContext;
  let alice: TestUser;
  let bob: TestUser;
  /** Oldest first: room i had its last message before room i + 1. */
  const rooms: string[] = [];

  const send = (roomId: string, sender: TestUser, body: string) =>
    ctx.rooms.sender.sendEvent({
      roomId,
      sender: sender.userId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body },
    });

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    ctx = hs.homeserver.context;
    alice = await createUser(hs, 'alice');
    bob = await createUser(hs, 'bob');
    for (let i = 0; i < ROOM_COUNT; i++) {
      const { roomId } = await ctx.rooms.createRoom(bob.userId, { preset: 'public_chat', name: `Room ${i}` });
      await ctx.rooms.membership.join(roomId, alice.userId);
      await send(roomId, bob, `hello ${i}`);
      rooms.push(roomId);
    }
  });

  after(async () => {
    await hs?.stop();
  });

  it('is advertised in /versions', async () => {
    const res = await call(hs, undefined, 'GET', '/_matrix/client/versions');
    expect((res.body.unstable_features as Record<string, boolean>)['org.matrix.simplified_msc3575']).to.equal(
      true,
    );
  });

  it('sends the newest 20 rooms first, newest first, with the requested state, then a bumped room on top', async () => {
    const first = await slidingSync(hs, alice, { conn_id: 'main', lists: allRoomsList([0, 19]) });
    expect(first.lists.all_rooms!.count).to.equal(ROOM_COUNT);
    const sent = Object.keys(first.rooms);
    expect(sent).to.have.length(20);
    const byRecency = Object.entries(first.rooms)
      .sort(([, a], [, b]) => b.bump_stamp! - a.bump_stamp!)
      .map(([roomId]) => roomId);
    expect(byRecency).to.deep.equal(rooms.slice(-20).reverse());
    const newest = first.rooms[rooms.at(-1)!]!;
    expect(newest.initial).to.equal(true);
    expect(newest.name).to.equal(`Room ${ROOM_COUNT - 1}`);
    expect(newest.membership).to.equal('join');
    expect(newest.joined_count).to.equal(2);
    expect(newest.timeline!.map((event) => event.content.body)).to.deep.equal([`hello ${ROOM_COUNT - 1}`]);
    expect(newest.limited).to.equal(true);
    expect(typeof newest.prev_batch).to.equal('string');
    const stateKeys = newest.required_state!.map((event) => `${event.type}|${event.state_key}`).sort();
    // m.room.name, m.room.create, $ME, and $LAZY: bob sent the timeline's message.
    expect(stateKeys).to.deep.equal([
      'm.room.create|',
      `m.room.member|${alice.userId}`,
      `m.room.member|${bob.userId}`,
      'm.room.name|',
    ]);

    // Nothing new: the next call waits, then answers with no rooms.
    const idle = await slidingSync(
      hs,
      alice,
      { conn_id: 'main', lists: allRoomsList([0, 19]) },
      { pos: first.pos, timeout: 50 },
    );
    expect(idle.rooms).to.deep.equal({});

    // A message in the oldest room moves it to the top.
    await send(rooms[0]!, bob, 'old room wakes up');
    const next = await slidingSync(
      hs,
      alice,
      { conn_id: 'main', lists: allRoomsList([0, 19]) },
      { pos: idle.pos, timeout: 0 },
    );
    expect(Object.keys(next.rooms)).to.deep.equal([rooms[0]]);
    const bumped = next.rooms[rooms[0]!]!;
    expect(bumped.initial).to.equal(true);
    expect(bumped.timeline!.map((event) => event.content.body)).to.deep.equal(['old room wakes up']);
    expect(bumped.bump_stamp).to.be.greaterThan(newest.bump_stamp!);
    expect(bumped.num_live).to.equal(1);

    // A list keeps the same order between calls: the first window is now rooms[0], then the newest 19.
    const fresh = await slidingSync(hs, alice, { conn_id: 'other', lists: allRoomsList([0, 19]) });
    const order = Object.entries(fresh.rooms)
      .sort(([, a], [, b]) => b.bump_stamp! - a.bump_stamp!)
      .map(([roomId]) => roomId);
    expect(order).to.deep.equal([rooms[0], ...rooms.slice(-19).reverse()]);
  });

  it('never sends the same event twice on one connection, and sends only what is new', async () => {
    const roomId = rooms[10]!;
    const body = { conn_id: 'dedup', lists: allRoomsList([0, 4], 5) };
    let response = await slidingSync(hs, alice, body);
    const seen = new Set<string>();
    const collect = (r: SlidingResponse) => {
      for (const room of Object.values(r.rooms))
        for (const event of room.timeline ?? []) {
          expect(seen.has(event.event_id), `sent twice: ${event.event_id}`).to.equal(false);
          seen.add(event.event_id);
        }
    };
    collect(response);
    for (let i = 0; i < 3; i++) {
      await send(roomId, bob, `dedup ${i}`);
      response = await slidingSync(hs, alice, body, { pos: response.pos, timeout: 1000 });
      collect(response);
      const room = response.rooms[roomId]!;
      expect(room.timeline!.map((event) => event.content.body)).to.include(`dedup ${i}`);
    }
    // The room stayed in the window: its later updates are not initial and carry only the new event.
    await send(roomId, bob, 'dedup last');
    response = await slidingSync(hs, alice, body, { pos: response.pos, timeout: 1000 });
    const room = response.rooms[roomId]!;
    expect(room.initial).to.equal(undefined);
    expect(room.timeline!.map((event) => event.content.body)).to.deep.equal(['dedup last']);
    expect(room.required_state).to.deep.equal([]);
    collect(response);

    // Retrying with the previous pos (the response was lost) sends it again; the newer pos still works.
    const before = response.pos;
    await send(roomId, bob, 'retry me');
    const lost = await slidingSync(hs, alice, body, { pos: before, timeout: 1000 });
    const retried = await slidingSync(hs, alice, body, { pos: before, timeout: 1000 });
    expect(retried.rooms[roomId]!.timeline!.map((event) => event.content.body)).to.deep.equal(['retry me']);
    expect(lost.rooms[roomId]!.timeline!.map((event) => event.content.body)).to.deep.equal(['retry me']);
    const after = await slidingSync(hs, alice, body, { pos: retried.pos, timeout: 0 });
    expect(after.rooms).to.deep.equal({});
  });

  it('reports the unread counts of push rules, and clears them with a read receipt', async () => {
    const roomId = rooms[20]!;
    const body = {
      conn_id: 'counts',
      room_subscriptions: { [roomId]: { timeline_limit: 1, required_state: [] } },
    };
    const counts = (r: SlidingResponse) => {
      const room = r.rooms[roomId] as Room & { notification_count?: number; highlight_count?: number };
      return [room.notification_count, room.highlight_count];
    };
    let response = await slidingSync(hs, alice, body);
    // "hello 20" from Bob, unread.
    expect(counts(response)).to.deep.equal([1, 0]);
    const mention = await ctx.rooms.sender.sendEvent({
      roomId,
      sender: bob.userId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'alice, look', 'm.mentions': { user_ids: [alice.userId] } },
    });
    response = await slidingSync(hs, alice, body, { pos: response.pos, timeout: 1000 });
    expect(counts(response)).to.deep.equal([2, 1]);
    const receipt = await call(
      hs,
      alice,
      'POST',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(mention.eventId)}`,
      {},
    );
    expect(receipt.status).to.equal(200);
    // The receipt alone does not resend the room (as in Synapse); its next appearance carries the cleared counts.
    response = await slidingSync(hs, alice, { ...body, conn_id: 'counts after receipt' });
    expect(counts(response)).to.deep.equal([0, 0]);
  });

  it('names an unnamed room by its heroes (never the user themself), and sends changed counts again', async () => {
    const dave = await createUser(hs, 'dave');
    const erin = await createUser(hs, 'erin');
    const named = await call(
      hs,
      dave,
      'PUT',
      `/_matrix/client/v3/profile/${encodeURIComponent(dave.userId)}/displayname`,
      { displayname: 'Dave' },
    );
    expect(named.status).to.equal(200);
    const { roomId } = await ctx.rooms.createRoom(dave.userId, { preset: 'private_chat' });
    await ctx.rooms.membership.invite(roomId, dave.userId, alice.userId);
    await ctx.rooms.membership.join(roomId, alice.userId);
    await ctx.rooms.membership.invite(roomId, dave.userId, erin.userId);
    const body = {
      conn_id: 'heroes',
      room_subscriptions: { [roomId]: { timeline_limit: 1, required_state: [] } },
    };
    let response = await slidingSync(hs, alice, body);
    let room = response.rooms[roomId]!;
    expect(room.name).to.equal(undefined);
    expect(room.heroes!.map((hero) => hero.user_id)).to.deep.equal([dave.userId, erin.userId]);
    expect(room.heroes![0]!.displayname).to.equal('Dave');
    expect([room.joined_count, room.invited_count]).to.deep.equal([2, 1]);
    const daves = await slidingSync(hs, dave, body);
    expect(daves.rooms[roomId]!.heroes!.map((hero) => hero.user_id)).to.deep.equal([
      alice.userId,
      erin.userId,
    ]);

    await ctx.rooms.membership.join(roomId, erin.userId);
    response = await slidingSync(hs, alice, body, { pos: response.pos, timeout: 1000 });
    room = response.rooms[roomId]!;
    expect([room.joined_count, room.invited_count]).to.deep.equal([2 + 1, 0]);

    // Nobody else joined or invited: the heroes are those who left, in the order they came.
    await ctx.rooms.membership.leave(roomId, dave.userId);
    await ctx.rooms.membership.leave(roomId, erin.userId);
    const fresh = await slidingSync(hs, alice, { ...body, conn_id: 'heroes-2' });
    expect(fresh.rooms[roomId]!.heroes!.map((hero) => hero.user_id)).to.deep.equal([
      dave.userId,
      erin.userId,
    ]);
    expect(fresh.rooms[roomId]!.joined_count).to.equal(1);
  });

  it('sends subscribed rooms with the full requested state, wherever they sit in the list', async () => {
    const roomId = rooms[5]!;
    await ctx.rooms.sender.sendEvent({
      roomId,
      sender: bob.userId,
      type: 'm.room.topic',
      stateKey: '',
      content: { topic: 'subscribed' },
    });
    const response = await slidingSync(hs, alice, {
      conn_id: 'subs',
      lists: allRoomsList([0, 0]),
      room_subscriptions: {
        [roomId]: { timeline_limit: 3, required_state: [['*', '*']] },
        '!unknown:nowhere': { timeline_limit: 3, required_state: [['*', '*']] },
      },
    });
    // The list's top room, and the subscription; the unknown room is ignored.
    expect(Object.keys(response.rooms)).to.have.length(2).and.include(roomId);
    const room = response.rooms[roomId]!;
    const current = await ctx.storage.state.currentState(roomId);
    const timelineIds = new Set(room.timeline!.map((event) => event.event_id));
    const sentIds = new Set([...room.required_state!.map((event) => event.event_id), ...timelineIds]);
    for (const eventId of current.values()) expect(sentIds.has(eventId), eventId).to.equal(true);
    expect(room.timeline).to.have.length(3);
    expect(room.initial).to.equal(true);
  });

  it('shows invites with their stripped state, and leaves and kicks', async () => {
    const carol = await createUser(hs, 'carol');
    const body = {
      conn_id: 'membership',
      lists: {
        invites: { ranges: [[0, 9]], timeline_limit: 1, required_state: [], filters: { is_invite: true } },
        ...allRoomsList([0, 9]),
      },
    };
    let response = await slidingSync(hs, alice, body);
    expect(response.lists.invites!.count).to.equal(0);

    const { roomId: invited } = await ctx.rooms.createRoom(carol.userId, {
      preset: 'private_chat',
      name: 'Secret',
    });
    await ctx.rooms.membership.invite(invited, carol.userId, alice.userId);
    response = await slidingSync(hs, alice, body, { pos: response.pos, timeout: 1000 });
    expect(response.lists.invites!.count).to.equal(1);
    const invite = response.rooms[invited]!;
    expect(invite.membership).to.equal('invite');
    expect(invite.invite_state!.map((event) => event.type)).to.include.members([
      'm.room.name',
      'm.room.member',
    ]);
    expect(invite.timeline).to.equal(undefined);

    // Joining makes it a room like the others: sent afresh.
    await ctx.rooms.membership.join(invited, alice.userId);
    response = await slidingSync(hs, alice, body, { pos: response.pos, timeout: 1000 });
    expect(response.lists.invites!.count).to.equal(0);
    expect(response.rooms[invited]!.membership).to.equal('join');
    expect(response.rooms[invited]!.initial).to.equal(true);

    // Leaving: the room (already sent) comes down once more with the leave.
    await ctx.rooms.membership.leave(invited, alice.userId);
    response = await slidingSync(hs, alice, body, { pos: response.pos, timeout: 1000 });
    const left = response.rooms[invited]!;
    expect(left.membership).to.equal('leave');
    expect(left.timeline!.at(-1)!.type).to.equal('m.room.member');
    expect(left.timeline!.at(-1)!.content.membership).to.equal('leave');

    // A kick shows even on a new connection; a self-leave does not.
    const { roomId: kickedFrom } = await ctx.rooms.createRoom(carol.userId, { preset: 'public_chat' });
    await ctx.rooms.membership.join(kickedFrom, alice.userId);
    await ctx.rooms.membership.kick(kickedFrom, carol.userId, alice.userId);
    const fresh = await slidingSync(hs, alice, { ...body, conn_id: 'membership-2' });
    expect(fresh.rooms[kickedFrom]?.membership).to.equal('leave');
    expect(fresh.rooms[invited]).to.equal(undefined);
  });

  it('delivers to-device messages and e2ee data as /sync does', async () => {
    const alicePhone = await createUser(hs, 'alice-phone-owner');
    const keys = await call(hs, alicePhone, 'POST', '/_matrix/client/v3/keys/upload', {
      one_time_keys: { 'signed_curve25519:AAAA': { key: 'a', signatures: {} }, 'curve25519:BBBB': 'b' },
      fallback_keys: { 'signed_curve25519:CCCC': { key: 'c', fallback: true, signatures: {} } },
    });
    expect(keys.status, JSON.stringify(keys.body)).to.equal(200);
    const body = (since?: string) => ({
      conn_id: 'e2ee',
      lists: allRoomsList([0, 0]),
      extensions: {
        to_device: { enabled: true, ...(since === undefined ? {} : { since }) },
        e2ee: { enabled: true },
      },
    });
    let response = await slidingSync(hs, alicePhone, body());
    const e2ee = response.extensions.e2ee!;
    expect(e2ee.device_one_time_keys_count).to.deep.equal({ signed_curve25519: 1, curve25519: 1 });
    expect(e2ee.device_unused_fallback_key_types).to.deep.equal(['signed_curve25519']);
    expect(response.extensions.to_device!.events).to.deep.equal([]);

    const sent = await call(hs, bob, 'PUT', '/_matrix/client/v3/sendToDevice/org.example.ping/t1', {
      messages: { [alicePhone.userId]: { [alicePhone.deviceId]: { n: 1 } } },
    });
    expect(sent.status).to.equal(200);
    let since = response.extensions.to_device!.next_batch as string;
    response = await slidingSync(hs, alicePhone, body(since), { pos: response.pos, timeout: 1000 });
    const events = response.extensions.to_device!.events as {
      sender: string;
      type: string;
      content: unknown;
    }[];
    expect(events).to.deep.equal([{ sender: bob.userId, type: 'org.example.ping', content: { n: 1 } }]);

    // Lost response: the same `since` hands the message out again, at once even to a long-poll
    // (the request is the same as the one answered, but it has news); the next `since` confirms it.
    const retriedAt = performance.now();
    const again = await slidingSync(hs, alicePhone, body(since), { pos: response.pos, timeout: 20_000 });
    expect(performance.now() - retriedAt).to.be.lessThan(10_000);
    expect(again.extensions.to_device!.events).to.have.length(1);
    since = again.extensions.to_device!.next_batch as string;
    response = await slidingSync(hs, alicePhone, body(since), { pos: again.pos, timeout: 0 });
    expect(response.extensions.to_device!.events).to.deep.equal([]);

    // Device list changes of users sharing a room, as /sync's device_lists.
    const { roomId } = await ctx.rooms.createRoom(bob.userId, { preset: 'public_chat' });
    await ctx.rooms.membership.join(roomId, alicePhone.userId);
    response = await slidingSync(hs, alicePhone, body(since), { pos: response.pos, timeout: 0 });
    // A new device of bob's changes his device list.
    await login(hs, bob.userId, bob.password);
    response = await slidingSync(hs, alicePhone, body(since), { pos: response.pos, timeout: 1000 });
    expect((response.extensions.e2ee!.device_lists as { changed: string[] }).changed).to.include(bob.userId);
  });

  it('sends account data, receipts and typing for the rooms the extensions name', async () => {
    const [top, second] = [rooms[ROOM_COUNT - 1]!, rooms[ROOM_COUNT - 2]!];
    await call(
      hs,
      alice,
      'PUT',
      `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/account_data/org.example.global`,
      { a: 1 },
    );
    const body = {
      conn_id: 'extensions',
      lists: { ...allRoomsList([0, 1]), top: { ...allRoomsList([0, 0]).all_rooms } },
      extensions: {
        account_data: { enabled: true },
        receipts: { enabled: true, lists: ['top'] },
        typing: { enabled: true, lists: ['top'] },
      },
    };
    // Keep the first two rooms on top: a message in each, newest last.
    await send(second, bob, 'second');
    const message = await send(top, bob, 'top');
    let response = await slidingSync(hs, alice, body);
    expect(Object.keys(response.rooms)).to.have.members([top, second]);
    const global = response.extensions.account_data!.global as { type: string; content: unknown }[];
    expect(global).to.deep.include({ type: 'org.example.global', content: { a: 1 } });

    await call(
      hs,
      alice,
      'PUT',
      `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(top)}/account_data/org.example.room`,
      { r: 2 },
    );
    await call(
      hs,
      bob,
      'POST',
      `/_matrix/client/v3/rooms/${encodeURIComponent(top)}/receipt/m.read/${encodeURIComponent(message.eventId)}`,
      {},
    );
    await call(
      hs,
      bob,
      'PUT',
      `/_matrix/client/v3/rooms/${encodeURIComponent(second)}/typing/${encodeURIComponent(bob.userId)}`,
      { typing: true, timeout: 30000 },
    );
    await call(
      hs,
      bob,
      'PUT',
      `/_matrix/client/v3/rooms/${encodeURIComponent(top)}/typing/${encodeURIComponent(bob.userId)}`,
      { typing: true, timeout: 30000 },
    );
    response = await slidingSync(hs, alice, body, { pos: response.pos, timeout: 1000 });
    const accountRooms = response.extensions.account_data!.rooms as Record<string, { type: string }[]>;
    expect(accountRooms[top]).to.deep.equal([{ type: 'org.example.room', content: { r: 2 } }]);
    expect(response.extensions.account_data!.global).to.deep.equal([]);
    const receipts = response.extensions.receipts!.rooms as Record<
      string,
      { type: string; content: Record<string, Record<string, Record<string, unknown>>> }
    >;
    expect(Object.keys(receipts)).to.deep.equal([top]);
    expect(receipts[top]!.type).to.equal('m.receipt');
    expect(Object.keys(receipts[top]!.content[message.eventId]!['m.read']!)).to.deep.equal([bob.userId]);
    // Typing in the second room is outside the `top` list the extension names.
    const typing = response.extensions.typing!.rooms as Record<string, { content: { user_ids: string[] } }>;
    expect(Object.keys(typing)).to.deep.equal([top]);
    expect(typing[top]!.content.user_ids).to.deep.equal([bob.userId]);
  });

  it('filters lists: DMs by m.direct, spaces by room type', async () => {
    const { roomId: dm } = await ctx.rooms.createRoom(bob.userId, {
      preset: 'trusted_private_chat',
      is_direct: true,
      invite: [alice.userId],
    });
    await ctx.rooms.membership.join(dm, alice.userId);
    await call(
      hs,
      alice,
      'PUT',
      `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/account_data/m.direct`,
      {
        [bob.userId]: [dm],
      },
    );
    const { roomId: space } = await ctx.rooms.createRoom(bob.userId, {
      preset: 'public_chat',
      creation_content: { type: 'm.space' },
    });
    await ctx.rooms.membership.join(space, alice.userId);
    const list = (filters: Record<string, unknown>) => ({
      ranges: [[0, 999]],
      timeline_limit: 0,
      required_state: [],
      filters,
    });
    const response = await slidingSync(hs, alice, {
      conn_id: 'filters',
      lists: {
        dms: list({ is_dm: true }),
        spaces: list({ room_types: ['m.space'] }),
        not_spaces: list({ not_room_types: ['m.space'] }),
      },
    });
    expect(response.lists.dms!.count).to.equal(1);
    expect(response.lists.spaces!.count).to.equal(1);
    expect(response.rooms[dm]!.lists).to.include('dms');
    expect(response.rooms[space]!.lists).to.deep.equal(['spaces']);
    const all = await slidingSync(hs, alice, { conn_id: 'filters-all', lists: { all: list({}) } });
    expect(response.lists.not_spaces!.count).to.equal(all.lists.all!.count - 1);
  });

  it('filters lists by space, tag and encryption', async () => {
    const { roomId: space } = await ctx.rooms.createRoom(alice.userId, {
      preset: 'public_chat',
      creation_content: { type: 'm.space' },
    });
    const [child, tagged, encrypted] = rooms.slice(20, 23) as [string, string, string];
    await ctx.rooms.sender.sendEvent({
      roomId: space,
      sender: alice.userId,
      type: 'm.space.child',
      stateKey: child,
      content: { via: ['test'] },
    });
    const tag = await call(
      hs,
      alice,
      'PUT',
      `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(tagged)}/tags/m.favourite`,
      {},
    );
    expect(tag.status).to.equal(200);
    await ctx.rooms.sender.sendEvent({
      roomId: encrypted,
      sender: bob.userId,
      type: 'm.room.encryption',
      stateKey: '',
      content: { algorithm: 'm.megolm.v1.aes-sha2' },
    });
    const list = (filters: Record<string, unknown>) => ({
      ranges: [[0, 999]],
      timeline_limit: 0,
      required_state: [],
      filters,
    });
    const response = await slidingSync(hs, alice, {
      conn_id: 'more-filters',
      lists: {
        in_space: list({ spaces: [space] }),
        favourites: list({ tags: ['m.favourite'] }),
        not_favourites: list({ not_tags: ['m.favourite'] }),
        encrypted: list({ is_encrypted: true }),
      },
    });
    expect(response.lists.in_space!.count).to.equal(1);
    expect(response.rooms[child]!.lists).to.include('in_space');
    expect(response.lists.favourites!.count).to.equal(1);
    expect(response.rooms[tagged]!.lists).to.include('favourites').and.not.include('not_favourites');
    expect(response.lists.encrypted!.count).to.equal(1);
    expect(response.rooms[encrypted]!.lists).to.include('encrypted');
  });

  it('expands the timeline when the timeline_limit grows, and says so', async () => {
    const roomId = rooms[30]!;
    for (let i = 0; i < 4; i++) await send(roomId, bob, `history ${i}`);
    const small = { [roomId]: { timeline_limit: 1, required_state: [] } };
    let response = await slidingSync(hs, alice, { conn_id: 'expand', room_subscriptions: small });
    expect(response.rooms[roomId]!.timeline!.map((event) => event.content.body)).to.deep.equal(['history 3']);
    const large = { [roomId]: { timeline_limit: 3, required_state: [] } };
    response = await slidingSync(
      hs,
      alice,
      { conn_id: 'expand', room_subscriptions: large },
      { pos: response.pos, timeout: 0 },
    );
    const room = response.rooms[roomId]! as Room & { expanded_timeline?: boolean };
    expect(room.expanded_timeline).to.equal(true);
    expect(room.initial).to.equal(undefined);
    expect(room.timeline!.map((event) => event.content.body)).to.deep.equal([
      'history 1',
      'history 2',
      'history 3',
    ]);
    // Once expanded, the same limit sends nothing more.
    response = await slidingSync(
      hs,
      alice,
      { conn_id: 'expand', room_subscriptions: large },
      { pos: response.pos, timeout: 0 },
    );
    expect(response.rooms).to.deep.equal({});
  });

  it('refuses an unknown or foreign pos with M_UNKNOWN_POS', async () => {
    const mine = await slidingSync(hs, alice, { conn_id: 'pos', lists: allRoomsList([0, 0]) });
    for (const [user, pos] of [
      [alice, 'nonsense'],
      [alice, `${mine.pos}9`],
      [bob, mine.pos],
    ] as const) {
      const res = await call(hs, user, 'POST', `${SLIDING}?pos=${encodeURIComponent(pos)}`, {
        conn_id: 'pos',
        lists: allRoomsList([0, 0]),
      });
      expect(res.status).to.equal(400);
      expect(res.body.errcode).to.equal('M_UNKNOWN_POS');
    }
    // Another conn_id of the same device is another connection.
    const res = await call(hs, alice, 'POST', `${SLIDING}?pos=${encodeURIComponent(mine.pos)}`, {
      conn_id: 'elsewhere',
      lists: allRoomsList([0, 0]),
    });
    expect(res.body.errcode).to.equal('M_UNKNOWN_POS');
  });

  it('wakes a waiting request as soon as a message arrives', async () => {
    const body = { conn_id: 'wake', lists: allRoomsList([0, 9]) };
    const first = await slidingSync(hs, alice, body);
    const waiting = slidingSync(hs, alice, body, { pos: first.pos, timeout: 30_000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const sentAt = performance.now();
    await send(rooms[3]!, bob, 'wake up');
    const woken = await waiting;
    const latency = performance.now() - sentAt;
    expect(woken.rooms[rooms[3]!]!.timeline!.map((event) => event.content.body)).to.deep.equal(['wake up']);
    expect(latency).to.be.lessThan(1000);
  });

  it('applies set_presence, on a new connection (after its answer) as on a long-poll', async () => {
    const carol = await createUser(hs, 'carol-presence');
    const presenceOf = async () =>
      (await call(hs, carol, 'GET', `/_matrix/client/v3/presence/${encodeURIComponent(carol.userId)}/status`))
        .body.presence;
    const body = { conn_id: 'presence', lists: allRoomsList([0, 0]) };
    const first = await call(hs, carol, 'POST', `${SLIDING}?set_presence=unavailable`, body);
    expect(first.status).to.equal(200);
    expect(await presenceOf()).to.equal('unavailable');
    const fresh = await call(hs, carol, 'POST', SLIDING, { ...body, conn_id: 'presence-online' });
    expect(fresh.status).to.equal(200);
    // An unavailable user stays so until they say otherwise (as /sync treats it).
    await call(hs, carol, 'PUT', `/_matrix/client/v3/presence/${encodeURIComponent(carol.userId)}/status`, {
      presence: 'online',
    });
    const pos = (fresh.body as { pos: string }).pos;
    const longPoll = await call(
      hs,
      carol,
      'POST',
      `${SLIDING}?pos=${pos}&timeout=0&set_presence=unavailable`,
      {
        ...body,
        conn_id: 'presence-online',
      },
    );
    expect(longPoll.status).to.equal(200);
    expect(await presenceOf()).to.equal('unavailable');
  });

  it('answers a long-poll at once when the request asks for more than the answer before it', async () => {
    const narrow = { conn_id: 'widen', lists: allRoomsList([0, 1]) };
    const first = await slidingSync(hs, alice, narrow);
    expect(Object.keys(first.rooms)).to.have.length(2);
    // Same request, nothing new: it waits out its timeout.
    const idle = await slidingSync(hs, alice, narrow, { pos: first.pos, timeout: 300 });
    expect(idle.rooms).to.deep.equal({});
    const askedAt = performance.now();
    const wider = await slidingSync(
      hs,
      alice,
      { conn_id: 'widen', lists: allRoomsList([0, 4]) },
      { pos: idle.pos, timeout: 20_000 },
    );
    expect(performance.now() - askedAt).to.be.lessThan(10_000);
    expect(Object.keys(wider.rooms)).to.have.length(3);
  });

  it('rejects malformed requests with M_INVALID_PARAM', async () => {
    const res = await call(hs, alice, 'POST', SLIDING, {
      lists: { bad: { ranges: [[5, 1]], timeline_limit: 1 } },
    });
    expect(res.status).to.equal(400);
    expect(res.body.errcode).to.equal('M_INVALID_PARAM');
  });
});

describe('simplified sliding sync across a restart', () => {
  it('refuses the old pos with M_UNKNOWN_POS; a new connection gets every room and the message sent meanwhile', async () => {
    const hs = await TestHomeserver.start({ configure: fastAccounts });
    try {
      const ctx = hs.homeserver.context;
      const alice = await createUser(hs, 'alice');
      const { roomId } = await ctx.rooms.createRoom(alice.userId, { preset: 'private_chat', name: 'Kept' });
      const body = {
        conn_id: 'main',
        lists: allRoomsList([0, 9]),
        extensions: { to_device: { enabled: true } },
      };
      const before = await slidingSync(hs, alice, body);
      expect(Object.keys(before.rooms)).to.deep.equal([roomId]);
      await hs.homeserver.stop();

      const again = await createHomeserver(hs.config, { logger: pino({ level: 'silent' }) });
      try {
        const { ports } = await again.start();
        await again.context.rooms.sender.sendEvent({
          roomId,
          sender: alice.userId,
          type: 'm.room.message',
          content: { msgtype: 'm.text', body: 'while you were away' },
        });
        const post = (query: string) =>
          fetch(`http://127.0.0.1:${ports[0]}${SLIDING}${query}`, {
            method: 'POST',
            headers: { Authorization: `Bearer ${alice.accessToken}`, 'Content-Type': 'application/json' },
            body: JSON.stringify(body),
          });
        const refused = await post(`?pos=${encodeURIComponent(before.pos)}&timeout=0`);
        expect(refused.status).to.equal(400);
        expect(((await refused.json()) as { errcode: string }).errcode).to.equal('M_UNKNOWN_POS');
        const restarted = (await (await post('')).json()) as SlidingResponse;
        const room = restarted.rooms[roomId]!;
        expect(room.initial).to.equal(true);
        expect(room.name).to.equal('Kept');
        expect(room.timeline!.map((event) => event.content.body)).to.deep.equal(['while you were away']);
      } finally {
        await again.stop();
      }
    } finally {
      await hs.stop();
    }
  });
});
