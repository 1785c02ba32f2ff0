/**
 * Reads that the members of a room woken by the same event all make, made once
 * (ARCHITECTURE "Hot paths"). What /sync reads too comes from its cache (SyncReads:
 * state events by ID, joined and invited members, each user's memberships, the rooms
 * changed in a stream range); kept here is what only sliding sync reads: the room's
 * current state and summary (valid until the room's next event), its newest events up
 * to a position, each user's m.direct rooms, and timelines formatted for nobody in
 * particular (each user then gets their own `age` and, for their own events,
 * `transaction_id`).
 */

import type { JsonObject, StateMap } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { MembershipRecord } from '../../storage/membership-store.js';
import type { Storage } from '../../storage/storage.js';
import { toClientEvents } from '../rooms/client-event-format.js';
import type { PersistedRoomEvent } from '../rooms/room-event-sender.js';
import type { SyncReads } from '../sync/sync-reads.js';
import { type RoomSummary, summariseRoom } from './room-summary.js';
import type { SlidingSyncServices } from './sliding-sync-context.js';

interface Versioned<T> {
  readonly version: number;
  readonly value: Promise<T>;
}

export class SlidingSyncReads {
  /** Bumped by every event persisted in the room: cached room reads of an older version are stale. */
  private readonly versions = new Map<string, number>();
  private readonly states = new LazyLruCache<string, Versioned<StateMap>>({ max: 5_000 });
  private readonly summaries = new LazyLruCache<string, Versioned<RoomSummary>>({ max: 5_000 });
  private readonly latest = new LazyLruCache<string, Promise<StoredEvent[]>>({ max: 10_000, ttl: 60_000 });
  private readonly formatted = new LazyLruCache<string, Promise<Map<string, JsonObject> | null>>({
    max: 10_000,
    ttl: 60_000,
  });
  /** Bumped by each membership event about the user (or a change outside the send path). */
  private readonly userVersions = new Map<string, number>();
  /** Rooms in each user's m.direct, valid while the account data stream has not passed `position`. */
  private readonly direct = new LazyLruCache<string, { position: number; rooms: Promise<Set<string>> }>({
    max: 100_000,
  });

  /** Both are read on first use, so the reads can be built before the storage is open. */
  constructor(
    private readonly storageOf: () => Storage,
    private readonly syncReadsOf: () => SyncReads,
  ) {}

  /** The user's current memberships (/sync's cache, until a membership event about them). */
  membershipsOf(userId: string): Promise<readonly MembershipRecord[]> {
    return this.syncReadsOf().membershipsOf(userId);
  }

  /** Moves on whenever the user's memberships may have changed. */
  membershipVersion(userId: string): number {
    return this.userVersions.get(userId) ?? 0;
  }

  /** A user's membership changed outside the send path (federation, /forget). */
  forgetMembershipsOf(userId: string): void {
    this.userVersions.set(userId, (this.userVersions.get(userId) ?? 0) + 1);
  }

  /** Rooms named in the user's m.direct account data, as of account data position `position` or later. */
  directRooms(userId: string, position: number): Promise<Set<string>> {
    const cached = this.direct.get(userId);
    if (cached !== undefined && cached.position >= position) return cached.rooms;
    const rooms = this.storage.accountData.getAccountData(userId, null, 'm.direct').then((entry) => {
      const ids = new Set<string>();
      for (const value of Object.values(entry?.content ?? {}))
        if (Array.isArray(value)) for (const id of value) if (typeof id === 'string') ids.add(id);
      return ids;
    });
    this.direct.set(userId, { position, rooms });
    rooms.catch(() => this.direct.delete(userId));
    return rooms;
  }

  private get storage(): Storage {
    return this.storageOf();
  }

  observe(persisted: PersistedRoomEvent): void {
    const { event } = persisted;
    this.versions.set(event.roomId, (this.versions.get(event.roomId) ?? 0) + 1);
    if (event.pdu.type === 'm.room.member' && typeof event.pdu.state_key === 'string')
      this.forgetMembershipsOf(event.pdu.state_key);
    if (event.pdu.type === 'm.room.redaction') {
      const redacts = event.pdu.redacts ?? event.pdu.content.redacts;
      if (typeof redacts === 'string') this.forgetEvent(redacts);
    }
  }

  /** A stored event was rewritten (a redaction): timelines read or formatted before may hold it. */
  forgetEvent(_eventId: string): void {
    this.latest.clear();
    this.formatted.clear();
  }

  forgetRoom(roomId: string): void {
    this.versions.set(roomId, (this.versions.get(roomId) ?? 0) + 1);
  }

