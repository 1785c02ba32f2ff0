/**
 * GET /rooms/{roomId}/hierarchy (client-server "Spaces", space_hierarchy.yaml): a depth-first
 * walk of m.space.child links from a space, one page at a time. Only rooms the requester may
 * see are shown. Rooms this server is not in are asked of a server named in the `via` of the
 * link that led to them (server-server GET /hierarchy, cached by the remote source); the answer
 * is filtered for the requester here. Where a page stops, the rest of the walk is kept in memory
 * for five minutes under the next_batch token.
 *
 * Also the server side of federation GET /hierarchy/{roomId} (`federationHierarchy`): the room
 * and those of its children the asking server could peek or join, without pagination.
 */
import { randomBytes } from 'node:crypto';
import type { JsonObject, JsonValue } from '../../protocol/events.js';
import { belongsToServer } from '../../protocol/identifiers.js';
import { isKnownRoomVersion, roomVersionRules } from '../../protocol/room-versions.js';
import type { StoredEvent } from '../../storage/event-store.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { Storage } from '../../storage/storage.js';
import { MatrixError } from '../errors.js';
import {
  type PublishedRoomsChunk,
  publishedRoomsChunk,
  type RoomSummaries,
  type RoomSummary,
} from './room-summaries.js';

export const DEFAULT_HIERARCHY_LIMIT = 50;
export const MAX_HIERARCHY_LIMIT = 50;
const SESSION_TTL_MS = 5 * 60 * 1000;
/** spec m.space.child: an `order` longer than this, or outside \x20-\x7E, is ignored. */
const MAX_ORDER_LENGTH = 50;

export interface HierarchyQuery {
  readonly roomId: string;
  readonly requester: string;
  readonly suggestedOnly: boolean;
  readonly maxDepth?: number;
  readonly limit?: number;
  readonly from?: string;
}

/** A stripped m.space.child event with its origin_server_ts. */
export interface StrippedChildEvent {
  type: string;
  state_key: string;
  content: JsonObject;
  sender: string;
  origin_server_ts: number;
}

/** space_hierarchy.yaml SpaceHierarchyRoomsChunk. */
export interface HierarchyRoom extends PublishedRoomsChunk {
  room_version: string;
  encryption?: string;
  allowed_room_ids?: string[];
  children_state: StrippedChildEvent[];
}

export interface HierarchyPage {
  readonly rooms: HierarchyRoom[];
  readonly next_batch?: string;
}

interface QueuedRoom {
  readonly roomId: string;
  readonly depth: number;
  /** Servers the link that led here names (where to ask when this server is not in the room). */
  readonly via: readonly string[];
}

/** server-server space_hierarchy.yaml: the answer of GET /_matrix/federation/v1/hierarchy/{roomId}. */
export interface FederationHierarchy {
  readonly room: HierarchyRoom;
  readonly children: HierarchyRoom[];
  readonly inaccessible_children: string[];
}

/** Asks other servers for a room's hierarchy (server-server GET /hierarchy); null when none answers. */
export interface RemoteHierarchySource {
  fetch(roomId: string, via: readonly string[], suggestedOnly: boolean): Promise<FederationHierarchy | null>;
}

/** A room as the walk sees it: its chunk, its child links (ordered and filtered) and who may see it. */
interface WalkRoom {
  readonly entry: HierarchyRoom;
  readonly links: readonly ChildLink[];
  readonly visibleTo: (userId: string) => Promise<boolean>;
}

interface ChildLink extends SpaceChildLink {
  readonly via: readonly string[];
}

interface WalkSession {
  readonly requester: string;
  readonly roomId: string;
  readonly suggestedOnly: boolean;
  readonly maxDepth: number | undefined;
  /** The next room to visit is last. */
  readonly queue: readonly QueuedRoom[];
  readonly processed: readonly string[];
}

/** What a child link needs for ordering: its state key (the child's room ID), content and timestamp. */
export interface SpaceChildLink {
  readonly stateKey: string;
  readonly content: JsonObject;
  readonly originServerTs: number;
}

