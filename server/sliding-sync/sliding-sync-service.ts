/**
 * Simplified sliding sync (MSC4186): resolves the connection's state at `pos`,
 * builds the lists (the user's rooms sorted by recency, filtered, windowed),
 * adds the subscribed rooms, sends each matched room that is new to the
 * connection or changed since it was last sent, and the extensions. With nothing
 * new for an existing connection it waits on the same notifier as /sync (the
 * user's rooms and user streams, race-free by marks) until the timeout.
 */
import type { JsonObject } from '../../protocol/events.js';
import type { MembershipRecord } from '../../storage/membership-store.js';
import type { AuthenticatedUser } from '../http/auth.js';
import type { PersistedRoomEvent } from '../rooms/room-event-sender.js';
import type { RoomStream } from '../sync/notifier.js';
import { MAX_SYNC_TIMEOUT_MS } from '../sync/sync-service.js';
import type { StreamPositions } from '../sync/sync-token.js';
import {
  type ConnectionGeneration,
  type ConnectionHandle,
  type QuietGeneration,
  type RoomSent,
  SlidingSyncConnections,
} from './connections.js';
import { buildExtensions } from './extensions.js';
import type { RoomConfig, SlidingSyncRequest } from './request.js';
import { CombinedRoomConfig } from './required-state.js';
import { RoomFacts } from './room-facts.js';
import { FilterContext, inRanges, type ListedRoom, userRoomList } from './room-list.js';
import { buildRoomResult, type RoomInput, unchangedRoom } from './room-result.js';
import { SlidingSyncReads } from './shared-reads.js';
import type { SlidingSyncContext, SlidingSyncServices } from './sliding-sync-context.js';
import { unreadCountsOf } from './unread-counts.js';

/** Rooms built between two yields to the event loop. */
const ROOMS_PER_SLICE = 50;

type Requester = Pick<AuthenticatedUser, 'userId' | 'deviceId'>;

interface Computed {
  readonly body: JsonObject;
  readonly hasNews: boolean;
  readonly generation: Omit<ConnectionGeneration, 'seq'>;
  readonly watch: readonly string[];
  readonly delivered: readonly { roomId: string; eventId: string; streamOrdering: number }[];
}

interface MatchedRoom {
  readonly room: ListedRoom;
  readonly configs: RoomConfig[];
  readonly lists: string[];
}

export class SlidingSyncService {
  readonly connections: SlidingSyncConnections;
  private readonly facts: RoomFacts;
  private readonly reads: SlidingSyncReads;
  private composed: SlidingSyncServices | undefined;

  /** `services` is read on first use, so the service can be built before the context that holds it. */
  constructor(
    private readonly services: () => SlidingSyncServices,
    options: { maxConnections?: number; idleMs?: number } = {},
  ) {
    this.connections = new SlidingSyncConnections(options);
    this.facts = new RoomFacts(() => this.hs.storage);
    this.reads = new SlidingSyncReads(
      () => this.hs.storage,
      () => this.hs.sync.reads,
    );
  }

  private get hs(): SlidingSyncServices {
    this.composed ??= this.services();
    return this.composed;
  }

  /** Hears of every persisted event (bump stamps, encryption). */
  observe(persisted: PersistedRoomEvent): void {
    this.facts.observe(persisted.event, persisted.streamOrdering);
    this.reads.observe(persisted);
  }

  /**
   * A membership changed without passing through the local send path (an event from
   * federation, a /forget): drops what was cached about it.
   */
  membershipChanged(roomId: string, userId: string): void {
    this.reads.forgetRoom(roomId);
    this.reads.forgetMembershipsOf(userId);
  }

  /** A stored event was rewritten outside the send path (e.g. a redaction applied later). */
  forgetEvent(eventId: string): void {
    this.reads.forgetEvent(eventId);
  }

