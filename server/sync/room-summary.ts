/**
 * A joined room's `summary` (client-server "Syncing", RoomSummary): the joined
 * and invited member counts and `m.heroes`, the first five other members by
 * stream ordering who are joined or invited (left and banned ones only when
 * there are none), for clients to name a room that has no name.
 */
import type { JsonObject } from '../../protocol/events.js';
import type { MembershipRecord } from '../../storage/membership-store.js';
import type { SyncDeps } from './sync-context.js';

const MAX_HEROES = 5;

export async function roomSummary(deps: SyncDeps, roomId: string, userId: string): Promise<JsonObject> {
  const members = await deps.reads.joinedAndInvited(roomId);
  let joined = 0;
  let invited = 0;
  for (const member of members) {
    if (member.membership === 'join') joined++;
    else invited++;
  }
  let heroes = firstOthers(members, userId);
  if (heroes.length === 0) {
    heroes = firstOthers(await deps.hs.storage.memberships.membersOfRoom(roomId, ['leave', 'ban']), userId);
  }
  return {
    'm.heroes': heroes,
    'm.joined_member_count': joined,
    'm.invited_member_count': invited,
  };
}

/** The first MAX_HEROES others by stream ordering: one pass keeping the smallest (rooms of thousands, no sort). */
function firstOthers(members: readonly MembershipRecord[], userId: string): string[] {
  const first: MembershipRecord[] = [];
  for (const member of members) {
    if (member.userId === userId) continue;
    if (first.length === MAX_HEROES && member.streamOrdering >= first[MAX_HEROES - 1]!.streamOrdering)
      continue;
    // Ties keep their order in `members`, as a stable sort would.
    let at = first.length;
    while (at > 0 && first[at - 1]!.streamOrdering > member.streamOrdering) at--;
    first.splice(at, 0, member);
    if (first.length > MAX_HEROES) first.pop();
  }
  return first.map((member) => member.userId);
}
