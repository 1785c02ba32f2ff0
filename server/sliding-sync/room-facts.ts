/**
 * What sliding sync sorts and filters rooms by, kept in memory: each room's bump
 * stamp (MSC4186 `bump_stamp`: the stream ordering of its latest event of a
 * "proper activity" type), its room type (from m.room.create, which never
 * changes) and whether it is encrypted (m.room.encryption cannot be removed).
 * Loaded from storage on first need, then kept current by the send path.
 */

import type { RoomEvent } from '../../protocol/events.js';
import type { Storage } from '../../storage/storage.js';

/** MSC4186 `bump_stamp`, as Synapse's DEFAULT_BUMP_EVENT_TYPES. */
export const BUMP_EVENT_TYPES: readonly string[] = [
  'm.room.create',
  'm.room.message',
  'm.room.encrypted',
  'm.sticker',
  'm.call.invite',
  'm.poll.start',
  'm.beacon_info',
];
const BUMP_TYPES = new Set(BUMP_EVENT_TYPES);
const ROOMS_REMEMBERED = 500_000;
/** A room without a bump event is not bumped: it sorts below every room that has one. */
const NO_BUMP = 0;
const MANY_ROOMS = 50;

export class RoomFacts {
  private readonly bumps = new FactMap<number>(ROOMS_REMEMBERED);
  /** The empty string stands for a room without a type (the map holds no nulls). */
  private readonly types = new FactMap<string>(ROOMS_REMEMBERED);
  private readonly encrypted = new FactMap<boolean>(ROOMS_REMEMBERED);

  /** `storage` is read on first use, so the facts can be built before the storage is open. */
  constructor(private readonly storageOf: () => Pick<Storage, 'events' | 'state'>) {}

  private get storage(): Pick<Storage, 'events' | 'state'> {
    return this.storageOf();
  }

  /** Feeds the caches from every persisted timeline event. */
  observe(event: RoomEvent, streamOrdering: number): void {
    const { type, state_key: stateKey } = event.pdu;
    // Stream orderings only grow: a bump event just persisted is the room's latest.
    if (BUMP_TYPES.has(type))
      this.bumps.set(event.roomId, Math.max(this.bumps.get(event.roomId) ?? NO_BUMP, streamOrdering));
    if (type === 'm.room.create' && stateKey === '') {
      const roomType = event.pdu.content.type;
      this.types.set(event.roomId, typeof roomType === 'string' ? roomType : '');
    }
    if (type === 'm.room.encryption' && stateKey === '') this.encrypted.set(event.roomId, true);
  }

  /** Each room's bump stamp (0 for a room with no bump event). */
  async bumpStamps(roomIds: readonly string[]): Promise<Map<string, number>> {
    const stamps = new Map<string, number>();
    const missing: string[] = [];
    for (const roomId of roomIds) {
      const known = this.bumps.get(roomId);
      if (known === undefined) missing.push(roomId);
      else stamps.set(roomId, known);
    }
    if (missing.length > 0) {
      const loaded = await this.storage.events.latestOrderingOfTypes(missing, BUMP_EVENT_TYPES);
      for (const roomId of missing) {
        // An event observed while the read ran is newer than what the read saw.
        const stamp = Math.max(loaded.get(roomId) ?? NO_BUMP, this.bumps.get(roomId) ?? NO_BUMP);
        this.bumps.set(roomId, stamp);
        stamps.set(roomId, stamp);
      }
    }
    return stamps;
  }

  /** The `type` of each room's m.room.create content (null: a plain room). */
  async roomTypes(roomIds: readonly string[]): Promise<Map<string, string | null>> {
    const types = new Map<string, string | null>();
    const createIds = new Map<string, string>();
    const missing: string[] = [];
    for (const roomId of roomIds) {
      const known = this.types.get(roomId);
      if (known !== undefined) types.set(roomId, known === '' ? null : known);
      else missing.push(roomId);
    }
    // Many unknown rooms (after a restart): one read of every room's create event ID beats one per room.
    const everyCreate =
      missing.length > MANY_ROOMS
        ? await this.storage.state.roomsWithCurrentState('m.room.create', '')
        : null;
    for (const roomId of missing) {
      const eventId =
        everyCreate === null
          ? await this.storage.state.currentStateEventId(roomId, 'm.room.create', '')
          : (everyCreate.get(roomId) ?? null);
      if (eventId !== null) createIds.set(eventId, roomId);
    }
    if (createIds.size > 0) {
      const events = await this.storage.events.getEvents([...createIds.keys()]);
      for (const [eventId, roomId] of createIds) {
        const type = events.get(eventId)?.pdu.content.type;
        const roomType = typeof type === 'string' ? type : null;
        this.types.set(roomId, roomType ?? '');
        types.set(roomId, roomType);
      }
    }
    return types;
  }

  async isEncrypted(roomId: string): Promise<boolean> {
    const known = this.encrypted.get(roomId);
    if (known !== undefined) return known;
    const encrypted =
      (await this.storage.state.currentStateEventId(roomId, 'm.room.encryption', '')) !== null;
    // Only a yes is for ever; a no is asked again (a later m.room.encryption is observed, but
    // one racing this read would be missed).
    if (encrypted) this.encrypted.set(roomId, true);
    return encrypted;
  }
}

/**
 * Facts by room ID, all forgotten at once past `max` rooms (each is read again on demand).
 * Every sliding sync reads the facts of each of the user's rooms: unlike an LRU's, a hit
 * here moves nothing (an LRU over a Map deletes and re-adds the key, and the Map's
 * table fills with holes to rebuild).
 */
class FactMap<V> {
  private readonly facts = new Map<string, V>();

  constructor(private readonly max: number) {}

  get(roomId: string): V | undefined {
    return this.facts.get(roomId);
  }

  set(roomId: string, fact: V): void {
    if (this.facts.size >= this.max && !this.facts.has(roomId)) this.facts.clear();
    this.facts.set(roomId, fact);
  }
}
