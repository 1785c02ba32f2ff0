/**
 * A room's timeline in one sync response (client-server "Syncing"): the newest
 * `limit` events in (after, upTo] that the user may see (history visibility),
 * does not ignore, and that pass the timeline filter; `limited` when the client
 * is left a gap to fill with /messages from `prev_batch`.
 */
import type { StoredEvent } from '../../storage/event-store.js';
import { matchesRoomEventFilter } from '../rooms/event-filter.js';
import type { SyncDeps, SyncRequest } from './sync-context.js';

export interface RoomTimeline {
  /** Oldest first. */
  readonly events: StoredEvent[];
  readonly limited: boolean;
}

/** Filtering dropped events and more lie further back: at most this many more pages are read. */
const MAX_EXTRA_PAGES = 4;

export async function roomTimeline(
  deps: SyncDeps,
  request: SyncRequest,
  roomId: string,
  range: {
    readonly after: number;
    readonly upTo: number;
    /**
     * Stream ordering of the user's current membership event when it is a join: every
     * later event was sent while they were joined, which any history visibility lets
     * them see, so only earlier ones are judged. (Holds for a room whose events follow
     * one another; federation's concurrent branches will need the judgement for all.)
     */
    readonly joinedAt: number | null;
  },
): Promise<RoomTimeline> {
  const limit = request.filter.timelineLimit;
  const slice = await deps.reads.timelineSlice(roomId, range.after, range.upTo, limit);
  const kept = await keepForUser(deps, request, roomId, slice.events, range.joinedAt);
  if (kept.length === slice.events.length || !slice.limited || limit === 0) {
    return { events: kept, limited: slice.limited };
  }

  // Filtering thinned the slice: read further back until the timeline is full.
  let events = kept;
  let oldest = slice.events[0]!.streamOrdering;
  const pageSize = Math.max(limit * 2, 20);
  for (let page = 0; page < MAX_EXTRA_PAGES; page++) {
    const older = (await deps.reads.eventsBefore(roomId, oldest, pageSize)).filter(
      (event) => event.streamOrdering > range.after,
    );
    if (older.length === 0) return { events, limited: false };
    oldest = older.at(-1)!.streamOrdering;
    const keptOlder = await keepForUser(deps, request, roomId, older.reverse(), range.joinedAt);
    events = [...keptOlder, ...events];
    if (events.length > limit) return { events: events.slice(events.length - limit), limited: true };
    if (older.length < pageSize) return { events, limited: false };
  }
  return { events, limited: true };
}

/** Visible to the user, not from a user they ignore (state events stay), passing the timeline filter. */
async function keepForUser(
  deps: SyncDeps,
  request: SyncRequest,
  roomId: string,
  events: readonly StoredEvent[],
  joinedAt: number | null,
): Promise<StoredEvent[]> {
  if (events.length === 0) return [];
  const { ignoredUsers, filter } = request;
  const wanted = events.filter(
    (event) =>
      !(ignoredUsers.has(event.pdu.sender) && event.pdu.state_key === undefined) &&
      matchesRoomEventFilter(filter.timeline, {
        type: event.pdu.type,
        sender: event.pdu.sender,
        roomId,
        content: event.pdu.content,
      }),
  );
  if (wanted.length === 0) return [];
  const toJudge = joinedAt === null ? wanted : wanted.filter((event) => event.streamOrdering <= joinedAt);
  if (toJudge.length === 0) return wanted;
  const visible = new Set(
    (await deps.hs.historyVisibility.filterVisibleEvents(request.requester.userId, roomId, toJudge)).map(
      (event) => event.eventId,
    ),
  );
  return wanted.filter(
    (event) => visible.has(event.eventId) || (joinedAt !== null && event.streamOrdering > joinedAt),
  );
}
