/**
 * client-server "Room summaries" (room_summary.yaml, added in v1.15):
 *   GET /_matrix/client/v1/room_summary/{roomIdOrAlias}   (?via)
 * A summary is given to anyone when the room's join rule is public, knock or
 * knock_restricted or its history is world_readable (unauthenticated callers
 * too, as the spec allows), and to users with a membership in it; otherwise,
 * and for rooms this server does not know (no federation yet), 404 M_NOT_FOUND.
 */
import { Type } from '@sinclair/typebox';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const OPEN_JOIN_RULES: ReadonlySet<string> = new Set(['public', 'knock', 'knock_restricted']);

const RoomSummary = Type.Object(
  {
    room_id: Type.String({ description: 'The ID of the room.' }),
    num_joined_members: Type.Integer({ description: 'The number of members joined to the room.' }),
    world_readable: Type.Boolean({ description: 'Whether the room may be viewed by users without joining.' }),
    guest_can_join: Type.Boolean({ description: 'Whether guest users may join the room.' }),
    name: Type.Optional(Type.String({ description: 'The name of the room.' })),
    topic: Type.Optional(Type.String({ description: 'The plain text topic of the room.' })),
    avatar_url: Type.Optional(Type.String({ description: 'The URL for the room avatar.' })),
    canonical_alias: Type.Optional(Type.String({ description: 'The canonical alias of the room.' })),
    join_rule: Type.Optional(Type.String({ description: "The room's join rule." })),
    room_type: Type.Optional(Type.String({ description: 'The `type` of the room (from m.room.create).' })),
    allowed_room_ids: Type.Optional(
      Type.Array(Type.String(), { description: 'For restricted rooms, the rooms named by the join rules.' }),
    ),
    encryption: Type.Optional(Type.String({ description: 'The encryption algorithm of the room.' })),
    room_version: Type.Optional(Type.String({ description: 'The version of the room.' })),
    membership: Type.Optional(
      Type.String({ description: "The requester's membership; absent for unauthenticated callers." }),
    ),
  },
  { description: 'A summary of the room.', additionalProperties: false },
);

export const getRoomSummary = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v1/room_summary/{roomIdOrAlias}',
  operationId: 'getRoomSummary',
  summary: 'Retrieves a summary for a room.',
  description: 'For rooms this server knows; `via` is accepted and unused until federation exists.',
  tags: ['Room summaries'],
  resource: 'client',
  auth: 'optional',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      roomIdOrAlias: Type.String({ description: 'The room identifier or alias to summarise.' }),
    }),
    query: Type.Object({
      via: Type.Optional(
        Type.Union([Type.String(), Type.Array(Type.String())], {
          description: 'Servers to ask when this one cannot answer.',
        }),
      ),
    }),
  },
  responses: {
    200: RoomSummary,
    400: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const roomId = await roomIdOf(hs, req.params.roomIdOrAlias);
    const summary = await summariseRoom(hs, roomId, req.requester?.userId);
    if (summary === null) throw MatrixError.notFound('Room not found or is not accessible.');
    return reply(200, summary);
  },
});

async function roomIdOf(hs: HomeserverContext, roomIdOrAlias: string): Promise<string> {
  if (roomIdOrAlias.startsWith('!')) return roomIdOrAlias;
  if (!roomIdOrAlias.startsWith('#')) throw MatrixError.invalidParam('Expected a room ID or a room alias');
  const resolved = await hs.directory.resolveAlias(roomIdOrAlias);
  if (resolved === null) throw MatrixError.notFound('Room alias not found.');
  return resolved.room_id;
}

type Summary = typeof RoomSummary.static;

/** The directory's cached room summary, shaped for room_summary.yaml, if the requester may see it. */
async function summariseRoom(
  hs: HomeserverContext,
  roomId: string,
  userId: string | undefined,
): Promise<Summary | null> {
  const [room, own] = await Promise.all([
    hs.directory.summaries.summary(roomId),
    userId === undefined ? Promise.resolve(null) : hs.storage.memberships.getMembership(roomId, userId),
  ]);
  if (room === null) return null;
  const joinRule = room.joinRule ?? 'invite';
  const hasMembership = own !== null && !own.forgotten;
  if (!hasMembership && !room.worldReadable && !OPEN_JOIN_RULES.has(joinRule)) return null;

  const summary: Summary = {
    room_id: roomId,
    num_joined_members: room.numJoinedMembers,
    world_readable: room.worldReadable,
    guest_can_join: room.guestCanJoin,
    join_rule: joinRule,
    room_version: room.roomVersion,
  };
  if (room.name !== undefined) summary.name = room.name;
  if (room.topic !== undefined) summary.topic = room.topic;
  if (room.avatarUrl !== undefined) summary.avatar_url = room.avatarUrl;
  if (room.canonicalAlias !== undefined) summary.canonical_alias = room.canonicalAlias;
  if (room.roomType !== undefined) summary.room_type = room.roomType;
  if (room.encryption !== undefined) summary.encryption = room.encryption;
  if (joinRule === 'restricted' || joinRule === 'knock_restricted') {
    summary.allowed_room_ids = [...(room.allowedRoomIds ?? [])];
  }
  if (userId !== undefined) summary.membership = hasMembership ? own.membership : 'leave';
  return summary;
}

export const roomSummaryRoutes = [getRoomSummary];
