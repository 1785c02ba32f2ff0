/**
 * What the room directory and the space hierarchy show of a room (public_rooms_chunk.yaml,
 * room_summary.yaml): name, topic, avatar, canonical alias, member count, join rule... read
 * from a handful of current state entries. Summaries are cached and dropped whenever the
 * room's state changes, so a directory page reads state only for rooms not seen since.
 */
import { isStateEvent, type JsonObject, type JsonValue } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { Storage } from '../../storage/storage.js';
import type { RoomEventSender } from './room-event-sender.js';

export interface RoomSummary {
  readonly roomId: string;
  readonly roomVersion: string;
  readonly name?: string;
  readonly topic?: string;
  readonly avatarUrl?: string;
  readonly canonicalAlias?: string;
  readonly numJoinedMembers: number;
  readonly worldReadable: boolean;
  readonly guestCanJoin: boolean;
  /** Absent when the room has no m.room.join_rules event. */
  readonly joinRule?: string;
  readonly roomType?: string;
  readonly encryption?: string;
  /** Rooms whose members may join, for restricted join rules. */
  readonly allowedRoomIds?: readonly string[];
}

/** The (type, state_key '') entries a summary is made of. */
const SUMMARY_STATE_TYPES = [
  'm.room.create',
  'm.room.name',
  'm.room.topic',
  'm.room.avatar',
  'm.room.canonical_alias',
  'm.room.join_rules',
  'm.room.history_visibility',
  'm.room.guest_access',
  'm.room.encryption',
] as const;

type SummaryStateType = (typeof SUMMARY_STATE_TYPES)[number];

/** From this many uncached rooms on, summaries read each state type for all rooms at once. */
const BULK_READ_THRESHOLD = 32;

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: JsonValue | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The plain-text topic: the text/plain representation of the `m.topic` content block
 * (a representation without a mimetype is text/plain), else the legacy `topic` string.
 */
export function plainTextTopic(content: JsonObject): string | undefined {
  const block = content['m.topic'];
  if (isObject(block) && Array.isArray(block['m.text'])) {
    for (const representation of block['m.text']) {
      if (!isObject(representation) || typeof representation.body !== 'string') continue;
      const mimetype = representation.mimetype;
      if (mimetype === undefined || mimetype === 'text/plain') return representation.body;
    }
  }
  return nonEmptyString(content.topic);
}

/** Room IDs named by `m.room_membership` conditions of a restricted join rule. */
export function allowedRoomIds(joinRules: JsonObject): string[] {
  const allow = joinRules.allow;
  if (!Array.isArray(allow)) return [];
  const ids: string[] = [];
  for (const condition of allow) {
    if (
      isObject(condition) &&
      condition.type === 'm.room_membership' &&
      typeof condition.room_id === 'string'
    ) {
      ids.push(condition.room_id);
    }
  }
  return ids;
}

/** A summary from the room's state events of the SUMMARY_STATE_TYPES and its joined member count. */
export function summarizeRoom(
  roomId: string,
  state: ReadonlyMap<SummaryStateType, StoredEvent>,
  numJoinedMembers: number,
): RoomSummary {
  const content = (type: SummaryStateType): JsonObject => state.get(type)?.pdu.content ?? {};
  const create = content('m.room.create');
  const joinRules = content('m.room.join_rules');
  const joinRule = nonEmptyString(joinRules.join_rule);
  const topic = state.has('m.room.topic') ? plainTextTopic(content('m.room.topic')) : undefined;
  const allowed =
    joinRule === 'restricted' || joinRule === 'knock_restricted' ? allowedRoomIds(joinRules) : [];
  const summary: {
    -readonly [K in keyof RoomSummary]: RoomSummary[K];
  } = {
    roomId,
    roomVersion: nonEmptyString(create.room_version) ?? '1',
    numJoinedMembers,
    worldReadable: content('m.room.history_visibility').history_visibility === 'world_readable',
    guestCanJoin: content('m.room.guest_access').guest_access === 'can_join',
  };
  const name = nonEmptyString(content('m.room.name').name);
  if (name !== undefined) summary.name = name;
  if (topic !== undefined) summary.topic = topic;
  const avatarUrl = nonEmptyString(content('m.room.avatar').url);
  if (avatarUrl !== undefined) summary.avatarUrl = avatarUrl;
  const alias = nonEmptyString(content('m.room.canonical_alias').alias);
  if (alias !== undefined) summary.canonicalAlias = alias;
  if (joinRule !== undefined) summary.joinRule = joinRule;
  const roomType = nonEmptyString(create.type);
  if (roomType !== undefined) summary.roomType = roomType;
  const encryption = nonEmptyString(content('m.room.encryption').algorithm);
  if (encryption !== undefined) summary.encryption = encryption;
  if (allowed.length > 0) summary.allowedRoomIds = allowed;
  return summary;
}

