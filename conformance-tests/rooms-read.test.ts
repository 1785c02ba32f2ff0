/**
 * Room reads over real HTTP (client-server "Getting events for a room", "Room
 * History Visibility", "Room summaries"): /event, /state, /members,
 * /joined_members, /joined_rooms, /messages, /context, /timestamp_to_event,
 * /room_summary. Rooms, memberships and messages are set up through the room
 * services (the same send path the HTTP send routes use).
 */
import { expect } from 'chai';
import type { JsonObject } from '../protocol/events.js';
import type { HomeserverContext } from '../server/context.js';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const enc = encodeURIComponent;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const room = (roomId: string, rest: string) => `/_matrix/client/v3/rooms/${enc(roomId)}${rest}`;

interface ClientEvent {
  event_id: string;
  type: string;
  sender: string;
  state_key?: string;
  content: {
    body?: string;
    membership?: string;
    displayname?: string;
    history_visibility?: string;
    topic?: string;
  };
  origin_server_ts: number;
  room_id: string;
  unsigned?: { transaction_id?: string; age?: number; prev_content?: { topic?: string } };
}

interface ContextBody {
  start: string;
  end: string;
  event: ClientEvent;
  events_before: ClientEvent[];
  events_after: ClientEvent[];
  state: ClientEvent[];
}

interface MessagesBody {
  start: string;
  end?: string;
  chunk: ClientEvent[];
  state?: ClientEvent[];
}