  /**
   * The response body, `pos` included.
   * @throws MatrixError 400 M_UNKNOWN_POS for a `pos` this connection does not have.
   */
  async sync(requester: Requester, request: SlidingSyncRequest, signal: AbortSignal): Promise<JsonObject> {
    const { connection, base } = this.connections.resume(
      { userId: requester.userId, deviceId: requester.deviceId, connId: request.connId },
      request.pos,
    );
    if (base !== null) {
      await this.applySetPresence(requester.userId, request.setPresence);
      return this.answer(requester, request, signal, connection, base);
    }
    // A new connection is answered at once. The user's coming online wakes the members of
    // each of their rooms (reading every room they are in): it follows the answer.
    try {
      return await this.answer(requester, request, signal, connection, base);
    } finally {
      setImmediate(() => {
        this.applySetPresence(requester.userId, request.setPresence).catch((error: unknown) => {
          this.hs.log.warn({ err: error, userId: requester.userId }, 'Applying set_presence failed');
        });
      });
    }
  }

  private async answer(
    requester: Requester,
    request: SlidingSyncRequest,
    signal: AbortSignal,
    connection: ConnectionHandle,
    base: ConnectionGeneration | null,
  ): Promise<JsonObject> {
    const deadline = Date.now() + Math.min(request.timeoutMs, MAX_SYNC_TIMEOUT_MS);
    const { notifier } = this.hs;
    const ignoredRoomStreams = ignoredStreams(request);
    const wait = (watch: readonly string[], mark: number) =>
      notifier.waitForChange({
        userId: requester.userId,
        roomIds: watch,
        sinceMark: mark,
        timeoutMs: deadline - Date.now(),
        signal,
        ignoredRoomStreams,
      });
    // The long-poll after an answer: when nothing it depends on has moved, computing it
    // again would find nothing new, so it waits first (and computes once woken).
    let quiet = base?.quiet;
    for (;;) {
      const mark = notifier.mark();
      const upTo = await this.hs.sync.currentPositions();
      if (quiet !== undefined) {
        const unchanged = this.stillQuiet(quiet, requester.userId, request, upTo);
        const { watch } = quiet;
        quiet = undefined;
        if (unchanged && deadline > Date.now() && !signal.aborted) {
          // Whatever ended the wait, the next round computes (and answers at the deadline or abort).
          await wait(watch, mark);
          continue;
        }
      }
      const computed = await this.compute(requester, request, base, upTo);
      const remaining = deadline - Date.now();
      if (base === null || computed.hasNews || remaining <= 0 || signal.aborted) {
        return this.handOut(requester.userId, computed, connection.commit(computed.generation));
      }
      const woken = await wait(computed.watch, mark);
      if (woken !== 'changed')
        return this.handOut(requester.userId, computed, connection.commit(computed.generation));
    }
  }

  /**
   * Whether the request and every position its answer depends on are as when `quiet`
   * was computed (the positions of streams it has no extension for do not matter).
   */
  private stillQuiet(
    quiet: QuietGeneration,
    userId: string,
    request: SlidingSyncRequest,
    upTo: StreamPositions,
  ): boolean {
    const was = quiet.positions;
    const { extensions } = request;
    return (
      quiet.settings === request.settings &&
      quiet.membershipVersion === this.reads.membershipVersion(userId) &&
      was.events === upTo.events &&
      was.accountData === upTo.accountData &&
      (extensions.toDevice === undefined || was.toDevice === upTo.toDevice) &&
      (extensions.e2ee === undefined || was.deviceLists === upTo.deviceLists) &&
      (extensions.receipts === undefined || was.receipts === upTo.receipts) &&
      (extensions.typing === undefined || was.typing === upTo.typing)
    );
  }

  private handOut(userId: string, computed: Computed, pos: string): JsonObject {
    for (const { roomId, eventId, streamOrdering } of computed.delivered) {
      this.hs.receipts.markDelivered(userId, roomId, eventId, streamOrdering).catch((error: unknown) => {
        this.hs.log.warn({ err: error, roomId, eventId }, 'Recording a delivery failed');
      });
    }
    return { pos, ...computed.body };
  }

