/**
 * The published room directory listing (client-server "Listing rooms", list_public_rooms.yaml):
 * published rooms with at least one joined member, largest first, ties by room ID, paged by
 * keyset tokens (the member count and room ID of the boundary room), so a page stays right
 * while rooms come and go. Member counts come in one batch read; state is summarised only for
 * the rooms of the page, unless a filter needs every room's summary (cached across requests).
 */
import type { Storage } from '../../storage/storage.js';
import { MatrixError } from '../errors.js';
import {
  type PublishedRoomsChunk,
  publishedRoomsChunk,
  type RoomSummaries,
  type RoomSummary,
} from './room-summaries.js';

export const DEFAULT_PUBLIC_ROOMS_LIMIT = 100;
export const MAX_PUBLIC_ROOMS_LIMIT = 100;
const PUBLIC_ROOMS_READ_PAGE = 1000;

export interface PublicRoomsQuery {
  /** Rooms per page; 0 or absent: the default. */
  readonly limit?: number;
  readonly since?: string;
  readonly genericSearchTerm?: string;
  /** Room types to keep; `null` stands for rooms without a type. Absent: every type. */
  readonly roomTypes?: readonly (string | null)[];
  /**
   * The published rooms to list (application services' third-party networks); absent: the
   * server's own directory.
   */
  readonly publishedRoomIds?: () => Promise<readonly string[]>;
}

export interface PublicRoomsPage {
  readonly chunk: PublishedRoomsChunk[];
  readonly next_batch?: string;
  readonly prev_batch?: string;
  readonly total_room_count_estimate: number;
}

/** Where a page starts: after (forward) or before (backward) the room with this key. */
interface PageBound {
  readonly forward: boolean;
  readonly joinedMembers: number;
  readonly roomId: string;
}

interface ListedRoom {
  readonly roomId: string;
  readonly joinedMembers: number;
}

export function encodePageBound(bound: PageBound): string {
  const text = `${bound.forward ? 'n' : 'p'}${bound.joinedMembers}_${bound.roomId}`;
  return Buffer.from(text, 'utf8').toString('base64url');
}

/** M_INVALID_PARAM for anything encodePageBound did not make. */
export function decodePageBound(token: string): PageBound {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  const match = /^([np])(\d{1,15})_(!.+)$/su.exec(text);
  if (match === null || Buffer.from(text, 'utf8').toString('base64url') !== token) {
    throw MatrixError.invalidParam('Unknown pagination token');
  }
  return { forward: match[1] === 'n', joinedMembers: Number(match[2]), roomId: match[3]! };
}

/** Largest first, then by room ID. */
function compareListed(a: ListedRoom, b: ListedRoom): number {
  if (a.joinedMembers !== b.joinedMembers) return b.joinedMembers - a.joinedMembers;
  return a.roomId < b.roomId ? -1 : a.roomId > b.roomId ? 1 : 0;
}

/** The rooms of the server's own published directory. */
export async function publishedRoomIds(storage: Storage): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await storage.rooms.listPublicRooms(after, PUBLIC_ROOMS_READ_PAGE);
    for (const room of page) ids.push(room.roomId);
    if (page.length < PUBLIC_ROOMS_READ_PAGE) return ids;
    after = page[page.length - 1]!.roomId;
  }
}

function matchesFilter(summary: RoomSummary, query: PublicRoomsQuery): boolean {
  if (hasRoomTypeFilter(query) && !query.roomTypes.includes(summary.roomType ?? null)) return false;
  const term = query.genericSearchTerm?.trim().toLowerCase();
  if (term === undefined || term === '') return true;
  return [summary.name, summary.topic, summary.canonicalAlias, summary.roomId].some(
    (text) => text?.toLowerCase().includes(term) === true,
  );
}

/** An empty room_types list filters nothing, as an absent one. */
function hasRoomTypeFilter(
  query: PublicRoomsQuery,
): query is PublicRoomsQuery & { roomTypes: readonly (string | null)[] } {
  return query.roomTypes !== undefined && query.roomTypes.length > 0;
}

function hasFilter(query: PublicRoomsQuery): boolean {
  return hasRoomTypeFilter(query) || (query.genericSearchTerm?.trim() ?? '') !== '';
}

export async function listPublicRooms(
  storage: Storage,
  summaries: RoomSummaries,
  query: PublicRoomsQuery,
): Promise<PublicRoomsPage> {
  if (query.limit !== undefined && (!Number.isInteger(query.limit) || query.limit < 0)) {
    throw MatrixError.invalidParam('limit must be a non-negative integer');
  }
  const limit = Math.min(query.limit || DEFAULT_PUBLIC_ROOMS_LIMIT, MAX_PUBLIC_ROOMS_LIMIT);
  const bound = query.since === undefined || query.since === '' ? null : decodePageBound(query.since);

  const ids = query.publishedRoomIds ? await query.publishedRoomIds() : await publishedRoomIds(storage);
  let listed: ListedRoom[];
  let known: Map<string, RoomSummary> | undefined;
  if (hasFilter(query)) {
    known = await summaries.summaries(ids);
    listed = [...known.values()]
      .filter((summary) => summary.numJoinedMembers > 0 && matchesFilter(summary, query))
      .map((summary) => ({ roomId: summary.roomId, joinedMembers: summary.numJoinedMembers }));
  } else {
    const counts = await storage.memberships.joinedMemberCounts(ids);
    listed = ids
      .map((roomId) => ({ roomId, joinedMembers: counts.get(roomId) ?? 0 }))
      .filter((room) => room.joinedMembers > 0);
  }
  listed.sort(compareListed);

  // The page: [start, end) of the ordering.
  let start = 0;
  let end = listed.length;
  if (bound !== null) {
    const boundary = { roomId: bound.roomId, joinedMembers: bound.joinedMembers };
    const firstAfter = listed.findIndex((room) => compareListed(room, boundary) > 0);
    const afterIndex = firstAfter === -1 ? listed.length : firstAfter;
    if (bound.forward) start = afterIndex;
    else {
      // Rooms strictly before the boundary.
      const atOrAfter = listed.findIndex((room) => compareListed(room, boundary) >= 0);
      end = atOrAfter === -1 ? listed.length : atOrAfter;
      start = Math.max(0, end - limit);
    }
  }
  end = Math.min(end, start + limit);
  const page = listed.slice(start, end);

  if (known === undefined) known = await summaries.summaries(page.map((room) => room.roomId));
  const chunk: PublishedRoomsChunk[] = [];
  for (const room of page) {
    const summary = known.get(room.roomId);
    if (summary !== undefined) chunk.push(publishedRoomsChunk(summary));
  }

  const response: {
    chunk: PublishedRoomsChunk[];
    next_batch?: string;
    prev_batch?: string;
    total_room_count_estimate: number;
  } = { chunk, total_room_count_estimate: listed.length };
  const first = page[0];
  const last = page[page.length - 1];
  if (last !== undefined && end < listed.length) {
    response.next_batch = encodePageBound({ forward: true, ...last });
  }
  if (first !== undefined && start > 0) {
    response.prev_batch = encodePageBound({ forward: false, ...first });
  }
  return response;
}
