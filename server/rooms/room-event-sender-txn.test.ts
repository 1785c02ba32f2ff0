/**
 * Idempotent sends: the same (user, device, transaction ID) answers the same event ID,
 * however the retry arrives, and a retry never leaves an event, a head or a forward
 * extremity of its own behind. The transaction is checked inside the write transaction
 * (room-event-sender.ts), so these also cover a retry rolled back in the middle of a batch.
 */

import { join } from 'node:path';
import { expect } from 'chai';
import { openSqliteStorage, type SqliteStorage } from '../../storage/sqlite/sqlite-storage.js';
import { MatrixError } from '../errors.js';
import { RoomEventSender, type SendEventRequest } from './room-event-sender.js';
import { openRoomsHarness, type RoomsHarness, TEST_SERVER_NAME } from './rooms-test-harness.js';

const message = (body: string) => ({ type: 'm.room.message', content: { msgtype: 'm.text', body } });

describe('RoomEventSender transaction IDs', () => {
  let h: RoomsHarness;
  let alice: string;
  let roomId: string;

  beforeEach(async () => {
    h = await openRoomsHarness();
    alice = await h.account('alice');
    await h.device(alice, 'DEVICE');
    ({ roomId } = await h.services.createRoom(alice, { preset: 'public_chat' }));
  });
  afterEach(async () => {
    await h.close();
  });

  /** Another sender on the same storage: a second process, or this one restarted. */
  const senderOn = (storage: SqliteStorage) =>
    new RoomEventSender({ storage, serverName: TEST_SERVER_NAME, signingKey: h.signingKey });

  const request = (body: string, txnId: string, deviceId = 'DEVICE'): SendEventRequest => ({
    roomId,
    sender: alice,
    ...message(body),
    txn: { deviceId, txnId },
  });

  /** The room's messages, oldest first, by body. */
  async function messageBodies(storage: SqliteStorage = h.storage): Promise<unknown[]> {
    const events = await storage.events.roomEventsAfter(roomId, 0, 100_000);
    return events.filter((e) => e.pdu.type === 'm.room.message').map((e) => e.pdu.content.body);
  }

  /** The room's messages form one chain from `from`, and its only forward extremity is the last one. */
  async function expectLinearFrom(from: string, storage: SqliteStorage = h.storage): Promise<void> {
    const events = await storage.events.roomEventsAfter(roomId, 0, 100_000);
    const start = events.findIndex((e) => e.eventId === from);
    expect(start).to.be.greaterThan(-1);
    for (let i = start + 1; i < events.length; i++) {
      expect(events[i]!.pdu.prev_events).to.deep.equal([events[i - 1]!.eventId]);
    }
    expect(await storage.state.forwardExtremities(roomId)).to.deep.equal([events.at(-1)!.eventId]);
  }

  it('answers a sequential retry with the first event and builds the next send on that one', async () => {
    const first = await h.services.sender.sendEvent(request('once', 't1'));
    const retried = await h.services.sender.sendEvent(request('once again?', 't1'));
    expect(retried).to.deep.equal(first);
    const next = await h.services.sender.sendEvent(request('next', 't2'));
    expect(await messageBodies()).to.deep.equal(['once', 'next']);
    expect((await h.storage.events.getEvent(next.eventId))!.pdu.prev_events).to.deep.equal([first.eventId]);
    await expectLinearFrom(first.eventId);
  });

  it('answers identical requests racing in one process with one event', async () => {
    const sends = Array.from({ length: 5 }, () => h.services.sender.sendEvent(request('raced', 't1')));
    const sent = await Promise.all(sends);
    for (const each of sent) expect(each).to.deep.equal(sent[0]);
    expect(await messageBodies()).to.deep.equal(['raced']);
  });

  it('answers identical requests racing in two processes with one event', async () => {
    const other = senderOn(h.storage);
    const [mine, theirs] = await Promise.all([
      h.services.sender.sendEvent(request('here', 't1')),
      other.sendEvent(request('there', 't1')),
    ]);
    expect(theirs).to.deep.equal(mine);
    expect(await messageBodies()).to.have.length(1);
    // Whichever lost, storage continues from the one event (a fresh sender reads it from there).
    const after = await senderOn(h.storage).sendEvent(request('after', 't2'));
    expect((await h.storage.events.getEvent(after.eventId))!.pdu.prev_events).to.deep.equal([mine.eventId]);
    await expectLinearFrom(mine.eventId);
  });

  it('reads the head again after a retry whose first event another process sent', async () => {
    const other = senderOn(h.storage);
    const warm = await other.sendEvent(request('warm', 't0'));
    // A third sender (another process) sends the transaction: `other`'s cached head misses it.
    const first = await senderOn(h.storage).sendEvent(request('first', 't1'));
    expect((await h.storage.events.getEvent(first.eventId))!.pdu.prev_events).to.deep.equal([warm.eventId]);
    expect(await other.sendEvent(request('a retry', 't1'))).to.deep.equal(first);
    // Built on the first event, not on the stale head (which would fork the room).
    const next = await other.sendEvent(request('next', 't2'));
    expect((await h.storage.events.getEvent(next.eventId))!.pdu.prev_events).to.deep.equal([first.eventId]);
    await expectLinearFrom(warm.eventId);
  });

  it('rolls back a batch holding a retry, answers it, and chains the rest of the batch without it', async () => {
    const first = await h.services.sender.sendEvent(request('first', 'dup'));
    // Another process: no transaction of this one in flight, so the retry reaches the write
    // transaction in the middle of a batch of ten queued together.
    const other = senderOn(h.storage);
    const commitsBefore = h.storage.commits;
    const sends = Array.from({ length: 10 }, (_, i) =>
      other.sendEvent(i === 4 ? request('a retry', 'dup') : request(`m${i}`, `t${i}`)),
    );
    const sent = await Promise.all(sends);
    expect(sent[4]).to.deep.equal(first);
    expect(await messageBodies()).to.deep.equal([
      'first',
      'm0',
      'm1',
      'm2',
      'm3',
      'm5',
      'm6',
      'm7',
      'm8',
      'm9',
    ]);
    // The first send is a batch alone (the queue was empty), the nine after it one batch, rolled
    // back once for the retry and committed once without it: not rebuilt one by one.
    expect(h.storage.commits - commitsBefore).to.equal(2);
    await expectLinearFrom(first.eventId);
    // Each of the nine answers its own stored event.
    for (const [i, each] of sent.entries()) {
      if (i === 4) continue;
      expect((await h.storage.events.getEvent(each.eventId))!.pdu.content.body).to.equal(`m${i}`);
    }
  });

  it('answers a retry after a restart on the same database file', async () => {
    const first = await h.services.sender.sendEvent(request('before restart', 't1'));
    await h.services.close();
    await h.storage.close();
    const reopened = await openSqliteStorage({ path: join(h.dir, 'myelin.db') });
    try {
      const restarted = senderOn(reopened);
      expect(await restarted.sendEvent(request('after restart?', 't1'))).to.deep.equal(first);
      const next = await restarted.sendEvent(request('after restart', 't2'));
      expect(await messageBodies(reopened)).to.deep.equal(['before restart', 'after restart']);
      expect((await reopened.events.getEvent(next.eventId))!.pdu.prev_events).to.deep.equal([first.eventId]);
      await expectLinearFrom(first.eventId, reopened);
      await restarted.idle();
    } finally {
      await reopened.close();
    }
  });

  it('answers a retry that the send would now refuse (the sender has left, a guard refuses)', async () => {
    const first = await h.services.sender.sendEvent(request('while joined', 't1'));
    const refuse = () => Promise.reject(MatrixError.of('M_DUPLICATE_ANNOTATION', 'already sent'));
    expect(await h.services.sender.sendEvent({ ...request('guarded', 't1'), guard: refuse })).to.deep.equal(
      first,
    );
    await h.services.membership.leave(roomId, alice);
    expect(await h.services.sender.sendEvent(request('while joined', 't1'))).to.deep.equal(first);
    // A new transaction is refused as before.
    try {
      await h.services.sender.sendEvent(request('after leaving', 't2'));
      expect.fail('a send after leaving must be refused');
    } catch (error) {
      expect(error).to.be.instanceOf(MatrixError);
      expect((error as MatrixError).errcode).to.equal('M_FORBIDDEN');
    }
    expect(await messageBodies()).to.deep.equal(['while joined']);
  });
});
