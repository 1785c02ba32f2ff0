/**
 * Push notifications end to end over real HTTP (issue #8): push rules and
 * per-conversation preferences, pushers, unread counts in sync cleared by read
 * receipts, /notifications, and delivery to a push gateway played by a real
 * HTTP server on loopback (config push.allow_private_gateways lets the server
 * call it).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { JsonObject } from '../protocol/events.js';
import type { HomeserverContext } from '../server/context.js';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const enc = encodeURIComponent;

interface GatewayNotification {
  event_id: string;
  room_id: string;
  prio?: string;
  type?: string;
  sender?: string;
  content?: JsonObject;
  counts?: { unread?: number };
  devices: { app_id: string; pushkey: string; pushkey_ts?: number; data: JsonObject; tweaks: JsonObject }[];
}

/** A push gateway: records each POST and answers as scripted (200 {rejected: []} by default). */
class TestGateway {
  readonly received: { notification: GatewayNotification; status: number }[] = [];
  /** Answers for the next requests, in order; afterwards 200. */
  readonly script: { status: number; rejected?: string[] }[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        const answer = this.script.shift() ?? { status: 200 };
        const parsed = JSON.parse(body) as { notification: GatewayNotification };
        this.received.push({ notification: parsed.notification, status: answer.status });
        res.writeHead(answer.status, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify(answer.status === 200 ? { rejected: answer.rejected ?? [] } : { error: 'down' }),
        );
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/_matrix/push/v1/notify`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  delivered(eventId: string) {
    return this.received.filter((entry) => entry.notification.event_id === eventId && entry.status === 200);
  }

  attempts(eventId: string) {
    return this.received.filter((entry) => entry.notification.event_id === eventId);
  }
}

interface RoomSection {
  unread_notifications?: { notification_count: number; highlight_count: number };
  unread_thread_notifications?: Record<string, { notification_count: number; highlight_count: number }>;
}
interface SyncBody {
  next_batch: string;
  account_data?: { events: { type: string; content: JsonObject }[] };
  rooms?: { join?: Record<string, RoomSection> };
}

describe('Push notifications (rules, pushers, counts, gateway delivery)', function () {
  this.timeout(20_000);
  let hs: TestHomeserver;
  let context: HomeserverContext;
  let gateway: TestGateway;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let dm: string;
  let group: string;
  let txn = 0;

  async function send(sender: TestUser, roomId: string, content: JsonObject, type = 'm.room.message') {
    const res = await call(
      hs,
      sender,
      'PUT',
      `/_matrix/client/v3/rooms/${enc(roomId)}/send/${type}/t${txn++}`,
      content,
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body.event_id as string;
  }

  const text = (body: string, extra: JsonObject = {}) => ({ msgtype: 'm.text', body, ...extra });

  async function settle(): Promise<void> {
    await context.push.idle();
  }

  async function sync(user: TestUser, since?: string, filter?: JsonObject): Promise<SyncBody> {
    const query = new URLSearchParams({ timeout: '0' });
    if (since !== undefined) query.set('since', since);
    if (filter !== undefined) query.set('filter', JSON.stringify(filter));
    const res = await call(hs, user, 'GET', `/_matrix/client/v3/sync?${query}`);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body as unknown as SyncBody;
  }

  async function putRule(user: TestUser, kind: string, ruleId: string, body: JsonObject, query = '') {
    const res = await call(
      hs,
      user,
      'PUT',
      `/_matrix/client/v3/pushrules/global/${kind}/${enc(ruleId)}${query}`,
      body,
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
  }

  async function deleteRule(user: TestUser, kind: string, ruleId: string) {
    const res = await call(hs, user, 'DELETE', `/_matrix/client/v3/pushrules/global/${kind}/${enc(ruleId)}`);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
  }

  async function setPusher(user: TestUser, pushkey: string, extra: JsonObject = {}) {
    return call(hs, user, 'POST', '/_matrix/client/v3/pushers/set', {
      kind: 'http',
      app_id: 'org.example.push-test',
      pushkey,
      app_display_name: 'Push test',
      device_display_name: 'Phone',
      lang: 'en',
      data: { url: gateway.url },
      ...extra,
    });
  }

  before(async () => {
    gateway = new TestGateway();
    await gateway.start();
    hs = await TestHomeserver.start({
      configure: (config) => {
        fastAccounts(config);
        config.push.allow_private_gateways = true;
        config.push.initial_retry_delay_ms = 50;
      },
    });
    context = hs.homeserver.context;
    [alice, bob, carol] = await Promise.all([
      createUser(hs, 'push-alice'),
      createUser(hs, 'push-bob'),
      createUser(hs, 'push-carol'),
    ]);
    const created = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'trusted_private_chat',
      is_direct: true,
      invite: [bob.userId],
    });
    dm = created.body.room_id as string;
    expect((await call(hs, bob, 'POST', `/_matrix/client/v3/join/${enc(dm)}`, {})).status).to.equal(200);
    group = (await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body
      .room_id as string;
    for (const user of [bob, carol]) {
      expect((await call(hs, user, 'POST', `/_matrix/client/v3/join/${enc(group)}`, {})).status).to.equal(
        200,
      );
    }
    expect((await setPusher(bob, 'bob-phone')).status).to.equal(200);
    await settle();
  });
  after(async () => {
    await hs.stop();
    await gateway.stop();
  });

  describe('pushers', () => {
    it('lists the pusher that was set, and refuses email, bad URLs and missing fields', async () => {
      const list = await call(hs, bob, 'GET', '/_matrix/client/v3/pushers');
      expect(list.body.pushers).to.deep.equal([
        {
          pushkey: 'bob-phone',
          kind: 'http',
          app_id: 'org.example.push-test',
          app_display_name: 'Push test',
          device_display_name: 'Phone',
          lang: 'en',
          data: { url: gateway.url },
        },
      ]);
      const email = await setPusher(carol, 'carol@example.org', { kind: 'email', app_id: 'm.email' });
      expect(email.status).to.equal(400);
      expect(email.body.error).to.match(/email/i);
      const wrongPath = await setPusher(carol, 'k', {
        data: { url: gateway.url.replace('/notify', '/other') },
      });
      expect(wrongPath.status).to.equal(400);
      const missing = await call(hs, carol, 'POST', '/_matrix/client/v3/pushers/set', {
        kind: 'http',
        app_id: 'a',
        pushkey: 'k',
      });
      expect(missing).to.deep.include({ status: 400 });
      expect(missing.body.errcode).to.equal('M_MISSING_PARAM');
      expect((await call(hs, carol, 'GET', '/_matrix/client/v3/pushers')).body.pushers).to.deep.equal([]);
    });

    it('a deactivated account loses its pushers', async () => {
      const erin = await createUser(hs, 'push-erin');
      expect((await setPusher(erin, 'erin-phone')).status).to.equal(200);
      const first = await call(hs, erin, 'POST', '/_matrix/client/v3/account/deactivate', {});
      const auth = {
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: erin.userId },
        password: erin.password,
        session: first.body.session,
      };
      expect(
        (await call(hs, erin, 'POST', '/_matrix/client/v3/account/deactivate', { auth })).status,
      ).to.equal(200);
      expect(await context.storage.push.pushersOfUser(erin.userId)).to.deep.equal([]);
    });

    it('refuses private gateway addresses unless the config allows them', async () => {
      const strict = await TestHomeserver.start({ configure: fastAccounts });
      try {
        const dave = await createUser(strict, 'push-dave');
        const res = await call(strict, dave, 'POST', '/_matrix/client/v3/pushers/set', {
          kind: 'http',
          app_id: 'a',
          pushkey: 'k',
          app_display_name: 'A',
          device_display_name: 'D',
          lang: 'en',
          data: { url: 'https://127.0.0.1:1/_matrix/push/v1/notify' },
        });
        expect(res.status).to.equal(400);
      } finally {
        await strict.stop();
      }
    });
  });

  describe('what reaches the gateway', () => {
    it('a 1:1 message notifies with the default sound', async () => {
      const eventId = await send(alice, dm, text('hello bob'));
      await settle();
      const [entry] = gateway.delivered(eventId);
      expect(entry, 'delivered').to.not.equal(undefined);
      const { notification } = entry!;
      expect(notification).to.deep.include({
        room_id: dm,
        type: 'm.room.message',
        sender: alice.userId,
        prio: 'high',
      });
      expect(notification.content).to.deep.equal(text('hello bob'));
      expect(notification.devices).to.deep.equal([
        {
          app_id: 'org.example.push-test',
          pushkey: 'bob-phone',
          pushkey_ts: notification.devices[0]!.pushkey_ts,
          data: {},
          tweaks: { sound: 'default' },
        },
      ]);
      expect(notification.counts?.unread).to.be.greaterThan(0);
      // The sender is never notified of their own event.
      expect(gateway.attempts(eventId)).to.have.length(1);
    });

    it('a mention is highlighted', async () => {
      const eventId = await send(
        alice,
        group,
        text('bob: look', { 'm.mentions': { user_ids: [bob.userId] } }),
      );
      await settle();
      expect(gateway.delivered(eventId)[0]?.notification.devices[0]?.tweaks).to.deep.include({
        highlight: true,
      });
    });

    it('a muted room sends nothing, not even mentions, until unmuted', async () => {
      await putRule(bob, 'override', group, {
        actions: [],
        conditions: [{ kind: 'event_match', key: 'room_id', pattern: group }],
      });
      const plain = await send(alice, group, text('anyone?'));
      const mention = await send(alice, group, text('bob?', { 'm.mentions': { user_ids: [bob.userId] } }));
      await settle();
      expect(gateway.attempts(plain)).to.deep.equal([]);
      expect(gateway.attempts(mention)).to.deep.equal([]);
      await deleteRule(bob, 'override', group);
      const after = await send(alice, group, text('now?'));
      await settle();
      expect(gateway.delivered(after)).to.have.length(1);
    });

    it('mentions-only in a room: plain messages are silent, mentions still highlight', async () => {
      await putRule(bob, 'room', group, { actions: [] });
      const plain = await send(alice, group, text('chatter'));
      const mention = await send(alice, group, text('bob!', { 'm.mentions': { user_ids: [bob.userId] } }));
      await settle();
      expect(gateway.attempts(plain)).to.deep.equal([]);
      expect(gateway.delivered(mention)[0]?.notification.devices[0]?.tweaks).to.deep.include({
        highlight: true,
      });
      await deleteRule(bob, 'room', group);
    });

    it('reactions notify only while wanted: a custom rule mutes them again', async () => {
      const target = await send(bob, group, text('react to me'));
      const reaction = (key: string) => ({
        'm.relates_to': { rel_type: 'm.annotation', event_id: target, key },
      });
      // Server default: reactions are silent. Bob turns them on, then mutes them with his own rule.
      expect(
        (
          await call(
            hs,
            bob,
            'PUT',
            '/_matrix/client/v3/pushrules/global/override/.m.rule.reaction/actions',
            {
              actions: ['notify'],
            },
          )
        ).status,
      ).to.equal(200);
      const wanted = await send(alice, group, reaction('👍'), 'm.reaction');
      await settle();
      expect(gateway.delivered(wanted)).to.have.length(1);
      await putRule(bob, 'override', 'mute-reactions', {
        actions: [],
        conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.reaction' }],
      });
      const muted = await send(carol, group, reaction('🎉'), 'm.reaction');
      await settle();
      expect(gateway.attempts(muted)).to.deep.equal([]);
    });

    it('a keyword rule highlights matching words only', async () => {
      await putRule(bob, 'content', 'cake', {
        pattern: 'cake',
        actions: ['notify', { set_tweak: 'highlight' }],
      });
      const hit = await send(alice, group, text('Cake time!'));
      const miss = await send(alice, group, text('cakes are lies'));
      await settle();
      expect(gateway.delivered(hit)[0]?.notification.devices[0]?.tweaks).to.deep.equal({ highlight: true });
      expect(gateway.delivered(miss)[0]?.notification.devices[0]?.tweaks).to.deep.equal({});
      await deleteRule(bob, 'content', 'cake');
    });

    it('an invitation notifies the invitee, who is its target', async () => {
      const room = (
        await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'private_chat' })
      ).body.room_id as string;
      const invite = await call(hs, alice, 'POST', `/_matrix/client/v3/rooms/${enc(room)}/invite`, {
        user_id: bob.userId,
      });
      expect(invite.status).to.equal(200);
      await settle();
      const entry = gateway.received.find(
        (candidate) =>
          candidate.notification.room_id === room && candidate.notification.type === 'm.room.member',
      );
      expect(entry?.notification).to.deep.include({ user_is_target: true, sender: alice.userId });
      expect(entry?.notification.devices[0]?.tweaks).to.deep.equal({ sound: 'default' });
    });

    it("the badge counts the user's unread notifications, and a read receipt brings it down", async () => {
      const room = (await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }))
        .body.room_id as string;
      await call(hs, bob, 'POST', `/_matrix/client/v3/join/${enc(room)}`, {});
      const badge = (eventId: string) => gateway.delivered(eventId)[0]?.notification.counts?.unread;
      const first = await send(alice, room, text('one'));
      const second = await send(alice, room, text('two'));
      await settle();
      expect(badge(second)).to.equal(badge(first)! + 1);
      expect(badge(second)).to.equal(await context.storage.push.totalUnread(bob.userId));
      const receipt = await call(
        hs,
        bob,
        'POST',
        `/_matrix/client/v3/rooms/${enc(room)}/receipt/m.read/${enc(second)}`,
        {},
      );
      expect(receipt.status).to.equal(200);
      const third = await send(alice, room, text('three'));
      await settle();
      expect(badge(third)).to.equal(badge(second)! - 1);
      expect(badge(third)).to.equal(await context.storage.push.totalUnread(bob.userId));
    });

    it('a gateway answering 500 then 200 gets the notification exactly once', async () => {
      gateway.script.push({ status: 500 });
      const eventId = await send(alice, dm, text('retry me'));
      await settle();
      expect(gateway.attempts(eventId).map((entry) => entry.status)).to.deep.equal([500, 200]);
      expect(gateway.delivered(eventId)).to.have.length(1);
    });

    it('a pushkey the gateway rejects disappears from /pushers', async () => {
      expect((await setPusher(bob, 'bob-old-tablet', { append: true })).status).to.equal(200);
      gateway.script.push({ status: 200, rejected: ['bob-old-tablet'] });
      const eventId = await send(alice, dm, text('who is still there?'));
      await settle();
      const devices = gateway.delivered(eventId)[0]?.notification.devices.map((device) => device.pushkey);
      expect(devices?.sort()).to.deep.equal(['bob-old-tablet', 'bob-phone']);
      const pushers = (await call(hs, bob, 'GET', '/_matrix/client/v3/pushers')).body.pushers as JsonObject[];
      expect(pushers.map((pusher) => pusher.pushkey)).to.deep.equal(['bob-phone']);
    });

    it('event_id_only pushers get no event details', async () => {
      expect(
        (await setPusher(carol, 'carol-phone', { data: { url: gateway.url, format: 'event_id_only' } }))
          .status,
      ).to.equal(200);
      const eventId = await send(
        alice,
        group,
        text('secret', { 'm.mentions': { user_ids: [carol.userId] } }),
      );
      await settle();
      const notification = gateway
        .delivered(eventId)
        .find((entry) =>
          entry.notification.devices.some((device) => device.pushkey === 'carol-phone'),
        )?.notification;
      expect(notification).to.not.equal(undefined);
      expect(notification).to.not.have.any.keys('content', 'sender', 'type');
      expect(notification!.devices[0]!.data).to.deep.equal({ format: 'event_id_only' });
      await call(hs, carol, 'POST', '/_matrix/client/v3/pushers/set', {
        kind: null,
        app_id: 'org.example.push-test',
        pushkey: 'carol-phone',
      });
      expect((await call(hs, carol, 'GET', '/_matrix/client/v3/pushers')).body.pushers).to.deep.equal([]);
    });
  });

  describe('unread counts and /notifications', () => {
    it("sync counts a room's notifications and highlights, and a read receipt clears them", async () => {
      const room = (await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }))
        .body.room_id as string;
      await call(hs, bob, 'POST', `/_matrix/client/v3/join/${enc(room)}`, {});
      await call(hs, carol, 'POST', `/_matrix/client/v3/join/${enc(room)}`, {});
      const start = await sync(bob);
      expect(start.rooms?.join?.[room]?.unread_notifications).to.deep.equal({
        notification_count: 0,
        highlight_count: 0,
      });
      await send(alice, room, text('one'));
      await send(alice, room, text('two', { 'm.mentions': { user_ids: [bob.userId] } }));
      const last = await send(carol, room, text('three'));
      // No waiting here: the counts must come with the events in the same response.
      const next = await sync(bob, start.next_batch);
      expect(next.rooms?.join?.[room]?.unread_notifications).to.deep.equal({
        notification_count: 3,
        highlight_count: 1,
      });
      const counts = await context.push.unreadCounts(bob.userId, [room]);
      expect(counts.get(room)).to.deep.include({ notificationCount: 3, highlightCount: 1 });

      const receipt = await call(
        hs,
        bob,
        'POST',
        `/_matrix/client/v3/rooms/${enc(room)}/receipt/m.read/${enc(last)}`,
        {},
      );
      expect(receipt.status).to.equal(200);
      const cleared = await sync(bob, next.next_batch);
      expect(cleared.rooms?.join?.[room]?.unread_notifications).to.deep.equal({
        notification_count: 0,
        highlight_count: 0,
      });

      // A private receipt clears too; the user's own message counts as read up to it.
      const again = await send(alice, room, text('four'));
      await settle();
      expect((await context.push.unreadCounts(bob.userId, [room])).get(room)?.notificationCount).to.equal(1);
      await call(
        hs,
        bob,
        'POST',
        `/_matrix/client/v3/rooms/${enc(room)}/receipt/m.read.private/${enc(again)}`,
        {},
      );
      expect((await context.push.unreadCounts(bob.userId, [room])).has(room)).to.equal(false);
      await send(alice, room, text('five'));
      await send(bob, room, text('my reply'));
      await settle();
      expect((await context.push.unreadCounts(bob.userId, [room])).has(room)).to.equal(false);
    });

    it('members on the default rules evaluate alike, except the one a message mentions', async () => {
      const [dave, erin] = await Promise.all([
        createUser(hs, 'push-shared-dave'),
        createUser(hs, 'push-shared-erin'),
      ]);
      const room = (await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }))
        .body.room_id as string;
      for (const user of [dave, erin])
        await call(hs, user, 'POST', `/_matrix/client/v3/join/${enc(room)}`, {});
      // Whichever of the two comes first among the members, each mention highlights only its user.
      await send(alice, room, text('erin?', { 'm.mentions': { user_ids: [erin.userId] } }));
      await send(alice, room, text('erin!', { 'm.mentions': { user_ids: [erin.userId] } }));
      await send(alice, room, text('dave?', { 'm.mentions': { user_ids: [dave.userId] } }));
      await send(alice, room, text('anyone?'));
      await settle();
      const counts = async (user: TestUser) =>
        (await context.push.unreadCounts(user.userId, [room])).get(room);
      expect(await counts(erin)).to.deep.include({ notificationCount: 4, highlightCount: 2 });
      expect(await counts(dave)).to.deep.include({ notificationCount: 4, highlightCount: 1 });
      // A member with a rule of their own is still evaluated on it.
      await putRule(dave, 'override', 'quiet-here', {
        actions: [],
        conditions: [{ kind: 'event_match', key: 'room_id', pattern: room }],
      });
      await send(alice, room, text('erin again', { 'm.mentions': { user_ids: [erin.userId] } }));
      await settle();
      expect(await counts(erin)).to.deep.include({ notificationCount: 5, highlightCount: 3 });
      expect(await counts(dave)).to.deep.include({ notificationCount: 4, highlightCount: 1 });
    });

    it('counts threads apart when the filter asks, and threaded receipts clear one thread', async () => {
      const room = (await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }))
        .body.room_id as string;
      await call(hs, bob, 'POST', `/_matrix/client/v3/join/${enc(room)}`, {});
      await call(hs, carol, 'POST', `/_matrix/client/v3/join/${enc(room)}`, {});
      const root = await send(alice, room, text('root'));
      const inThread = await send(
        alice,
        room,
        text('in thread', { 'm.relates_to': { rel_type: 'm.thread', event_id: root } }),
      );
      await send(
        alice,
        room,
        text('in thread too', { 'm.relates_to': { rel_type: 'm.thread', event_id: root } }),
      );
      const filter = { room: { timeline: { unread_thread_notifications: true } } };
      const body = await sync(bob, undefined, filter);
      expect(body.rooms?.join?.[room]?.unread_notifications).to.deep.equal({
        notification_count: 1,
        highlight_count: 0,
      });
      expect(body.rooms?.join?.[room]?.unread_thread_notifications).to.deep.equal({
        [root]: { notification_count: 2, highlight_count: 0 },
      });
      const unfiltered = await sync(bob);
      expect(unfiltered.rooms?.join?.[room]?.unread_notifications?.notification_count).to.equal(3);
      await call(hs, bob, 'POST', `/_matrix/client/v3/rooms/${enc(room)}/receipt/m.read/${enc(inThread)}`, {
        thread_id: root,
      });
      const counts = (await context.push.unreadCounts(bob.userId, [room])).get(room);
      expect(counts?.notificationCount).to.equal(2);
      expect(counts?.threads.get(root)?.notificationCount).to.equal(1);
      // An event related to a thread reply (not itself an m.thread relation) belongs to that thread.
      await send(
        carol,
        room,
        text('see above', { 'm.relates_to': { rel_type: 'm.reference', event_id: inThread } }),
      );
      await settle();
      const after = (await context.push.unreadCounts(bob.userId, [room])).get(room);
      expect(after?.threads.get(root)?.notificationCount).to.equal(2);
      expect(after?.threads.get('main')?.notificationCount).to.equal(1);
    });

    it('/notifications lists newest first, pages with from, and filters highlights', async () => {
      const all = await call(hs, bob, 'GET', '/_matrix/client/v3/notifications?limit=2');
      expect(all.status).to.equal(200);
      const page = all.body.notifications as {
        event: JsonObject;
        read: boolean;
        room_id: string;
        actions: unknown[];
      }[];
      expect(page).to.have.length(2);
      expect(typeof all.body.next_token).to.equal('string');
      const next = await call(
        hs,
        bob,
        'GET',
        `/_matrix/client/v3/notifications?limit=2&from=${all.body.next_token}`,
      );
      const nextPage = next.body.notifications as { event: JsonObject }[];
      expect(nextPage).to.have.length(2);
      expect(nextPage[0]!.event.event_id).to.not.equal(page[1]!.event.event_id);
      const highlights = await call(
        hs,
        bob,
        'GET',
        '/_matrix/client/v3/notifications?only=highlight&limit=50',
      );
      const items = highlights.body.notifications as { actions: unknown[] }[];
      expect(items.length).to.be.greaterThan(0);
      for (const item of items) expect(item.actions).to.deep.include({ set_tweak: 'highlight' });
    });
  });

  describe('/pushrules', () => {
    it('serves the default rules and shows them in sync as m.push_rules', async () => {
      const res = await call(hs, carol, 'GET', '/_matrix/client/v3/pushrules/');
      const global = (res.body.global as Record<string, { rule_id: string }[]>)!;
      expect(global.override![0]!.rule_id).to.equal('.m.rule.master');
      expect(global.underride!.map((rule) => rule.rule_id)).to.include('.m.rule.room_one_to_one');
      const body = await sync(carol);
      const pushRules = body.account_data?.events.find((event) => event.type === 'm.push_rules');
      expect((pushRules?.content.global as JsonObject | undefined)?.override).to.deep.equal(global.override);
      const refused = await call(
        hs,
        carol,
        'PUT',
        `/_matrix/client/v3/user/${enc(carol.userId)}/account_data/m.push_rules`,
        {
          global: {},
        },
      );
      expect(refused.status).to.equal(405);
    });

    it('creates, orders, reads, disables and deletes rules; defaults cannot be deleted', async () => {
      await putRule(carol, 'override', 'first', { actions: ['notify'], conditions: [] });
      await putRule(carol, 'override', 'second', { actions: [] }, '?after=first');
      await putRule(carol, 'override', 'zeroth', { actions: [] }, '?before=first');
      const global = (await call(hs, carol, 'GET', '/_matrix/client/v3/pushrules/global/')).body as Record<
        string,
        { rule_id: string }[]
      >;
      expect(global.override!.map((rule) => rule.rule_id).slice(0, 4)).to.deep.equal([
        '.m.rule.master',
        'zeroth',
        'first',
        'second',
      ]);
      const rule = await call(hs, carol, 'GET', '/_matrix/client/v3/pushrules/global/override/first');
      expect(rule.body).to.deep.equal({
        rule_id: 'first',
        default: false,
        enabled: true,
        actions: ['notify'],
        conditions: [],
      });
      expect(
        (
          await call(hs, carol, 'PUT', '/_matrix/client/v3/pushrules/global/override/first/enabled', {
            enabled: false,
          })
        ).status,
      ).to.equal(200);
      expect(
        (await call(hs, carol, 'GET', '/_matrix/client/v3/pushrules/global/override/first/enabled')).body,
      ).to.deep.equal({ enabled: false });
      expect(
        (
          await call(
            hs,
            carol,
            'PUT',
            '/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled',
            { enabled: true },
          )
        ).status,
      ).to.equal(200);
      expect(
        (await call(hs, carol, 'GET', '/_matrix/client/v3/pushrules/global/override/.m.rule.master')).body,
      ).to.deep.include({ default: true, enabled: true });
      expect(
        (
          await call(
            hs,
            carol,
            'GET',
            '/_matrix/client/v3/pushrules/global/underride/.m.rule.message/actions',
          )
        ).body,
      ).to.deep.equal({ actions: ['notify'] });
      expect(
        (await call(hs, carol, 'DELETE', '/_matrix/client/v3/pushrules/global/override/.m.rule.master'))
          .status,
      ).to.equal(400);
      expect(
        (await call(hs, carol, 'PUT', '/_matrix/client/v3/pushrules/global/override/.mine', { actions: [] }))
          .status,
      ).to.equal(400);
      expect(
        (
          await call(hs, carol, 'PUT', '/_matrix/client/v3/pushrules/global/override/x?before=nope', {
            actions: [],
          })
        ).status,
      ).to.equal(404);
      expect(
        (await call(hs, carol, 'GET', '/_matrix/client/v3/pushrules/global/override/nope')).status,
      ).to.equal(404);
      expect((await call(hs, carol, 'GET', '/_matrix/client/v3/pushrules/global/bogus/x')).status).to.equal(
        400,
      );
      await deleteRule(carol, 'override', 'first');
      expect(
        (await call(hs, carol, 'GET', '/_matrix/client/v3/pushrules/global/override/first')).status,
      ).to.equal(404);
    });
  });

  describe('delivery yields to sends (push.delivery_quiet_ms, push.delivery_max_hold_ms)', () => {
    let busy: TestHomeserver;
    let busyGateway: TestGateway;
    let sender: TestUser;
    let receiver: TestUser;
    let room: string;
    let busyTxn = 0;
    const sendTo = async (content: JsonObject) => {
      const res = await call(
        busy,
        sender,
        'PUT',
        `/_matrix/client/v3/rooms/${enc(room)}/send/m.room.message/b${busyTxn++}`,
        content,
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      return res.body.event_id as string;
    };

    before(async () => {
      busyGateway = new TestGateway();
      await busyGateway.start();
      busy = await TestHomeserver.start({
        configure: (config) => {
          fastAccounts(config);
          config.push.allow_private_gateways = true;
          // Sends a few ms apart never leave a second's quiet: only the bound lets pushes go.
          config.push.delivery_quiet_ms = 1_000;
          config.push.delivery_max_hold_ms = 300;
        },
      });
      [sender, receiver] = await Promise.all([createUser(busy, 'busy-alice'), createUser(busy, 'busy-bob')]);
      room = (
        await call(busy, sender, 'POST', '/_matrix/client/v3/createRoom', {
          preset: 'trusted_private_chat',
          is_direct: true,
          invite: [receiver.userId],
        })
      ).body.room_id as string;
      expect(
        (await call(busy, receiver, 'POST', `/_matrix/client/v3/join/${enc(room)}`, {})).status,
      ).to.equal(200);
      const pusher = await call(busy, receiver, 'POST', '/_matrix/client/v3/pushers/set', {
        kind: 'http',
        app_id: 'org.example.push-test',
        pushkey: 'busy-phone',
        app_display_name: 'Push test',
        device_display_name: 'Phone',
        lang: 'en',
        data: { url: busyGateway.url },
      });
      expect(pusher.status).to.equal(200);
      // The delivery worker starts and learns the receiver (not timed below).
      await sendTo(text('warm-up'));
      await busy.homeserver.context.push.idle();
      busyGateway.received.length = 0;
    });
    after(async () => {
      await busy.stop();
      await busyGateway.stop();
    });

    it('holds a push while sends go on, and delivers it within the bound though they never pause', async () => {
      const first = await sendTo(text('first of many'));
      const sentAt = performance.now();
      let arrivedAt: number | undefined;
      let more = 0;
      // The sender keeps sending until the first message's push arrives (5 s at most).
      while (arrivedAt === undefined && performance.now() - sentAt < 5_000) {
        await sendTo(text(`more ${more++}`));
        if (busyGateway.delivered(first).length > 0) arrivedAt = performance.now();
      }
      expect(arrivedAt, 'pushed while the sends went on').to.not.equal(undefined);
      // Held (not sent at once), then let go by the bound, not by a quiet second.
      expect(arrivedAt! - sentAt).to.be.within(250, 1_000);
      await busy.homeserver.context.push.idle();
      // Every message was pushed, in order.
      expect(busyGateway.received.map((entry) => entry.notification.content?.body)).to.deep.equal([
        'first of many',
        ...Array.from({ length: more }, (_, i) => `more ${i}`),
      ]);
    });
  });
});
