/**
 * The shared room delta: when one new event wakes a thousand members, each of
 * their incremental syncs would build, format and serialise the same room
 * section. Here the section's timeline is built and serialised ONCE per (room,
 * range, timeline filter) and spliced, as text, into every woken member's
 * response; only what belongs to the member (unread counts, one-time key
 * counts) is added per member.
 *
 * It answers only the plain case, and says null otherwise (the caller then
 * builds the response the general way, sync-response.ts), so the output is
 * what the general builder gives (bar `unsigned.age`, taken when the shared
 * delta is built, a few milliseconds before each member's answer):
 * - only the events stream moved past `since` (receipts too, if none of them is
 *   for this member), and no membership of the member is newer than `since`;
 * - each changed room's new events fit the timeline (not limited), hold no
 *   membership event (they change summaries and lazy members), none is the
 *   member's own (transaction IDs), none needs per-member aggregations;
 * - no ignored users, no event_fields, client event format, no threaded unread
 *   counts, and lazy-loaded members all already sent to the device.
 */
import { type JsonObject, splitStateTupleKey } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { RoomUnreadCounts } from '../../storage/push-store.js';
import { matchesRoomEventFilter } from '../rooms/event-filter.js';
import type { SharedEventFormatting } from './event-format.js';
import type { SyncDeps, SyncRequest } from './sync-context.js';
import type { SyncFilter } from './sync-filter.js';
import { formatSyncToken, type StreamPositions, tokenBeforeEvent } from './sync-token.js';
import { watchedRoomsIfCached, watchedRoomsOf } from './watched-rooms.js';

/** What an answer hands out in a room: its last event (recorded as delivered). */
export interface Delivered {
  readonly roomId: string;
  readonly eventId: string;
  readonly streamOrdering: number;
}

/** A room's timeline as every woken member gets it. */
interface SharedRoomDelta {
  /** Tells deltas apart in the key of an assembled answer. */
  readonly id: number;
  /** `{"events":[...],"limited":false,"prev_batch":"..."}` */
  readonly timelineJson: string;
  readonly events: readonly StoredEvent[];
  readonly senders: ReadonlySet<string>;
  readonly delivered: Delivered;
  /** The delta's first event: the room's state before it is what lazy-loading members are checked against. */
  readonly first: StoredEvent;
  /**
   * The membership event of each member in that state, by user ID (read only when a member
   * lazy-loads, then once for all of them): each woken member looks up their own by the
   * user ID string they carry, not by a state key built and hashed for the lookup.
   */
  membersAtStart: ReadonlyMap<string, string> | undefined;
  membersAtStartRead: Promise<ReadonlyMap<string, string>> | undefined;
  /** The senders' membership events in that state (sendersMembershipEvents). */
  senderMemberships: readonly string[] | undefined;
}

/** A delta being built, and once built (or found not shareable) what it is: no promise to await then. */
interface DeltaEntry {
  readonly building: Promise<SharedRoomDelta | null>;
  settled: boolean;
  value: SharedRoomDelta | null;
}

/**
 * A response computed from shared deltas: its JSON text and what it handed out. Members
 * with the same deltas and the same counts get the same object (never written to), so a
 * transport may keep its encoding of the text with it (server/ws/connection.ts).
 */
export interface FanoutAnswer {
  readonly json: string;
  readonly nextBatch: string;
  readonly hasContent: true;
  readonly delivered: readonly Delivered[];
}

/** A sync without a device (an application service's user) reports these. */
const NO_DEVICE_KEYS = { oneTimeKeys: { signed_curve25519: 0 }, fallbackTypes: [] as string[] };

const ROOM_TAIL =
  ',"state":{"events":[]},"ephemeral":{"events":[]},"account_data":{"events":[]},"unread_notifications":';

export class FanoutDeltas {
  /** Keyed by room, range and timeline filter; a woken fan-out shares one entry. */
  private readonly deltas = new LazyLruCache<string, DeltaEntry>({
    max: 2_000,
    ttl: 10_000,
  });
  private readonly filterKeys = new WeakMap<SyncFilter, string>();
  /**
   * Answers already assembled, by their deltas and the member's own parts: most members
   * woken together have the same unread and key counts, so their whole answer is one
   * string (and one encoded frame) instead of a concatenation each. Few entries: only the
   * answers of the latest wakes are asked for again.
   */
  private readonly assembled = new LazyLruCache<string, FanoutAnswer>({ max: 64, ttl: 10_000 });
  private nextDeltaId = 0;
  /** The token of the last `upTo` seen: syncs woken together share one positions object. */
  private lastToken: { readonly upTo: StreamPositions; readonly token: string } | undefined;

