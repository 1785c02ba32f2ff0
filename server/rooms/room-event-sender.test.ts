import { expect } from 'chai';
import { referencedEventIds } from '../../protocol/events.js';
import { checkContentHash, computeEventId } from '../../protocol/hashing.js';
import { roomVersionRules } from '../../protocol/room-versions.js';
import type { StoredEvent } from '../../storage/event-store.js';
import { MatrixError } from '../errors.js';
import type { PersistedRoomEvent } from './room-event-sender.js';
import { openRoomsHarness, type RoomsHarness } from './rooms-test-harness.js';

async function rejectionOf(promise: Promise<unknown>): Promise<MatrixError> {
  try {
    await promise;
  } catch (e) {
    expect(e).to.be.instanceOf(MatrixError);
    return e as MatrixError;
  }
  return expect.fail('expected the promise to reject');
}

/** The room's accepted timeline, oldest first. */
async function timeline(h: RoomsHarness, roomId: string): Promise<StoredEvent[]> {
  return h.storage.events.roomEventsAfter(roomId, 0, 100_000);
}

const message = (body: string) => ({ type: 'm.room.message', content: { msgtype: 'm.text', body } });

describe('RoomEventSender', () => {
  let h: RoomsHarness;
  let alice: string;
  let bob: string;

  beforeEach(async () => {
    h = await openRoomsHarness();
    alice = await h.account('alice', { displayName: 'Alice' });
    bob = await h.account('bob');
  });
  afterEach(async () => {
    await h.close();
  });

  for (const version of ['1', '3', '10', '11', '12']) {
    it(`signs and hashes every event, with reference-hash IDs, in room version ${version}`, async () => {
      const rules = roomVersionRules(version);
      const { roomId } = await h.services.createRoom(alice, {
        room_version: version,
        preset: 'public_chat',
        name: 'Signed',
      });
      await h.services.sender.sendEvent({ roomId, sender: alice, ...message('hello') });
      const events = await timeline(h, roomId);
      expect(events.length).to.be.greaterThan(5);
      for (const event of events) {
        expect(h.signatureVerifies(event.pdu, rules), `signature of ${event.pdu.type}`).to.equal(true);
        expect(checkContentHash(event.pdu, rules), `hash of ${event.pdu.type}`).to.equal(true);
        expect(computeEventId(event.pdu, rules)).to.equal(event.eventId);
        expect(event.roomId).to.equal(roomId);
      }
      if (rules.eventIdFormat === 'server-generated') {
        expect(events[1]!.eventId).to.match(/^\$[A-Za-z]{18}:rooms\.test$/);
        const prev = events[1]!.pdu.prev_events[0];
        expect(prev).to.be.an('array');
        expect((prev as [string, { sha256: string }])[1].sha256).to.match(/^[A-Za-z0-9+/]{43}$/);
      } else {
        expect(events[1]!.eventId).to.match(/^\$[A-Za-z0-9_\-+/]{43}$/);
      }
      if (rules.roomIdIsCreateEventHash) {
        expect(roomId).to.equal(`!${events[0]!.eventId.slice(1)}`);
        expect(events[0]!.pdu).not.to.have.property('room_id');
      }
    });
  }

  it('cites the extremity as prev_events and the selected current state as auth_events', async () => {
    for (const version of ['11', '12']) {
      const { roomId } = await h.services.createRoom(alice, { room_version: version, preset: 'public_chat' });
      const sent = await h.services.sender.sendEvent({ roomId, sender: alice, ...message('hi') });
      const [before, after] = (await timeline(h, roomId)).slice(-2);
      expect(after!.eventId).to.equal(sent.eventId);
      expect(after!.pdu.prev_events).to.deep.equal([before!.eventId]);
      expect(after!.pdu.depth).to.equal(before!.pdu.depth + 1);
      const state = await h.storage.state.currentState(roomId);
      const expected = [
        ...(version === '12' ? [] : [state.get('m.room.create\u0000')]),
        state.get('m.room.power_levels\u0000'),
        state.get(`m.room.member\u0000${alice}`),
      ];
      expect(after!.pdu.auth_events).to.deep.equal(expected);
      expect(await h.storage.state.forwardExtremities(roomId)).to.deep.equal([sent.eventId]);
    }
  });

  it('refuses a member without power to change the topic with M_FORBIDDEN and stores nothing', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat', topic: 'Original' });
    await h.services.membership.join(roomId, bob);
    const before = await h.storage.events.latestStreamOrdering();
    const error = await rejectionOf(
      h.services.sender.sendEvent({
        roomId,
        sender: bob,
        type: 'm.room.topic',
        stateKey: '',
        content: { topic: 'Hijacked' },
      }),
    );
    expect(error.status).to.equal(403);
    expect(error.errcode).to.equal('M_FORBIDDEN');
    expect(error.message).to.match(/power level/);
    expect(await h.storage.events.latestStreamOrdering()).to.equal(before);
    const topic = await h.services.reads.stateEvent(roomId, 'm.room.topic', '');
    expect(topic!.pdu.content.topic).to.equal('Original');
    // The refused event does not poison the room: the next send builds on the stored head.
    const sent = await h.services.sender.sendEvent({ roomId, sender: bob, ...message('sorry') });
    const last = (await timeline(h, roomId)).at(-1)!;
    expect(last.eventId).to.equal(sent.eventId);
  });

  it('refuses senders outside the room and of other servers, and unknown rooms', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'private_chat' });
    const outsider = await rejectionOf(h.services.sender.sendEvent({ roomId, sender: bob, ...message('x') }));
    expect(outsider.errcode).to.equal('M_FORBIDDEN');
    const remote = await rejectionOf(
      h.services.sender.sendEvent({ roomId, sender: '@mallory:elsewhere.test', ...message('x') }),
    );
    expect(remote.errcode).to.equal('M_FORBIDDEN');
    const unknown = await rejectionOf(
      h.services.sender.sendEvent({ roomId: '!nope:rooms.test', sender: alice, ...message('x') }),
    );
    expect(unknown.errcode).to.equal('M_NOT_FOUND');
  });

  it('makes sends idempotent per device and transaction ID, even when the retry races the original', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat' });
    const other = await h.services.createRoom(alice, { preset: 'public_chat' });
    await h.device(alice, 'DEVICE');
    await h.device(alice, 'PHONE');
    const send = (txnId: string, deviceId = 'DEVICE', room = roomId) =>
      h.services.sender.sendEvent({
        roomId: room,
        sender: alice,
        ...message(txnId),
        txn: { deviceId, txnId },
      });
    const heardTxns: unknown[] = [];
    h.services.sender.onEventPersisted((p) => heardTxns.push(p.txn));
    const [first, racing] = await Promise.all([send('t1'), send('t1')]);
    const retried = await send('t1');
    expect(heardTxns).to.deep.equal([{ deviceId: 'DEVICE', txnId: 't1' }]);
    expect(racing).to.deep.equal(first);
    expect(retried).to.deep.equal(first);
    const bodies = (await timeline(h, roomId)).filter((e) => e.pdu.type === 'm.room.message');
    expect(bodies.map((e) => e.eventId)).to.deep.equal([first.eventId]);
    // Another device, or the same transaction ID on another room's path, is another request.
    const otherDevice = await send('t1', 'PHONE');
    const otherRoom = await send('t1', 'DEVICE', other.roomId);
    expect(otherDevice.eventId).not.to.equal(first.eventId);
    expect(otherRoom.eventId).not.to.equal(first.eventId);
    expect(await h.storage.events.getEvent(otherRoom.eventId)).to.have.property('roomId', other.roomId);
  });

  it('remembers a transaction across a restart of the service', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat' });
    await h.device(alice, 'DEVICE');
    const txn = { deviceId: 'DEVICE', txnId: 'persisted' };
    const first = await h.services.sender.sendEvent({ roomId, sender: alice, ...message('once'), txn });
    const { RoomEventSender } = await import('./room-event-sender.js');
    const restarted = new RoomEventSender({
      storage: h.storage,
      serverName: 'rooms.test',
      signingKey: h.signingKey,
    });
    const again = await restarted.sendEvent({ roomId, sender: alice, ...message('once'), txn });
    expect(again).to.deep.equal(first);
    // A fresh sender loads the room's head from storage and continues the chain.
    const next = await restarted.sendEvent({ roomId, sender: alice, ...message('after restart') });
    const stored = await h.storage.events.getEvent(next.eventId);
    expect(stored!.pdu.prev_events).to.deep.equal([first.eventId]);
    expect(stored!.stateBeforeSnapshotId).to.be.a('number');
  });

  it('refuses only the send whose write fails when a batch cannot commit', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat' });
    await h.device(alice, 'DEVICE');
    // A transaction ID of a device that does not exist fails its write (foreign key). All ten
    // are queued before the first batch is taken, so they first fail together.
    const sends = Array.from({ length: 10 }, (_, i) =>
      h.services.sender.sendEvent({
        roomId,
        sender: alice,
        ...message(`m${i}`),
        txn: { deviceId: i === 4 ? 'GONE' : 'DEVICE', txnId: `t${i}` },
      }),
    );
    const outcomes = await Promise.allSettled(sends);
    expect(outcomes.map((o) => o.status)).to.deep.equal(
      Array.from({ length: 10 }, (_, i) => (i === 4 ? 'rejected' : 'fulfilled')),
    );
    const messages = (await timeline(h, roomId)).filter((e) => e.pdu.type === 'm.room.message');
    expect(messages.map((e) => e.pdu.content.body)).to.deep.equal(
      Array.from({ length: 10 }, (_, i) => `m${i}`).filter((_, i) => i !== 4),
    );
    for (let i = 1; i < messages.length; i++) {
      expect(messages[i]!.pdu.prev_events).to.deep.equal([messages[i - 1]!.eventId]);
    }
    expect(await h.storage.state.forwardExtremities(roomId)).to.deep.equal([messages.at(-1)!.eventId]);
  });

  it('chains 200 concurrent sends into one room linearly', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat' });
    await h.services.membership.join(roomId, bob);
    const before = (await timeline(h, roomId)).at(-1)!;
    const sends = Array.from({ length: 200 }, (_, i) =>
      h.services.sender.sendEvent({ roomId, sender: i % 2 ? alice : bob, ...message(`m${i}`) }),
    );
    const sent = await Promise.all(sends);
    const events = (await timeline(h, roomId)).slice(-200);
    expect(events.map((e) => e.eventId)).to.deep.equal(sent.map((s) => s.eventId));
    expect(events.map((e) => e.pdu.content.body)).to.deep.equal(sent.map((_, i) => `m${i}`));
    let previous = before;
    for (const event of events) {
      expect(event.pdu.prev_events).to.deep.equal([previous.eventId]);
      expect(event.pdu.depth).to.equal(previous.pdu.depth + 1);
      expect(event.streamOrdering).to.be.greaterThan(previous.streamOrdering);
      previous = event;
    }
    expect(await h.storage.state.forwardExtremities(roomId)).to.deep.equal([sent.at(-1)!.eventId]);
  });

  it('keeps state right when state events and messages interleave under concurrency', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat' });
    const sends = Array.from({ length: 60 }, (_, i) =>
      i % 10 === 5
        ? h.services.sender.sendEvent({
            roomId,
            sender: alice,
            type: 'm.room.topic',
            stateKey: '',
            content: { topic: `topic ${i}` },
          })
        : h.services.sender.sendEvent({ roomId, sender: alice, ...message(`m${i}`) }),
    );
    const sent = await Promise.all(sends);
    const topic = await h.services.reads.stateEvent(roomId, 'm.room.topic', '');
    expect(topic!.pdu.content.topic).to.equal('topic 55');
    for (const [i, s] of sent.entries()) {
      const state = await h.storage.state.stateAfterEvent(s.eventId);
      const lastTopic = Math.floor((i - 5) / 10) * 10 + 5;
      const topicId = state!.get('m.room.topic\u0000');
      if (i < 5) expect(topicId).to.equal(undefined);
      else
        expect((await h.storage.events.getEvent(topicId!))!.pdu.content.topic).to.equal(`topic ${lastTopic}`);
    }
    const events = (await timeline(h, roomId)).slice(-60);
    for (let i = 1; i < events.length; i++) {
      expect(referencedEventIds(events[i]!.pdu.prev_events)).to.deep.equal([events[i - 1]!.eventId]);
    }
  });

  it('sends 200 events spread over 10 rooms, each room its own chain', async () => {
    const rooms = await Promise.all(
      Array.from({ length: 10 }, () => h.services.createRoom(alice, { preset: 'public_chat' })),
    );
    expect(new Set(rooms.map((r) => r.roomId)).size).to.equal(10);
    const sent = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        h.services.sender.sendEvent({ roomId: rooms[i % 10]!.roomId, sender: alice, ...message(`m${i}`) }),
      ),
    );
    expect(new Set(sent.map((s) => s.eventId)).size).to.equal(200);
    for (const { roomId } of rooms) {
      const events = (await timeline(h, roomId)).filter((e) => e.pdu.type === 'm.room.message');
      expect(events).to.have.length(20);
      for (let i = 1; i < events.length; i++) {
        expect(events[i]!.pdu.prev_events).to.deep.equal([events[i - 1]!.eventId]);
      }
    }
  });

  it('stores emoji byte-exact: astral plane, ZWJ sequences, skin tones', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat' });
    const body = '🧠 👩🏽‍💻 🏳️‍🌈 👍🏿 👨‍👩‍👧‍👦 𝄞 é';
    const sent = await h.services.sender.sendEvent({
      roomId,
      sender: alice,
      type: 'm.room.message',
      content: {
        msgtype: 'm.text',
        body,
        format: 'org.matrix.custom.html',
        formatted_body: `<b>${body}</b>`,
      },
    });
    const stored = await h.storage.events.getEvent(sent.eventId);
    expect(stored!.json).to.include(`"body":"${body}"`);
    expect(Buffer.from(stored!.json, 'utf8').includes(Buffer.from(body, 'utf8'))).to.equal(true);
    expect(stored!.pdu.content.body).to.equal(body);
    expect(checkContentHash(stored!.pdu, roomVersionRules('12'))).to.equal(true);
  });

  it('refuses an event over 65,536 bytes with M_TOO_LARGE and stores nothing', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat' });
    const before = await h.storage.events.latestStreamOrdering();
    const error = await rejectionOf(
      h.services.sender.sendEvent({ roomId, sender: alice, ...message('x'.repeat(65_536)) }),
    );
    expect(error.errcode).to.equal('M_TOO_LARGE');
    expect(await h.storage.events.latestStreamOrdering()).to.equal(before);
    // Multi-byte characters count as their UTF-8 bytes: 16,500 four-byte emoji are 66,000 bytes.
    const emoji = await rejectionOf(
      h.services.sender.sendEvent({ roomId, sender: alice, ...message('🧠'.repeat(16_500)) }),
    );
    expect(emoji.errcode).to.equal('M_TOO_LARGE');
    // So are type and state_key over 255 bytes.
    const longType = await rejectionOf(
      h.services.sender.sendEvent({ roomId, sender: alice, type: `m.${'é'.repeat(127)}`, content: {} }),
    );
    expect(longType.errcode).to.equal('M_TOO_LARGE');
    const longKey = await rejectionOf(
      h.services.sender.sendEvent({
        roomId,
        sender: alice,
        type: 'm.custom',
        stateKey: 'k'.repeat(256),
        content: {},
      }),
    );
    expect(longKey.errcode).to.equal('M_TOO_LARGE');
    expect(await h.storage.events.latestStreamOrdering()).to.equal(before);
    // Just under the limit is fine (the envelope takes about 700 bytes).
    await h.services.sender.sendEvent({ roomId, sender: alice, ...message('x'.repeat(64_000)) });
    await h.services.sender.sendEvent({ roomId, sender: alice, ...message('🧠'.repeat(15_000)) });
  });

  it('refuses content that is not canonical JSON (floats) with M_BAD_JSON', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat' });
    const error = await rejectionOf(
      h.services.sender.sendEvent({ roomId, sender: alice, type: 'm.custom', content: { ratio: 0.5 } }),
    );
    expect(error.errcode).to.equal('M_BAD_JSON');
  });

  it('tells listeners of each event once, after it is committed, and survives a throwing listener', async () => {
    const heard: PersistedRoomEvent[] = [];
    const storedWhenHeard: Promise<StoredEvent | null>[] = [];
    const listenerErrors: unknown[] = [];
    const local = await openRoomsHarness({ onListenerError: (e) => listenerErrors.push(e) });
    try {
      const carol = await local.account('carol');
      local.services.sender.onEventPersisted((persisted) => {
        heard.push(persisted);
        storedWhenHeard.push(local.storage.events.getEvent(persisted.event.eventId));
      });
      const stop = local.services.sender.onEventPersisted(() => {
        throw new Error('listener failure');
      });
      const { roomId, events } = await local.services.createRoom(carol, { preset: 'public_chat' });
      const sent = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          local.services.sender.sendEvent({ roomId, sender: carol, ...message(`m${i}`) }),
        ),
      );
      stop();
      const all = [...events, ...sent];
      expect(heard.map((p) => p.event.eventId)).to.deep.equal(all.map((s) => s.eventId));
      expect(heard.map((p) => p.streamOrdering)).to.deep.equal(all.map((s) => s.streamOrdering));
      for (const stored of await Promise.all(storedWhenHeard)) expect(stored).not.to.equal(null);
      expect(heard[5]!.json).to.equal((await local.storage.events.getEvent(heard[5]!.event.eventId))!.json);
      expect(listenerErrors).to.have.length(all.length);
    } finally {
      await local.close();
    }
  });

  it('does not tell listeners of refused events', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'private_chat' });
    const heard: string[] = [];
    h.services.sender.onEventPersisted((p) => heard.push(p.event.eventId));
    await rejectionOf(h.services.sender.sendEvent({ roomId, sender: bob, ...message('x') }));
    expect(heard).to.deep.equal([]);
  });

  it('runs exclusive work between sends of the room, in arrival order, and reloads the head after it', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat' });
    const order: string[] = [];
    const before = h.services.sender
      .sendEvent({ roomId, sender: alice, ...message('before') })
      .then(() => order.push('before'));
    const exclusive = h.services.sender.runExclusive(roomId, async (turn) => {
      order.push('exclusive');
      const head = await turn.head();
      // Everything queued before the work has committed: the head stands on it.
      const latest = (await timeline(h, roomId)).at(-1)!;
      expect(head!.extremities.map((e) => e.eventId)).to.deep.equal([latest.eventId]);
      return 'done';
    });
    const after = h.services.sender
      .sendEvent({ roomId, sender: alice, ...message('after') })
      .then(() => order.push('after'));
    expect(await exclusive).to.equal('done');
    await Promise.all([before, after]);
    expect(order).to.deep.equal(['before', 'exclusive', 'after']);
    const bodies = (await timeline(h, roomId)).slice(-2).map((e) => e.pdu.content.body);
    expect(bodies).to.deep.equal(['before', 'after']);
  });
});
