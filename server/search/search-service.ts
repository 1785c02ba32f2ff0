/**
 * Server-side search (client-server "Server Side Search", search.yaml): the
 * `room_events` category over the search index, for the rooms the user is
 * joined to, each hit judged by history visibility at that event (a user never
 * finds what they could not read, e.g. messages from before they joined a
 * room with `joined` visibility).
 *
 * Myelin extension (documented in spec/search.md): `room_events` may carry
 * `io.myelin.msgtypes`, a list of `msgtype`s to restrict results to (m.image,
 * m.file, m.video, m.audio: a conversation's shared media). With it,
 * `search_term` may be empty, listing that media newest first. A media
 * event's `filename` is searched with its `body`.
 */
import type { JsonObject } from '../../protocol/events.js';
import { stateTupleKey } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import {
  SEARCH_KEYS,
  type SearchHit,
  type SearchIndex,
  type SearchIndexQuery,
  type SearchKey,
} from '../../storage/search-index.js';
import { matchedWords, parseSearchTerm, positiveTerms } from '../../storage/search-text.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { toClientEvents } from '../rooms/client-event-format.js';
import { matchesTypePattern, type RoomEventFilter } from '../rooms/event-filter.js';
import { encodeTimelineToken } from '../rooms/pagination-token.js';
import { ignoredUsers, paginateRoom } from '../rooms/room-history.js';
import { INDEXED_TYPES, type SearchIndexer } from './search-indexer.js';

export const MEDIA_MSGTYPES_KEY = 'io.myelin.msgtypes';
const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;
const DEFAULT_CONTEXT = 5;
const MAX_CONTEXT = 20;
/** Hits read and judged at most per request, however few are visible. */
const MAX_HITS_SCANNED = 1000;
/** `count` is exact up to this many matches, then a lower bound. */
const COUNT_CAP = 1000;

export interface RoomEventsCriteria {
  readonly search_term: string;
  readonly keys?: readonly string[];
  readonly filter?: RoomEventFilter;
  readonly order_by?: 'rank' | 'recent';
  readonly event_context?: {
    readonly before_limit?: number;
    readonly after_limit?: number;
    readonly include_profile?: boolean;
  };
  readonly include_state?: boolean;
  readonly groupings?: { readonly group_by?: readonly { readonly key?: string }[] };
  readonly [MEDIA_MSGTYPES_KEY]?: readonly string[];
}

export interface SearchRequester {
  readonly userId: string;
  readonly deviceId?: string | null;
}

/** Where the next page continues: offset into rank order, or below a stream ordering. */
interface SearchCursor {
  readonly offset?: number;
  readonly before?: number;
}

export class SearchService {
  constructor(
    private readonly hs: () => HomeserverContext,
    private readonly indexer: SearchIndexer,
    private readonly index: SearchIndex,
  ) {}

