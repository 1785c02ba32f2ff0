import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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
    delivery.deliver(await produce(eventId, userIds));
  }

  /** Stores the notifications of one event and returns them as the evaluator hands them on. */
  async function produce(eventId: string, userIds: string[]): Promise<ProducedNotification[]> {
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
    return userIds.map((userId) => ({ userId, event, streamOrdering, outcome, room: facts }));
  }

  /** Each user's pushes as [event ID, badge], in the order the gateway received them. */
  const pushesByUser = (): Record<string, [unknown, unknown][]> => {
    const byUser: Record<string, [unknown, unknown][]> = {};
    for (const body of gateway.received) {
      const { notification } = JSON.parse(body);
      const pushkey = notification.devices[0].pushkey as string;
      byUser[pushkey] = [...(byUser[pushkey] ?? []), [notification.event_id, notification.counts.unread]];
    }
    return byUser;
  };
  const warnings: string[] = [];
  const infos: string[] = [];

  const setPusher = (userId: string, pushkey: string) =>
    storage.push.setPusher(httpPusher(userId, pushkey, { url }), true);

  before(async () => {
    gateway = await startLoopbackGateway();
    url = gateway.url;
  });
  after(() => gateway.stop());
  beforeEach(async () => {
    gateway.received.length = 0;
    warnings.length = 0;
    infos.length = 0;
    ordering = 0;
    storage = await openSqliteStorage({ path: ':memory:' });
    delivery = inlineDelivery();
  });
  afterEach(async () => {
    await delivery.stop();
    await storage.close();
  });

  function inlineDelivery(
    maxPendingPushes?: number,
    yieldToSends: { deliveryQuietMs?: number; deliveryMaxHoldMs?: number } = {},
  ): PushDelivery {
    return testDelivery(storage, {
      ...yieldToSends,
      inline: true,
      maxPendingPushes,
      log: {
        warn: (_fields, message) => warnings.push(message),
        info: (_fields, message) => infos.push(message),
      },
    });
  }

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
    delivery.pushersChanged('@bob:example.org');
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

  it("groups each event's users wherever they come in the evaluator's batch", async () => {
    await setPusher('@bob:example.org', 'bob-phone');
    await setPusher('@carol:example.org', 'carol-phone');
    const first = await produce('$1', ['@bob:example.org', '@carol:example.org']);
    const second = await produce('$2', ['@bob:example.org', '@carol:example.org']);
    // Interleaved: $1 bob, $2 bob, $1 carol, $2 carol.
    delivery.deliver([first[0]!, second[0]!, first[1]!, second[1]!]);
    await delivery.idle();
    expect(pushesByUser()).to.deep.equal({
      'bob-phone': [
        ['$1', 1],
        ['$2', 2],
      ],
      'carol-phone': [
        ['$1', 1],
        ['$2', 2],
      ],
    });
  });

  it('stops pushing a user whose pushers are gone, and pushes again once one is set', async () => {
    await setPusher('@bob:example.org', 'bob-phone');
    await notify('$1', ['@bob:example.org']);
    await delivery.idle();
    await storage.push.deletePusher('@bob:example.org', 'app', 'bob-phone');
    delivery.pushersChanged('@bob:example.org');
    await notify('$2', ['@bob:example.org']);
    await delivery.idle();
    await setPusher('@bob:example.org', 'bob-tablet');
    delivery.pushersChanged('@bob:example.org');
    await notify('$3', ['@bob:example.org']);
    await delivery.idle();
    expect(pushesByUser()).to.deep.equal({ 'bob-phone': [['$1', 1]], 'bob-tablet': [['$3', 3]] });
  });

  it('drops new pushes while too many wait, then pushes again with the badge read afresh', async () => {
    await setPusher('@bob:example.org', 'bob-phone');
    await setPusher('@carol:example.org', 'carol-phone');
    await delivery.stop();
    delivery = inlineDelivery(2);
    await notify('$1', ['@bob:example.org', '@carol:example.org']);
    await delivery.idle();
    const release = gateway.hold();
    await notify('$2', ['@bob:example.org', '@carol:example.org']);
    // At most 2 pushes wait: $2's wait for the gateway, $3's is dropped.
    await notify('$3', ['@bob:example.org']);
    expect(warnings).to.have.length(1);
    release();
    gateway.hold()();
    await delivery.idle();
    expect(warnings).to.include('Push delivery caught up; pushing again');
    await notify('$4', ['@bob:example.org']);
    await delivery.idle();
    // Bob's badge counts $3, which was not pushed.
    expect(pushesByUser()).to.deep.equal({
      'bob-phone': [
        ['$1', 1],
        ['$2', 2],
        ['$4', 4],
      ],
      'carol-phone': [
        ['$1', 1],
        ['$2', 2],
      ],
    });
  });
  it('keeps the order and every badge while sends hold the line back', async () => {
    await setPusher('@bob:example.org', 'bob-phone');
    await delivery.stop();
    delivery = inlineDelivery(undefined, { deliveryQuietMs: 100, deliveryMaxHoldMs: 10_000 });
    await notify('$0', ['@bob:example.org']);
    await delivery.idle();
    // Sends go on: $1 and $2 wait, then Bob reads up to $2, then $3.
    delivery.noteSend();
    await notify('$1', ['@bob:example.org']);
    await notify('$2', ['@bob:example.org']);
    await storage.push.advanceReadMark({
      userId: '@bob:example.org',
      roomId: room,
      threadId: null,
      streamOrdering: ordering,
    });
    delivery.readMoved('@bob:example.org');
    await new Promise((resolve) => setTimeout(resolve, 20));
    delivery.noteSend();
    await notify('$3', ['@bob:example.org']);
    expect(received().map((n) => n.event_id)).to.deep.equal(['$0']);
    await delivery.idle();
    // As without holding: the read move counts after $2, not before.
    expect(pushesByUser()).to.deep.equal({
      'bob-phone': [
        ['$0', 1],
        ['$1', 2],
        ['$2', 3],
        ['$3', 1],
      ],
    });
  });
  it('pushes a batch larger than the bound when nothing waits, and keeps pushing after it', async () => {
    await setPusher('@bob:example.org', 'bob-phone');
    await setPusher('@carol:example.org', 'carol-phone');
    await setPusher('@dan:example.org', 'dan-phone');
    await delivery.stop();
    delivery = inlineDelivery(2);
    // Three pushes at once with a bound of two: nothing waits, so the line takes them all.
    await notify('$1', ['@bob:example.org', '@carol:example.org', '@dan:example.org']);
    await delivery.idle();
    await notify('$2', ['@bob:example.org']);
    await delivery.idle();
    expect(pushesByUser()).to.deep.equal({
      'bob-phone': [
        ['$1', 1],
        ['$2', 2],
      ],
      'carol-phone': [['$1', 1]],
      'dan-phone': [['$1', 1]],
    });
    expect(warnings).to.deep.equal([]);
  });
});

