/**
 * The reads sync makes, shared between all the syncs that make them (ARCHITECTURE
 * "Hot paths"): a room's new events between two stream positions are read once
 * and handed to every member woken for them; the rooms changed between two
 * positions are asked once per (from, to); state snapshots and state events,
 * immutable but for redaction, are cached. Redactions evict what they touch.
 */
import { LRUCache } from 'lru-cache';
import type { StateMap } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { MembershipRecord } from '../../storage/membership-store.js';
import type { Storage } from '../../storage/storage.js';
import type { PersistedRoomEvent } from '../rooms/room-event-sender.js';
import { eventsThroughCache } from './cached-events.js';

/** A room's events in (after, upTo], newest `limit` of them, oldest first. */
export interface TimelineSlice {
  readonly events: readonly StoredEvent[];
  /** More events than `limit` lie in the range: the client gets a gap. */
  readonly limited: boolean;
}

export interface SentTransaction {
  readonly userId: string;
  readonly deviceId: string;
  readonly txnId: string;
}

const NO_TRANSACTION = Symbol('none');

interface ChangedRange {
  readonly after: number;
  readonly upTo: number;
  readonly reading: Promise<Map<string, number>>;
  value: Map<string, number> | undefined;
}
/** sqlite's default host-parameter limit is far above this; chunks keep each IN list short. */

export class SyncReads {
  private readonly snapshots = new LRUCache<number, StateMap>({
    maxSize: 500_000,
    sizeCalculation: (state) => Math.max(1, state.size),
  });
  private readonly snapshotLoads = new Map<number, Promise<StateMap>>();
  private readonly stateEvents = new LazyLruCache<string, StoredEvent>({ max: 200_000 });
  private readonly changedRooms = new LazyLruCache<string, Promise<Map<string, number>>>({
    max: 512,
    ttl: 60_000,
  });
  /** The range asked for last, and its rooms once read (see roomsChangedIfRead). */
  private lastChanged: ChangedRange | undefined;
  private readonly slices = new LazyLruCache<string, Promise<TimelineSlice>>({ max: 20_000, ttl: 60_000 });
  private readonly transactions = new LazyLruCache<string, SentTransaction | typeof NO_TRANSACTION>({
    max: 100_000,
  });

  /** Joined and invited members per room, oldest change first; dropped on any membership event there. */
  private readonly members = new LRUCache<string, readonly MembershipRecord[]>({
    maxSize: 2_000_000,
    sizeCalculation: (records) => Math.max(1, records.length),
  });
  private readonly joinedSets = new WeakMap<readonly MembershipRecord[], ReadonlySet<string>>();
  /** Bumped by each membership event, so a read that raced with one is not cached. */
  private readonly memberVersions = new Map<string, number>();

  /**
   * Each user's memberships, dropped when a membership event about them is persisted;
   * the TTL bounds how long a change without an event (/forget) goes unseen.
   */
  private readonly userMemberships = new LazyLruCache<string, readonly MembershipRecord[]>({
    max: 100_000,
    ttl: 30_000,
  });
  private readonly userMembershipVersions = new Map<string, number>();
  /** The ignore list per user, valid while the account data stream has not moved. */
  private readonly ignoreLists = new LazyLruCache<string, { position: number; users: ReadonlySet<string> }>({
    max: 100_000,
  });

  constructor(private readonly storage: Storage) {}

  /** Feeds the caches from the send path: transaction IDs, and evictions on redaction. */
  observe(persisted: PersistedRoomEvent): void {
    const { event, txn } = persisted;
    if (txn !== undefined) {
      this.transactions.set(event.eventId, {
        userId: event.pdu.sender,
        deviceId: txn.deviceId,
        txnId: txn.txnId,
      });
    }
    if (event.pdu.type === 'm.room.member') {
      this.forgetMembers(event.roomId);
      if (typeof event.pdu.state_key === 'string') this.forgetMembershipsOf(event.pdu.state_key);
    }
    if (event.pdu.type === 'm.room.redaction') {
      const redacts = event.pdu.redacts ?? event.pdu.content.redacts;
      if (typeof redacts === 'string') this.forgetEvent(redacts);
    }
  }

