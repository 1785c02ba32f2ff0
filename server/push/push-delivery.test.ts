import { expect } from 'chai';
import type { RoomEvent } from '../../protocol/events.js';
import type { PushOutcome } from '../../protocol/push-rules/index.js';
import { openSqliteStorage, type SqliteStorage } from '../../storage/sqlite/sqlite-storage.js';
import { PushDelivery } from './push-delivery.js';
import type { ProducedNotification } from './push-evaluator.js';
import { httpPusher, type LoopbackGateway, startLoopbackGateway } from './push-test-fixtures.js';
import type { RoomPushFacts } from './room-push-facts.js';

/** The delivery on this thread (the fallback when no worker starts): what reaches a gateway. */
describe('push delivery (inline line)', () => {
  let gateway: LoopbackGateway;
  let url: string;
  let storage: SqliteStorage;
  let delivery: PushDelivery;
  /** The `notification` objects the gateway received. */
  const received = (): Record<string, unknown>[] =>
    gateway.received.map((body) => JSON.parse(body).notification);
  const room = '!r:example.org';
  const facts: RoomPushFacts = {
    joined: new Map([['@alice:example.org', 'Alice']]),
    localJoined: [],
    roomName: 'Room',
    senderMayNotify: () => false,
  };
  const outcome = { actions: ['notify', { set_tweak: 'sound', value: 'default' }] } as unknown as PushOutcome;
  let ordering = 0;

  async function notify(eventId: string, userIds: string[]): Promise<void> {
    const event: RoomEvent = {
      eventId,
      roomId: room,
      pdu: { type: 'm.room.message', sender: '@alice:example.org', content: { body: eventId } } as never,
    };
    const streamOrdering = ++ordering;
    await storage.push.addNotifications(
      userIds.map((userId) => ({
        userId,
        roomId: room,
        streamOrdering,
        threadId: 'main',
        actions: outcome.actions,
        highlight: false,
      })),
    );
    const produced: ProducedNotification[] = userIds.map((userId) => ({
      userId,
      event,
      streamOrdering,
      outcome,
      room: facts,
    }));
    delivery.deliver(produced);
  }

  const setPusher = (userId: string, pushkey: string) =>
    storage.push.setPusher(httpPusher(userId, pushkey, { url }), true);

  before(async () => {
    gateway = await startLoopbackGateway();
    url = gateway.url;
  });
  after(() => gateway.stop());
  beforeEach(async () => {
    gateway.received.length = 0;
    ordering = 0;
    storage = await openSqliteStorage({ path: ':memory:' });
    delivery = new PushDelivery({
      storage,
      policy: { allowPrivate: true, allowedHosts: [] },
      requestTimeoutMs: 2000,
      initialRetryDelayMs: 5,
      maxRetryDelayMs: 20,
      maxAttempts: 3,
      inline: true,
      log: { warn: () => {}, info: () => {} },
    });
  });
  afterEach(async () => {
    await delivery.stop();
    await storage.close();
  });

  it('pushes only users with pushers, with their badge counted on from storage', async () => {
    await setPusher('@bob:example.org', 'bob-phone');
    await notify('$1', ['@bob:example.org', '@carol:example.org']);
    await notify('$2', ['@carol:example.org', '@bob:example.org']);
    await delivery.idle();
    expect(received().map((n) => [n.event_id, (n.counts as { unread: number }).unread])).to.deep.equal([
      ['$1', 1],
      ['$2', 2],
    ]);
    expect(received()[0]).to.deep.include({
      room_id: room,
      type: 'm.room.message',
      sender: '@alice:example.org',
      sender_display_name: 'Alice',
      room_name: 'Room',
      prio: 'high',
      content: { body: '$1' },
    });
    expect(received()[0]!.devices).to.deep.equal([
      {
        app_id: 'app',
        pushkey: 'bob-phone',
        pushkey_ts: 1_700_000_000,
        data: {},
        tweaks: { sound: 'default' },
      },
    ]);
  });

  it('hears of pushers set later and of read marks that move', async () => {
    await notify('$1', ['@bob:example.org']);
    await delivery.idle();
    expect(received()).to.deep.equal([]);
    await setPusher('@bob:example.org', 'bob-phone');
    delivery.pushersChanged('@bob:example.org', true);
    await notify('$2', ['@bob:example.org']);
    await delivery.idle();
    // Bob read up to $2.
    await storage.push.advanceReadMark({
      userId: '@bob:example.org',
      roomId: room,
      threadId: null,
      streamOrdering: ordering,
    });
    delivery.readMoved('@bob:example.org');
    await notify('$3', ['@bob:example.org']);
    await delivery.idle();
    expect(received().map((n) => [n.event_id, (n.counts as { unread: number }).unread])).to.deep.equal([
      ['$2', 2],
      ['$3', 1],
    ]);
  });
});
