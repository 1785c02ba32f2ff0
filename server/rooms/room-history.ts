/**
 * Reading a room's history for a client (client-server "Getting events for a
 * room", "Lazy-loading room members"): who may read at all, the state a reader
 * sees, /messages pagination, /context, and the state at a pagination token.
 * History visibility is applied to every event served; the routes in
 * routes/rooms-read.ts only parse and shape.
 */
import type { JsonObject, StateMap } from '../../protocol/events.js';
import { stateTupleKey } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { matchesRoomEventFilter, type RoomEventFilter } from './event-filter.js';
import type { RoomReadAccess } from './history-visibility.js';
import { EARLIEST_POSITION, type TimelinePosition } from './pagination-token.js';

export interface Reader {
  readonly userId: string;
  readonly deviceId?: string | null;
}

/** The most events one /messages request reads from storage, however few pass the filters. */
const MAX_EVENTS_SCANNED = 1000;
/** Federation backfill requests one /messages page may make when it reaches the start. */
const MAX_BACKFILLS_PER_PAGE = 3;

/** Whether the user may read the room; 403 M_FORBIDDEN when not. */
export async function requireReadAccess(
  hs: HomeserverContext,
  userId: string,
  roomId: string,
): Promise<RoomReadAccess> {
  const access = await hs.historyVisibility.roomReadAccess(userId, roomId);
  if (access === null) {
    throw MatrixError.forbidden(`User ${userId} is not in room ${roomId} and the room is not world readable`);
  }
  return access;
}

/**
 * The state a reader sees (rooms.yaml /state, /members): the current state, or
 * for a user who left or was banned the state when that happened.
 */
export async function stateForReader(
  hs: HomeserverContext,
  roomId: string,
  access: RoomReadAccess,
): Promise<StateMap> {
  if (access.readUpTo === null) return hs.storage.state.currentState(roomId);
  return stateAtPosition(hs, roomId, access.readUpTo);
}

/** The room state after the last timeline event at or before a position (/members?at). */
export async function stateAtPosition(
  hs: HomeserverContext,
  roomId: string,
  position: TimelinePosition,
): Promise<StateMap> {
  const [last] = await hs.storage.events.roomEventsBefore(roomId, position + 1, 1);
  if (last === undefined) return new Map();
  return (await hs.storage.state.stateAfterEvent(last.eventId)) ?? new Map();
}

/** Users whose non-state events the reader asked not to see (m.ignored_user_list). */
export async function ignoredUsers(hs: HomeserverContext, userId: string): Promise<Set<string>> {
  const entry = await hs.storage.accountData.getAccountData(userId, null, 'm.ignored_user_list');
  const ignored = entry?.content.ignored_users;
  if (ignored === null || typeof ignored !== 'object' || Array.isArray(ignored)) return new Set();
  return new Set(Object.keys(ignored));
}

export interface MessagesRequest {
  readonly direction: 'b' | 'f';
  readonly from?: TimelinePosition;
  readonly to?: TimelinePosition;
  readonly limit: number;
  readonly filter?: RoomEventFilter;
}

export interface MessagesPage {
  /** The events, in the requested direction. */
  readonly chunk: StoredEvent[];
  /** Where the page starts. */
  readonly start: TimelinePosition;
  /** Where to continue; null when there is nothing more. */
  readonly end: TimelinePosition | null;
}

/**
 * One page of /messages. Storage is read in batches and each batch judged with
 * one visibility pass, until the page is full, the history ends, the `to` bound
 * or the reader's leave is reached, or MAX_EVENTS_SCANNED have been read (then
 * the page may be short, and `end` lets the client go on).
 */
export async function paginateRoom(
  hs: HomeserverContext,
  reader: Reader,
  roomId: string,
  access: RoomReadAccess,
  request: MessagesRequest,
): Promise<MessagesPage> {
  const backwards = request.direction === 'b';
  const cap = access.readUpTo ?? Number.POSITIVE_INFINITY;
  let start: TimelinePosition;
  if (request.from !== undefined) start = backwards ? Math.min(request.from, cap) : request.from;
  else start = backwards ? Math.min(await hs.storage.events.latestStreamOrdering(), cap) : EARLIEST_POSITION;
  // Events with an ordering beyond these bounds are not part of this page.
  const lowest = backwards ? (request.to ?? EARLIEST_POSITION) : start;
  const highest = backwards ? start : Math.min(request.to ?? Number.POSITIVE_INFINITY, cap);

  const ignored = await ignoredUsers(hs, reader.userId);
  const chunk: StoredEvent[] = [];
  let position = start;
  let scanned = 0;
  let exhausted = false;
  let backfills = 0;
  if (request.limit === 0) return { chunk, start, end: start };
  const batchSize = Math.min(Math.max(request.limit * 2, 20), MAX_EVENTS_SCANNED);

  while (chunk.length < request.limit && scanned < MAX_EVENTS_SCANNED) {
    const batch = backwards
      ? await hs.storage.events.roomEventsBefore(roomId, position + 1, batchSize)
      : await hs.storage.events.roomEventsAfter(roomId, position, batchSize);
    const inBounds = batch.filter((event) =>
      backwards ? event.streamOrdering > lowest : event.streamOrdering <= highest,
    );
    scanned += batch.length;
    if (inBounds.length < batch.length || batch.length < batchSize) exhausted = true;
    const wanted = inBounds.filter(
      (event) =>
        matchesRoomEventFilter(request.filter, eventForFilter(event)) &&
        (event.pdu.state_key !== undefined || !ignored.has(event.pdu.sender)),
    );
    const visible = new Set(await hs.historyVisibility.filterVisibleEvents(reader.userId, roomId, wanted));
    let taken = inBounds.length;
    for (const [i, event] of inBounds.entries()) {
      if (!visible.has(event)) continue;
      chunk.push(event);
      if (chunk.length === request.limit) {
        taken = i + 1;
        break;
      }
    }
    const last = inBounds[taken - 1];
    if (last !== undefined) position = backwards ? last.streamOrdering - 1 : last.streamOrdering;
    if (taken < inBounds.length) exhausted = false;
    // The start of what we hold of a room joined over federation: older history is fetched
    // from a resident server (stored below everything, so the scan goes on from here).
    const reachedStart = backwards && batch.length < batchSize && inBounds.length === batch.length;
    if (
      exhausted &&
      reachedStart &&
      chunk.length < request.limit &&
      backfills < MAX_BACKFILLS_PER_PAGE &&
      (await hs.roomFederation?.backfill(roomId))
    ) {
      backfills++;
      exhausted = false;
      continue;
    }
    if (exhausted) break;
  }

  let end: TimelinePosition | null = position;
  if (exhausted && (backwards || chunk.length === 0)) end = null;
  return { chunk, start, end };
}