  /** The last delta asked for, by identity of what keys it (the common case of a wake). */
  private lastDelta:
    | {
        readonly roomId: string;
        readonly after: number;
        readonly upTo: StreamPositions;
        /** The timeline filter's key (members' filters are distinct objects, often alike). */
        readonly filterKey: string;
        readonly delta: DeltaEntry;
      }
    | undefined;

  /** The answer given last and what it was made of. */
  private lastAssembled: AssembledInputs | undefined;

  /** Forgets every shared delta (an event was rewritten: redaction). */
  clear(): void {
    this.lastDelta = undefined;
    this.lastAssembled = undefined;
    this.deltas.clear();
    this.assembled.clear();
  }

  /** The answer built from shared deltas, or null when this request needs the general builder. */
  async answer(
    deps: SyncDeps,
    request: SyncRequest & { readonly since: StreamPositions },
    formatting: SharedEventFormatting,
  ): Promise<FanoutAnswer | null> {
    const { since, upTo, filter, requester } = request;
    if (
      request.fullState ||
      request.useStateAfter ||
      filter.eventFormat !== 'client' ||
      filter.eventFields !== undefined ||
      filter.timeline?.unread_thread_notifications === true ||
      request.ignoredUsers.size > 0 ||
      since.events >= upTo.events ||
      since.accountData !== upTo.accountData ||
      since.typing !== upTo.typing ||
      since.presence !== upTo.presence ||
      since.toDevice !== upTo.toDevice ||
      since.deviceLists !== upTo.deviceLists
    ) {
      return null;
    }
    const { userId, deviceId } = requester;
    // Each read below is taken from memory without a promise when it is there (nearly every
    // woken member): a thousand members each awaiting values already known is a thousand
    // chains of promise jobs, and their garbage.
    const watched =
      watchedRoomsIfCached(deps, userId, filter) ?? (await watchedRoomsOf(deps, userId, filter));
    if (watched.newest > since.events) return null;
    const joined = watched.rooms;
    if (!deps.hs.receipts.unchangedFor(userId, joined, since.receipts, upTo.receipts)) return null;

    const changed =
      deps.reads.roomsChangedIfRead(since.events, upTo.events) ??
      (await deps.reads.roomsChangedBetween(since.events, upTo.events));
    const rooms = changedAmong(joined, changed);
    if (rooms.length === 0) return null;

    const token = this.tokenOf(upTo);
    const shared: SharedRoomDelta[] = [];
    for (const roomId of rooms) {
      const entry = this.roomDelta(deps, roomId, since.events, upTo, token, filter, formatting, request.now);
      const delta = entry.settled ? entry.value : await entry.building;
      if (delta === null || delta.senders.has(userId)) return null;
      if (filter.lazyLoadMembers) {
        const members = delta.membersAtStart ?? (await membersAtStartOf(deps, delta));
        if (!lazyMembersSent(deps, request, roomId, delta, members)) return null;
      }
      shared.push(delta);
    }

    const keys = deviceId === null ? NO_DEVICE_KEYS : deps.hs.deviceKeys.keyCountsIfCached(userId, deviceId);
    const unreadNow = deps.hs.push.unreadCountsIfSettled(userId, rooms, upTo.events);
    let counts: ReadonlyMap<string, RoomUnreadCounts>;
    let oneTimeKeys: Readonly<Record<string, number>>;
    let fallbackTypes: readonly string[];
    if (keys !== undefined && unreadNow !== undefined) {
      counts = unreadNow;
      oneTimeKeys = keys.oneTimeKeys;
      fallbackTypes = keys.fallbackTypes;
    } else {
      [counts, oneTimeKeys, fallbackTypes] = await Promise.all([
        unreadNow ?? deps.hs.push.unreadCounts(userId, rooms, upTo.events),
        keys?.oneTimeKeys ?? deps.hs.deviceKeys.oneTimeKeyCounts(userId, deviceId!),
        keys?.fallbackTypes ?? deps.hs.deviceKeys.unusedFallbackKeyTypes(userId, deviceId!),
      ]);
    }

    // Most members woken together have what the previous one had: compared in place, no key built.
    const previous = this.lastAssembled;
    if (previous?.matches(shared, rooms, counts, oneTimeKeys, fallbackTypes)) return previous.answer;

    const otkJson = JSON.stringify(oneTimeKeys);
    const fallbackJson = JSON.stringify(fallbackTypes);
    let key = `${otkJson}\u0000${fallbackJson}`;
    const unread = rooms.map((roomId, i) => {
      const room = counts.get(roomId);
      const notifications = room?.notificationCount ?? 0;
      const highlights = room?.highlightCount ?? 0;
      key += `\u0000${shared[i]!.id}:${notifications}:${highlights}`;
      return [notifications, highlights] as const;
    });
    const known = this.assembled.get(key);
    if (known !== undefined) {
      this.lastAssembled = new AssembledInputs(known, shared, unread, oneTimeKeys, fallbackTypes);
      return known;
    }

    let join = '';
    rooms.forEach((roomId, i) => {
      const [notifications, highlights] = unread[i]!;
      const counted = `{"notification_count":${notifications},"highlight_count":${highlights}}`;
      join += `${i > 0 ? ',' : ''}${JSON.stringify(roomId)}:{"timeline":${shared[i]!.timelineJson}${ROOM_TAIL}${counted}}`;
    });
    const json =
      `{"next_batch":${JSON.stringify(token)},"account_data":{"events":[]},"presence":{"events":[]},` +
      `"rooms":{"join":{${join}},"invite":{},"leave":{},"knock":{}},"to_device":{"events":[]},` +
      `"device_lists":{"changed":[],"left":[]},"device_one_time_keys_count":${otkJson},` +
      `"device_unused_fallback_key_types":${fallbackJson}}`;
    const answer: FanoutAnswer = {
      json,
      nextBatch: token,
      hasContent: true,
      delivered: shared.map((delta) => delta.delivered),
    };
    this.assembled.set(key, answer);
    this.lastAssembled = new AssembledInputs(answer, shared, unread, oneTimeKeys, fallbackTypes);
    return answer;
  }