function validOrder(order: JsonValue | undefined): order is string {
  return typeof order === 'string' && order.length <= MAX_ORDER_LENGTH && /^[\x20-\x7E]*$/u.test(order);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * spec "Ordering of children within a space": children with a valid `order` first, by order;
 * then the rest by the link's origin_server_ts; ties by timestamp, then by room ID.
 */
export function compareSpaceChildren(a: SpaceChildLink, b: SpaceChildLink): number {
  const orderA = a.content.order;
  const orderB = b.content.order;
  const hasA = validOrder(orderA);
  const hasB = validOrder(orderB);
  if (hasA !== hasB) return hasA ? -1 : 1;
  if (hasA && hasB && orderA !== orderB) return compareStrings(orderA, orderB);
  if (a.originServerTs !== b.originServerTs) return a.originServerTs - b.originServerTs;
  return compareStrings(a.stateKey, b.stateKey);
}

/** A link stands while its `via` is a non-empty list of server names (clearing content removes the child). */
function hasVia(content: JsonObject): boolean {
  const via = content.via;
  return Array.isArray(via) && via.length > 0 && via.every((server) => typeof server === 'string');
}

function isSuggested(content: JsonObject): boolean {
  return content.suggested === true;
}

export class SpaceHierarchy {
  private readonly sessions = new LazyLruCache<string, WalkSession>({ max: 10_000, ttl: SESSION_TTL_MS });
  private remote: RemoteHierarchySource | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly summaries: RoomSummaries,
    private readonly serverName: string,
  ) {}

  /** Connects federation (composed after the directory): rooms this server is not in are asked of others. */
  useRemote(source: RemoteHierarchySource): void {
    this.remote = source;
  }

  /** @throws MatrixError M_FORBIDDEN (the space is unknown or hidden from the requester), M_INVALID_PARAM. */
  async hierarchy(query: HierarchyQuery): Promise<HierarchyPage> {
    if (query.limit !== undefined && (!Number.isInteger(query.limit) || query.limit < 1)) {
      throw MatrixError.invalidParam('limit must be an integer greater than zero');
    }
    if (query.maxDepth !== undefined && (!Number.isInteger(query.maxDepth) || query.maxDepth < 0)) {
      throw MatrixError.invalidParam('max_depth must be a non-negative integer');
    }
    const limit = Math.min(query.limit ?? DEFAULT_HIERARCHY_LIMIT, MAX_HIERARCHY_LIMIT);

    const root = await this.summaries.summary(query.roomId);
    if (root === null || !(await this.isVisible(root, query.requester))) {
      throw MatrixError.forbidden(`You are not allowed to view the room ${query.roomId}`);
    }

    let queue: QueuedRoom[];
    let processed: Set<string>;
    if (query.from !== undefined) {
      const session = this.sessions.get(query.from);
      if (
        session === undefined ||
        session.requester !== query.requester ||
        session.roomId !== query.roomId ||
        session.suggestedOnly !== query.suggestedOnly ||
        session.maxDepth !== query.maxDepth
      ) {
        throw MatrixError.invalidParam(
          'Unknown pagination token (or suggested_only / max_depth changed during pagination)',
        );
      }
      queue = [...session.queue];
      processed = new Set(session.processed);
    } else {
      queue = [{ roomId: query.roomId, depth: 0, via: [] }];
      processed = new Set();
    }

    const rooms: HierarchyRoom[] = [];
    while (rooms.length < limit) {
      const next = queue.pop();
      if (next === undefined) break;
      if (processed.has(next.roomId)) continue;
      processed.add(next.roomId);
      const room =
        next.roomId === root.roomId
          ? await this.localRoom(root, query.suggestedOnly)
          : await this.walkRoom(next, query.suggestedOnly);
      // Unknown here and to the servers asked, or hidden from the requester.
      if (room === null || !(await room.visibleTo(query.requester))) continue;

      rooms.push(room.entry);
      if (query.maxDepth === undefined || next.depth < query.maxDepth) {
        for (let index = room.links.length - 1; index >= 0; index--) {
          const link = room.links[index]!;
          queue.push({ roomId: link.stateKey, depth: next.depth + 1, via: link.via });
        }
      }
    }

    // Rooms met twice need no second visit; a token for nothing left is no use.
    queue = queue.filter((queued) => !processed.has(queued.roomId));
    if (queue.length === 0) return { rooms };
    const token = randomBytes(18).toString('base64url');
    this.sessions.set(token, {
      requester: query.requester,
      roomId: query.roomId,
      suggestedOnly: query.suggestedOnly,
      maxDepth: query.maxDepth,
      queue,
      processed: [...processed],
    });
    return { rooms, next_batch: token };
  }

  /**
   * A room of the walk: from local state when a local user is joined to it (so our state is
   * current), else from the servers its link names, else from whatever local state we hold.
   */
  private async walkRoom(queued: QueuedRoom, suggestedOnly: boolean): Promise<WalkRoom | null> {
    const summary = await this.summaries.summary(queued.roomId);
    if (summary !== null && (await this.hasLocalJoin(queued.roomId)))
      return this.localRoom(summary, suggestedOnly);
    const answer =
      this.remote === undefined || queued.via.length === 0
        ? null
        : await this.remote.fetch(queued.roomId, queued.via, suggestedOnly);
    if (answer !== null && answer.room.room_id === queued.roomId)
      return this.remoteRoom(answer.room, suggestedOnly);
    return summary === null ? null : this.localRoom(summary, suggestedOnly);
  }

  private async localRoom(summary: RoomSummary, suggestedOnly: boolean): Promise<WalkRoom> {
    const children = summary.roomType === 'm.space' ? await this.children(summary.roomId, suggestedOnly) : [];
    return {
      entry: hierarchyEntry(summary, children),
      links: children,
      visibleTo: (userId) => this.isVisible(summary, userId),
    };
  }

  /**
   * A room another server described. That server filtered for this server; here the
   * requester needs a join rule that lets them in (or world-readable history), a membership
   * we know of, or for restricted rooms a joined allowed room (as Synapse does).
   */
  private remoteRoom(entry: HierarchyRoom, suggestedOnly: boolean): WalkRoom {
    const links: ChildLink[] = [];
    for (const child of entry.children_state) {
      if (child.type !== 'm.space.child' || !hasVia(child.content)) continue;
      if (suggestedOnly && !isSuggested(child.content)) continue;
      links.push({
        stateKey: child.state_key,
        content: child.content,
        originServerTs: child.origin_server_ts,
        via: child.content.via as string[],
      });
    }
    links.sort(compareSpaceChildren);
    const summary: RoomSummary = {
      roomId: entry.room_id,
      roomVersion: entry.room_version,
      numJoinedMembers: entry.num_joined_members,
      worldReadable: entry.world_readable,
      guestCanJoin: entry.guest_can_join,
      ...(entry.join_rule !== undefined ? { joinRule: entry.join_rule } : {}),
      ...(entry.allowed_room_ids !== undefined ? { allowedRoomIds: entry.allowed_room_ids } : {}),
    };
    return { entry, links, visibleTo: (userId) => this.isVisible(summary, userId) };
  }

  private async hasLocalJoin(roomId: string): Promise<boolean> {
    return (await this.storage.memberships.joinedServers(roomId)).includes(this.serverName);
  }

  /**
   * Federation GET /hierarchy/{roomId} (server-server space_hierarchy.yaml): the room and its
   * children this server is in, those the asking server could peek or join in `children`, the
   * others' IDs in `inaccessible_children`; children we know nothing of are left out.
   * @throws MatrixError 404 M_NOT_FOUND when the room is unknown here or hidden from `origin`.
   */
  async federationHierarchy(
    roomId: string,
    origin: string,
    suggestedOnly: boolean,
  ): Promise<FederationHierarchy> {
    const summary = await this.summaries.summary(roomId);
    if (
      summary === null ||
      !(await this.hasLocalJoin(roomId)) ||
      !(await this.isVisibleToServer(summary, origin))
    ) {
      throw MatrixError.notFound('Room does not exist or is not visible to your server');
    }
    const root = await this.localRoom(summary, suggestedOnly);
    const children: HierarchyRoom[] = [];
    const inaccessible: string[] = [];
    for (const link of root.links) {
      const child = await this.summaries.summary(link.stateKey);
      if (child === null || !(await this.hasLocalJoin(link.stateKey))) continue;
      if (await this.isVisibleToServer(child, origin)) {
        children.push((await this.localRoom(child, suggestedOnly)).entry);
      } else {
        inaccessible.push(link.stateKey);
      }
    }
    return { room: root.entry, children, inaccessible_children: inaccessible };
  }

  /**
   * Whether a server could peek or join: as isVisible, with "joined or invited" and "joined to
   * an allowed room" meaning one of its users (the asking server filters per user).
   */
  private isVisibleToServer(summary: RoomSummary, server: string): Promise<boolean> {
    return this.isVisibleWith(summary, {
      joinedOrInvited: async (roomId) => {
        const members = await this.storage.memberships.membersOfRoom(roomId, ['join', 'invite']);
        return members.some((member) => belongsToServer(member.userId, server));
      },
      joined: async (roomId) => (await this.storage.memberships.joinedServers(roomId)).includes(server),
    });
  }

  /** The space's child links, in the spec's order (only suggested ones when asked). */
  private async children(roomId: string, suggestedOnly: boolean): Promise<ChildEvent[]> {
    const ids = await this.storage.state.currentStateOfType(roomId, 'm.space.child');
    const events = await this.storage.events.getEvents([...ids.values()]);
    const links: ChildEvent[] = [];
    for (const [stateKey, eventId] of ids) {
      const event = events.get(eventId);
      if (event === undefined) continue;
      const content = event.pdu.content;
      if (!hasVia(content) || (suggestedOnly && !isSuggested(content))) continue;
      const via = content.via as string[];
      links.push({ stateKey, content, originServerTs: event.pdu.origin_server_ts, via, event });
    }
    return links.sort(compareSpaceChildren);
  }

  /**
   * space_hierarchy.yaml: the requester is joined or invited, may join (public join rule, or a
   * restricted one they satisfy), may knock (in versions with knocking), or the history is
   * world readable.
   */
  private isVisible(summary: RoomSummary, userId: string): Promise<boolean> {
    return this.isVisibleWith(summary, {
      joinedOrInvited: async (roomId) => {
        const membership = await this.membership(roomId, userId);
        return membership === 'join' || membership === 'invite';
      },
      joined: async (roomId) => (await this.membership(roomId, userId)) === 'join',
    });
  }

  private async isVisibleWith(
    summary: RoomSummary,
    asker: {
      joinedOrInvited: (roomId: string) => Promise<boolean>;
      joined: (roomId: string) => Promise<boolean>;
    },
  ): Promise<boolean> {
    if (summary.worldReadable || summary.joinRule === 'public') return true;
    const rules = isKnownRoomVersion(summary.roomVersion) ? roomVersionRules(summary.roomVersion) : null;
    if (summary.joinRule === 'knock' && rules?.knockAllowed === true) return true;
    if (summary.joinRule === 'knock_restricted' && rules?.knockRestrictedJoinAllowed === true) return true;
    if (await asker.joinedOrInvited(summary.roomId)) return true;
    const restricted =
      (summary.joinRule === 'restricted' && rules?.restrictedJoinAllowed === true) ||
      (summary.joinRule === 'knock_restricted' && rules?.knockRestrictedJoinAllowed === true);
    if (restricted) {
      for (const allowedRoomId of summary.allowedRoomIds ?? []) {
        if (await asker.joined(allowedRoomId)) return true;
      }
    }
    return false;
  }

  private async membership(roomId: string, userId: string): Promise<string | null> {
    const eventId = await this.storage.state.currentStateEventId(roomId, 'm.room.member', userId);
    if (eventId === null) return null;
    const membership = (await this.storage.events.getEvent(eventId))?.pdu.content.membership;
    return typeof membership === 'string' ? membership : null;
  }
}

interface ChildEvent extends ChildLink {
  readonly event: StoredEvent;
}

/** A SpaceHierarchyRoomsChunk: the room's summary and its child links as stripped state with timestamps. */
function hierarchyEntry(summary: RoomSummary, children: readonly ChildEvent[]): HierarchyRoom {
  const entry: HierarchyRoom = {
    ...publishedRoomsChunk(summary),
    room_version: summary.roomVersion,
    children_state: children.map(({ event }) => ({
      type: event.pdu.type,
      state_key: event.pdu.state_key ?? '',
      content: event.pdu.content,
      sender: event.pdu.sender,
      origin_server_ts: event.pdu.origin_server_ts,
    })),
  };
  if (summary.encryption !== undefined) entry.encryption = summary.encryption;
  if (summary.allowedRoomIds !== undefined) entry.allowed_room_ids = [...summary.allowedRoomIds];
  return entry;
}
