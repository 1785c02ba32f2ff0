/**
 * /sync over real HTTP (client-server "Syncing", "Filtering", "Lazy-loading room
 * members", "Typing Notifications", "Receipts", "Client Config", "Presence",
 * "Ignoring Users"): initial and incremental syncs for two and three users, long
 * polls that wake for the user's rooms only, filters, transaction IDs, bad tokens.
 */
import { expect } from 'chai';
import { call, createUser, fastAccounts, login, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const enc = encodeURIComponent;
const room = (roomId: string, rest: string) => `/_matrix/client/v3/rooms/${enc(roomId)}${rest}`;

interface SyncEvent {
  event_id?: string;
  type: string;
  sender?: string;
  state_key?: string;
  room_id?: string;
  content: Record<string, unknown>;
  unsigned?: { transaction_id?: string; age?: number };
}
interface JoinedRoom {
  timeline: { events: SyncEvent[]; limited: boolean; prev_batch: string };
  state: { events: SyncEvent[] };
  ephemeral: { events: SyncEvent[] };
  account_data: { events: SyncEvent[] };
  summary?: Record<string, unknown>;
}
interface SyncBody {
  next_batch: string;
  rooms: {
    join: Record<string, JoinedRoom>;
    invite: Record<string, { invite_state: { events: SyncEvent[] } }>;
    leave: Record<string, { timeline: { events: SyncEvent[] }; state: { events: SyncEvent[] } }>;
    knock: Record<string, unknown>;
  };
  account_data: { events: SyncEvent[] };
  presence: { events: SyncEvent[] };
  to_device: { events: unknown[] };
  device_lists: { changed: string[]; left: string[] };
  device_one_time_keys_count: Record<string, number>;
}

describe('Sync', function () {
  this.timeout(60_000);
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let txnCounter = 0;

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    [alice, bob, carol] = await Promise.all([
      createUser(hs, 'alice'),
      createUser(hs, 'bob'),
      createUser(hs, 'carol'),
    ]);
  });
  after(async () => {
    await hs?.stop();
  });

  async function sync(
    user: TestUser,
    query: Record<string, string | number | boolean> = {},
  ): Promise<SyncBody> {
    const qs = new URLSearchParams(
      Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]),
    ).toString();
    const res = await call(hs, user, 'GET', `/_matrix/client/v3/sync${qs ? `?${qs}` : ''}`);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body as unknown as SyncBody;
  }

  async function createRoom(creator: TestUser, body: Record<string, unknown> = {}): Promise<string> {
    const res = await call(hs, creator, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'public_chat',
      ...body,
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body.room_id as string;
  }

  async function join(user: TestUser, roomId: string): Promise<void> {
    const res = await call(hs, user, 'POST', room(roomId, '/join'), {});
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
  }

  async function send(
    user: TestUser,
    roomId: string,
    body: string,
    txnId = `t${++txnCounter}`,
  ): Promise<string> {
    const res = await call(hs, user, 'PUT', room(roomId, `/send/m.room.message/${txnId}`), {
      msgtype: 'm.text',
      body,
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body.event_id as string;
  }

  const bodies = (events: SyncEvent[]) =>
    events.filter((event) => event.type === 'm.room.message').map((event) => event.content.body);

  describe('initial sync', () => {
    it('returns joined rooms with timeline, state at its start, summary and the #6 shapes', async () => {
      const roomId = await createRoom(alice, { name: 'Initial' });
      await join(bob, roomId);
      await send(alice, roomId, 'one');
      await send(bob, roomId, 'two');
      await send(alice, roomId, 'three');

      const body = await sync(alice);
      expect(body.next_batch).to.be.a('string');
      const joined = body.rooms.join[roomId]!;
      expect(joined, 'the room is in rooms.join').to.exist;
      expect(bodies(joined.timeline.events)).to.deep.equal(['one', 'two', 'three']);
      expect(joined.timeline.events.every((event) => event.room_id === undefined)).to.equal(true);
      // Six or more creation events, bob's join and three messages: more than the default 10.
      expect(joined.timeline.events).to.have.length(10);
      expect(joined.timeline.limited).to.equal(true);
      const stateTypes = joined.state.events.map((event) => event.type);
      expect(stateTypes).to.include('m.room.create');
      const timelineIds = new Set(joined.timeline.events.map((event) => event.event_id));
      expect(joined.state.events.some((event) => timelineIds.has(event.event_id))).to.equal(false);
      expect(joined.summary).to.deep.include({ 'm.joined_member_count': 2, 'm.invited_member_count': 0 });
      expect(joined.summary?.['m.heroes']).to.deep.equal([bob.userId]);
      expect(body.to_device.events).to.deep.equal([]);
      expect(body.device_lists).to.deep.equal({ changed: [], left: [] });
      expect(body.device_one_time_keys_count).to.be.an('object');
    });

    it('gives a prev_batch that /messages continues from without overlap', async () => {
      const roomId = await createRoom(alice);
      const sent: string[] = [];
      for (let i = 0; i < 15; i++) sent.push(await send(alice, roomId, `m${i}`));
      const filter = JSON.stringify({ room: { rooms: [roomId], timeline: { limit: 5 } } });
      const body = await sync(alice, { filter });
      const timeline = body.rooms.join[roomId]!.timeline;
      expect(timeline.limited).to.equal(true);
      expect(timeline.events.map((event) => event.event_id)).to.deep.equal(sent.slice(10));
      const page = await call(
        hs,
        alice,
        'GET',
        room(roomId, `/messages?dir=b&limit=5&from=${enc(timeline.prev_batch)}`),
      );
      expect(page.status, JSON.stringify(page.body)).to.equal(200);
      const chunk = page.body.chunk as SyncEvent[];
      expect(chunk.map((event) => event.event_id)).to.deep.equal(sent.slice(5, 10).reverse());
    });

    it('lists pending invites with stripped state, and leaves only with include_leave', async () => {
      const invited = await createRoom(alice, { name: 'Invite only', preset: 'private_chat' });
      expect(
        (await call(hs, alice, 'POST', room(invited, '/invite'), { user_id: carol.userId })).status,
      ).to.equal(200);
      const left = await createRoom(alice);
      await join(carol, left);
      expect((await call(hs, carol, 'POST', room(left, '/leave'), {})).status).to.equal(200);

      const body = await sync(carol);
      const inviteState = body.rooms.invite[invited]?.invite_state.events ?? [];
      expect(inviteState.map((event) => event.type)).to.include.members([
        'm.room.create',
        'm.room.name',
        'm.room.member',
      ]);
      const member = inviteState.find((event) => event.type === 'm.room.member')!;
      expect(member).to.deep.include({ state_key: carol.userId, sender: alice.userId });
      expect(member.content.membership).to.equal('invite');
      expect(body.rooms.leave[left]).to.equal(undefined);

      const withLeave = await sync(carol, { filter: JSON.stringify({ room: { include_leave: true } }) });
      const leftRoom = withLeave.rooms.leave[left]!;
      expect(leftRoom, 'left room with include_leave').to.exist;
      const last = leftRoom.timeline.events.at(-1)!;
      expect(last).to.deep.include({ type: 'm.room.member', state_key: carol.userId });
      expect(last.content.membership).to.equal('leave');
    });
  });

  describe('incremental sync', () => {
    it('sends only what happened since the token, to each member', async () => {
      const roomId = await createRoom(alice);
      await join(bob, roomId);
      const [a0, b0] = await Promise.all([sync(alice), sync(bob)]);
      const first = await send(alice, roomId, 'hello');
      await send(bob, roomId, 'hi');

      const a1 = await sync(alice, { since: a0.next_batch });
      const b1 = await sync(bob, { since: b0.next_batch });
      for (const body of [a1, b1]) {
        const joined = body.rooms.join[roomId]!;
        expect(bodies(joined.timeline.events)).to.deep.equal(['hello', 'hi']);
        expect(joined.timeline.limited).to.equal(false);
        expect(joined.state.events).to.deep.equal([]);
        expect(joined.timeline.events[0]!.event_id).to.equal(first);
      }
      // Later: no event again (bob's delivery receipt may come, in ephemeral).
      const a2 = await sync(alice, { since: a1.next_batch });
      expect(a2.rooms.join[roomId]?.timeline.events ?? []).to.deep.equal([]);
    });

    it('moves an invite to join when the user joins, and reports a leave', async () => {
      const roomId = await createRoom(alice, { preset: 'private_chat' });
      const c0 = await sync(carol);
      await call(hs, alice, 'POST', room(roomId, '/invite'), { user_id: carol.userId });
      const c1 = await sync(carol, { since: c0.next_batch });
      expect(c1.rooms.invite[roomId]).to.exist;
      expect(c1.rooms.join[roomId]).to.equal(undefined);

      await join(carol, roomId);
      const c2 = await sync(carol, { since: c1.next_batch });
      expect(c2.rooms.invite[roomId]).to.equal(undefined);
      const joined = c2.rooms.join[roomId]!;
      expect(joined, 'newly joined room').to.exist;
      // A newly joined room comes whole: its state at the start of the timeline plus the timeline.
      const everything = [...joined.state.events, ...joined.timeline.events];
      expect(everything.map((event) => event.type)).to.include.members([
        'm.room.create',
        'm.room.power_levels',
        'm.room.join_rules',
      ]);
      expect(joined.summary).to.deep.include({ 'm.joined_member_count': 2 });

      await call(hs, carol, 'POST', room(roomId, '/leave'), {});
      const c3 = await sync(carol, { since: c2.next_batch });
      expect(c3.rooms.join[roomId]).to.equal(undefined);
      const leave = c3.rooms.leave[roomId]!;
      expect(leave.timeline.events.at(-1)?.content.membership).to.equal('leave');
    });

    it('sends a state delta with a limited timeline', async () => {
      const roomId = await createRoom(alice);
      const filter = JSON.stringify({ room: { rooms: [roomId], timeline: { limit: 2 } } });
      const a0 = await sync(alice, { filter });
      await call(hs, alice, 'PUT', room(roomId, '/state/m.room.topic/'), { topic: 'gap topic' });
      for (let i = 0; i < 4; i++) await send(alice, roomId, `after ${i}`);
      const a1 = await sync(alice, { filter, since: a0.next_batch });
      const joined = a1.rooms.join[roomId]!;
      expect(joined.timeline.limited).to.equal(true);
      expect(bodies(joined.timeline.events)).to.deep.equal(['after 2', 'after 3']);
      const topic = joined.state.events.find((event) => event.type === 'm.room.topic');
      expect(topic?.content.topic).to.equal('gap topic');
      expect(joined.state.events.some((event) => event.type === 'm.room.create')).to.equal(false);
    });

    it('sends the full state of every joined room with full_state', async () => {
      const roomId = await createRoom(alice);
      const a0 = await sync(alice);
      const a1 = await sync(alice, { since: a0.next_batch, full_state: true });
      const joined = a1.rooms.join[roomId]!;
      expect(joined, 'unchanged room is sent with full_state').to.exist;
      expect(joined.state.events.map((event) => event.type)).to.include('m.room.create');
    });
  });

  describe('use_state_after (v1.16)', () => {
    type StateAfterRoom = {
      state?: unknown;
      state_after?: { events: SyncEvent[] };
      timeline: { events: SyncEvent[] };
    };
    const joinedRoom = (body: SyncBody, roomId: string) =>
      (body.rooms.join as unknown as Record<string, StateAfterRoom>)[roomId]!;
    const topicOf = (events: SyncEvent[]) =>
      events.find((event) => event.type === 'm.room.topic')?.content.topic;

    it('sends state_after (state at the end of the timeline) instead of state', async () => {
      const roomId = await createRoom(alice, { topic: 'first' });
      await send(alice, roomId, 'before');
      const initial = joinedRoom(await sync(alice, { use_state_after: true }), roomId);
      expect(initial).not.to.have.property('state');
      expect(topicOf(initial.state_after!.events)).to.equal('first');
      // The timeline's own state events count: the topic set in it is in state_after too.
      expect(topicOf(initial.timeline.events)).to.equal('first');
    });

    it('carries a state change that happened in the timeline, and nothing when state did not change', async () => {
      const roomId = await createRoom(alice, { topic: 'old' });
      const start = await sync(alice, { use_state_after: true });
      const topic = await call(hs, alice, 'PUT', room(roomId, '/state/m.room.topic/'), { topic: 'new' });
      expect(topic.status).to.equal(200);
      await send(alice, roomId, 'after the topic');
      const next = await sync(alice, { since: start.next_batch, use_state_after: true });
      const changed = joinedRoom(next, roomId);
      expect(changed.state_after!.events.map((event) => event.type)).to.deep.equal(['m.room.topic']);
      expect(topicOf(changed.state_after!.events)).to.equal('new');

      await send(alice, roomId, 'only a message');
      const quiet = joinedRoom(await sync(alice, { since: next.next_batch, use_state_after: true }), roomId);
      expect(quiet.state_after).to.deep.equal({ events: [] });
      expect(bodies(quiet.timeline.events)).to.deep.equal(['only a message']);
    });

    it('reports the state at the end of a limited timeline, changes before it included', async () => {
      const roomId = await createRoom(alice, { topic: 'one' });
      const start = await sync(alice, { use_state_after: true });
      await call(hs, alice, 'PUT', room(roomId, '/state/m.room.topic/'), { topic: 'two' });
      for (let i = 0; i < 5; i++) await send(alice, roomId, `filler ${i}`);
      const filter = JSON.stringify({ room: { timeline: { limit: 2 } } });
      const next = joinedRoom(
        await sync(alice, { since: start.next_batch, filter, use_state_after: true }),
        roomId,
      );
      expect(topicOf(next.timeline.events)).to.equal(undefined);
      expect(topicOf(next.state_after!.events)).to.equal('two');
    });
  });

  describe('ephemeral and account data', () => {
    it('shows typing and receipts in ephemeral, and account data globally and per room', async () => {
      const roomId = await createRoom(alice);
      await join(bob, roomId);
      const eventId = await send(alice, roomId, 'read me');
      const b0 = await sync(bob);

      expect(
        (
          await call(hs, alice, 'PUT', room(roomId, `/typing/${enc(alice.userId)}`), {
            typing: true,
            timeout: 10_000,
          })
        ).status,
      ).to.equal(200);
      expect(
        (await call(hs, alice, 'POST', room(roomId, `/receipt/m.read/${enc(eventId)}`), {})).status,
      ).to.equal(200);
      await call(
        hs,
        bob,
        'PUT',
        `/_matrix/client/v3/user/${enc(bob.userId)}/account_data/org.example.global`,
        {
          colour: 'blue',
        },
      );
      await call(
        hs,
        bob,
        'PUT',
        `/_matrix/client/v3/user/${enc(bob.userId)}/rooms/${enc(roomId)}/account_data/org.example.room`,
        { pinned: true },
      );

      const b1 = await sync(bob, { since: b0.next_batch });
      const ephemeral = b1.rooms.join[roomId]!.ephemeral.events;
      const typing = ephemeral.find((event) => event.type === 'm.typing');
      expect(typing?.content.user_ids).to.deep.equal([alice.userId]);
      const receipt = ephemeral.find((event) => event.type === 'm.receipt');
      const read = (receipt?.content[eventId] ?? {}) as Record<string, Record<string, unknown>>;
      expect(read['m.read']?.[alice.userId]).to.have.property('ts');
      expect(b1.account_data.events).to.deep.include({
        type: 'org.example.global',
        content: { colour: 'blue' },
      });
      expect(b1.rooms.join[roomId]!.account_data.events).to.deep.include({
        type: 'org.example.room',
        content: { pinned: true },
      });

      // The next sync carries none of it again.
      const b2 = await sync(bob, { since: b1.next_batch });
      expect(b2.rooms.join[roomId]).to.equal(undefined);
      expect(b2.account_data.events).to.deep.equal([]);
    });

    it('records delivery to the recipient as io.myelin.delivered, seen by the sender', async () => {
      const roomId = await createRoom(alice);
      await join(bob, roomId);
      const a0 = await sync(alice);
      const eventId = await send(alice, roomId, 'deliver me');
      await sync(bob); // hands the message to bob
      let delivered: Record<string, unknown> | undefined;
      // Delivery receipts are announced in batches; long-poll from each new token until it arrives.
      let since = a0.next_batch;
      for (let attempt = 0; attempt < 20 && delivered === undefined; attempt++) {
        const a1 = await sync(alice, { since, timeout: 1000 });
        since = a1.next_batch;
        const receipt = a1.rooms.join[roomId]?.ephemeral.events.find((event) => event.type === 'm.receipt');
        const byType = receipt?.content[eventId] as Record<string, Record<string, unknown>> | undefined;
        delivered = byType?.['io.myelin.delivered']?.[bob.userId] as Record<string, unknown> | undefined;
      }
      expect(delivered, 'bob delivered').to.have.property('ts');
    });

    it('shows the presence of users who share a room', async () => {
      const roomId = await createRoom(alice);
      await join(carol, roomId);
      await call(hs, carol, 'PUT', `/_matrix/client/v3/presence/${enc(carol.userId)}/status`, {
        presence: 'online',
        status_msg: 'here',
      });
      const body = await sync(alice);
      const carolPresence = body.presence.events.find((event) => event.sender === carol.userId);
      expect(carolPresence?.type).to.equal('m.presence');
      expect(carolPresence?.content).to.deep.include({ presence: 'online', status_msg: 'here' });
    });

    it('removes the events of ignored users from timelines', async () => {
      const dave = await createUser(hs, 'dave-ignorer');
      const eve = await createUser(hs, 'eve-ignored');
      const roomId = await createRoom(dave);
      await join(eve, roomId);
      const d0 = await sync(dave);
      await call(
        hs,
        dave,
        'PUT',
        `/_matrix/client/v3/user/${enc(dave.userId)}/account_data/m.ignored_user_list`,
        {
          ignored_users: { [eve.userId]: {} },
        },
      );
      await send(eve, roomId, 'you do not see me');
      await send(dave, roomId, 'talking to myself');
      const d1 = await sync(dave, { since: d0.next_batch });
      expect(bodies(d1.rooms.join[roomId]!.timeline.events)).to.deep.equal(['talking to myself']);
    });
  });

  describe('long polling', () => {
    it('wakes within ~100 ms of a message in a shared room', async () => {
      const roomId = await createRoom(alice);
      await join(bob, roomId);
      const b0 = await sync(bob);
      const started = Date.now();
      const polling = sync(bob, { since: b0.next_batch, timeout: 10_000 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const sentAt = Date.now();
      await send(alice, roomId, 'wake up');
      const b1 = await polling;
      const wokeAfter = Date.now() - sentAt;
      expect(bodies(b1.rooms.join[roomId]!.timeline.events)).to.deep.equal(['wake up']);
      expect(wokeAfter).to.be.below(150);
      expect(Date.now() - started).to.be.below(5000);
    });

    it('does not wake for a message in a room the user is not in', async () => {
      const roomId = await createRoom(alice);
      const elsewhere = await createRoom(carol);
      await join(bob, roomId);
      const b0 = await sync(bob);
      const started = Date.now();
      const polling = sync(bob, { since: b0.next_batch, timeout: 700 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      await send(carol, elsewhere, 'not for bob');
      const b1 = await polling;
      expect(Date.now() - started).to.be.at.least(650);
      expect(b1.rooms.join[elsewhere]).to.equal(undefined);
      expect(Object.keys(b1.rooms.join)).to.deep.equal([]);
      // Nothing concerned bob: the token covers the same events he already has.
      const b2 = await sync(bob, { since: b1.next_batch });
      expect(Object.keys(b2.rooms.join)).to.deep.equal([]);
    });

    it('wakes an invitee', async () => {
      const roomId = await createRoom(alice, { preset: 'private_chat' });
      const c0 = await sync(carol);
      const polling = sync(carol, { since: c0.next_batch, timeout: 10_000 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const started = Date.now();
      await call(hs, alice, 'POST', room(roomId, '/invite'), { user_id: carol.userId });
      const c1 = await polling;
      expect(Date.now() - started).to.be.below(1000);
      expect(c1.rooms.invite[roomId]).to.exist;
    });

    it('stops waiting when the client goes away', async () => {
      const b0 = await sync(bob);
      const notifier = hs.homeserver.context.notifier;
      const before = notifier.waiting;
      const abort = new AbortController();
      const polling = hs
        .fetch(`/_matrix/client/v3/sync?timeout=30000&since=${enc(b0.next_batch)}`, {
          headers: { Authorization: `Bearer ${bob.accessToken}` },
          signal: abort.signal,
        })
        .catch((error: Error) => error.name);
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(notifier.waiting).to.equal(before + 1);
      abort.abort();
      expect(await polling).to.equal('AbortError');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(notifier.waiting).to.equal(before);
    });
  });

  describe('filters', () => {
    it('stores filters per user and refuses other users', async () => {
      const filter = { room: { timeline: { limit: 3, types: ['m.room.message'] } }, presence: { types: [] } };
      const created = await call(
        hs,
        alice,
        'POST',
        `/_matrix/client/v3/user/${enc(alice.userId)}/filter`,
        filter,
      );
      expect(created.status).to.equal(200);
      const filterId = created.body.filter_id as string;
      const read = await call(
        hs,
        alice,
        'GET',
        `/_matrix/client/v3/user/${enc(alice.userId)}/filter/${enc(filterId)}`,
      );
      expect(read.status).to.equal(200);
      expect(read.body).to.deep.equal(filter);
      const forbidden = await call(
        hs,
        bob,
        'POST',
        `/_matrix/client/v3/user/${enc(alice.userId)}/filter`,
        filter,
      );
      expect(forbidden.status).to.equal(403);
      expect(forbidden.body.errcode).to.equal('M_FORBIDDEN');
      const othersFilter = await call(
        hs,
        bob,
        'GET',
        `/_matrix/client/v3/user/${enc(alice.userId)}/filter/${enc(filterId)}`,
      );
      expect(othersFilter.status).to.equal(403);
      const missing = await call(
        hs,
        alice,
        'GET',
        `/_matrix/client/v3/user/${enc(alice.userId)}/filter/nope`,
      );
      expect(missing.status).to.equal(404);
      const invalid = await call(hs, alice, 'POST', `/_matrix/client/v3/user/${enc(alice.userId)}/filter`, {
        room: { timeline: { limit: 'ten' } },
      });
      expect(invalid.status).to.equal(400);

      const roomId = await createRoom(alice);
      for (let i = 0; i < 5; i++) await send(alice, roomId, `f${i}`);
      const body = await sync(alice, { filter: filterId });
      const timeline = body.rooms.join[roomId]!.timeline;
      expect(timeline.events.map((event) => event.type)).to.deep.equal(Array(3).fill('m.room.message'));
      expect(bodies(timeline.events)).to.deep.equal(['f2', 'f3', 'f4']);
      expect(timeline.limited).to.equal(true);
      expect(body.presence.events).to.deep.equal([]);
    });

    it('applies rooms/not_rooms, event_fields and not_types', async () => {
      const kept = await createRoom(alice);
      const dropped = await createRoom(alice);
      await send(alice, kept, 'kept');
      const filter = JSON.stringify({
        event_fields: ['type', 'content.body', 'event_id'],
        room: { not_rooms: [dropped], timeline: { not_types: ['m.room.member', 'm.room.power*'] } },
      });
      const body = await sync(alice, { filter });
      expect(body.rooms.join[dropped]).to.equal(undefined);
      const events = body.rooms.join[kept]!.timeline.events;
      expect(events.some((event) => event.type === 'm.room.member')).to.equal(false);
      expect(events.some((event) => event.type === 'm.room.power_levels')).to.equal(false);
      const message = events.find((event) => event.type === 'm.room.message')!;
      expect(message).to.have.all.keys('type', 'content', 'event_id');
      expect(message.content).to.deep.equal({ body: 'kept' });
    });

    it('lazy-loads only the members of the timeline senders', async () => {
      const roomId = await createRoom(alice);
      await join(bob, roomId);
      await join(carol, roomId);
      for (let i = 0; i < 3; i++) await send(bob, roomId, `bob ${i}`);
      const filter = JSON.stringify({
        room: { rooms: [roomId], timeline: { limit: 3 }, state: { lazy_load_members: true } },
      });
      const body = await sync(alice, { filter });
      const joined = body.rooms.join[roomId]!;
      const members = joined.state.events
        .filter((event) => event.type === 'm.room.member')
        .map((event) => event.state_key);
      expect(members).to.have.members([bob.userId, alice.userId]);
      expect(joined.summary).to.deep.include({ 'm.joined_member_count': 3 });

      const unfiltered = await sync(alice, {
        filter: JSON.stringify({ room: { rooms: [roomId], timeline: { limit: 3 } } }),
      });
      const allMembers = unfiltered.rooms.join[roomId]!.state.events.filter(
        (event) => event.type === 'm.room.member',
      );
      expect(allMembers.map((event) => event.state_key)).to.have.members([
        alice.userId,
        bob.userId,
        carol.userId,
      ]);
    });
  });

  describe('more filters and presence', () => {
    it('skips membership the device already has when lazy-loading, unless redundant ones are asked for', async () => {
      const roomId = await createRoom(alice);
      await join(bob, roomId);
      await send(bob, roomId, 'first');
      const lazy = (redundant: boolean) =>
        JSON.stringify({
          room: {
            rooms: [roomId],
            timeline: { limit: 1 },
            state: { lazy_load_members: true, include_redundant_members: redundant },
          },
        });
      const members = (body: SyncBody) =>
        (body.rooms.join[roomId]?.state.events ?? [])
          .filter((event) => event.type === 'm.room.member')
          .map((event) => event.state_key);
      const a0 = await sync(alice, { filter: lazy(false) });
      expect(members(a0)).to.include(bob.userId);
      await send(bob, roomId, 'second');
      const a1 = await sync(alice, { filter: lazy(false), since: a0.next_batch });
      expect(bodies(a1.rooms.join[roomId]!.timeline.events)).to.deep.equal(['second']);
      expect(members(a1)).to.not.include(bob.userId);
      await send(bob, roomId, 'third');
      const a2 = await sync(alice, { filter: lazy(true), since: a1.next_batch });
      expect(members(a2)).to.include(bob.userId);
    });

    it('serves raw events with event_format federation', async () => {
      const roomId = await createRoom(alice);
      const eventId = await send(alice, roomId, 'raw');
      const body = await sync(alice, {
        filter: JSON.stringify({
          event_format: 'federation',
          room: { rooms: [roomId], timeline: { limit: 1 } },
        }),
      });
      const [event] = body.rooms.join[roomId]!.timeline.events as unknown as Record<string, unknown>[];
      expect(event).to.include.keys('hashes', 'signatures', 'prev_events', 'auth_events', 'depth');
      expect(event!.room_id).to.equal(roomId);
      expect(eventId).to.be.a('string');
    });

    it('hides invites from ignored users', async () => {
      const frank = await createUser(hs, 'frank-ignorer');
      const grace = await createUser(hs, 'grace-ignored');
      await call(
        hs,
        frank,
        'PUT',
        `/_matrix/client/v3/user/${enc(frank.userId)}/account_data/m.ignored_user_list`,
        {
          ignored_users: { [grace.userId]: {} },
        },
      );
      const roomId = await createRoom(grace, { preset: 'private_chat' });
      expect(
        (await call(hs, grace, 'POST', room(roomId, '/invite'), { user_id: frank.userId })).status,
      ).to.equal(200);
      const body = await sync(frank);
      expect(body.rooms.invite[roomId]).to.equal(undefined);
    });

    it('sets presence to unavailable with set_presence, seen by a room-sharer', async () => {
      const heidi = await createUser(hs, 'heidi-away');
      const roomId = await createRoom(alice);
      await join(heidi, roomId);
      const a0 = await sync(alice);
      await sync(heidi, { set_presence: 'unavailable' });
      const a1 = await sync(alice, { since: a0.next_batch });
      const presence = a1.presence.events.filter((event) => event.sender === heidi.userId);
      expect(presence.at(-1)?.content.presence).to.equal('unavailable');
    });
  });

  describe('transaction IDs', () => {
    it('echoes transaction_id to the sending device only', async () => {
      const roomId = await createRoom(alice);
      await join(bob, roomId);
      const aliceOtherDevice = await login(hs, alice.userId, alice.password);
      const [a0, o0, b0] = await Promise.all([sync(alice), sync(aliceOtherDevice), sync(bob)]);
      await send(alice, roomId, 'with txn', 'my-txn-1');
      const mine = (await sync(alice, { since: a0.next_batch })).rooms.join[roomId]!.timeline.events;
      const other = (await sync(aliceOtherDevice, { since: o0.next_batch })).rooms.join[roomId]!.timeline
        .events;
      const bobs = (await sync(bob, { since: b0.next_batch })).rooms.join[roomId]!.timeline.events;
      expect(mine[0]!.unsigned?.transaction_id).to.equal('my-txn-1');
      expect(other[0]!.unsigned?.transaction_id).to.equal(undefined);
      expect(bobs[0]!.unsigned?.transaction_id).to.equal(undefined);
      expect(mine[0]!.unsigned?.age).to.be.a('number');
    });
  });

  describe('bad input', () => {
    it('answers bad since tokens and filters with 400, never 500', async () => {
      const cases: [string, string][] = [
        ['since=garbage', 'M_INVALID_PARAM'],
        ['since=s1_2_3', 'M_INVALID_PARAM'],
        ['since=s1_a_3_4_5_6_7', 'M_INVALID_PARAM'],
        ['filter=no-such-filter', 'M_INVALID_PARAM'],
        [`filter=${enc('{"room": ')}`, 'M_NOT_JSON'],
        [`filter=${enc('{"room": {"timeline": {"limit": "x"}}}')}`, 'M_BAD_JSON'],
        [`filter=${enc('[1]')}`, 'M_NOT_JSON'],
        ['timeout=-5', 'M_INVALID_PARAM'],
        ['set_presence=busy', 'M_INVALID_PARAM'],
      ];
      for (const [query, errcode] of cases) {
        const res = await call(hs, alice, 'GET', `/_matrix/client/v3/sync?${query}`);
        expect(res.status, query).to.equal(400);
        expect(res.body.errcode, query).to.be.oneOf([errcode, 'M_INVALID_PARAM', 'M_BAD_JSON', 'M_NOT_JSON']);
      }
      expect((await call(hs, undefined, 'GET', '/_matrix/client/v3/sync')).status).to.equal(401);
    });

    it('clamps a token from the future instead of skipping what comes next', async () => {
      const roomId = await createRoom(alice);
      const future = 's999999999_999999_999999_999999_999999_0_0';
      const a1 = await sync(alice, { since: future });
      await send(alice, roomId, 'after the future');
      const a2 = await sync(alice, { since: a1.next_batch });
      expect(bodies(a2.rooms.join[roomId]!.timeline.events)).to.deep.equal(['after the future']);
    });
  });
});