  private tokenOf(upTo: StreamPositions): string {
    if (this.lastToken?.upTo !== upTo) this.lastToken = { upTo, token: formatSyncToken(upTo) };
    return this.lastToken.token;
  }

  private roomDelta(
    deps: SyncDeps,
    roomId: string,
    after: number,
    upTo: StreamPositions,
    token: string,
    filter: SyncFilter,
    formatting: SharedEventFormatting,
    now: number,
  ): DeltaEntry {
    // Members woken together ask for the same delta one after another: no key to build for them.
    const filterKey = this.filterKey(filter);
    const last = this.lastDelta;
    if (
      last !== undefined &&
      last.upTo === upTo &&
      last.after === after &&
      last.roomId === roomId &&
      last.filterKey === filterKey
    ) {
      return last.delta;
    }
    const key = `${roomId}\u0000${after}\u0000${token}\u0000${filterKey}`;
    let delta = this.deltas.get(key);
    if (delta === undefined) {
      const building = buildRoomDelta(deps, roomId, after, upTo, filter, formatting, now, this.nextDeltaId++);
      const entry: DeltaEntry = { building, settled: false, value: null };
      delta = entry;
      this.deltas.set(key, entry);
      building.then(
        (value) => {
          entry.value = value;
          entry.settled = true;
        },
        () => {
          this.deltas.delete(key);
          if (this.lastDelta?.delta === entry) this.lastDelta = undefined;
        },
      );
    }
    this.lastDelta = { roomId, after, upTo, filterKey, delta };
    return delta;
  }

  private filterKey(filter: SyncFilter): string {
    let key = this.filterKeys.get(filter);
    if (key === undefined) {
      key = JSON.stringify([filter.timelineLimit, filter.timeline ?? null]);
      this.filterKeys.set(filter, key);
    }
    return key;
  }
}

/** The rooms of `joined` that changed: `joined` itself when all did (one room, mostly), no array made. */
function changedAmong(joined: readonly string[], changed: ReadonlyMap<string, number>): readonly string[] {
  let all = true;
  for (const roomId of joined) {
    if (!changed.has(roomId)) {
      all = false;
      break;
    }
  }
  return all ? joined : joined.filter((roomId) => changed.has(roomId));
}

/** What an assembled answer was made of, to tell whether the next member gets the same one. */
class AssembledInputs {
  constructor(
    readonly answer: FanoutAnswer,
    private readonly shared: readonly SharedRoomDelta[],
    private readonly unread: readonly (readonly [number, number])[],
    private readonly oneTimeKeys: Readonly<Record<string, number>>,
    private readonly fallbackTypes: readonly string[],
  ) {}

  matches(
    shared: readonly SharedRoomDelta[],
    rooms: readonly string[],
    counts: ReadonlyMap<string, { notificationCount?: number; highlightCount?: number }>,
    oneTimeKeys: Readonly<Record<string, number>>,
    fallbackTypes: readonly string[],
  ): boolean {
    if (shared.length !== this.shared.length) return false;
    for (let i = 0; i < shared.length; i++) {
      if (shared[i] !== this.shared[i]) return false;
      const room = counts.get(rooms[i]!);
      const [notifications, highlights] = this.unread[i]!;
      if ((room?.notificationCount ?? 0) !== notifications || (room?.highlightCount ?? 0) !== highlights)
        return false;
    }
    if (fallbackTypes.length !== this.fallbackTypes.length) return false;
    for (let i = 0; i < fallbackTypes.length; i++) {
      if (fallbackTypes[i] !== this.fallbackTypes[i]) return false;
    }
    let keys = 0;
    for (const algorithm in oneTimeKeys) {
      if (oneTimeKeys[algorithm] !== this.oneTimeKeys[algorithm]) return false;
      keys++;
    }
    for (const _ in this.oneTimeKeys) keys--;
    return keys === 0;
  }
}