  private async compute(
    requester: Requester,
    request: SlidingSyncRequest,
    base: ConnectionGeneration | null,
    positions: StreamPositions,
  ): Promise<Computed> {
    const { storage } = this.hs;
    const { userId } = requester;
    const membershipVersion = this.reads.membershipVersion(userId);
    const memberships = await this.reads.membershipsOf(userId);
    // A membership committed after the positions were read moves the events position up to
    // it, so that everything below it (committed in order) is read consistently.
    const upTo: StreamPositions = {
      ...positions,
      events: memberships.reduce((max, record) => Math.max(max, record.streamOrdering), positions.events),
    };
    const deps = { storage, facts: this.facts };
    const rooms = await userRoomList(deps, userId, memberships, (roomId) => base?.rooms.has(roomId) ?? false);
    const joinedIds = new Set<string>();
    for (const record of memberships) if (record.membership === 'join') joinedIds.add(record.roomId);
    const directRooms = () => this.reads.directRooms(userId, upTo.accountData);
    const filters = new FilterContext(deps, userId, joinedIds, directRooms);

    // Lists: filter, count, take the ranges.
    const matched = new Map<string, MatchedRoom>();
    const match = (room: ListedRoom, config: RoomConfig, list: string | null) => {
      let entry = matched.get(room.record.roomId);
      if (entry === undefined) {
        entry = { room, configs: [], lists: [] };
        matched.set(room.record.roomId, entry);
      }
      entry.configs.push(config);
      if (list !== null) entry.lists.push(list);
    };
    const listsBody: JsonObject = {};
    const listRooms = new Map<string, string[]>();
    for (const [name, list] of request.lists) {
      const filtered = await filters.apply(rooms, list.filters);
      const window = inRanges(filtered, list);
      for (const room of window) match(room, list, name);
      listRooms.set(
        name,
        window.map((room) => room.record.roomId),
      );
      listsBody[name] = { count: filtered.length };
    }
    // Subscriptions: any room the user is or was in (MSC4186 "Subscriptions"); others are ignored.
    const subscribedRooms: string[] = [];
    if (request.subscriptions.size > 0) {
      const byRoom = new Map<string, ListedRoom>(rooms.map((room) => [room.record.roomId, room]));
      const records = new Map<string, MembershipRecord>(memberships.map((record) => [record.roomId, record]));
      for (const [roomId, config] of request.subscriptions) {
        const record = records.get(roomId);
        if (record === undefined || record.forgotten) continue;
        const room = byRoom.get(roomId) ?? { record, bumpStamp: record.streamOrdering };
        match(room, config, null);
        subscribedRooms.push(roomId);
      }
    }

    const changed =
      base === null || base.events >= upTo.events
        ? new Map<string, number>()
        : await this.reads.roomsChangedBetween(base.events, upTo.events);
    const ctx: SlidingSyncContext = {
      hs: this.hs,
      reads: this.reads,
      userId,
      deviceId: requester.deviceId,
      now: Date.now(),
      upTo,
      baseEvents: base?.events ?? null,
      directRooms,
    };

    const roomsBody: JsonObject = {};
    const sentRooms = new Map<string, RoomSent>(base?.rooms ?? []);
    const delivered: { roomId: string; eventId: string; streamOrdering: number }[] = [];
    // Rooms the connection has had and that nothing changed for are settled here; the others are built.
    const toBuild: RoomInput[] = [];
    for (const entry of matched.values()) {
      const { record } = entry.room;
      const prev = base?.rooms.get(record.roomId);
      const input: RoomInput = {
        record,
        bumpStamp: entry.room.bumpStamp,
        config: CombinedRoomConfig.of(entry.configs),
        prev,
        lists: entry.lists,
        mayHaveChanged:
          prev === undefined || base === null || prev.position < base.events || changed.has(record.roomId),
      };
      const unchanged = unchangedRoom(input, upTo.events);
      if (unchanged === undefined) toBuild.push(input);
      else sentRooms.set(record.roomId, unchanged);
    }
    for (let start = 0; start < toBuild.length; start += ROOMS_PER_SLICE) {
      if (start > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const slice = toBuild.slice(start, start + ROOMS_PER_SLICE);
      const outcomes = await Promise.all(slice.map((input) => buildRoomResult(ctx, input)));
      for (const [i, outcome] of outcomes.entries()) {
        const { roomId } = slice[i]!.record;
        sentRooms.set(roomId, outcome.sent);
        if (outcome.body === null) continue;
        roomsBody[roomId] = outcome.body;
        const last = outcome.lastFromOthers;
        if (last !== undefined) delivered.push({ roomId, ...last });
      }
    }

    await this.addUnreadCounts(userId, roomsBody, upTo.events);

    const extensions = await buildExtensions(ctx, {
      request: request.extensions,
      base,
      listRooms,
      subscribedRooms,
      joinedRooms: joinedIds,
    });
    const body: JsonObject = { lists: listsBody, rooms: roomsBody, extensions: extensions.body };
    if (request.txnId !== undefined) body.txn_id = request.txnId;
    // Every joined room: any of them may move into a window. Invites and leaves wake the user directly.
    const watch = [...joinedIds];
    return {
      body,
      hasNews: Object.keys(roomsBody).length > 0 || extensions.hasNews,
      generation: {
        events: upTo.events,
        extensions: extensions.positions,
        rooms: sentRooms,
        matched: new Set(matched.keys()),
        // To-device messages handed out are handed out again until the client moves `since` on.
        ...(extensions.toDeviceSent
          ? {}
          : { quiet: { settings: request.settings, positions, membershipVersion, watch } }),
      },
      watch,
      delivered,
    };
  }

  /** notification_count and highlight_count of the rooms sent with them (memberRoom leaves them at 0). */
  private async addUnreadCounts(userId: string, roomsBody: JsonObject, upTo: number): Promise<void> {
    const counted = Object.keys(roomsBody).filter(
      (roomId) => (roomsBody[roomId] as JsonObject).notification_count !== undefined,
    );
    if (counted.length === 0) return;
    const unread = await unreadCountsOf(this.hs, userId, counted, upTo);
    for (const roomId of counted) {
      const room = roomsBody[roomId] as JsonObject;
      const counts = unread.get(roomId);
      room.notification_count = counts?.notificationCount ?? 0;
      room.highlight_count = counts?.highlightCount ?? 0;
    }
  }

  /** client-server "Syncing" set_presence, as /sync applies it. */
  private async applySetPresence(
    userId: string,
    setPresence: SlidingSyncRequest['setPresence'],
  ): Promise<void> {
    const { presence } = this.hs;
    if (!presence.enabled || setPresence === 'offline') return;
    if (setPresence === 'online') {
      presence.markActive(userId);
      return;
    }
    const current = await presence.getPresence(userId);
    if (current?.state !== 'unavailable') await presence.setPresence(userId, 'unavailable');
  }
}

/**
 * Room streams a connection has no extension for: their changes (every member's delivery
 * receipt for a message, typing) would wake it for nothing.
 */
function ignoredStreams(request: SlidingSyncRequest): ReadonlySet<RoomStream> {
  let ignored = ignoredBySettings.get(request.settings);
  if (ignored === undefined) {
    ignored = ignoredStreamsOf(request);
    ignoredBySettings.set(request.settings, ignored);
  }
  return ignored;
}

const ignoredBySettings = new WeakMap<object, ReadonlySet<RoomStream>>();

function ignoredStreamsOf(request: SlidingSyncRequest): ReadonlySet<RoomStream> {
  const ignored = new Set<RoomStream>(['presence']);
  if (request.extensions.receipts === undefined) ignored.add('receipts');
  if (request.extensions.typing === undefined) ignored.add('typing');
  if (request.extensions.accountData === undefined) ignored.add('account_data');
  if (request.extensions.e2ee === undefined) ignored.add('device_lists');
  return ignored;
}
