/**
 * Who may see which room events (client-server "Room History Visibility",
 * "Server behaviour"). The verdict for an event depends on the room state *at
 * that event* (the state before it): the `m.room.history_visibility` in force
 * and the user's membership then. Server admins are not special.
 *
 * A batch is judged with one read per distinct state snapshot (consecutive
 * messages share one) and one getEvents for the membership and visibility
 * events they name; snapshots and those small facts are cached, both being
 * immutable (redaction keeps `membership` and `history_visibility`).
 */
import { LRUCache } from 'lru-cache';
import { isStateEvent, type StateMap, stateTupleKey } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { Membership } from '../../storage/membership-store.js';
import type { Storage } from '../../storage/storage.js';

export type HistoryVisibilitySetting = 'world_readable' | 'shared' | 'invited' | 'joined';

const SETTINGS: ReadonlySet<string> = new Set(['world_readable', 'shared', 'invited', 'joined']);
const MEMBERSHIPS: ReadonlySet<string> = new Set(['join', 'invite', 'leave', 'ban', 'knock']);

/** What a user may read of a room as a whole, for routes that page through it. */
export interface RoomReadAccess {
  /** The user's current membership; null if they never had one (or forgot the room). */
  readonly membership: Membership | null;
  /**
   * The last stream ordering the user may read (their leave or ban event: a user
   * who left sees events up to and including their leave); null: no cap.
   */
  readonly readUpTo: number | null;
  /** Reading without membership, allowed by a world_readable room. */
  readonly peeking: boolean;
}

export interface HistoryVisibility {
  /** The events the user may see, in the order given. */
  filterVisibleEvents(userId: string, roomId: string, events: readonly StoredEvent[]): Promise<StoredEvent[]>;
  canSeeEvent(userId: string, event: StoredEvent): Promise<boolean>;
  /**
   * Whether the user may read the room at all: current members; users who left
   * or were banned (up to that event) unless they forgot the room; anyone when
   * the room's current history visibility is world_readable. Null: no access
   * (routes answer 403 M_FORBIDDEN).
   */
  roomReadAccess(userId: string, roomId: string): Promise<RoomReadAccess | null>;
  /** The room's current history visibility (shared when unset or not understood). */
  currentVisibility(roomId: string): Promise<HistoryVisibilitySetting>;
}

/** Up to when "the user joined the room at any point after the event was sent" holds. */
interface UserRoomHistory {
  readonly current: Membership | null;
  /** Events with a lower stream ordering had the user joined after them (backfilled ones are negative). */
  readonly joinedAfterBelow: number;
}

const NO_SNAPSHOT: StateMap = new Map();