async function buildRoomDelta(
  deps: SyncDeps,
  roomId: string,
  after: number,
  upTo: StreamPositions,
  filter: SyncFilter,
  formatting: SharedEventFormatting,
  now: number,
  id: number,
): Promise<SharedRoomDelta | null> {
  const slice = await deps.reads.timelineSlice(roomId, after, upTo.events, filter.timelineLimit);
  if (slice.limited || slice.events.length === 0) return null;
  const events = slice.events.filter((event) =>
    matchesRoomEventFilter(filter.timeline, {
      type: event.pdu.type,
      sender: event.pdu.sender,
      roomId,
      content: event.pdu.content,
    }),
  );
  // Every event passing the filter is kept (the member joined before `since`); none left: nothing shared.
  if (events.length === 0 || events.some((event) => event.pdu.type === 'm.room.member')) return null;
  const byId = await formatting.forSlice(deps, slice, now);
  if (byId === null) return null;
  const formatted: string[] = [];
  for (const event of events) {
    const base = byId.get(event.eventId);
    if (base === undefined) return null;
    const copy: JsonObject = {
      ...base,
      unsigned: { ...(base.unsigned as JsonObject), age: Math.max(0, now - event.pdu.origin_server_ts) },
    };
    delete copy.room_id;
    formatted.push(JSON.stringify(copy));
  }
  const prevBatch = tokenBeforeEvent(upTo, events[0]!.streamOrdering);
  const last = events.at(-1)!;
  return {
    id,
    first: events[0]!,
    membersAtStart: undefined,
    membersAtStartRead: undefined,
    senderMemberships: undefined,
    delivered: { roomId, eventId: last.eventId, streamOrdering: last.streamOrdering },
    timelineJson: `{"events":[${formatted.join(',')}],"limited":false,"prev_batch":${JSON.stringify(prevBatch)}}`,
    events,
    senders: new Set(events.map((event) => event.pdu.sender)),
  };
}

/** The membership events of the room's state before the delta, read once however many members ask at once. */
function membersAtStartOf(deps: SyncDeps, delta: SharedRoomDelta): Promise<ReadonlyMap<string, string>> {
  if (delta.membersAtStartRead === undefined) {
    const reading = deps.reads.stateBefore(delta.first).then((state) => {
      const members = new Map<string, string>();
      for (const [key, eventId] of state) {
        const [type, stateKey] = splitStateTupleKey(key);
        if (type === 'm.room.member') members.set(stateKey, eventId);
      }
      delta.membersAtStart = members;
      return members;
    });
    // A failed read is tried again by the next member rather than failing them all.
    reading.catch(() => {
      if (delta.membersAtStartRead === reading) delta.membersAtStartRead = undefined;
    });
    delta.membersAtStartRead = reading;
  }
  return delta.membersAtStartRead;
}

/**
 * Whether the device already has the membership of every sender in the delta (and its
 * own): then the lazy-loading state section is empty, as stateSection would find.
 */
function lazyMembersSent(
  deps: SyncDeps,
  request: SyncRequest,
  roomId: string,
  delta: SharedRoomDelta,
  membersAtStart: ReadonlyMap<string, string>,
): boolean {
  if (request.filter.includeRedundantMembers) return false;
  const { userId, deviceId } = request.requester;
  const stream = request.stream;
  const sent =
    stream === undefined
      ? deps.lazyMembers.sentIn(userId, deviceId, roomId)
      : deps.lazyMembers.sentAt(stream.lazyMembersKey(deps.lazyMembers, userId, deviceId, roomId));
  const own = membersAtStart.get(userId);
  if (own !== undefined && !(sent?.has(own) ?? false)) return false;
  for (const eventId of sendersMembershipEvents(delta, membersAtStart)) {
    if (!(sent?.has(eventId) ?? false)) return false;
  }
  return true;
}

/** The membership event IDs of the delta's senders as of its start (those that have one), found once per delta. */
function sendersMembershipEvents(
  delta: SharedRoomDelta,
  membersAtStart: ReadonlyMap<string, string>,
): readonly string[] {
  if (delta.senderMemberships === undefined) {
    const eventIds: string[] = [];
    for (const sender of delta.senders) {
      const eventId = membersAtStart.get(sender);
      if (eventId !== undefined) eventIds.push(eventId);
    }
    delta.senderMemberships = eventIds;
  }
  return delta.senderMemberships;
}
