import { expect } from 'chai';
import type { RoomEvent } from '../../protocol/events.js';
import { stopTypingOnLeave, TypingService } from './typing.js';

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let time = start;
  return {
    now: () => time,
    advance(ms) {
      time += ms;
    },
  };
}

function recordingNotifier(): { rooms: string[][]; notifyRooms(roomIds: Iterable<string>): void } {
  const rooms: string[][] = [];
  return {
    rooms,
    notifyRooms(roomIds) {
      rooms.push([...roomIds]);
    },
  };
}

describe('TypingService', () => {
  it('lists typing users and takes a new position per visible change', () => {
    const time = clock();
    const typing = new TypingService({ now: time.now });
    expect(typing.position()).to.equal(0);
    typing.setTyping('!a:hs', '@alice:hs', true, 10_000);
    typing.setTyping('!a:hs', '@bob:hs', true, 10_000);
    expect(typing.typingUsers('!a:hs')).to.have.members(['@alice:hs', '@bob:hs']);
    expect(typing.position()).to.equal(2);
    // Renewing alice's timeout is no change others see.
    typing.setTyping('!a:hs', '@alice:hs', true, 20_000);
    expect(typing.position()).to.equal(2);
    typing.setTyping('!a:hs', '@alice:hs', false);
    expect(typing.typingContent('!a:hs')).to.deep.equal({ user_ids: ['@bob:hs'] });
    expect(typing.position()).to.equal(3);
    // Stopping someone who does not type changes nothing.
    typing.setTyping('!a:hs', '@alice:hs', false);
    typing.setTyping('!b:hs', '@alice:hs', false);
    expect(typing.position()).to.equal(3);
  });

  it('answers which rooms changed since a position', () => {
    const typing = new TypingService({ now: clock().now });
    typing.setTyping('!a:hs', '@alice:hs', true);
    const afterA = typing.position();
    typing.setTyping('!b:hs', '@alice:hs', true);
    typing.setTyping('!c:hs', '@alice:hs', true);
    expect([...typing.changedRoomsSince(0)]).to.have.members(['!a:hs', '!b:hs', '!c:hs']);
    expect([...typing.changedRoomsSince(afterA)]).to.have.members(['!b:hs', '!c:hs']);
    expect(typing.changedRoomsSince(typing.position()).size).to.equal(0);
    typing.setTyping('!a:hs', '@alice:hs', false);
    expect([...typing.changedRoomsSince(afterA + 2)]).to.deep.equal(['!a:hs']);
  });

  it('keeps answering correctly after its change log is compacted', () => {
    const typing = new TypingService({ now: clock().now });
    for (let round = 0; round < 200; round++) {
      typing.setTyping('!busy:hs', '@alice:hs', round % 2 === 0);
    }
    typing.setTyping('!quiet:hs', '@bob:hs', true);
    const beforeLast = typing.position() - 1;
    expect([...typing.changedRoomsSince(beforeLast)]).to.deep.equal(['!quiet:hs']);
    expect([...typing.changedRoomsSince(0)]).to.have.members(['!busy:hs', '!quiet:hs']);
  });

  it('expires typing in one sweep, taking a position and waking the room', () => {
    const time = clock();
    const notifier = recordingNotifier();
    const typing = new TypingService({ now: time.now, notifier: () => notifier });
    typing.setTyping('!a:hs', '@alice:hs', true, 1_000);
    typing.setTyping('!a:hs', '@bob:hs', true, 5_000);
    typing.setTyping('!b:hs', '@carol:hs', true, 1_000);
    const before = typing.position();
    time.advance(1_500);
    // Expired typing is not listed even before the sweep runs.
    expect(typing.typingUsers('!a:hs')).to.deep.equal(['@bob:hs']);
    typing.sweepExpired();
    expect(typing.position()).to.equal(before + 2);
    expect([...typing.changedRoomsSince(before)]).to.have.members(['!a:hs', '!b:hs']);
    expect(notifier.rooms.at(-1)).to.have.members(['!a:hs', '!b:hs']);
    expect(typing.typingUsers('!b:hs')).to.deep.equal([]);
    typing.sweepExpired();
    expect(typing.position()).to.equal(before + 2);
  });

  it('caps the timeout and applies the default', () => {
    const time = clock();
    const typing = new TypingService({ now: time.now, defaultTimeoutMs: 30_000, maxTimeoutMs: 60_000 });
    typing.setTyping('!a:hs', '@alice:hs', true, 10 * 60_000);
    typing.setTyping('!a:hs', '@bob:hs', true);
    time.advance(30_001);
    expect(typing.typingUsers('!a:hs')).to.deep.equal(['@alice:hs']);
    time.advance(30_000);
    expect(typing.typingUsers('!a:hs')).to.deep.equal([]);
  });

  it('wakes the notifier on each change', () => {
    const notifier = recordingNotifier();
    const typing = new TypingService({ now: clock().now, notifier: () => notifier });
    typing.setTyping('!a:hs', '@alice:hs', true);
    typing.setTyping('!a:hs', '@alice:hs', false);
    expect(notifier.rooms).to.deep.equal([['!a:hs'], ['!a:hs']]);
  });

  it('stops a member typing when they leave the room', () => {
    const typing = new TypingService({ now: clock().now });
    let listener: ((persisted: { event: RoomEvent }) => void) | undefined;
    stopTypingOnLeave(typing, {
      onEventPersisted(l) {
        listener = l;
        return () => {};
      },
    });
    typing.setTyping('!a:hs', '@alice:hs', true);
    const memberEvent = (membership: string): RoomEvent => ({
      eventId: `$${membership}`,
      roomId: '!a:hs',
      pdu: {
        type: 'm.room.member',
        state_key: '@alice:hs',
        sender: '@alice:hs',
        content: { membership },
      } as unknown as RoomEvent['pdu'],
    });
    listener?.({ event: memberEvent('join') });
    expect(typing.typingUsers('!a:hs')).to.deep.equal(['@alice:hs']);
    listener?.({ event: memberEvent('leave') });
    expect(typing.typingUsers('!a:hs')).to.deep.equal([]);
  });
});
