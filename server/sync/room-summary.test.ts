import { expect } from 'chai';
import type { MembershipRecord } from '../../storage/membership-store.js';
import { roomSummary } from './room-summary.js';
import type { SyncDeps } from './sync-context.js';

function member(
  userId: string,
  streamOrdering: number,
  membership: 'join' | 'invite' = 'join',
): MembershipRecord {
  return { roomId: '!r:x', userId, membership, eventId: `$${userId}`, streamOrdering } as MembershipRecord;
}

function depsWith(members: readonly MembershipRecord[]): SyncDeps {
  return { reads: { joinedAndInvited: async () => members } } as unknown as SyncDeps;
}

describe('roomSummary', () => {
  it('names as heroes the first five other members by stream ordering, ties in member order', async () => {
    // Shuffled orderings, a tie at 3, the syncing user among the first.
    const members = [
      member('@g:x', 70),
      member('@me:x', 1),
      member('@c:x', 3),
      member('@b:x', 2, 'invite'),
      member('@h:x', 80),
      member('@d:x', 3),
      member('@f:x', 60),
      member('@e:x', 50),
      member('@a:x', 9000),
    ];
    const summary = await roomSummary(depsWith(members), '!r:x', '@me:x');
    expect(summary).to.deep.equal({
      'm.heroes': ['@b:x', '@c:x', '@d:x', '@e:x', '@f:x'],
      'm.joined_member_count': 8,
      'm.invited_member_count': 1,
    });
  });

  it('gives the same heroes as sorting the whole room', async () => {
    const members = Array.from({ length: 1000 }, (_, i) => member(`@u${i}:x`, (i * 7919) % 1009));
    const expected = members
      .filter((record) => record.userId !== '@u5:x')
      .sort((a, b) => a.streamOrdering - b.streamOrdering)
      .slice(0, 5)
      .map((record) => record.userId);
    const summary = await roomSummary(depsWith(members), '!r:x', '@u5:x');
    expect(summary['m.heroes']).to.deep.equal(expected);
  });
});
