/**
 * A room's name, avatar, member counts and heroes (MSC4186 room results), as seen
 * from a state: worked out once for the room, then each user takes their heroes from
 * it (the first members other than themself). For the current state it is shared by
 * every member until the room's next event (SlidingSyncReads.roomSummary), so a message
 * waking a hundred members is summarised once.
 */
import { type JsonObject, type StateMap, stateTupleKey } from '../../protocol/events.js';
import type { MembershipRecord } from '../../storage/membership-store.js';
import type { Storage } from '../../storage/storage.js';
import type { SlidingSyncReads } from './shared-reads.js';

const MEMBER = 'm.room.member';
const MAX_HEROES = 5;

interface HeroCandidate {
  readonly userId: string;
  readonly entry: JsonObject;
  /** The entry as JSON, for the summary key. */
  readonly json: string;
}

export interface RoomSummary {
  readonly name?: string;
  readonly avatar?: string;
  readonly joinedCount: number;
  readonly invitedCount: number;
  /** Without a name: the first joined or invited members, oldest first, one more than the heroes. */
  readonly members: readonly HeroCandidate[];
  /** The same among those who left or were banned (heroes when nobody else is joined or invited). */
  readonly formerMembers: readonly HeroCandidate[];
  /** JSON of name, avatar and counts. */
  readonly key: string;
}

/** What one user is sent: the room's summary with their heroes, and a key that changes when any of it does. */
export interface UserRoomSummary {
  readonly name?: string;
  readonly avatar?: string;
  readonly heroes?: JsonObject[];
  readonly joinedCount: number;
  readonly invitedCount: number;
  readonly key: string;
}

export async function summariseRoom(
  reads: SlidingSyncReads,
  storage: Pick<Storage, 'memberships'>,
  roomId: string,
  state: StateMap,
): Promise<RoomSummary> {
  const nameId = state.get(stateTupleKey('m.room.name', ''));
  const avatarId = state.get(stateTupleKey('m.room.avatar', ''));
  const [members, loaded] = await Promise.all([
    reads.joinedAndInvited(roomId),
    reads.events([nameId, avatarId].filter((id): id is string => id !== undefined)),
  ]);
  let joinedCount = 0;
  let invitedCount = 0;
  for (const member of members) {
    if (member.membership === 'join') joinedCount++;
    else if (member.membership === 'invite') invitedCount++;
  }
  const rawName = nameId === undefined ? undefined : loaded.get(nameId)?.pdu.content.name;
  const name = typeof rawName === 'string' && rawName !== '' ? rawName : undefined;
  const rawAvatar = avatarId === undefined ? undefined : loaded.get(avatarId)?.pdu.content.url;
  const avatar = typeof rawAvatar === 'string' && rawAvatar !== '' ? rawAvatar : undefined;
  const key = JSON.stringify([name ?? null, avatar ?? null, joinedCount, invitedCount]);
  const summary = {
    ...(name === undefined ? {} : { name }),
    ...(avatar === undefined ? {} : { avatar }),
    joinedCount,
    invitedCount,
    key,
  };
  if (name !== undefined) return { ...summary, members: [], formerMembers: [] };

  // Heroes: the first other members, joined or invited, else those who left (as m.heroes in /sync).
  const first = oldestFirst(members);
  // Only the user themself (or nobody) joined or invited: their heroes are former members.
  const former =
    first.length <= 1 ? oldestFirst(await storage.memberships.membersOfRoom(roomId, ['leave', 'ban'])) : [];
  const [firstCandidates, formerCandidates] = await Promise.all([
    heroCandidates(reads, state, first),
    heroCandidates(reads, state, former),
  ]);
  return { ...summary, members: firstCandidates, formerMembers: formerCandidates };
}

/** The summary as `userId` is sent it. */
export function summaryFor(summary: RoomSummary, userId: string): UserRoomSummary {
  if (summary.name !== undefined) return summary;
  let heroes = others(summary.members, userId);
  if (heroes.length === 0) heroes = others(summary.formerMembers, userId);
  return {
    ...summary,
    heroes: heroes.map((hero) => hero.entry),
    key: `${summary.key}\u0000${heroes.map((hero) => hero.json).join(',')}`,
  };
}

function others(candidates: readonly HeroCandidate[], userId: string): HeroCandidate[] {
  return candidates.filter((candidate) => candidate.userId !== userId).slice(0, MAX_HEROES);
}

/** The first members by stream ordering, one more than the heroes (a user skips themself). */
function oldestFirst(members: readonly MembershipRecord[]): MembershipRecord[] {
  return [...members].sort((a, b) => a.streamOrdering - b.streamOrdering).slice(0, MAX_HEROES + 1);
}

async function heroCandidates(
  reads: SlidingSyncReads,
  state: StateMap,
  members: readonly MembershipRecord[],
): Promise<HeroCandidate[]> {
  if (members.length === 0) return [];
  const eventIdOf = (member: MembershipRecord) =>
    state.get(stateTupleKey(MEMBER, member.userId)) ?? member.eventId;
  const events = await reads.events(members.map(eventIdOf));
  return members.map((member) => {
    const content = events.get(eventIdOf(member))?.pdu.content;
    const entry: JsonObject = { user_id: member.userId };
    const displayName = content?.displayname;
    if (typeof displayName === 'string') entry.displayname = displayName;
    const avatarUrl = content?.avatar_url;
    if (typeof avatarUrl === 'string') entry.avatar_url = avatarUrl;
    return { userId: member.userId, entry, json: JSON.stringify(entry) };
  });
}