export interface EventContext {
  readonly event: StoredEvent;
  readonly before: StoredEvent[];
  readonly after: StoredEvent[];
  readonly start: TimelinePosition;
  readonly end: TimelinePosition;
  /** State at the last event returned, filtered. */
  readonly state: StoredEvent[];
}

/**
 * /context: the event (404 M_NOT_FOUND unless the reader may see it) and up to
 * `limit` visible events around it, half before and half after (as Synapse
 * splits them); the filter applies to those and to the state, not to the event.
 */
export async function eventContext(
  hs: HomeserverContext,
  reader: Reader,
  roomId: string,
  eventId: string,
  access: RoomReadAccess,
  limit: number,
  filter: RoomEventFilter | undefined,
): Promise<EventContext> {
  const event = await visibleEventOrNotFound(hs, reader.userId, roomId, eventId);
  const beforeLimit = Math.floor(limit / 2);
  const afterLimit = limit - beforeLimit;
  const contextFilter = filter === undefined ? undefined : { ...filter, limit: undefined };
  const [beforePage, afterPage] = await Promise.all([
    paginateRoom(hs, reader, roomId, access, {
      direction: 'b',
      from: event.streamOrdering - 1,
      limit: beforeLimit,
      filter: contextFilter,
    }),
    paginateRoom(hs, reader, roomId, access, {
      direction: 'f',
      from: event.streamOrdering,
      limit: afterLimit,
      filter: contextFilter,
    }),
  ]);
  const lastEvent = afterPage.chunk.at(-1) ?? event;
  const stateMap = (await hs.storage.state.stateAfterEvent(lastEvent.eventId)) ?? new Map<string, string>();
  const stateIds = filter?.lazy_load_members
    ? lazyLoadedStateIds(stateMap, [...beforePage.chunk, event, ...afterPage.chunk])
    : [...stateMap.values()];
  const stateEvents = await hs.storage.events.getEvents(stateIds);
  return {
    event,
    before: beforePage.chunk,
    after: afterPage.chunk,
    start: beforePage.end ?? 0,
    end: afterPage.end ?? lastEvent.streamOrdering,
    state: [...stateEvents.values()].filter((stateEvent) =>
      matchesRoomEventFilter(contextFilter, eventForFilter(stateEvent)),
    ),
  };
}

/** A stored event of the room the user may see, or 404 M_NOT_FOUND (also for events they may not see, as Synapse answers). */
export async function visibleEventOrNotFound(
  hs: HomeserverContext,
  userId: string,
  roomId: string,
  eventId: string,
): Promise<StoredEvent> {
  const event = await hs.storage.events.getEvent(eventId);
  if (
    event === null ||
    event.roomId !== roomId ||
    event.outlier ||
    event.rejectionReason !== null ||
    !(await hs.historyVisibility.canSeeEvent(userId, event))
  ) {
    throw MatrixError.notFound('Event not found.');
  }
  return event;
}

/**
 * The member events of the senders of `events` in the state around them
 * (lazy_load_members): the state at the first event of the page, as Synapse
 * chooses; senders who joined later in the page bring their join in the page.
 */
export async function lazyLoadedMembers(
  hs: HomeserverContext,
  events: readonly StoredEvent[],
): Promise<StoredEvent[]> {
  const first = events[0];
  if (first === undefined) return [];
  const state = await hs.storage.state.stateAfterEvent(first.eventId);
  if (state === null) return [];
  const ids = lazyLoadedStateIds(state, events);
  return [...(await hs.storage.events.getEvents(ids)).values()];
}

function lazyLoadedStateIds(state: StateMap, events: readonly StoredEvent[]): string[] {
  const ids = new Set<string>();
  for (const event of events) {
    const memberId = state.get(stateTupleKey('m.room.member', event.pdu.sender));
    if (memberId !== undefined) ids.add(memberId);
  }
  return [...ids];
}

/** What filters look at in a stored event. */
export function eventForFilter(event: StoredEvent): {
  type: string;
  sender: string;
  roomId: string;
  content: JsonObject;
} {
  return { type: event.pdu.type, sender: event.pdu.sender, roomId: event.roomId, content: event.pdu.content };
}