describe('Room reads (event, state, members, messages, context, timestamp, summary)', function () {
  this.timeout(60_000);
  let hs: TestHomeserver;
  let context: HomeserverContext;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let dave: TestUser;

  async function createRoom(creator: TestUser, extra: JsonObject = {}): Promise<string> {
    return (await context.rooms.createRoom(creator.userId, { preset: 'private_chat', ...extra })).roomId;
  }
  async function send(
    sender: TestUser,
    roomId: string,
    body: string,
    extra: JsonObject = {},
  ): Promise<string> {
    const sent = await context.rooms.sender.sendEvent({
      roomId,
      sender: sender.userId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body, ...extra },
    });
    return sent.eventId;
  }
  async function setState(
    sender: TestUser,
    roomId: string,
    type: string,
    stateKey: string,
    content: JsonObject,
  ): Promise<string> {
    return (await context.rooms.sender.sendEvent({ roomId, sender: sender.userId, type, stateKey, content }))
      .eventId;
  }
  async function setVisibility(roomId: string, creator: TestUser, visibility: string): Promise<void> {
    await setState(creator, roomId, 'm.room.history_visibility', '', { history_visibility: visibility });
  }
  async function invite(roomId: string, inviter: TestUser, invitee: TestUser): Promise<void> {
    await context.rooms.membership.invite(roomId, inviter.userId, invitee.userId);
  }
  async function join(roomId: string, user: TestUser): Promise<void> {
    await context.rooms.membership.join(roomId, user.userId);
  }
  async function messages(user: TestUser, roomId: string, query: string): Promise<MessagesBody> {
    const res = await call(hs, user, 'GET', room(roomId, `/messages?${query}`));
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body as unknown as MessagesBody;
  }
  /** Every message body `user` can page through backwards, newest first. */
  async function allBodies(user: TestUser, roomId: string): Promise<string[]> {
    const bodies: string[] = [];
    let from: string | undefined;
    for (let i = 0; i < 50; i++) {
      const page = await messages(user, roomId, `dir=b&limit=50${from ? `&from=${enc(from)}` : ''}`);
      for (const event of page.chunk)
        if (event.type === 'm.room.message') bodies.push(event.content.body ?? '');
      if (page.end === undefined) return bodies;
      from = page.end;
    }
    throw new Error('pagination did not end');
  }

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    context = hs.homeserver.context;
    [alice, bob, carol, dave] = await Promise.all([
      createUser(hs, 'rr-alice', { displayName: 'Alice' }),
      createUser(hs, 'rr-bob'),
      createUser(hs, 'rr-carol'),
      createUser(hs, 'rr-dave'),
    ]);
  });
  after(() => hs.stop());

  describe('/messages pagination', () => {
    let roomId: string;
    const ids: string[] = [];

    before(async () => {
      roomId = await createRoom(alice, { preset: 'public_chat' });
      await join(roomId, bob);
      for (let i = 0; i < 100; i++) {
        const sender = i % 2 === 0 ? alice : bob;
        ids.push(await send(sender, roomId, `m${i}`, i % 10 === 0 ? { url: `mxc://localhost/m${i}` } : {}));
      }
    });

    it('pages 100 messages backwards, newest first, until `end` is absent', async () => {
      const filter = enc(JSON.stringify({ types: ['m.room.message'] }));
      const seen: string[] = [];
      let from: string | undefined;
      let pages = 0;
      for (;;) {
        const page = await messages(
          alice,
          roomId,
          `dir=b&limit=30&filter=${filter}${from ? `&from=${enc(from)}` : ''}`,
        );
        pages++;
        if (from !== undefined) expect(page.start).to.equal(from);
        seen.push(...page.chunk.map((event) => event.event_id));
        if (page.end === undefined) break;
        from = page.end;
        expect(pages).to.be.below(10);
      }
      expect(seen).to.deep.equal([...ids].reverse());
    });

    it('pages forwards from the start, oldest first, and the create event comes first', async () => {
      const first = await messages(alice, roomId, 'dir=f&limit=5');
      expect(first.chunk[0]!.type).to.equal('m.room.create');
      const filter = enc(JSON.stringify({ types: ['m.room.message'] }));
      const seen: string[] = [];
      let from: string | undefined;
      for (let i = 0; i < 10 && seen.length < 100; i++) {
        const page = await messages(
          alice,
          roomId,
          `dir=f&limit=40&filter=${filter}${from ? `&from=${enc(from)}` : ''}`,
        );
        seen.push(...page.chunk.map((event) => event.event_id));
        expect(page.end).to.be.a('string');
        from = page.end;
      }
      expect(seen).to.deep.equal(ids);
      const after = await messages(alice, roomId, `dir=f&from=${enc(from!)}`);
      expect(after.chunk).to.deep.equal([]);
      expect(after.end).to.equal(undefined);
    });

    it('an end token continues exactly where the page stopped, in either direction', async () => {
      const back = await messages(alice, roomId, 'dir=b&limit=10');
      expect(back.chunk.map((event) => event.event_id)).to.deep.equal(ids.slice(90).reverse());
      const forwardAgain = await messages(alice, roomId, `dir=f&limit=10&from=${enc(back.end!)}`);
      expect(forwardAgain.chunk.map((event) => event.event_id)).to.deep.equal(ids.slice(90));
    });

    it('stops at the `to` token', async () => {
      const firstPage = await messages(alice, roomId, 'dir=b&limit=10');
      const secondPage = await messages(alice, roomId, `dir=b&limit=10&from=${enc(firstPage.end!)}`);
      const bounded = await messages(alice, roomId, `dir=b&limit=50&to=${enc(firstPage.end!)}`);
      expect(bounded.chunk.map((event) => event.event_id)).to.deep.equal(
        firstPage.chunk.map((e) => e.event_id),
      );
      const forward = await messages(
        alice,
        roomId,
        `dir=f&limit=50&from=${enc(secondPage.end!)}&to=${enc(firstPage.end!)}`,
      );
      expect(forward.chunk.map((event) => event.event_id)).to.deep.equal(ids.slice(80, 90));
    });

    it('applies senders, not_senders, not_types and contains_url filters', async () => {
      const bySender = await messages(
        alice,
        roomId,
        `dir=b&limit=100&filter=${enc(JSON.stringify({ senders: [bob.userId], types: ['m.room.message'] }))}`,
      );
      expect(bySender.chunk).to.have.length(50);
      expect(bySender.chunk.every((event) => event.sender === bob.userId)).to.equal(true);

      const notAlice = await messages(
        alice,
        roomId,
        `dir=b&limit=100&filter=${enc(JSON.stringify({ not_senders: [alice.userId] }))}`,
      );
      expect(notAlice.chunk.some((event) => event.sender === alice.userId)).to.equal(false);

      const withUrl = await messages(
        alice,
        roomId,
        `dir=b&limit=100&filter=${enc(JSON.stringify({ contains_url: true }))}`,
      );
      expect(withUrl.chunk.map((event) => event.content.body)).to.deep.equal([
        'm90',
        'm80',
        'm70',
        'm60',
        'm50',
        'm40',
        'm30',
        'm20',
        'm10',
        'm0',
      ]);

      const notMessages = await messages(
        alice,
        roomId,
        `dir=f&limit=100&filter=${enc(JSON.stringify({ not_types: ['m.room.mess*'] }))}`,
      );
      expect(notMessages.chunk.length).to.be.greaterThan(3);
      expect(notMessages.chunk.some((event) => event.type === 'm.room.message')).to.equal(false);
    });

    it('lazy_load_members returns the member events of the chunk senders only', async () => {
      await join(roomId, carol); // a member who sent nothing in the page
      const page = await messages(
        alice,
        roomId,
        `dir=b&limit=6&filter=${enc(JSON.stringify({ lazy_load_members: true, types: ['m.room.message'] }))}`,
      );
      expect(page.chunk).to.have.length(6);
      const members = (page.state ?? []).map((event) => event.state_key).sort();
      expect(members).to.deep.equal([alice.userId, bob.userId].sort());
      expect(page.state!.every((event) => event.type === 'm.room.member')).to.equal(true);
      const alicesMember = page.state!.find((event) => event.state_key === alice.userId)!;
      expect(alicesMember.content.displayname).to.equal('Alice');

      const plain = await messages(alice, roomId, 'dir=b&limit=6');
      expect(plain.state).to.equal(undefined);
    });

    it('serves events in the client format, with transaction_id only to the sending device', async () => {
      const sent = await context.rooms.sender.sendEvent({
        roomId,
        sender: alice.userId,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: 'with txn' },
        txn: { deviceId: alice.deviceId, txnId: 'rr-txn-1' },
      });
      const mine = (await messages(alice, roomId, 'dir=b&limit=1')).chunk[0]!;
      expect(mine.event_id).to.equal(sent.eventId);
      expect(mine).to.have.keys([
        'content',
        'event_id',
        'origin_server_ts',
        'room_id',
        'sender',
        'type',
        'unsigned',
      ]);
      expect(mine.unsigned!.transaction_id).to.equal('rr-txn-1');
      expect(mine.unsigned!.age).to.be.a('number');
      const theirs = (await messages(bob, roomId, 'dir=b&limit=1')).chunk[0]!;
      expect(theirs.unsigned!.transaction_id).to.equal(undefined);
    });

    it('refuses bad tokens, directions, limits and filters with 400, never 500', async () => {
      const cases: [string, string][] = [
        ['dir=b&from=nonsense', 'M_INVALID_PARAM'],
        ['dir=b&from=t--5', 'M_INVALID_PARAM'],
        ['dir=b&to=s1_2', 'M_INVALID_PARAM'],
        ['dir=x', 'M_INVALID_PARAM'],
        ['dir=b&limit=-1', 'M_INVALID_PARAM'],
        ['dir=b&limit=ten', 'M_INVALID_PARAM'],
        ['dir=b&filter=%7Bnot%20json', 'M_INVALID_PARAM'],
        ['dir=b&filter=%5B1%5D', 'M_INVALID_PARAM'],
        ['dir=b&filter=%7B%22types%22%3A5%7D', 'M_INVALID_PARAM'],
      ];
      for (const [query, errcode] of cases) {
        const res = await call(hs, alice, 'GET', room(roomId, `/messages?${query}`));
        expect(res.status, query).to.equal(400);
        expect(res.body.errcode, query).to.equal(errcode);
      }
      const missingDir = await call(hs, alice, 'GET', room(roomId, '/messages'));
      expect(missingDir.status).to.equal(400);
      expect(missingDir.body.errcode).to.equal('M_MISSING_PARAM');
    });

    it('leaves out the messages of users the reader ignores, not their state events', async () => {
      const ignoreRoom = await createRoom(alice, { preset: 'public_chat' });
      await join(ignoreRoom, bob);
      await send(bob, ignoreRoom, 'from bob');
      await send(alice, ignoreRoom, 'from alice');
      const put = await call(
        hs,
        carol,
        'PUT',
        `/_matrix/client/v3/user/${enc(carol.userId)}/account_data/m.ignored_user_list`,
        { ignored_users: { [bob.userId]: {} } },
      );
      expect(put.status).to.equal(200);
      await join(ignoreRoom, carol);
      const page = await messages(carol, ignoreRoom, 'dir=b&limit=50');
      expect(page.chunk.map((event) => event.content.body).filter(Boolean)).to.deep.equal(['from alice']);
      expect(
        page.chunk.some((event) => event.sender === bob.userId && event.type === 'm.room.member'),
      ).to.equal(true);
    });

    it('accepts a sync-style token for its events position', async () => {
      const page = await messages(alice, roomId, 'dir=b&limit=3');
      const position = page.end!.slice(1);
      const syncStyle = `s${position}_0_0_0_0_0_0`;
      const viaSync = await messages(alice, roomId, `dir=b&limit=3&from=${syncStyle}`);
      const viaOurs = await messages(alice, roomId, `dir=b&limit=3&from=${page.end}`);
      expect(viaSync.chunk.map((e) => e.event_id)).to.deep.equal(viaOurs.chunk.map((e) => e.event_id));
    });
  });

  describe('/context', () => {
    it('returns the event with visible events before and after, state, and usable tokens', async () => {
      const roomId = await createRoom(alice);
      const ids: string[] = [];
      for (let i = 0; i < 9; i++) ids.push(await send(alice, roomId, `c${i}`));
      const res = await call(hs, alice, 'GET', room(roomId, `/context/${enc(ids[4]!)}?limit=4`));
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      const body = res.body as unknown as ContextBody;
      expect(body.event.event_id).to.equal(ids[4]);
      expect(body.events_before.map((e: ClientEvent) => e.event_id)).to.deep.equal([ids[3], ids[2]]);
      expect(body.events_after.map((e: ClientEvent) => e.event_id)).to.deep.equal([ids[5], ids[6]]);
      const stateTypes = new Set(body.state.map((e: ClientEvent) => e.type));
      expect(stateTypes.has('m.room.create')).to.equal(true);
      expect(stateTypes.has('m.room.member')).to.equal(true);

      const before = await messages(alice, roomId, `dir=b&limit=2&from=${enc(body.start)}`);
      expect(before.chunk.map((e) => e.event_id)).to.deep.equal([ids[1], ids[0]]);
      const after = await messages(alice, roomId, `dir=f&limit=2&from=${enc(body.end)}`);
      expect(after.chunk.map((e) => e.event_id)).to.deep.equal([ids[7], ids[8]]);
    });

    it('filters the context but not the event, and lazy-loads members', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      await join(roomId, bob);
      await join(roomId, carol);
      const target = await send(bob, roomId, 'target');
      await send(alice, roomId, 'after 1');
      await send(bob, roomId, 'after 2');
      const filter = enc(JSON.stringify({ senders: [alice.userId], lazy_load_members: true }));
      const res = await call(
        hs,
        alice,
        'GET',
        room(roomId, `/context/${enc(target)}?limit=10&filter=${filter}`),
      );
      expect(res.status).to.equal(200);
      const body = res.body as unknown as ContextBody;
      expect(body.event.sender).to.equal(bob.userId);
      expect(body.events_after.map((e: ClientEvent) => e.content.body)).to.deep.equal(['after 1']);
      expect(body.events_before.every((e: ClientEvent) => e.sender === alice.userId)).to.equal(true);
      const stateKeys = body.state.map((e: ClientEvent) => e.state_key);
      expect(stateKeys).to.include(alice.userId);
      expect(stateKeys).to.not.include(carol.userId);
    });

    it('is 404 for an event the user may not see or of another room', async () => {
      const roomId = await createRoom(alice);
      const eventId = await send(alice, roomId, 'secret');
      const stranger = await call(hs, dave, 'GET', room(roomId, `/context/${enc(eventId)}`));
      expect(stranger.status).to.equal(404);
      expect(stranger.body.errcode).to.equal('M_NOT_FOUND');
      const otherRoom = await createRoom(alice);
      const wrongRoom = await call(hs, alice, 'GET', room(otherRoom, `/context/${enc(eventId)}`));
      expect(wrongRoom.status).to.equal(404);
      const unknown = await call(hs, alice, 'GET', room(roomId, `/context/${enc('$nope')}`));
      expect(unknown.status).to.equal(404);
    });
  });

  describe('history visibility', () => {
    it('joined: a later joiner cannot see earlier messages, nor /event them', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      await setVisibility(roomId, alice, 'joined');
      const before = await send(alice, roomId, 'before bob');
      await join(roomId, bob);
      await send(alice, roomId, 'after bob');
      expect(await allBodies(bob, roomId)).to.deep.equal(['after bob']);
      expect(await allBodies(alice, roomId)).to.deep.equal(['after bob', 'before bob']);
      const hidden = await call(hs, bob, 'GET', room(roomId, `/event/${enc(before)}`));
      expect(hidden.status).to.equal(404);
      expect(hidden.body.errcode).to.equal('M_NOT_FOUND');
      const seen = await call(hs, alice, 'GET', room(roomId, `/event/${enc(before)}`));
      expect(seen.status).to.equal(200);
      expect(seen.body.content).to.deep.include({ body: 'before bob' });
    });

    it('shared: a later joiner sees earlier messages', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      await setVisibility(roomId, alice, 'shared');
      await send(alice, roomId, 'old news');
      await join(roomId, bob);
      await send(alice, roomId, 'new news');
      expect(await allBodies(bob, roomId)).to.deep.equal(['new news', 'old news']);
    });

    it('world_readable: a non-member reads /messages, /event and /state; other rooms are 403', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      await setVisibility(roomId, alice, 'world_readable');
      const eventId = await send(alice, roomId, 'for everyone');
      expect(await allBodies(dave, roomId)).to.deep.equal(['for everyone']);
      expect((await call(hs, dave, 'GET', room(roomId, `/event/${enc(eventId)}`))).status).to.equal(200);
      expect((await call(hs, dave, 'GET', room(roomId, '/state'))).status).to.equal(200);

      const privateRoom = await createRoom(alice);
      const forbidden = await call(hs, dave, 'GET', room(privateRoom, '/messages?dir=b'));
      expect(forbidden.status).to.equal(403);
      expect(forbidden.body.errcode).to.equal('M_FORBIDDEN');
      for (const path of ['/state', '/members', '/state/m.room.create/', '/joined_members']) {
        const res = await call(hs, dave, 'GET', room(privateRoom, path));
        expect(res.status, path).to.equal(403);
        expect(res.body.errcode, path).to.equal('M_FORBIDDEN');
      }
    });

    it('a user who left sees events up to and including their leave, not after', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      await setVisibility(roomId, alice, 'shared');
      await join(roomId, bob);
      await send(alice, roomId, 'while bob was here');
      await context.rooms.membership.leave(roomId, bob.userId);
      const afterLeave = await send(alice, roomId, 'after bob left');
      await setState(alice, roomId, 'm.room.topic', '', { topic: 'changed after bob left' });

      expect(await allBodies(bob, roomId)).to.deep.equal(['while bob was here']);
      const newest = await messages(bob, roomId, 'dir=b&limit=1');
      expect(newest.chunk[0]!.type).to.equal('m.room.member');
      expect(newest.chunk[0]!.state_key).to.equal(bob.userId);
      expect(newest.chunk[0]!.content.membership).to.equal('leave');
      expect((await call(hs, bob, 'GET', room(roomId, `/event/${enc(afterLeave)}`))).status).to.equal(404);

      // /state is the state when they left.
      const topic = await call(hs, bob, 'GET', room(roomId, '/state/m.room.topic/'));
      expect(topic.status).to.equal(404);
      const own = await call(hs, bob, 'GET', room(roomId, `/state/m.room.member/${enc(bob.userId)}`));
      expect(own.body.membership).to.equal('leave');
    });

    it('a banned user likewise sees up to the ban', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      await join(roomId, carol);
      await send(alice, roomId, 'before ban');
      await context.rooms.membership.ban(roomId, alice.userId, carol.userId);
      await send(alice, roomId, 'after ban');
      expect(await allBodies(carol, roomId)).to.deep.equal(['before ban']);
    });

    it('invited: events from the invite on, not before', async () => {
      const roomId = await createRoom(alice);
      await setVisibility(roomId, alice, 'invited');
      await send(alice, roomId, 'before invite');
      await invite(roomId, alice, bob);
      await send(alice, roomId, 'while invited');
      await join(roomId, bob);
      await send(alice, roomId, 'after join');
      expect(await allBodies(bob, roomId)).to.deep.equal(['after join', 'while invited']);
    });

    it('an invited user may not read the room yet', async () => {
      const roomId = await createRoom(alice);
      await invite(roomId, alice, carol);
      const res = await call(hs, carol, 'GET', room(roomId, '/messages?dir=b'));
      expect(res.status).to.equal(403);
    });

    it('a visibility change is visible from either side of it', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      await setVisibility(roomId, alice, 'joined');
      await send(alice, roomId, 'hidden');
      await setVisibility(roomId, alice, 'world_readable');
      await send(alice, roomId, 'readable');
      const page = await messages(dave, roomId, 'dir=b&limit=50');
      const visibilities = page.chunk
        .filter((event) => event.type === 'm.room.history_visibility')
        .map((event) => event.content.history_visibility);
      expect(visibilities).to.deep.equal(['world_readable']);
      expect(page.chunk.map((event) => event.content.body).filter(Boolean)).to.deep.equal(['readable']);
      expect(page.chunk.some((event) => event.type === 'm.room.create')).to.equal(false);
    });
  });

  describe('/event, /state and /state/{type}/{key}', () => {
    let roomId: string;
    before(async () => {
      roomId = await createRoom(alice, { name: 'Reads', topic: 'first topic' });
      await setState(alice, roomId, 'm.room.topic', '', { topic: 'second topic' });
      await setState(alice, roomId, 'org.example.custom', 'key with spaces', { value: 1 });
    });

    it('serves state event content and ?format=event, with prev_content', async () => {
      const content = await call(hs, alice, 'GET', room(roomId, '/state/m.room.topic/'));
      expect(content.status).to.equal(200);
      expect(content.body).to.deep.equal({ topic: 'second topic' });
      const noSlash = await call(hs, alice, 'GET', room(roomId, '/state/m.room.topic'));
      expect(noSlash.body).to.deep.equal({ topic: 'second topic' });
      const custom = await call(
        hs,
        alice,
        'GET',
        room(roomId, `/state/org.example.custom/${enc('key with spaces')}`),
      );
      expect(custom.body).to.deep.equal({ value: 1 });

      const asEvent = await call(hs, alice, 'GET', room(roomId, '/state/m.room.topic/?format=event'));
      expect(asEvent.status).to.equal(200);
      expect(asEvent.body).to.include({
        type: 'm.room.topic',
        state_key: '',
        sender: alice.userId,
        room_id: roomId,
      });
      expect(asEvent.body.content).to.deep.equal({ topic: 'second topic' });
      expect(asEvent.body).to.have.property('event_id');

      const viaEvent = await call(
        hs,
        alice,
        'GET',
        room(roomId, `/event/${enc(asEvent.body.event_id as string)}`),
      );
      expect((viaEvent.body as unknown as ClientEvent).unsigned?.prev_content?.topic).to.equal('first topic');
    });

    it('is 404 M_NOT_FOUND for missing state, 400 for a bad format', async () => {
      const missing = await call(hs, alice, 'GET', room(roomId, '/state/m.room.avatar/'));
      expect(missing.status).to.equal(404);
      expect(missing.body.errcode).to.equal('M_NOT_FOUND');
      const otherKey = await call(hs, alice, 'GET', room(roomId, '/state/m.room.topic/nope'));
      expect(otherKey.status).to.equal(404);
      const badFormat = await call(hs, alice, 'GET', room(roomId, '/state/m.room.topic/?format=xml'));
      expect(badFormat.status).to.equal(400);
      expect(badFormat.body.errcode).to.equal('M_INVALID_PARAM');
    });

    it('/state lists the whole current state as client events', async () => {
      const res = await call(hs, alice, 'GET', room(roomId, '/state'));
      expect(res.status).to.equal(200);
      const events = res.body as unknown as ClientEvent[];
      const topics = events.filter((event) => event.type === 'm.room.topic');
      expect(topics).to.have.length(1);
      expect(topics[0]!.content.topic).to.equal('second topic');
      for (const type of ['m.room.create', 'm.room.power_levels', 'm.room.join_rules', 'm.room.name']) {
        expect(
          events.some((event) => event.type === type),
          type,
        ).to.equal(true);
      }
      expect(events.every((event) => typeof event.state_key === 'string')).to.equal(true);
    });

    it('serves a redacted event stripped, with unsigned.redacted_because, in /event and /messages', async () => {
      const eventId = await send(alice, roomId, 'regrettable');
      const redaction = await context.rooms.redactions.redact({
        roomId,
        sender: alice.userId,
        targetEventId: eventId,
        reason: 'oops',
      });
      const res = await call(hs, alice, 'GET', room(roomId, `/event/${enc(eventId)}`));
      expect(res.status).to.equal(200);
      const event = res.body as unknown as ClientEvent & { unsigned: { redacted_because?: ClientEvent } };
      expect(event.content).to.deep.equal({});
      expect(event.unsigned.redacted_because?.event_id).to.equal(redaction.eventId);
      expect(event.unsigned.redacted_because?.type).to.equal('m.room.redaction');
      const page = await messages(alice, roomId, 'dir=b&limit=5');
      const inPage = page.chunk.find((e) => e.event_id === eventId) as typeof event | undefined;
      expect(inPage?.unsigned.redacted_because?.event_id).to.equal(redaction.eventId);
      const redactionInPage = page.chunk.find((e) => e.event_id === redaction.eventId) as
        | (ClientEvent & { redacts?: string })
        | undefined;
      expect(redactionInPage?.redacts).to.equal(eventId);
    });

    it('bundles aggregations (a thread summary) into unsigned m.relations', async () => {
      const root = await send(alice, roomId, 'thread root');
      await send(alice, roomId, 'in thread', { 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
      const res = await call(hs, alice, 'GET', room(roomId, `/event/${enc(root)}`));
      const relations = (res.body.unsigned as { 'm.relations'?: Record<string, { count?: number }> })[
        'm.relations'
      ];
      expect(relations?.['m.thread']?.count).to.equal(1);
    });

    it('/event is 404 for unknown events and events of another room', async () => {
      const eventId = await send(alice, roomId, 'here');
      const other = await createRoom(alice);
      expect((await call(hs, alice, 'GET', room(other, `/event/${enc(eventId)}`))).status).to.equal(404);
      expect((await call(hs, alice, 'GET', room(roomId, `/event/${enc('$unknown')}`))).status).to.equal(404);
    });
  });

  describe('/members, /joined_members, /joined_rooms', () => {
    let roomId: string;
    let beforeCarolToken: string;

    before(async () => {
      roomId = await createRoom(alice, { preset: 'public_chat' });
      await join(roomId, bob);
      beforeCarolToken = (await messages(alice, roomId, 'dir=b&limit=1')).start;
      await join(roomId, carol);
      await context.rooms.membership.leave(roomId, bob.userId);
      await invite(roomId, alice, dave);
    });

    it('lists every member event, filtered by membership and not_membership', async () => {
      const all = await call(hs, alice, 'GET', room(roomId, '/members'));
      expect(all.status).to.equal(200);
      const byUser = Object.fromEntries(
        (all.body.chunk as ClientEvent[]).map((event) => [event.state_key, event.content.membership]),
      );
      expect(byUser).to.deep.equal({
        [alice.userId]: 'join',
        [bob.userId]: 'leave',
        [carol.userId]: 'join',
        [dave.userId]: 'invite',
      });
      const joined = await call(hs, alice, 'GET', room(roomId, '/members?membership=join'));
      expect((joined.body.chunk as ClientEvent[]).map((e) => e.state_key).sort()).to.deep.equal(
        [alice.userId, carol.userId].sort(),
      );
      const notJoined = await call(hs, alice, 'GET', room(roomId, '/members?not_membership=join'));
      expect((notJoined.body.chunk as ClientEvent[]).map((e) => e.state_key).sort()).to.deep.equal(
        [bob.userId, dave.userId].sort(),
      );
      const bad = await call(hs, alice, 'GET', room(roomId, '/members?membership=joined'));
      expect(bad.status).to.equal(400);
      expect(bad.body.errcode).to.equal('M_INVALID_PARAM');
    });

    it('answers for the state at a token with ?at', async () => {
      const res = await call(hs, alice, 'GET', room(roomId, `/members?at=${enc(beforeCarolToken)}`));
      expect(res.status).to.equal(200);
      const byUser = Object.fromEntries(
        (res.body.chunk as ClientEvent[]).map((event) => [event.state_key, event.content.membership]),
      );
      expect(byUser).to.deep.equal({ [alice.userId]: 'join', [bob.userId]: 'join' });
      const bad = await call(hs, alice, 'GET', room(roomId, '/members?at=garbage'));
      expect(bad.status).to.equal(400);
      expect(bad.body.errcode).to.equal('M_INVALID_PARAM');
    });

    it('a user who left sees the members as they were when they left', async () => {
      const res = await call(hs, bob, 'GET', room(roomId, '/members'));
      expect(res.status).to.equal(200);
      const users = (res.body.chunk as ClientEvent[]).map((event) => event.state_key);
      expect(users).to.not.include(dave.userId);
    });

    it('/joined_members maps joined users to their profile, for members only', async () => {
      const res = await call(hs, carol, 'GET', room(roomId, '/joined_members'));
      expect(res.status).to.equal(200);
      expect(res.body.joined).to.deep.equal({
        [alice.userId]: { display_name: 'Alice' },
        [carol.userId]: {},
      });
      const leftUser = await call(hs, bob, 'GET', room(roomId, '/joined_members'));
      expect(leftUser.status).to.equal(403);
    });

    it('/joined_rooms lists exactly the rooms the user is joined to', async () => {
      const fresh = await createUser(hs, 'rr-erin');
      const empty = await call(hs, fresh, 'GET', '/_matrix/client/v3/joined_rooms');
      expect(empty.body).to.deep.equal({ joined_rooms: [] });
      const r1 = await createRoom(fresh);
      const r2 = await createRoom(fresh);
      await context.rooms.membership.leave(r2, fresh.userId);
      const res = await call(hs, fresh, 'GET', '/_matrix/client/v3/joined_rooms');
      expect(res.body).to.deep.equal({ joined_rooms: [r1] });
      const anon = await call(hs, undefined, 'GET', '/_matrix/client/v3/joined_rooms');
      expect(anon.status).to.equal(401);
    });
  });

  describe('/timestamp_to_event', () => {
    it('finds the closest event in both directions', async () => {
      const roomId = await createRoom(alice);
      const first = await send(alice, roomId, 'first');
      await sleep(15);
      const between = Date.now();
      await sleep(15);
      const second = await send(alice, roomId, 'second');
      const path = (ts: number, dir: string) =>
        `/_matrix/client/v1/rooms/${enc(roomId)}/timestamp_to_event?ts=${ts}&dir=${dir}`;
      const forward = await call(hs, alice, 'GET', path(between, 'f'));
      expect(forward.status).to.equal(200);
      expect(forward.body.event_id).to.equal(second);
      expect(forward.body.origin_server_ts).to.be.at.least(between);
      const backward = await call(hs, alice, 'GET', path(between, 'b'));
      expect(backward.body.event_id).to.equal(first);
      const none = await call(hs, alice, 'GET', path(Date.now() + 60_000, 'f'));
      expect(none.status).to.equal(404);
      expect(none.body.errcode).to.equal('M_NOT_FOUND');
      const badDir = await call(hs, alice, 'GET', path(between, 'x'));
      expect(badDir.status).to.equal(400);
      const badTs = await call(
        hs,
        alice,
        'GET',
        `/_matrix/client/v1/rooms/${enc(roomId)}/timestamp_to_event?ts=soon&dir=f`,
      );
      expect(badTs.status).to.equal(400);
      expect(badTs.body.errcode).to.equal('M_INVALID_PARAM');
      const stranger = await call(hs, dave, 'GET', path(between, 'f'));
      expect(stranger.status).to.equal(403);
    });

    it('skips events the user may not see', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      await setVisibility(roomId, alice, 'joined');
      const start = Date.now();
      await send(alice, roomId, 'hidden from bob');
      await join(roomId, bob);
      const visible = await send(alice, roomId, 'bob sees this');
      const res = await call(
        hs,
        bob,
        'GET',
        `/_matrix/client/v1/rooms/${enc(roomId)}/timestamp_to_event?ts=${start}&dir=f`,
      );
      expect(res.status).to.equal(200);
      const found = res.body.event_id as string;
      // Bob's own join is the first event he may see at or after `start`.
      const foundEvent = await call(hs, bob, 'GET', room(roomId, `/event/${enc(found)}`));
      expect(foundEvent.status).to.equal(200);
      expect([visible, foundEvent.body.event_id]).to.include(found);
      expect(foundEvent.body.content).to.not.deep.include({ body: 'hidden from bob' });
    });
  });

  describe('/room_summary', () => {
    const summaryPath = (idOrAlias: string) => `/_matrix/client/v1/room_summary/${enc(idOrAlias)}`;

    it('summarises a public room for anyone, with the requester membership when authenticated', async () => {
      const roomId = await createRoom(alice, {
        preset: 'public_chat',
        name: 'Summary room',
        topic: 'About summaries',
      });
      await join(roomId, bob);
      const res = await call(hs, dave, 'GET', summaryPath(roomId));
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body).to.deep.include({
        room_id: roomId,
        name: 'Summary room',
        topic: 'About summaries',
        num_joined_members: 2,
        join_rule: 'public',
        world_readable: false,
        membership: 'leave',
      });
      expect(res.body.room_version).to.be.a('string');
      expect(res.body.guest_can_join).to.be.a('boolean');
      const mine = await call(hs, bob, 'GET', summaryPath(roomId));
      expect(mine.body.membership).to.equal('join');
      const anonymous = await call(hs, undefined, 'GET', summaryPath(roomId));
      expect(anonymous.status).to.equal(200);
      expect(anonymous.body).to.not.have.property('membership');
    });

    it('hides private rooms from non-members and knows unknown rooms are not found', async () => {
      const roomId = await createRoom(alice);
      expect((await call(hs, dave, 'GET', summaryPath(roomId))).status).to.equal(404);
      expect((await call(hs, alice, 'GET', summaryPath(roomId))).status).to.equal(200);
      expect((await call(hs, alice, 'GET', summaryPath('!unknown:localhost'))).status).to.equal(404);
      expect((await call(hs, alice, 'GET', summaryPath('#unknown:localhost'))).status).to.equal(404);
      expect((await call(hs, alice, 'GET', summaryPath('not-a-room'))).status).to.equal(400);
    });

    it('resolves a room alias', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat', room_alias_name: 'rr-summary' });
      const res = await call(hs, dave, 'GET', summaryPath('#rr-summary:localhost'));
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body.room_id).to.equal(roomId);
      expect(res.body.canonical_alias).to.equal('#rr-summary:localhost');
    });
  });
});