  async searchRoomEvents(
    requester: SearchRequester,
    criteria: RoomEventsCriteria,
    nextBatch: string | undefined,
  ): Promise<JsonObject> {
    const hs = this.hs();
    const orderBy = criteria.order_by ?? 'rank';
    const cursor = nextBatch === undefined ? {} : parseCursor(nextBatch);
    const filter = criteria.filter ?? {};
    const limit = Math.min(filter.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
    const keys = searchKeys(criteria.keys);
    const expression = parseSearchTerm(criteria.search_term);
    const msgtypes = criteria[MEDIA_MSGTYPES_KEY];
    const empty: JsonObject = { results: [], count: 0, highlights: [] };
    if (expression.length === 0 && msgtypes === undefined) return empty;

    const roomIds = await this.searchableRooms(requester.userId, filter);
    const types = INDEXED_TYPES.filter(
      (type) =>
        (filter.types === undefined || filter.types.some((pattern) => matchesTypePattern(pattern, type))) &&
        !(filter.not_types ?? []).some((pattern) => matchesTypePattern(pattern, type)),
    );
    if (roomIds.length === 0 || types.length === 0 || limit === 0) return empty;

    const query: SearchIndexQuery = {
      expression,
      keys,
      roomIds,
      ...(filter.senders === undefined ? {} : { senders: filter.senders }),
      ...(filter.not_senders === undefined ? {} : { notSenders: filter.not_senders }),
      ...(types.length === INDEXED_TYPES.length ? {} : { types }),
      ...(msgtypes === undefined ? {} : { msgtypes }),
      ...(filter.contains_url === undefined ? {} : { containsUrl: filter.contains_url }),
      orderBy,
      limit,
    };
    await this.indexer.freshen();
    const index = this.index;
    const [page, count] = await Promise.all([
      this.visiblePage(requester.userId, index, query, cursor, limit),
      index.count(query, COUNT_CAP),
    ]);

    const events = page.hits.map((hit) => hit.event);
    const clientEvents = await toClientEvents(hs, events, requester);
    const terms = positiveTerms(expression);
    const highlights = new Set<string>();
    for (const event of events) {
      for (const key of keys) {
        const value = event.pdu.content[key.slice('content.'.length)];
        if (typeof value === 'string') for (const word of matchedWords(value, terms)) highlights.add(word);
      }
    }

    const results: JsonObject[] = [];
    for (const [i, { hit, event }] of page.hits.entries()) {
      const result: JsonObject = { rank: hit.rank, result: clientEvents[i]! };
      if (criteria.event_context !== undefined) {
        result.context = await this.context(requester, event, criteria.event_context);
      }
      results.push(result);
    }
    const response: JsonObject = { results, count, highlights: [...highlights] };
    if (page.next !== null) response.next_batch = encodeCursor(page.next);
    if (criteria.include_state === true) response.state = await this.roomStates(requester, events);
    const groups = groupResults(criteria.groupings, events);
    if (groups !== null) response.groups = groups;
    return response;
  }

  /** Waits until every stored event is indexed (benchmarks, tools). */
  waitForIndex(): Promise<void> {
    return this.indexer.catchUp();
  }

  /** Rooms the user is joined to, narrowed by the filter's rooms / not_rooms. */
  private async searchableRooms(userId: string, filter: RoomEventFilter): Promise<string[]> {
    const joined = await this.hs().storage.memberships.membershipsOfUser(userId, ['join']);
    const excluded = new Set(filter.not_rooms ?? []);
    const wanted = filter.rooms === undefined ? null : new Set(filter.rooms);
    return joined
      .map((record) => record.roomId)
      .filter((roomId) => !excluded.has(roomId) && (wanted === null || wanted.has(roomId)));
  }

  /**
   * Reads hits in batches and keeps those the user may see (history
   * visibility at each event; ignored users' messages dropped), until the
   * page is full or the hits run out.
   */
  private async visiblePage(
    userId: string,
    index: SearchIndex,
    query: SearchIndexQuery,
    cursor: SearchCursor,
    limit: number,
  ): Promise<{ hits: { hit: SearchHit; event: StoredEvent }[]; next: SearchCursor | null }> {
    const hs = this.hs();
    const ignored = await ignoredUsers(hs, userId);
    const recent = query.orderBy === 'recent' || query.expression.length === 0;
    let offset = cursor.offset ?? 0;
    let before = cursor.before;
    const batchSize = Math.min(Math.max(limit * 2, 20), MAX_HITS_SCANNED);
    const taken: { hit: SearchHit; event: StoredEvent }[] = [];
    let scanned = 0;
    let exhausted = false;
    while (taken.length < limit && scanned < MAX_HITS_SCANNED) {
      const hits = await index.search({
        ...query,
        limit: batchSize,
        ...(recent ? (before === undefined ? {} : { before }) : { offset }),
      });
      scanned += hits.length;
      if (hits.length < batchSize) exhausted = true;
      const visible = await this.visibleEvents(userId, hits, ignored);
      let consumed = hits.length;
      for (const [i, hit] of hits.entries()) {
        const event = visible.get(hit.eventId);
        if (event !== undefined) taken.push({ hit, event });
        if (taken.length === limit) {
          consumed = i + 1;
          break;
        }
      }
      offset += consumed;
      const last = hits[consumed - 1];
      if (last !== undefined) before = last.streamOrdering;
      if (consumed < hits.length) exhausted = false;
      if (exhausted) break;
    }
    const next = exhausted ? null : recent ? { before: before! } : { offset };
    return { hits: taken, next: taken.length === 0 && exhausted ? null : next };
  }

  private async visibleEvents(
    userId: string,
    hits: readonly SearchHit[],
    ignored: ReadonlySet<string>,
  ): Promise<Map<string, StoredEvent>> {
    const hs = this.hs();
    const stored = await hs.storage.events.getEvents(hits.map((hit) => hit.eventId));
    const byRoom = new Map<string, StoredEvent[]>();
    for (const event of stored.values()) {
      if (ignored.has(event.pdu.sender)) continue;
      const list = byRoom.get(event.roomId) ?? [];
      list.push(event);
      byRoom.set(event.roomId, list);
    }
    const visible = new Map<string, StoredEvent>();
    for (const [roomId, events] of byRoom) {
      for (const event of await hs.historyVisibility.filterVisibleEvents(userId, roomId, events)) {
        visible.set(event.eventId, event);
      }
    }
    return visible;
  }

  /** `context` of one result: visible events around it, tokens, and the senders' profiles at the event. */
  private async context(
    requester: SearchRequester,
    event: StoredEvent,
    request: NonNullable<RoomEventsCriteria['event_context']>,
  ): Promise<JsonObject> {
    const hs = this.hs();
    const beforeLimit = clamp(request.before_limit ?? DEFAULT_CONTEXT, 0, MAX_CONTEXT);
    const afterLimit = clamp(request.after_limit ?? DEFAULT_CONTEXT, 0, MAX_CONTEXT);
    const access = await hs.historyVisibility.roomReadAccess(requester.userId, event.roomId);
    if (access === null) return { events_before: [], events_after: [] };
    const [before, after] = await Promise.all([
      paginateRoom(hs, requester, event.roomId, access, {
        direction: 'b',
        from: event.streamOrdering - 1,
        limit: beforeLimit,
      }),
      paginateRoom(hs, requester, event.roomId, access, {
        direction: 'f',
        from: event.streamOrdering,
        limit: afterLimit,
      }),
    ]);
    const context: JsonObject = {
      events_before: await toClientEvents(hs, before.chunk, requester),
      events_after: await toClientEvents(hs, after.chunk, requester),
      start: encodeTimelineToken(before.end ?? 0),
      end: encodeTimelineToken(after.end ?? after.chunk.at(-1)?.streamOrdering ?? event.streamOrdering),
    };
    if (request.include_profile === true) {
      const senders = new Set([event, ...before.chunk, ...after.chunk].map((e) => e.pdu.sender));
      context.profile_info = await this.profilesAt(event, senders);
    }
    return context;
  }

  /** displayname and avatar_url of each sender from their member event in the state at `event`. */
  private async profilesAt(event: StoredEvent, senders: ReadonlySet<string>): Promise<JsonObject> {
    const hs = this.hs();
    const state = (await hs.storage.state.stateAfterEvent(event.eventId)) ?? new Map<string, string>();
    const memberIds = [...senders]
      .map((sender) => state.get(stateTupleKey('m.room.member', sender)))
      .filter((id): id is string => id !== undefined);
    const members = await hs.storage.events.getEvents(memberIds);
    const profiles: JsonObject = {};
    for (const member of members.values()) {
      const { content } = member.pdu;
      const profile: JsonObject = {};
      if (typeof content.displayname === 'string') profile.displayname = content.displayname;
      if (typeof content.avatar_url === 'string') profile.avatar_url = content.avatar_url;
      profiles[member.pdu.state_key as string] = profile;
    }
    return profiles;
  }

  /** include_state: the current state of each room in the results (the user is joined to each). */
  private async roomStates(requester: SearchRequester, events: readonly StoredEvent[]): Promise<JsonObject> {
    const hs = this.hs();
    const states: JsonObject = {};
    for (const roomId of new Set(events.map((event) => event.roomId))) {
      const state = await hs.storage.state.currentState(roomId);
      const stateEvents = await hs.storage.events.getEvents([...state.values()]);
      states[roomId] = await toClientEvents(hs, [...stateEvents.values()], requester, {
        bundleAggregations: false,
      });
    }
    return states;
  }
}

function searchKeys(keys: readonly string[] | undefined): SearchKey[] {
  if (keys === undefined || keys.length === 0) return [...SEARCH_KEYS];
  for (const key of keys) {
    if (!SEARCH_KEYS.includes(key as SearchKey)) throw MatrixError.invalidParam(`Unknown search key ${key}`);
  }
  return [...new Set(keys as SearchKey[])];
}

/** groupings: results grouped by room_id and/or sender, each group ordered by its best result. */
function groupResults(
  groupings: RoomEventsCriteria['groupings'],
  events: readonly StoredEvent[],
): JsonObject | null {
  const keys = (groupings?.group_by ?? []).map((group) => group.key);
  if (keys.length === 0) return null;
  const groups: JsonObject = {};
  for (const key of new Set(keys)) {
    if (key !== 'room_id' && key !== 'sender') throw MatrixError.invalidParam(`Cannot group by ${key}`);
    const grouped = new Map<string, string[]>();
    for (const event of events) {
      const value = key === 'room_id' ? event.roomId : event.pdu.sender;
      const list = grouped.get(value) ?? [];
      list.push(event.eventId);
      grouped.set(value, list);
    }
    const byValue: JsonObject = {};
    let order = 1;
    for (const [value, results] of grouped) byValue[value] = { results, order: order++ };
    groups[key] = byValue;
  }
  return groups;
}

function encodeCursor(cursor: SearchCursor): string {
  return cursor.before !== undefined ? `b${cursor.before}` : `o${cursor.offset ?? 0}`;
}

function parseCursor(token: string): SearchCursor {
  const match = /^([bo])(\d{1,15})$/.exec(token);
  if (match === null) throw MatrixError.invalidParam("Invalid 'next_batch' token");
  const value = Number(match[2]);
  return match[1] === 'b' ? { before: value } : { offset: value };
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}
