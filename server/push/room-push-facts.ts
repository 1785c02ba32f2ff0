/**
 * What push evaluation needs to know about a room, read once and kept until the
 * room's state changes: its joined members (with display names, for
 * contains_display_name and the gateway's sender_display_name), which of them are
 * local, its name, and its power levels (sender_notification_permission).
 */

import { notificationPowerLevel } from '../../protocol/power-levels.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { Storage } from '../../storage/storage.js';
import type { RoomReads } from '../rooms/room-reads.js';

export interface RoomPushFacts {
  /** Joined members -> display name (undefined when they set none). */
  readonly joined: ReadonlyMap<string, string | undefined>;
  readonly localJoined: readonly string[];
  readonly roomName: string | undefined;
  senderMayNotify(sender: string, key: string): boolean;
}

export class RoomPushFactsCache {
  private readonly cache: LazyLruCache<string, Promise<RoomPushFacts>>;
  /** Local joined members per room whose facts were read (batch sizing; a guess, never a fact). */
  private readonly localCounts: LazyLruCache<string, number>;

  constructor(
    private readonly storage: Storage,
    private readonly reads: RoomReads,
    private readonly isLocalUser: (userId: string) => boolean,
    size = 5_000,
  ) {
    this.cache = new LazyLruCache({ max: size });
    this.localCounts = new LazyLruCache({ max: size });
  }

  /** How many local members the room had when last read (1 when unknown). */
  cachedMemberCount(roomId: string): number {
    return this.localCounts.get(roomId) ?? 1;
  }

  facts(roomId: string): Promise<RoomPushFacts> {
    let facts = this.cache.get(roomId);
    if (facts === undefined) {
      facts = this.read(roomId);
      this.cache.set(roomId, facts);
      facts.catch(() => this.cache.delete(roomId));
    }
    return facts;
  }

  /** The room's state changed: read it again next time. */
  forget(roomId: string): void {
    this.cache.delete(roomId);
  }

  private async read(roomId: string): Promise<RoomPushFacts> {
    const [members, powers, nameEvent] = await Promise.all([
      this.storage.memberships.membersOfRoom(roomId),
      this.reads.powers(roomId).catch(() => null),
      this.reads.stateEvent(roomId, 'm.room.name', ''),
    ]);
    const events = await this.storage.events.getEvents(members.map((member) => member.eventId));
    const joined = new Map<string, string | undefined>();
    const localJoined: string[] = [];
    for (const member of members) {
      const name = events.get(member.eventId)?.pdu.content.displayname;
      joined.set(member.userId, typeof name === 'string' ? name : undefined);
      if (this.isLocalUser(member.userId)) localJoined.push(member.userId);
    }
    this.localCounts.set(roomId, Math.max(1, localJoined.length));
    const roomName = nameEvent?.pdu.content.name;
    return {
      joined,
      localJoined,
      roomName: typeof roomName === 'string' && roomName.length > 0 ? roomName : undefined,
      senderMayNotify: (sender, key) =>
        powers !== null && powers.levelOf(sender) >= notificationPowerLevel(powers.levels, key),
    };
  }
}