  currentState(roomId: string): Promise<StateMap> {
    return this.versioned(this.states, roomId, () => this.storage.state.currentState(roomId));
  }

  /** The room's joined and invited members (/sync's cache, until its next membership event). */
  joinedAndInvited(roomId: string): Promise<readonly MembershipRecord[]> {
    return this.syncReadsOf().joinedAndInvited(roomId);
  }

  /** The room's summary from its current state (name, avatar, counts, hero candidates). */
  currentSummary(roomId: string): Promise<RoomSummary> {
    return this.versioned(this.summaries, roomId, async () =>
      summariseRoom(this, this.storage, roomId, await this.currentState(roomId)),
    );
  }

  private versioned<T>(
    cache: LazyLruCache<string, Versioned<T>>,
    roomId: string,
    read: () => Promise<T>,
  ): Promise<T> {
    const version = this.versions.get(roomId) ?? 0;
    const cached = cache.get(roomId);
    if (cached !== undefined && cached.version === version) return cached.value;
    const value = read();
    cache.set(roomId, { version, value });
    value.catch(() => cache.delete(roomId));
    return value;
  }

  /** The room's newest `count` accepted events at or below `position`, newest first. */
  newestEvents(roomId: string, position: number, count: number): Promise<StoredEvent[]> {
    const key = `${roomId}\u0000${position}\u0000${count}`;
    let reading = this.latest.get(key);
    if (reading === undefined) {
      reading = this.storage.events.roomEventsBefore(roomId, position + 1, count);
      this.latest.set(key, reading);
      reading.catch(() => this.latest.delete(key));
    }
    return reading;
  }

  /** Rooms with timeline events in (after, upTo] (/sync's cache, one read per range). */
  roomsChangedBetween(after: number, upTo: number): Promise<Map<string, number>> {
    return this.syncReadsOf().roomsChangedBetween(after, upTo);
  }

  /** Events by ID (state and membership events, /sync's cache); unknown IDs are absent. */
  events(eventIds: Iterable<string>): Promise<Map<string, StoredEvent>> {
    return this.syncReadsOf().events(eventIds);
  }

  /**
   * Timeline events in client format for `requester`: formatted once for everybody
   * (unless their aggregations depend on who asks: thread participation), then
   * given the requester's `age` clock and their own transaction IDs.
   */
  async formatTimeline(
    hs: SlidingSyncServices,
    events: readonly StoredEvent[],
    requester: { readonly userId: string; readonly deviceId: string | null },
    now: number,
  ): Promise<JsonObject[]> {
    if (events.length === 0) return [];
    // Keyed by the room's version too: a new relation (an edit, a reaction) changes the aggregations.
    const roomId = events[0]!.roomId;
    const key = `${roomId}\u0000${this.versions.get(roomId) ?? 0}\u0000${events.map((event) => event.eventId).join('\u0000')}`;
    let shared = this.formatted.get(key);
    if (shared === undefined) {
      shared = toClientEvents(hs, events, { userId: '', deviceId: null }, { now }).then((formatted) => {
        const byId = new Map<string, JsonObject>();
        for (const event of formatted) {
          const relations = (event.unsigned as JsonObject | undefined)?.['m.relations'] as
            | JsonObject
            | undefined;
          if (relations?.['m.thread'] !== undefined) return null;
          // Sliding sync's events carry no room_id: left out here once, not from each copy.
          const { room_id: _roomId, ...withoutRoomId } = event;
          byId.set(event.event_id as string, withoutRoomId);
        }
        return byId;
      });
      this.formatted.set(key, shared);
      shared.catch(() => this.formatted.delete(key));
    }
    const byId = await shared;
    if (byId === null) {
      const own = await toClientEvents(hs, events, requester, { now });
      for (const event of own) delete event.room_id;
      return own;
    }
    const sentSome =
      requester.deviceId !== null && events.some((event) => event.pdu.sender === requester.userId);
    const transactions = !sentSome
      ? []
      : await Promise.all(
          events.map((event) =>
            event.pdu.sender === requester.userId
              ? this.storage.events.transactionOfEvent(event.eventId)
              : null,
          ),
        );
    return events.map((event, i) => {
      const base = byId.get(event.eventId)!;
      const unsigned: JsonObject = {
        ...(base.unsigned as JsonObject),
        age: Math.max(0, now - event.pdu.origin_server_ts),
      };
      const txn = transactions[i];
      if (txn !== null && txn !== undefined && txn.deviceId === requester.deviceId)
        unsigned.transaction_id = txn.txnId;
      return { ...base, unsigned };
    });
  }
}