  /** Something rewrote a stored event (a redaction applied outside the send path). */
  forgetEvent(eventId: string): void {
    this.stateEvents.delete(eventId);
    this.slices.clear();
  }

  /** A room's membership changed outside the send path (federation). */
  forgetMembers(roomId: string): void {
    this.members.delete(roomId);
    this.memberVersions.set(roomId, (this.memberVersions.get(roomId) ?? 0) + 1);
  }

  /** A user's membership changed outside the send path (federation, forget). */
  forgetMembershipsOf(userId: string): void {
    this.userMemberships.delete(userId);
    this.userMembershipVersions.set(userId, (this.userMembershipVersions.get(userId) ?? 0) + 1);
  }

  /** The user's memberships when cached (the same array until one changes), without a promise. */
  cachedMembershipsOf(userId: string): readonly MembershipRecord[] | undefined {
    return this.userMemberships.get(userId);
  }

  /** Every current membership of the user (cached until a membership event about them). */
  async membershipsOf(userId: string): Promise<readonly MembershipRecord[]> {
    const cached = this.userMemberships.get(userId);
    if (cached !== undefined) return cached;
    const version = this.userMembershipVersions.get(userId);
    const records = await this.storage.memberships.membershipsOfUser(userId);
    if (this.userMembershipVersions.get(userId) === version) this.userMemberships.set(userId, records);
    return records;
  }

  /**
   * spec "Ignoring Users": the keys of `ignored_users` in the user's m.ignored_user_list,
   * re-read only when the account data stream has moved past `accountDataPosition`.
   */
  cachedIgnoredUsers(userId: string, accountDataPosition: number): ReadonlySet<string> | undefined {
    const cached = this.ignoreLists.get(userId);
    return cached !== undefined && cached.position >= accountDataPosition ? cached.users : undefined;
  }

  async ignoredUsers(userId: string, accountDataPosition: number): Promise<ReadonlySet<string>> {
    const cached = this.ignoreLists.get(userId);
    if (cached !== undefined && cached.position >= accountDataPosition) return cached.users;
    const entry = await this.storage.accountData.getAccountData(userId, null, 'm.ignored_user_list');
    const ignored = entry?.content.ignored_users;
    const users =
      ignored === null || typeof ignored !== 'object' || Array.isArray(ignored)
        ? new Set<string>()
        : new Set(Object.keys(ignored));
    this.ignoreLists.set(userId, { position: accountDataPosition, users });
    return users;
  }

  /** The room's joined and invited members (cached until its next membership event). */
  async joinedAndInvited(roomId: string): Promise<readonly MembershipRecord[]> {
    const cached = this.members.get(roomId);
    if (cached !== undefined) return cached;
    const version = this.memberVersions.get(roomId);
    const records = await this.storage.memberships.membersOfRoom(roomId, ['join', 'invite']);
    if (this.memberVersions.get(roomId) === version) this.members.set(roomId, records);
    return records;
  }

  /** The room's joined members' IDs (cached as joinedAndInvited is). */
  async joinedUserIds(roomId: string): Promise<ReadonlySet<string>> {
    const records = await this.joinedAndInvited(roomId);
    let joined = this.joinedSets.get(records);
    if (joined === undefined) {
      joined = new Set(
        records.filter((record) => record.membership === 'join').map((record) => record.userId),
      );
      this.joinedSets.set(records, joined);
    }
    return joined;
  }

  async stateAtSnapshot(snapshotId: number | null): Promise<StateMap> {
    if (snapshotId === null) return new Map();
    const cached = this.snapshots.get(snapshotId);
    if (cached !== undefined) return cached;
    let loading = this.snapshotLoads.get(snapshotId);
    if (loading === undefined) {
      loading = this.storage.state.stateAtSnapshot(snapshotId);
      this.snapshotLoads.set(snapshotId, loading);
      try {
        this.snapshots.set(snapshotId, await loading);
      } finally {
        this.snapshotLoads.delete(snapshotId);
      }
    }
    return loading;
  }

  /** State after an event: its state-after snapshot. */
  stateAfter(event: StoredEvent): Promise<StateMap> {
    return this.stateAtSnapshot(event.stateAfterSnapshotId);
  }