/** The delivery worker thread, as the server runs it. */
describe('push delivery (worker thread)', () => {
  it('delivers promptly from a worker that runs at SCHED_IDLE where Linux and chrt allow', async () => {
    const gateway = await startLoopbackGateway();
    const storage = await openSqliteStorage({ path: ':memory:' });
    const idleBefore = idleThreads();
    const delivery = testDelivery(storage);
    try {
      await storage.push.setPusher(httpPusher('@bob:example.org', 'bob-phone', { url: gateway.url }), true);
      const event: RoomEvent = {
        eventId: '$1',
        roomId: '!r:example.org',
        pdu: { type: 'm.room.message', sender: '@alice:example.org', content: { body: 'hi' } } as never,
      };
      const room: RoomPushFacts = {
        joined: new Map(),
        localJoined: [],
        roomName: undefined,
        senderMayNotify: () => false,
      };
      const started = performance.now();
      delivery.deliver([
        {
          userId: '@bob:example.org',
          event,
          streamOrdering: 1,
          outcome: { actions: ['notify'] } as unknown as PushOutcome,
          room,
        },
      ]);
      await delivery.idle();
      // The worker's start (tsx compiling its modules) included.
      expect(performance.now() - started).to.be.below(5_000);
      expect(gateway.received.map((body) => JSON.parse(body).notification.event_id)).to.deep.equal(['$1']);
      if (process.platform === 'linux' && chrtAvailable()) {
        expect(idleThreads().filter((tid) => !idleBefore.includes(tid))).to.have.length(1);
      }
    } finally {
      await delivery.stop();
      await storage.close();
      await gateway.stop();
    }
  });
  it('holds pushes while the server sends (quiet window), and delivers within the hold bound if sends never pause', async () => {
    const gateway = await startLoopbackGateway();
    const storage = await openSqliteStorage({ path: ':memory:' });
    const delivery = testDelivery(storage, { deliveryQuietMs: 100, deliveryMaxHoldMs: 600 });
    const notifyBob = bobNotifier(delivery);
    const delivered = () => gateway.received.map((body) => JSON.parse(body).notification.event_id);
    let sending: NodeJS.Timeout | undefined;
    try {
      await storage.push.setPusher(httpPusher('@bob:example.org', 'bob-phone', { url: gateway.url }), true);
      // The worker's start (tsx compiling its modules) is not timed: with no send, $0 goes out at once.
      notifyBob('$0');
      await delivery.idle();
      // The server sends an event every 5 ms; as it does, the send is noted before its notifications.
      sending = setInterval(() => delivery.noteSend(), 5);
      delivery.noteSend();
      const started = performance.now();
      notifyBob('$1');
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Sends went on within the quiet window: held.
      expect(delivered()).to.deep.equal(['$0']);
      await delivery.idle();
      // Sends never paused: the hold bound let it go.
      expect(performance.now() - started).to.be.within(550, 3_000);
      expect(delivered()).to.deep.equal(['$0', '$1']);
    } finally {
      clearInterval(sending);
      await delivery.stop();
      await storage.close();
      await gateway.stop();
    }
  });
  it('raises the worker to its nice value while a push waits too long, and back to SCHED_IDLE once caught up', async function () {
    if (process.platform !== 'linux' || !chrtAvailable()) this.skip();
    const gateway = await startLoopbackGateway();
    const storage = await openSqliteStorage({ path: ':memory:' });
    const idleBefore = idleThreads();
    const logs: string[] = [];
    const delivery = testDelivery(storage, {
      requestTimeoutMs: 5000,
      raisePriorityAfterMs: 100,
      log: { warn: (_f, message) => logs.push(message), info: (_f, message) => logs.push(message) },
    });
    const notifyBob = bobNotifier(delivery);
    try {
      await storage.push.setPusher(httpPusher('@bob:example.org', 'bob-phone', { url: gateway.url }), true);
      notifyBob('$1');
      await delivery.idle();
      await until(() => idleThreads().some((tid) => !idleBefore.includes(tid)));
      const worker = idleThreads().find((tid) => !idleBefore.includes(tid))!;
      // The main thread hears of it a moment later.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const release = gateway.hold();
      notifyBob('$2');
      if (!mayLeaveIdle()) {
        await until(() => logs.some((message) => message.includes('cannot leave SCHED_IDLE')));
        expect(threadPolicy(worker)).to.deep.equal({ policy: 5, nice: 10 });
        release();
        await delivery.idle();
        return;
      }
      await until(() => threadPolicy(worker).policy === 0);
      // SCHED_OTHER at the nice value it had.
      expect(threadPolicy(worker)).to.deep.equal({ policy: 0, nice: 10 });
      release();
      await delivery.idle();
      await until(() => threadPolicy(worker).policy === 5);
      // Logged once chrt has exited, a moment after the policy changed.
      await until(() => logs.includes('Push delivery caught up: its worker is back at SCHED_IDLE'));
      expect(logs).to.include(
        'Push delivery is behind: its worker runs at its nice value until it catches up',
      );
      expect(gateway.received).to.have.length(2);
    } finally {
      await delivery.stop();
      await storage.close();
      await gateway.stop();
    }
  });
});