/** public_rooms_chunk.yaml */
export interface PublishedRoomsChunk {
  room_id: string;
  num_joined_members: number;
  world_readable: boolean;
  guest_can_join: boolean;
  name?: string;
  topic?: string;
  avatar_url?: string;
  canonical_alias?: string;
  join_rule?: string;
  room_type?: string;
}

/** The spec's PublishedRoomsChunk: absent values are left out, never null. */
export function publishedRoomsChunk(summary: RoomSummary): PublishedRoomsChunk {
  const chunk: PublishedRoomsChunk = {
    room_id: summary.roomId,
    num_joined_members: summary.numJoinedMembers,
    world_readable: summary.worldReadable,
    guest_can_join: summary.guestCanJoin,
  };
  if (summary.name !== undefined) chunk.name = summary.name;
  if (summary.topic !== undefined) chunk.topic = summary.topic;
  if (summary.avatarUrl !== undefined) chunk.avatar_url = summary.avatarUrl;
  if (summary.canonicalAlias !== undefined) chunk.canonical_alias = summary.canonicalAlias;
  if (summary.joinRule !== undefined) chunk.join_rule = summary.joinRule;
  if (summary.roomType !== undefined) chunk.room_type = summary.roomType;
  return chunk;
}

export interface RoomSummariesOptions {
  readonly storage: Storage;
  /** Rooms whose summary is kept (default 50,000). */
  readonly maxCached?: number;
}

export class RoomSummaries {
  private readonly storage: Storage;
  private readonly cache: LazyLruCache<string, RoomSummary>;
  /** Bumped by every state change of a room, so a load that raced with one is not cached. */
  private readonly generations = new Map<string, number>();

  constructor(options: RoomSummariesOptions) {
    this.storage = options.storage;
    this.cache = new LazyLruCache({ max: options.maxCached ?? 50_000 });
  }

  /**
   * Drops a room's summary whenever the sender persists a state event in it, or a redaction
   * (which may strip the content of a name or topic). Returns an unsubscribe.
   */
  follow(sender: RoomEventSender): () => void {
    return sender.onEventPersisted(({ event }) => {
      if (isStateEvent(event.pdu) || event.pdu.type === 'm.room.redaction') this.invalidate(event.roomId);
    });
  }

  /** For state changes that do not come through the sender (federation). */
  invalidate(roomId: string): void {
    this.cache.delete(roomId);
    this.generations.set(roomId, (this.generations.get(roomId) ?? 0) + 1);
    if (this.generations.size > 100_000) this.generations.clear();
  }

  /** Summaries of the rooms known here, keyed by room ID; rooms without a create event are absent. */
  async summaries(roomIds: readonly string[]): Promise<Map<string, RoomSummary>> {
    const found = new Map<string, RoomSummary>();
    const missing: string[] = [];
    for (const roomId of roomIds) {
      const cached = this.cache.get(roomId);
      if (cached !== undefined) found.set(roomId, cached);
      else missing.push(roomId);
    }
    if (missing.length === 0) return found;

    const generations = new Map(missing.map((roomId) => [roomId, this.generations.get(roomId) ?? 0]));
    const stateIds = await this.summaryStateIds(missing);
    const [events, counts] = await Promise.all([
      this.storage.events.getEvents(stateIds.flat().filter((id): id is string => id !== null)),
      this.storage.memberships.joinedMemberCounts(missing),
    ]);
    missing.forEach((roomId, index) => {
      const state = new Map<SummaryStateType, StoredEvent>();
      stateIds[index]!.forEach((eventId, typeIndex) => {
        const event = eventId === null ? undefined : events.get(eventId);
        if (event !== undefined) state.set(SUMMARY_STATE_TYPES[typeIndex]!, event);
      });
      if (!state.has('m.room.create')) return;
      const summary = summarizeRoom(roomId, state, counts.get(roomId) ?? 0);
      found.set(roomId, summary);
      if ((this.generations.get(roomId) ?? 0) === generations.get(roomId)) this.cache.set(roomId, summary);
    });
    return found;
  }

  /** Per room, the event IDs of SUMMARY_STATE_TYPES (null where absent). */
  private async summaryStateIds(roomIds: readonly string[]): Promise<(string | null)[][]> {
    if (roomIds.length >= BULK_READ_THRESHOLD) {
      // One read per type across every room beats nine reads per room once there are many.
      const byType = await Promise.all(
        SUMMARY_STATE_TYPES.map((type) => this.storage.state.roomsWithCurrentState(type, '')),
      );
      return roomIds.map((roomId) => byType.map((entries) => entries.get(roomId) ?? null));
    }
    return Promise.all(
      roomIds.map((roomId) =>
        Promise.all(
          SUMMARY_STATE_TYPES.map((type) => this.storage.state.currentStateEventId(roomId, type, '')),
        ),
      ),
    );
  }

  async summary(roomId: string): Promise<RoomSummary | null> {
    return (await this.summaries([roomId])).get(roomId) ?? null;
  }
}