export function createHistoryVisibility(storage: Storage): HistoryVisibility {
  const snapshots = new LRUCache<number, StateMap>({
    maxSize: 200_000,
    sizeCalculation: (state) => Math.max(1, state.size),
  });
  const loading = new Map<number, Promise<StateMap>>();
  /** membership (of m.room.member events) or history_visibility (of m.room.history_visibility events). */
  const eventValues = new LazyLruCache<string, string>({ max: 100_000 });

  async function stateAt(snapshotId: number | null): Promise<StateMap> {
    if (snapshotId === null) return NO_SNAPSHOT;
    const cached = snapshots.get(snapshotId);
    if (cached !== undefined) return cached;
    let pending = loading.get(snapshotId);
    if (pending === undefined) {
      pending = storage.state.stateAtSnapshot(snapshotId).finally(() => loading.delete(snapshotId));
      loading.set(snapshotId, pending);
      snapshots.set(snapshotId, await pending);
    }
    return pending;
  }

  /** The membership / visibility value of each named event, one getEvents for the uncached ones. */
  async function valuesOf(eventIds: Iterable<string>): Promise<Map<string, string>> {
    const values = new Map<string, string>();
    const missing: string[] = [];
    for (const id of new Set(eventIds)) {
      const value = eventValues.get(id);
      if (value !== undefined) values.set(id, value);
      else missing.push(id);
    }
    if (missing.length > 0) {
      const events = await storage.events.getEvents(missing);
      for (const [id, event] of events) {
        const value = valueOfStateEvent(event);
        eventValues.set(id, value);
        values.set(id, value);
      }
    }
    return values;
  }

  async function userHistory(userId: string, roomId: string): Promise<UserRoomHistory> {
    const record = await storage.memberships.getMembership(roomId, userId);
    if (record === null) return { current: null, joinedAfterBelow: Number.NEGATIVE_INFINITY };
    if (record.membership === 'join') return { current: 'join', joinedAfterBelow: Number.POSITIVE_INFINITY };
    if (record.membership !== 'leave' && record.membership !== 'ban') {
      return { current: record.membership, joinedAfterBelow: Number.NEGATIVE_INFINITY };
    }
    // Left or banned: they were joined after an event if they were joined right before leaving.
    const leave = await storage.events.getEvent(record.eventId);
    const before = leave === null ? NO_SNAPSHOT : await stateAt(leave.stateBeforeSnapshotId);
    const previousId = before.get(stateTupleKey('m.room.member', userId));
    const previous = previousId === undefined ? undefined : (await valuesOf([previousId])).get(previousId);
    return {
      current: record.membership,
      joinedAfterBelow: previous === 'join' ? record.streamOrdering : Number.NEGATIVE_INFINITY,
    };
  }

  async function judge(
    userId: string,
    events: readonly StoredEvent[],
    history: UserRoomHistory,
  ): Promise<boolean[]> {
    const memberKey = stateTupleKey('m.room.member', userId);
    const visibilityKey = stateTupleKey('m.room.history_visibility', '');
    const states = new Map<number | null, StateMap>();
    for (const event of events) {
      const id = event.stateBeforeSnapshotId;
      if (!states.has(id)) states.set(id, await stateAt(id));
    }
    const named: string[] = [];
    for (const state of states.values()) {
      const memberId = state.get(memberKey);
      const visibilityId = state.get(visibilityKey);
      if (memberId !== undefined) named.push(memberId);
      if (visibilityId !== undefined) named.push(visibilityId);
    }
    const values = await valuesOf(named);

    return events.map((event) => {
      if (event.rejectionReason !== null) return false;
      const state = states.get(event.stateBeforeSnapshotId) ?? NO_SNAPSHOT;
      const memberId = state.get(memberKey);
      const visibilityId = state.get(visibilityKey);
      const membership = asMembership(memberId === undefined ? undefined : values.get(memberId));
      const visibility = asSetting(visibilityId === undefined ? undefined : values.get(visibilityId));
      const allowedWith = (setting: HistoryVisibilitySetting, member: Membership | null) =>
        isAllowed(setting, member, event.streamOrdering < history.joinedAfterBelow);

      if (allowedWith(visibility, membership)) return true;
      const { pdu } = event;
      // The history visibility before *or* after its own change event.
      if (pdu.type === 'm.room.history_visibility' && pdu.state_key === '') {
        return allowedWith(asSetting(valueOfStateEvent(event)), membership);
      }
      // The user's membership before *or* after their own member event.
      if (pdu.type === 'm.room.member' && pdu.state_key === userId) {
        return allowedWith(visibility, asMembership(valueOfStateEvent(event)));
      }
      return false;
    });
  }

  async function currentVisibility(roomId: string): Promise<HistoryVisibilitySetting> {
    const eventId = await storage.state.currentStateEventId(roomId, 'm.room.history_visibility', '');
    if (eventId === null) return 'shared';
    return asSetting((await valuesOf([eventId])).get(eventId));
  }

  return {
    async filterVisibleEvents(userId, roomId, events) {
      const inRoom = events.filter((event) => event.roomId === roomId);
      if (inRoom.length === 0) return [];
      const verdicts = await judge(userId, inRoom, await userHistory(userId, roomId));
      return inRoom.filter((_, i) => verdicts[i]);
    },
    async canSeeEvent(userId, event) {
      const [verdict] = await judge(userId, [event], await userHistory(userId, event.roomId));
      return verdict === true;
    },
    async roomReadAccess(userId, roomId) {
      const record = await storage.memberships.getMembership(roomId, userId);
      if (record?.membership === 'join') return { membership: 'join', readUpTo: null, peeking: false };
      if ((record?.membership === 'leave' || record?.membership === 'ban') && !record.forgotten) {
        return { membership: record.membership, readUpTo: record.streamOrdering, peeking: false };
      }
      if ((await currentVisibility(roomId)) === 'world_readable') {
        const membership = record === null || record.forgotten ? null : record.membership;
        return { membership, readUpTo: null, peeking: true };
      }
      return null;
    },
    currentVisibility,
  };
}

/** Spec steps 1-5 of "Server behaviour". */
function isAllowed(
  visibility: HistoryVisibilitySetting,
  membership: Membership | null,
  joinedAfterEvent: boolean,
): boolean {
  if (visibility === 'world_readable') return true; // 1
  if (membership === 'join') return true; // 2
  if (visibility === 'shared' && joinedAfterEvent) return true; // 3
  if (membership === 'invite' && visibility === 'invited') return true; // 4
  return false; // 5
}

function valueOfStateEvent(event: StoredEvent): string {
  const { pdu } = event;
  if (!isStateEvent(pdu)) return '';
  const value = pdu.type === 'm.room.member' ? pdu.content.membership : pdu.content.history_visibility;
  return typeof value === 'string' ? value : '';
}

function asSetting(value: string | undefined): HistoryVisibilitySetting {
  return value !== undefined && SETTINGS.has(value) ? (value as HistoryVisibilitySetting) : 'shared';
}

function asMembership(value: string | undefined): Membership | null {
  return value !== undefined && MEMBERSHIPS.has(value) ? (value as Membership) : null;
}
