import { getEventListeners } from 'node:events';
import { expect } from 'chai';
import { SyncNotifier, type WaitOutcome } from './notifier.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('SyncNotifier', () => {
  it('wakes the waiters of a notified room and no one else', async () => {
    const notifier = new SyncNotifier();
    const mark = notifier.mark();
    const outcomes: Record<string, WaitOutcome> = {};
    const waits = [
      notifier.waitForChange({ userId: '@a:x', roomIds: ['!r1'], sinceMark: mark, timeoutMs: 200 }),
      notifier.waitForChange({ userId: '@b:x', roomIds: ['!r2'], sinceMark: mark, timeoutMs: 200 }),
    ].map((wait, i) => wait.then((outcome) => (outcomes[i] = outcome)));
    expect(notifier.waiting).to.equal(2);
    notifier.notifyRooms(['!r1'], 'events');
    await nextTurn();
    expect(outcomes).to.deep.equal({ 0: 'changed' });
    await Promise.all(waits);
    expect(outcomes).to.deep.equal({ 0: 'changed', 1: 'timeout' });
    expect(notifier.waiting).to.equal(0);
  });

  it('does not wake a wait for the room streams it ignores', async () => {
    const notifier = new SyncNotifier({ receiptCoalesceMs: 0 });
    let outcome: WaitOutcome | undefined;
    const wait = notifier
      .waitForChange({
        userId: '@a:x',
        roomIds: ['!r1'],
        sinceMark: notifier.mark(),
        timeoutMs: 1000,
        ignoredRoomStreams: new Set(['receipts', 'typing']),
      })
      .then((result) => (outcome = result));
    notifier.notifyRooms(['!r1'], 'receipts');
    notifier.notifyRooms(['!r1'], 'typing');
    await nextTurn();
    expect(outcome).to.equal(undefined);
    notifier.notifyRooms(['!r1'], 'events');
    await wait;
    expect(outcome).to.equal('changed');
  });

  it('wakes a user for their own streams (invites, account data)', async () => {
    const notifier = new SyncNotifier();
    const wait = notifier.waitForChange({
      userId: '@a:x',
      roomIds: [],
      sinceMark: notifier.mark(),
      timeoutMs: 1000,
    });
    notifier.notifyUsers(['@b:x'], 'account_data');
    notifier.notifyUsers(['@a:x'], 'invites');
    expect(await wait).to.equal('changed');
  });

  it('returns at once for a change notified between the mark and the wait', async () => {
    const notifier = new SyncNotifier();
    const mark = notifier.mark();
    notifier.notifyRooms(['!r1'], 'events');
    const started = Date.now();
    expect(
      await notifier.waitForChange({ userId: '@a:x', roomIds: ['!r1'], sinceMark: mark, timeoutMs: 1000 }),
    ).to.equal('changed');
    expect(Date.now() - started).to.be.below(50);
    // A change elsewhere after the mark does not count.
    const mark2 = notifier.mark();
    notifier.notifyRooms(['!other'], 'events');
    expect(
      await notifier.waitForChange({ userId: '@a:x', roomIds: ['!r1'], sinceMark: mark2, timeoutMs: 20 }),
    ).to.equal('timeout');
  });

  it('ends a wait when its signal aborts', async () => {
    const notifier = new SyncNotifier();
    const controller = new AbortController();
    const wait = notifier.waitForChange({
      userId: '@a:x',
      roomIds: ['!r1'],
      sinceMark: notifier.mark(),
      timeoutMs: 10_000,
      signal: controller.signal,
    });
    controller.abort();
    expect(await wait).to.equal('aborted');
    expect(notifier.waiting).to.equal(0);
  });

  it('wakes many waiters in bounded slices, one per turn of the loop', async () => {
    const notifier = new SyncNotifier({ wakeSlice: 2 });
    const mark = notifier.mark();
    let woken = 0;
    const waits = Array.from({ length: 5 }, (_, i) =>
      notifier
        .waitForChange({ userId: `@u${i}:x`, roomIds: ['!r1'], sinceMark: mark, timeoutMs: 1000 })
        .then(() => woken++),
    );
    notifier.notifyRooms(['!r1'], 'events');
    notifier.notifyRooms(['!r1'], 'events'); // a second notification queues nobody twice
    await nextTurn();
    expect(woken).to.equal(2);
    await nextTurn();
    expect(woken).to.equal(4);
    await Promise.all(waits);
    expect(woken).to.equal(5);
  });

  it('holds receipt-only and presence-only wakes briefly so a burst makes one answer, but not events', async () => {
    const notifier = new SyncNotifier({ receiptCoalesceMs: 40 });
    const wait = (roomId: string) =>
      notifier.waitForChange({
        userId: '@a:x',
        roomIds: [roomId],
        sinceMark: notifier.mark(),
        timeoutMs: 1000,
      });
    let started = Date.now();
    const receiptWait = wait('!r1');
    notifier.notifyRooms(['!r1'], 'receipts');
    notifier.notifyRooms(['!r1'], 'receipts');
    expect(await receiptWait).to.equal('changed');
    expect(Date.now() - started).to.be.at.least(35);

    started = Date.now();
    const eventWait = wait('!r2');
    notifier.notifyRooms(['!r2'], 'receipts');
    notifier.notifyRooms(['!r2'], 'events');
    expect(await eventWait).to.equal('changed');
    expect(Date.now() - started).to.be.below(30);

    // A room's members going idle at once: one answer for the burst too.
    started = Date.now();
    const presenceWait = wait('!r3');
    for (let i = 0; i < 100; i++) notifier.notifyRooms(['!r3'], 'presence');
    expect(await presenceWait).to.equal('changed');
    expect(Date.now() - started).to.be.at.least(35);
  });

  it('keeps waking the others of a room and user when one of its waiters ends first', async () => {
    const notifier = new SyncNotifier();
    const mark = notifier.mark();
    const controller = new AbortController();
    const wait = (userId: string, signal?: AbortSignal) =>
      notifier.waitForChange({
        userId,
        roomIds: ['!shared', `!own-${userId}`],
        sinceMark: mark,
        timeoutMs: 1000,
        signal,
      });
    const aborted = wait('@a:x', controller.signal);
    const sameUser = wait('@a:x');
    const other = wait('@b:x');
    expect(notifier.waiting).to.equal(3);
    controller.abort();
    expect(await aborted).to.equal('aborted');
    expect(notifier.waiting).to.equal(2);
    notifier.notifyRooms(['!own-@a:x'], 'events');
    expect(await sameUser).to.equal('changed');
    expect(notifier.waiting).to.equal(1);
    notifier.notifyRooms(['!shared'], 'events');
    expect(await other).to.equal('changed');
    expect(notifier.waiting).to.equal(0);
  });

  it('ends long waits in shared buckets: never early, at most one bucket late, none once woken', async () => {
    const notifier = new SyncNotifier({ bucketedWaitMs: 100, bucketMs: 50 });
    const wait = (userId: string, timeoutMs: number) =>
      notifier.waitForChange({ userId, roomIds: ['!r1'], sinceMark: notifier.mark(), timeoutMs });
    const started = performance.now();
    const ended: number[] = [];
    const long = [wait('@a:x', 120), wait('@b:x', 130)].map((waiting) =>
      waiting.then((outcome) => {
        ended.push(performance.now() - started);
        return outcome;
      }),
    );
    const woken = wait('@c:x', 120);
    notifier.notifyUsers(['@c:x'], 'account_data');
    expect(await woken).to.equal('changed');
    expect(await Promise.all(long)).to.deep.equal(['timeout', 'timeout']);
    for (const elapsed of ended) expect(elapsed).to.be.within(119, 130 + 50 + 40);
    expect(notifier.waiting).to.equal(0);
  });

  it('listens to a signal once for all the waits made with it, and still ends each one on abort', async () => {
    const notifier = new SyncNotifier();
    const controller = new AbortController();
    const wait = (userId: string) =>
      notifier.waitForChange({
        userId,
        roomIds: ['!r1'],
        sinceMark: notifier.mark(),
        timeoutMs: 10_000,
        signal: controller.signal,
      });
    // Rounds of one stream: each wait woken, the next one made on the same signal.
    for (let round = 0; round < 5; round++) {
      const waiting = wait('@a:x');
      notifier.notifyRooms(['!r1'], 'events');
      expect(await waiting).to.equal('changed');
    }
    const last = [wait('@a:x'), wait('@b:x')];
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(1);
    controller.abort();
    expect(await Promise.all(last)).to.deep.equal(['aborted', 'aborted']);
    expect(notifier.waiting).to.equal(0);
  });
});
