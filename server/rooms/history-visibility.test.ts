import { expect } from 'chai';
import type { StoredEvent } from '../../storage/event-store.js';
import { createHistoryVisibility, type HistoryVisibility } from './history-visibility.js';
import { openRoomsHarness, type RoomsHarness } from './rooms-test-harness.js';

describe('History visibility (client-server "Room History Visibility", server behaviour)', () => {
  let h: RoomsHarness;
  let visibility: HistoryVisibility;
  let alice: string;
  let bob: string;
  let carol: string;

  beforeEach(async () => {
    h = await openRoomsHarness();
    visibility = createHistoryVisibility(h.storage);
    alice = await h.account('alice');
    bob = await h.account('bob');
    carol = await h.account('carol');
  });
  afterEach(() => h.close());

  async function publicRoom(setting: string): Promise<string> {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat' });
    await setVisibility(roomId, setting);
    return roomId;
  }
  async function setVisibility(roomId: string, setting: string): Promise<string> {
    const sent = await h.services.sender.sendEvent({
      roomId,
      sender: alice,
      type: 'm.room.history_visibility',
      stateKey: '',
      content: { history_visibility: setting },
    });
    return sent.eventId;
  }
  async function say(roomId: string, body: string, sender = alice): Promise<string> {
    const sent = await h.services.sender.sendEvent({
      roomId,
      sender,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body },
    });
    return sent.eventId;
  }
  async function timeline(roomId: string): Promise<StoredEvent[]> {
    return (await h.storage.events.roomEventsAfter(roomId, 0, 1000)).filter((e) => e.roomId === roomId);
  }
  async function visibleBodies(userId: string, roomId: string): Promise<string[]> {
    const visible = await visibility.filterVisibleEvents(userId, roomId, await timeline(roomId));
    return visible.flatMap((event) =>
      typeof event.pdu.content.body === 'string' ? [event.pdu.content.body] : [],
    );
  }
  async function event(eventId: string): Promise<StoredEvent> {
    return (await h.storage.events.getEvent(eventId))!;
  }

  it('joined: only events while the user was joined, and their own join and leave', async () => {
    const roomId = await publicRoom('joined');
    await say(roomId, 'before');
    const join = await h.services.membership.join(roomId, bob);
    await say(roomId, 'during');
    const leave = await h.services.membership.leave(roomId, bob);
    await say(roomId, 'after');
    expect(await visibleBodies(bob, roomId)).to.deep.equal(['during']);
    expect(await visibility.canSeeEvent(bob, await event(join.eventId))).to.equal(true);
    expect(await visibility.canSeeEvent(bob, await event(leave.eventId))).to.equal(true);
    expect(await visibleBodies(alice, roomId)).to.deep.equal(['before', 'during', 'after']);
  });

  it('shared: everything before the user last left, nothing after', async () => {
    const roomId = await publicRoom('shared');
    await say(roomId, 'before');
    await h.services.membership.join(roomId, bob);
    await say(roomId, 'during');
    await h.services.membership.leave(roomId, bob);
    await say(roomId, 'after');
    expect(await visibleBodies(bob, roomId)).to.deep.equal(['before', 'during']);
    // Never joined: nothing of a shared room.
    expect(await visibleBodies(carol, roomId)).to.deep.equal([]);
  });

  it('invited: from the invite on; an invite alone already shows what follows it', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'private_chat' });
    await setVisibility(roomId, 'invited');
    await say(roomId, 'before invite');
    await h.services.membership.invite(roomId, alice, bob);
    await say(roomId, 'while invited');
    expect(await visibleBodies(bob, roomId)).to.deep.equal(['while invited']);
    await h.services.membership.join(roomId, bob);
    await say(roomId, 'joined');
    expect(await visibleBodies(bob, roomId)).to.deep.equal(['while invited', 'joined']);
  });

  it('world_readable: anyone, for the events sent while it was in force', async () => {
    const roomId = await publicRoom('world_readable');
    await say(roomId, 'open');
    const change = await setVisibility(roomId, 'joined');
    await say(roomId, 'closed');
    expect(await visibleBodies(carol, roomId)).to.deep.equal(['open']);
    // The change itself is visible because the visibility before it allowed it.
    expect(await visibility.canSeeEvent(carol, await event(change))).to.equal(true);
  });

  it('rejects outsiders of joined rooms and reports room read access', async () => {
    const roomId = await publicRoom('joined');
    expect(await visibility.roomReadAccess(carol, roomId)).to.equal(null);
    expect(await visibility.roomReadAccess(alice, roomId)).to.deep.equal({
      membership: 'join',
      readUpTo: null,
      peeking: false,
    });
    await h.services.membership.join(roomId, bob);
    const leave = await h.services.membership.leave(roomId, bob);
    expect(await visibility.roomReadAccess(bob, roomId)).to.deep.equal({
      membership: 'leave',
      readUpTo: leave.streamOrdering,
      peeking: false,
    });
    await h.storage.memberships.forgetRoom(bob, roomId);
    expect(await visibility.roomReadAccess(bob, roomId)).to.equal(null);
    await setVisibility(roomId, 'world_readable');
    expect((await visibility.roomReadAccess(carol, roomId))?.peeking).to.equal(true);
    expect(await visibility.currentVisibility(roomId)).to.equal('world_readable');
  });

  it('reads each distinct state snapshot once per batch, whatever the batch size', async () => {
    const roomId = await publicRoom('shared');
    await h.services.membership.join(roomId, bob);
    for (let i = 0; i < 30; i++) await say(roomId, `m${i}`);
    let snapshotReads = 0;
    const counting = Object.create(h.storage) as typeof h.storage;
    Object.defineProperty(counting, 'state', {
      value: Object.assign(Object.create(h.storage.state), {
        stateAtSnapshot: (id: number) => {
          snapshotReads++;
          return h.storage.state.stateAtSnapshot(id);
        },
      }),
    });
    const fresh = createHistoryVisibility(counting);
    const events = (await timeline(roomId)).slice(-30);
    expect(await fresh.filterVisibleEvents(bob, roomId, events)).to.have.length(30);
    expect(snapshotReads).to.be.at.most(2);
    snapshotReads = 0;
    await fresh.filterVisibleEvents(bob, roomId, events);
    expect(snapshotReads).to.equal(0);
  });
});