  stateBefore(event: StoredEvent): Promise<StateMap> {
    return this.stateAtSnapshot(event.stateBeforeSnapshotId);
  }

  /** State events by ID (cached); unknown IDs are absent. */
  events(eventIds: Iterable<string>): Promise<Map<string, StoredEvent>> {
    return eventsThroughCache(this.stateEvents, this.storage.events, eventIds);
  }

  /** Rooms with timeline events in (after, upTo], with their highest ordering there; one read per range. */
  roomsChangedBetween(after: number, upTo: number): Promise<Map<string, number>> {
    if (after >= upTo) return Promise.resolve(new Map());
    const last = this.lastChanged;
    if (last?.after === after && last.upTo === upTo) return last.reading;
    const key = `${after}:${upTo}`;
    let reading = this.changedRooms.get(key);
    if (reading === undefined) {
      reading = this.storage.events.roomsChangedBetween(after, upTo);
      this.changedRooms.set(key, reading);
      reading.catch(() => this.changedRooms.delete(key));
    }
    const latest: ChangedRange = { after, upTo, reading, value: undefined };
    this.lastChanged = latest;
    reading.then(
      (value) => {
        latest.value = value;
      },
      () => {
        if (this.lastChanged === latest) this.lastChanged = undefined;
      },
    );
    return reading;
  }

  /**
   * roomsChangedBetween without a promise, when it is the range asked for last and its read
   * has finished (a thousand members woken together ask for the same one); undefined otherwise.
   */
  roomsChangedIfRead(after: number, upTo: number): ReadonlyMap<string, number> | undefined {
    const last = this.lastChanged;
    return last?.after === after && last.upTo === upTo ? last.value : undefined;
  }

  /**
   * The newest `limit` timeline events of the room in (after, upTo], shared by every
   * sync that asks for the same range (all the members woken by one new event).
   */
  timelineSlice(roomId: string, after: number, upTo: number, limit: number): Promise<TimelineSlice> {
    const key = `${roomId}\u0000${after}\u0000${upTo}\u0000${limit}`;
    let reading = this.slices.get(key);
    if (reading === undefined) {
      reading = this.readSlice(roomId, after, upTo, limit);
      this.slices.set(key, reading);
      reading.catch(() => this.slices.delete(key));
    }
    return reading;
  }

  /** Older events of the room, newest first, for when filtering left a timeline short. */
  eventsBefore(roomId: string, beforeOrdering: number, limit: number): Promise<StoredEvent[]> {
    return this.storage.events.roomEventsBefore(roomId, beforeOrdering, limit);
  }

  /** The room's last timeline event at or before `position` (its state is the room's state then). */
  async lastEventAtOrBefore(roomId: string, position: number): Promise<StoredEvent | null> {
    const [event] = await this.storage.events.roomEventsBefore(roomId, position + 1, 1);
    return event ?? null;
  }

  /** The client transaction that sent each of `events` (only events of `userId` are looked up). */
  async transactionsOf(
    events: readonly StoredEvent[],
    userId: string,
  ): Promise<Map<string, SentTransaction>> {
    const found = new Map<string, SentTransaction>();
    await Promise.all(
      events.map(async (event) => {
        if (event.pdu.sender !== userId) return;
        let txn = this.transactions.get(event.eventId);
        if (txn === undefined) {
          txn = (await this.storage.events.transactionOfEvent(event.eventId)) ?? NO_TRANSACTION;
          this.transactions.set(event.eventId, txn);
        }
        if (txn !== NO_TRANSACTION) found.set(event.eventId, txn);
      }),
    );
    return found;
  }

  private async readSlice(
    roomId: string,
    after: number,
    upTo: number,
    limit: number,
  ): Promise<TimelineSlice> {
    if (after >= upTo) return { events: [], limited: false };
    const newestFirst = await this.storage.events.roomEventsBefore(roomId, upTo + 1, limit + 1);
    const inRange = newestFirst.filter((event) => event.streamOrdering > after);
    const limited = inRange.length > limit;
    const events = inRange.slice(0, limit).reverse();
    return { events, limited };
  }
}
