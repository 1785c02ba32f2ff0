/**
 * Reads of a room's current state that routes need (`/state`, `/state/{type}/{stateKey}`,
 * `/joined_rooms`, `/joined_members`, membership checks). History visibility is the
 * caller's to apply; these answer for the room as it is now.
 */
import type { StateTupleKey } from '../../protocol/events.js';
import { type PowerLevels, powerLevelsOf, userPowerLevel } from '../../protocol/power-levels.js';
import type { RoomVersionId, RoomVersionRules } from '../../protocol/room-versions.js';
import type { StoredEvent } from '../../storage/event-store.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { Storage } from '../../storage/storage.js';
import { roomVersionOfCreateEvent } from './room-head.js';

/** Who may do what in a room now: its power levels and each user's level (room creators included). */
export interface RoomPowers {
  readonly rules: RoomVersionRules;
  readonly levels: PowerLevels;
  readonly createEvent: StoredEvent;
  /** Infinity for v12+ room creators. */
  levelOf(userId: string): number;
}

export class RoomReads {
  /** A room's version never changes, so it is cached without invalidation. */
  private readonly versions = new LazyLruCache<string, RoomVersionRules>({ max: 100_000 });

  constructor(private readonly storage: Storage) {}

  /** The room's version rules; null when the room is unknown here. */
  async roomRules(roomId: string): Promise<RoomVersionRules | null> {
    const cached = this.versions.get(roomId);
    if (cached !== undefined) return cached;
    const create = await this.stateEvent(roomId, 'm.room.create', '');
    if (create === null) return null;
    const rules = roomVersionOfCreateEvent(create);
    this.versions.set(roomId, rules);
    return rules;
  }

  async roomVersion(roomId: string): Promise<RoomVersionId | null> {
    return (await this.roomRules(roomId))?.id ?? null;
  }

  /** The current power levels; null for an unknown room. Throws ProtocolError for power levels the version refuses. */
  async powers(roomId: string): Promise<RoomPowers | null> {
    const [createEvent, powerLevelsEvent] = await Promise.all([
      this.stateEvent(roomId, 'm.room.create', ''),
      this.stateEvent(roomId, 'm.room.power_levels', ''),
    ]);
    if (createEvent === null) return null;
    const rules = await this.roomRules(roomId);
    if (rules === null) return null;
    const plEvent = powerLevelsEvent ?? undefined;
    return {
      rules,
      levels: powerLevelsOf(plEvent, rules),
      createEvent,
      levelOf: (userId) => userPowerLevel(userId, plEvent, createEvent, rules),
    };
  }

  /** The full current state: (type, state_key) -> event. Empty for an unknown room. */
  async currentState(roomId: string): Promise<Map<StateTupleKey, StoredEvent>> {
    const ids = await this.storage.state.currentState(roomId);
    const events = await this.storage.events.getEvents([...ids.values()]);
    const state = new Map<StateTupleKey, StoredEvent>();
    for (const [key, eventId] of ids) {
      const event = events.get(eventId);
      if (event !== undefined) state.set(key, event);
    }
    return state;
  }

  async stateEvent(roomId: string, type: string, stateKey: string): Promise<StoredEvent | null> {
    const eventId = await this.storage.state.currentStateEventId(roomId, type, stateKey);
    return eventId === null ? null : this.storage.events.getEvent(eventId);
  }

  /** `join`, `invite`, `leave`, `ban`, `knock`, or null if the user never had a membership here. */
  async membership(roomId: string, userId: string): Promise<string | null> {
    const event = await this.stateEvent(roomId, 'm.room.member', userId);
    const membership = event?.pdu.content.membership;
    return typeof membership === 'string' ? membership : null;
  }

  /** Members whose membership is `join`, with their member events. */
  async joinedMembers(roomId: string): Promise<Map<string, StoredEvent>> {
    const ids = await this.storage.state.currentStateOfType(roomId, 'm.room.member');
    const events = await this.storage.events.getEvents([...ids.values()]);
    const joined = new Map<string, StoredEvent>();
    for (const [userId, eventId] of ids) {
      const event = events.get(eventId);
      if (event?.pdu.content.membership === 'join') joined.set(userId, event);
    }
    return joined;
  }

  /** The rooms the user is joined to, from storage's memberships (oldest join first). */
  async joinedRooms(userId: string): Promise<string[]> {
    return (await this.storage.memberships.membershipsOfUser(userId, ['join'])).map(({ roomId }) => roomId);
  }
}
