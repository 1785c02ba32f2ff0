/**
 * client-server "Room summaries" (room_summary.yaml, added in v1.15):
 *   GET /_matrix/client/v1/room_summary/{roomIdOrAlias}   (?via)
 * A summary is given to anyone when the room's join rule is public, knock or
 * knock_restricted or its history is world_readable (unauthenticated callers
 * too, as the spec allows), and to users with a membership in it; otherwise,
 * and for rooms this server does not know (no federation yet), 404 M_NOT_FOUND.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const SUMMARY_STATE = [
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

async function summariseRoom(
  hs: HomeserverContext,
  roomId: string,
  userId: string | undefined,
): Promise<Summary | null> {
  const { storage } = hs;
  const [eventIds, own, counts] = await Promise.all([
    Promise.all(SUMMARY_STATE.map((type) => storage.state.currentStateEventId(roomId, type, ''))),
    userId === undefined ? Promise.resolve(null) : storage.memberships.getMembership(roomId, userId),
    storage.memberships.joinedMemberCounts([roomId]),
  ]);
  const events = await storage.events.getEvents(eventIds.filter((id): id is string => id !== null));
  const content = (type: (typeof SUMMARY_STATE)[number]): JsonObject | undefined => {
    const id = eventIds[SUMMARY_STATE.indexOf(type)];
    return id === null || id === undefined ? undefined : events.get(id)?.pdu.content;
  };
  const create = content('m.room.create');
  if (create === undefined) return null;

  const joinRules = content('m.room.join_rules');
  const joinRule = typeof joinRules?.join_rule === 'string' ? joinRules.join_rule : 'invite';
  const worldReadable = content('m.room.history_visibility')?.history_visibility === 'world_readable';
  const hasMembership = own !== null && !own.forgotten;
  if (!hasMembership && !worldReadable && !OPEN_JOIN_RULES.has(joinRule)) return null;

  const summary: Summary = {
    room_id: roomId,
    num_joined_members: counts.get(roomId) ?? 0,
    world_readable: worldReadable,
    guest_can_join: content('m.room.guest_access')?.guest_access === 'can_join',
    join_rule: joinRule,
    room_version: typeof create.room_version === 'string' ? create.room_version : '1',
  };
  const name = content('m.room.name')?.name;
  if (typeof name === 'string' && name !== '') summary.name = name;
  const topic = content('m.room.topic')?.topic;
  if (typeof topic === 'string' && topic !== '') summary.topic = topic;
  const avatar = content('m.room.avatar')?.url;
  if (typeof avatar === 'string' && avatar !== '') summary.avatar_url = avatar;
  const alias = content('m.room.canonical_alias')?.alias;
  if (typeof alias === 'string' && alias !== '') summary.canonical_alias = alias;
  if (typeof create.type === 'string') summary.room_type = create.type;
  const algorithm = content('m.room.encryption')?.algorithm;
  if (typeof algorithm === 'string') summary.encryption = algorithm;
  if (joinRule === 'restricted' || joinRule === 'knock_restricted') {
    const allow = joinRules?.allow;
    summary.allowed_room_ids = Array.isArray(allow)
      ? allow.flatMap((entry) =>
          entry !== null &&
          typeof entry === 'object' &&
          !Array.isArray(entry) &&
          entry.type === 'm.room_membership' &&
          typeof entry.room_id === 'string'
            ? [entry.room_id]
            : [],
        )
      : [];
  }
  if (userId !== undefined) summary.membership = hasMembership ? own.membership : 'leave';
  return summary;
}

export const roomSummaryRoutes = [getRoomSummary];