/** A delivery line (in its worker thread unless `inline`) to loopback gateways, with quick retries unless `options` say otherwise. */
function testDelivery(
  storage: SqliteStorage,
  options: Partial<ConstructorParameters<typeof PushDelivery>[0]> = {},
): PushDelivery {
  return new PushDelivery({
    storage,
    policy: { allowPrivate: true, allowedHosts: [] },
    requestTimeoutMs: 2000,
    initialRetryDelayMs: 5,
    maxRetryDelayMs: 20,
    maxAttempts: 3,
    log: { warn: () => {}, info: () => {} },
    ...options,
  });
}

/** Hands the line a notification of a message to @bob for the event ID given. */
function bobNotifier(delivery: PushDelivery): (eventId: string) => void {
  return (eventId) =>
    delivery.deliver([
      {
        userId: '@bob:example.org',
        event: {
          eventId,
          roomId: '!r:example.org',
          pdu: { type: 'm.room.message', sender: '@alice:example.org', content: {} } as never,
        },
        streamOrdering: 1,
        outcome: { actions: ['notify'] } as unknown as PushOutcome,
        room: { joined: new Map(), localJoined: [], roomName: undefined, senderMayNotify: () => false },
      },
    ]);
}

/** This process's threads at SCHED_IDLE (Linux /proc: stat field 41 is the policy, 5 SCHED_IDLE). */
function idleThreads(): string[] {
  if (process.platform !== 'linux') return [];
  return readdirSync('/proc/self/task').filter((tid) => {
    try {
      return readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[38] === '5';
    } catch {
      return false;
    }
  });
}

function chrtAvailable(): boolean {
  try {
    execFileSync('chrt', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A thread's scheduling policy (0 SCHED_OTHER, 5 SCHED_IDLE; stat field 41) and nice value (field 19). */
function threadPolicy(tid: string): { policy: number; nice: number } {
  const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { policy: Number(fields[38]), nice: Number(fields[16]) };
}

/** Whether a thread may leave SCHED_IDLE for nice 10: CAP_SYS_NICE (bit 23), or RLIMIT_NICE of 10 or more. */
function mayLeaveIdle(): boolean {
  const status = readFileSync('/proc/self/status', 'utf8');
  const capabilities = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/u.exec(status)![1]}`);
  if ((capabilities & (1n << 23n)) !== 0n) return true;
  const limit = /Max nice priority\s+(\S+)/u.exec(readFileSync('/proc/self/limits', 'utf8'))![1]!;
  return limit === 'unlimited' || Number(limit) >= 10;
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
