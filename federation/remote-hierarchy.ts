/**
 * Our client side of server-server GET /_matrix/federation/v1/hierarchy/{roomId}: when a space
 * walk reaches a room this server is not in, the servers its m.space.child `via` names are asked
 * in turn. Answers are shape-checked and reduced to the fields a hierarchy chunk has, and cached
 * (the spec: "Responses to this endpoint should be cached for a period of time"): the room's
 * answer, its children's summaries (a later visit to a child that is not a space needs no
 * request), and the children the answering server called inaccessible (never re-requested).
 */
import type { JsonObject, JsonValue } from '../protocol/events.js';
import type {
  FederationHierarchy,
  HierarchyRoom,
  RemoteHierarchySource,
  StrippedChildEvent,
} from '../server/rooms/space-hierarchy.js';
import { LazyLruCache } from '../storage/lazy-lru-cache.js';
import type { FederationRequester } from './remote-rooms.js';

const ANSWER_TTL_MS = 5 * 60 * 1000;
/** A room no server answered for is not asked again for this long. */
const FAILURE_TTL_MS = 60 * 1000;
/** How many of a link's via servers are tried before giving up. */
const MAX_SERVERS_TRIED = 3;

type Cached = { readonly answer: FederationHierarchy | null };

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: JsonValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function strippedChild(value: unknown): StrippedChildEvent | null {
  if (!isObject(value)) return null;
  const { type, state_key, content, sender, origin_server_ts } = value;
  if (typeof type !== 'string' || typeof state_key !== 'string' || typeof sender !== 'string') return null;
  if (!isObject(content) || typeof origin_server_ts !== 'number') return null;
  return { type, state_key, content, sender, origin_server_ts };
}

/** A room summary from another server, with only the fields a hierarchy chunk has; null when malformed. */
export function parseHierarchyRoom(value: unknown): HierarchyRoom | null {
  if (!isObject(value)) return null;
  const { room_id, num_joined_members, world_readable, guest_can_join } = value;
  if (
    typeof room_id !== 'string' ||
    typeof world_readable !== 'boolean' ||
    typeof guest_can_join !== 'boolean'
  ) {
    return null;
  }
  if (typeof num_joined_members !== 'number' || !Number.isInteger(num_joined_members)) return null;
  const children = Array.isArray(value.children_state) ? value.children_state : [];
  const room = {
    room_id,
    num_joined_members,
    world_readable,
    guest_can_join,
    children_state: children.map(strippedChild).filter((child) => child !== null),
  } as HierarchyRoom;
  for (const key of [
    'name',
    'topic',
    'avatar_url',
    'canonical_alias',
    'join_rule',
    'room_type',
    'room_version',
    'encryption',
  ] as const) {
    const field = optionalString(value[key]);
    if (field !== undefined) room[key] = field;
  }
  if (Array.isArray(value.allowed_room_ids)) {
    room.allowed_room_ids = value.allowed_room_ids.filter((id): id is string => typeof id === 'string');
  }
  return room;
}

/** The answer of GET /hierarchy/{roomId}, shape-checked; null when its `room` is malformed. */
export function parseFederationHierarchy(value: unknown): FederationHierarchy | null {
  if (!isObject(value)) return null;
  const room = parseHierarchyRoom(value.room);
  if (room === null) return null;
  const children = Array.isArray(value.children) ? value.children : [];
  const inaccessible = Array.isArray(value.inaccessible_children) ? value.inaccessible_children : [];
  return {
    room,
    children: children.map(parseHierarchyRoom).filter((child) => child !== null),
    inaccessible_children: inaccessible.filter((id): id is string => typeof id === 'string'),
  };
}

export interface RemoteHierarchyOptions {
  readonly request: FederationRequester;
  readonly serverName: string;
  readonly onError?: (error: unknown, roomId: string, server: string) => void;
}

export class RemoteHierarchy implements RemoteHierarchySource {
  private readonly answers = new LazyLruCache<string, Cached>({ max: 2_000, ttl: ANSWER_TTL_MS });
  private readonly failures = new LazyLruCache<string, true>({ max: 2_000, ttl: FAILURE_TTL_MS });
  /** Children's summaries from their parents' answers. */
  private readonly childSummaries = new LazyLruCache<string, HierarchyRoom>({
    max: 10_000,
    ttl: ANSWER_TTL_MS,
  });
  private readonly inaccessible = new LazyLruCache<string, true>({ max: 10_000, ttl: ANSWER_TTL_MS });

  constructor(private readonly options: RemoteHierarchyOptions) {}

  async fetch(
    roomId: string,
    via: readonly string[],
    suggestedOnly: boolean,
  ): Promise<FederationHierarchy | null> {
    const key = `${suggestedOnly ? 's' : 'a'}${roomId}`;
    const cached = this.answers.get(key);
    if (cached !== undefined) return cached.answer;
    if (this.inaccessible.has(roomId) || this.failures.has(key)) return null;
    const known = this.childSummaries.get(roomId);
    // A child that is not a space needs nothing its parent's answer did not give.
    if (known !== undefined && known.room_type !== 'm.space') {
      return { room: known, children: [], inaccessible_children: [] };
    }

    const servers = [...new Set(via)].filter((server) => server !== this.options.serverName);
    for (const server of servers.slice(0, MAX_SERVERS_TRIED)) {
      let answer: FederationHierarchy | null;
      try {
        answer = parseFederationHierarchy(
          await this.options.request(server, {
            method: 'GET',
            path: `/_matrix/federation/v1/hierarchy/${encodeURIComponent(roomId)}`,
            query: { suggested_only: suggestedOnly },
          }),
        );
      } catch (error) {
        this.options.onError?.(error, roomId, server);
        continue;
      }
      if (answer === null || answer.room.room_id !== roomId) continue;
      this.answers.set(key, { answer });
      for (const child of answer.children) this.childSummaries.set(child.room_id, child);
      for (const id of answer.inaccessible_children) this.inaccessible.set(id, true);
      return answer;
    }
    this.failures.set(key, true);
    return null;
  }
}
