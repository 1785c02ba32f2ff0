/**
 * The joined rooms of a user that a sync filter keeps: what an incremental sync watches,
 * and what the shared fan-out path answers for. A woken member computes it twice per
 * message (once to answer, once to go back to waiting), a thousand members at a time;
 * here it is computed once per memberships list (SyncReads hands out the same array until
 * a membership of the user changes) and filter, when the filter does not depend on the
 * archived rooms (which change in place).
 */
import type { MembershipRecord } from '../../storage/membership-store.js';
import { matchesRoomList } from '../rooms/event-filter.js';
import type { SyncDeps } from './sync-context.js';
import type { SyncFilter } from './sync-filter.js';

export interface Watched {
  readonly filter: SyncFilter;
  readonly rooms: readonly string[];
  /** The newest stream ordering among the memberships (a sync from before it takes the general path). */
  readonly newest: number;
}

const byMemberships = new WeakMap<readonly MembershipRecord[], Watched>();

/** The newest membership's stream ordering and the joined rooms the filter keeps; `archived` when it asks. */
export function watchedRooms(
  memberships: readonly MembershipRecord[],
  filter: SyncFilter,
  archived: ReadonlySet<string> | null,
): Watched {
  const dependsOnArchive = filter.archived !== 'include';
  if (!dependsOnArchive) {
    const known = byMemberships.get(memberships);
    if (known?.filter === filter) return known;
  }
  let newest = -1;
  const rooms: string[] = [];
  for (const record of memberships) {
    if (record.streamOrdering > newest) newest = record.streamOrdering;
    if (record.membership !== 'join') continue;
    if (passesRoomFilter(filter, archived, record.roomId)) rooms.push(record.roomId);
  }
  const watched = { filter, rooms, newest };
  if (!dependsOnArchive) byMemberships.set(memberships, watched);
  return watched;
}

/**
 * Whether a room passes the filter's room list (rooms / not_rooms) and its archive choice
 * (io.myelin.archived); `archived` is the user's archived rooms, not read (may be null)
 * when the filter includes them.
 */
export function passesRoomFilter(
  filter: SyncFilter,
  archived: ReadonlySet<string> | null,
  roomId: string,
): boolean {
  if (!matchesRoomList({ rooms: filter.rooms, not_rooms: filter.notRooms }, roomId)) return false;
  return filter.archived === 'include' || (archived?.has(roomId) ?? false) === (filter.archived === 'only');
}

/**
 * watchedRoomsOf without a promise, when nothing needs reading (the memberships are cached and
 * the filter does not depend on archived rooms); undefined otherwise.
 */
export function watchedRoomsIfCached(
  deps: SyncDeps,
  userId: string,
  filter: SyncFilter,
): Watched | undefined {
  if (filter.archived !== 'include') return undefined;
  const memberships = deps.reads.cachedMembershipsOf(userId);
  return memberships === undefined ? undefined : watchedRooms(memberships, filter, null);
}

/** The rooms a sync of `userId` with `filter` watches: memberships and archived rooms read as needed. */
export async function watchedRoomsOf(deps: SyncDeps, userId: string, filter: SyncFilter): Promise<Watched> {
  const memberships = deps.reads.cachedMembershipsOf(userId) ?? (await deps.reads.membershipsOf(userId));
  const archived = filter.archived === 'include' ? null : await deps.hs.archive.archivedRooms(userId);
  return watchedRooms(memberships, filter, archived);
}
