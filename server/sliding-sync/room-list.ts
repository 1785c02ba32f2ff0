/**
 * The server's room list for a user (MSC4186 "Lists"): joined, invited and
 * knocked rooms, rooms they were kicked or banned from, and rooms they left
 * themselves only when the connection has already sent them (so the client
 * hears of the leave). Sorted by recency, newest first: a joined room by its
 * bump stamp, any other by when its membership changed; ties by room ID, so the
 * order is the same on every call. Lists filter it, then take their ranges.
 */
import type { MembershipRecord } from '../../storage/membership-store.js';
import type { Storage } from '../../storage/storage.js';
import type { ListFilters, ListRequest } from './request.js';
import type { RoomFacts } from './room-facts.js';

export interface ListedRoom {
  readonly record: MembershipRecord;
  readonly bumpStamp: number;
}

export interface RoomListDeps {
  readonly storage: Storage;
  readonly facts: RoomFacts;
}

export async function userRoomList(
  deps: RoomListDeps,
  userId: string,
  memberships: readonly MembershipRecord[],
  sentBefore: (roomId: string) => boolean,
): Promise<ListedRoom[]> {
  const leaves = memberships.filter(
    (record) => record.membership === 'leave' && !record.forgotten && !sentBefore(record.roomId),
  );
  const selfLeft = leaves.length === 0 ? null : await selfLeaves(deps.storage, userId, leaves);
  const joinedIds: string[] = [];
  for (const record of memberships)
    if (record.membership === 'join' && !record.forgotten) joinedIds.push(record.roomId);
  const stamps = await deps.facts.bumpStamps(joinedIds);
  const rooms: ListedRoom[] = [];
  for (const record of memberships) {
    if (record.forgotten || (record.membership === 'leave' && selfLeft?.has(record.roomId))) continue;
    rooms.push({
      record,
      bumpStamp:
        record.membership === 'join'
          ? Math.max(stamps.get(record.roomId) ?? 0, record.streamOrdering)
          : record.streamOrdering,
    });
  }
  return rooms.sort((a, b) =>
    a.bumpStamp !== b.bumpStamp ? b.bumpStamp - a.bumpStamp : a.record.roomId < b.record.roomId ? -1 : 1,
  );
}

/** Leaves the user made themself (not a kick): such rooms are listed only once the connection has sent them. */
async function selfLeaves(
  storage: Storage,
  userId: string,
  leaves: readonly MembershipRecord[],
): Promise<Set<string>> {
  const events = await storage.events.getEvents(leaves.map((record) => record.eventId));
  return new Set(
    leaves
      .filter((record) => events.get(record.eventId)?.pdu.sender === userId)
      .map((record) => record.roomId),
  );
}

/** Per-request lookups the filters need, read once however many lists use them. */
export class FilterContext {
  private tags: Promise<Map<string, Set<string>>> | undefined;
  private readonly spaceChildren = new Map<string, Promise<Set<string>>>();

  constructor(
    private readonly deps: RoomListDeps,
    private readonly userId: string,
    private readonly joinedRoomIds: ReadonlySet<string>,
    /** Rooms in the user's m.direct. */
    private readonly directRooms: () => Promise<Set<string>>,
  ) {}

  private roomTags(): Promise<Map<string, Set<string>>> {
    this.tags ??= this.deps.storage.accountData.accountDataChangedSince(this.userId, 0).then((entries) => {
      const tags = new Map<string, Set<string>>();
      for (const entry of entries) {
        if (entry.roomId === null || entry.type !== 'm.tag') continue;
        const names = entry.content.tags;
        if (names !== null && typeof names === 'object') tags.set(entry.roomId, new Set(Object.keys(names)));
      }
      return tags;
    });
    return this.tags;
  }

  /** MSC4186 `spaces`: rooms an m.space.child of a space the user is joined to names (no subspaces). */
  private children(spaceId: string): Promise<Set<string>> {
    let children = this.spaceChildren.get(spaceId);
    if (children === undefined) {
      children = this.joinedRoomIds.has(spaceId)
        ? this.deps.storage.state.currentStateOfType(spaceId, 'm.space.child').then(async (entries) => {
            const events = await this.deps.storage.events.getEvents([...entries.values()]);
            const ids = new Set<string>();
            for (const [childId, eventId] of entries) {
              const via = events.get(eventId)?.pdu.content.via;
              if (Array.isArray(via) && via.length > 0) ids.add(childId);
            }
            return ids;
          })
        : Promise.resolve(new Set());
      this.spaceChildren.set(spaceId, children);
    }
    return children;
  }

  /** The rooms that pass the list's filters, in the same order. */
  async apply(rooms: readonly ListedRoom[], filters: ListFilters): Promise<readonly ListedRoom[]> {
    let kept = rooms;
    if (filters.isInvite !== undefined)
      kept = kept.filter((room) => (room.record.membership === 'invite') === filters.isInvite);
    if (filters.isDm !== undefined) {
      const dms = await this.directRooms();
      kept = kept.filter((room) => dms.has(room.record.roomId) === filters.isDm);
    }
    if (filters.spaces !== undefined) {
      const inSpaces = new Set<string>();
      for (const spaceId of filters.spaces) for (const id of await this.children(spaceId)) inSpaces.add(id);
      kept = kept.filter((room) => inSpaces.has(room.record.roomId));
    }
    if (filters.roomTypes !== undefined || filters.notRoomTypes !== undefined) {
      const types = await this.deps.facts.roomTypes(kept.map((room) => room.record.roomId));
      kept = kept.filter((room) => {
        const type = types.get(room.record.roomId) ?? null;
        if (filters.notRoomTypes?.includes(type)) return false;
        return filters.roomTypes === undefined || filters.roomTypes.includes(type);
      });
    }
    if (filters.isEncrypted !== undefined) {
      const encrypted = await Promise.all(
        kept.map((room) => this.deps.facts.isEncrypted(room.record.roomId)),
      );
      kept = kept.filter((_, i) => encrypted[i] === filters.isEncrypted);
    }
    if (filters.tags !== undefined || filters.notTags !== undefined) {
      const tags = await this.roomTags();
      kept = kept.filter((room) => {
        const roomTags = tags.get(room.record.roomId) ?? new Set<string>();
        if (filters.notTags?.some((tag) => roomTags.has(tag))) return false;
        return filters.tags === undefined || filters.tags.some((tag) => roomTags.has(tag));
      });
    }
    return kept;
  }
}

/** The rooms within the list's ranges (all of them without ranges). */
export function inRanges(rooms: readonly ListedRoom[], list: Pick<ListRequest, 'ranges'>): ListedRoom[] {
  if (list.ranges === null) return [...rooms];
  // The usual one range: a slice.
  if (list.ranges.length === 1) return rooms.slice(list.ranges[0]![0], list.ranges[0]![1] + 1);
  const picked = new Set<number>();
  for (const [start, end] of list.ranges)
    for (let i = start; i <= Math.min(end, rooms.length - 1); i++) picked.add(i);
  return [...picked].sort((a, b) => a - b).map((i) => rooms[i]!);
}
