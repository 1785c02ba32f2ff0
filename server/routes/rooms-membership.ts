/**
 * client-server "Room membership" (joining.yaml, knocking.yaml, inviting.yaml, leaving.yaml,
 * kicking.yaml, banning.yaml):
 *   POST /_matrix/client/v3/rooms/{roomId}/join      POST /_matrix/client/v3/join/{roomIdOrAlias}
 *   POST /_matrix/client/v3/knock/{roomIdOrAlias}    POST /_matrix/client/v3/rooms/{roomId}/invite
 *   POST /_matrix/client/v3/rooms/{roomId}/leave     POST /_matrix/client/v3/rooms/{roomId}/forget
 *   POST /_matrix/client/v3/rooms/{roomId}/kick      POST /_matrix/client/v3/rooms/{roomId}/ban
 *   POST /_matrix/client/v3/rooms/{roomId}/unban
 * Each change is an m.room.member event whose fate the auth rules decide (403 M_FORBIDDEN
 * with their reason). Rooms this server is not in are joined over federation (make_join and
 * send_join on a resident server: `via`/`server_name`, the alias's servers, the inviter's
 * server); an invite to such a room is declined through the inviting server (make_leave,
 * send_leave); users of other servers are invited through their server (invite v2).
 * Knocks on rooms this server is not in go through a resident server (make_knock, send_knock).
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import {
  belongsToServer,
  isValidRoomAlias,
  isValidRoomId,
  isValidUserId,
  serverNameOfId as serverOfId,
} from '../../protocol/identifiers.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const TAGS = ['Room membership'];

const RoomIdParams = Type.Object({
  roomId: Type.String({ description: 'The room identifier.' }),
});

const RoomIdOrAliasParams = Type.Object({
  roomIdOrAlias: Type.String({ description: 'The room identifier or alias.' }),
});

const ViaQuery = Type.Object({
  via: Type.Optional(
    Type.Array(Type.String(), {
      description: 'Servers to attempt to join the room through (one of them must be in it).',
    }),
  ),
  server_name: Type.Optional(
    Type.Array(Type.String(), { description: 'Deprecated in favour of `via`: servers to join through.' }),
  ),
});

const reason = Type.Optional(Type.String({ description: 'A reason, kept in the membership event.' }));

const ReasonBody = Type.Object({ reason }, { additionalProperties: true });

const JoinBody = Type.Object(
  {
    reason,
    third_party_signed: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Third-party invite signatures: not supported.',
      }),
    ),
  },
  { additionalProperties: true },
);

const TargetBody = Type.Object(
  {
    user_id: Type.String({ description: 'The fully qualified user ID of the target.' }),
    reason,
  },
  { additionalProperties: true },
);

const Empty = Type.Object({}, { description: 'Done.', additionalProperties: false });

const RoomIdResponse = Type.Object(
  { room_id: Type.String({ description: 'The room.' }) },
  { description: 'The room has been joined (or knocked on).', additionalProperties: false },
);

const errors = {
  400: MatrixErrorBody,
  403: MatrixErrorBody,
  404: MatrixErrorBody,
  429: MatrixErrorBody,
};

function checkedRoomId(roomId: string): string {
  if (!isValidRoomId(roomId)) throw MatrixError.invalidParam(`Invalid room ID: ${JSON.stringify(roomId)}`);
  return roomId;
}

function checkedUserId(userId: string): string {
  if (!isValidUserId(userId, { historical: true })) {
    throw MatrixError.invalidParam(`Invalid user ID: ${JSON.stringify(userId)}`);
  }
  return userId;
}

interface ResolvedRoom {
  readonly roomId: string;
  /** Servers that may be in the room (from a remote alias's directory answer). */
  readonly servers: readonly string[];
}

/** The room a room ID or alias names: local aliases here, remote ones through /query/directory. */
async function resolveRoom(hs: HomeserverContext, roomIdOrAlias: string): Promise<ResolvedRoom> {
  if (roomIdOrAlias.startsWith('#')) {
    if (!isValidRoomAlias(roomIdOrAlias)) {
      throw MatrixError.invalidParam(`Invalid room alias: ${JSON.stringify(roomIdOrAlias)}`);
    }
    const aliasServer = roomIdOrAlias.slice(roomIdOrAlias.indexOf(':') + 1);
    if (aliasServer !== hs.config.server_name) {
      try {
        const remote = await hs.roomFederation.remote.queryDirectory(aliasServer, roomIdOrAlias);
        return { roomId: remote.roomId, servers: [...remote.servers, aliasServer] };
      } catch {
        throw MatrixError.notFound(`Room alias ${roomIdOrAlias} not found`);
      }
    }
    const resolved = await hs.directory.resolveAlias(roomIdOrAlias);
    if (resolved === null) throw MatrixError.notFound(`Room alias ${roomIdOrAlias} not found`);
    return { roomId: resolved.room_id, servers: resolved.servers };
  }
  if (!roomIdOrAlias.startsWith('!')) {
    throw MatrixError.invalidParam('roomIdOrAlias must be a room ID (!...) or a room alias (#...)');
  }
  return { roomId: checkedRoomId(roomIdOrAlias), servers: [] };
}

/**
 * Servers to join a room this server is not in through: those the client named, those of
 * the alias, the server of a pending invite's sender, and the room ID's server (v1-11).
 */
async function joinCandidates(
  hs: HomeserverContext,
  userId: string,
  room: ResolvedRoom,
  via: readonly string[],
): Promise<string[]> {
  const servers = [...via, ...room.servers];
  const inviteId = await hs.storage.state.currentStateEventId(room.roomId, 'm.room.member', userId);
  const invite = inviteId === null ? null : await hs.storage.events.getEvent(inviteId);
  if (invite?.pdu.content.membership === 'invite') servers.push(serverOfId(invite.pdu.sender));
  if (room.roomId.includes(':')) servers.push(serverOfId(room.roomId));
  return [...new Set(servers)].filter((server) => server !== hs.config.server_name);
}

/**
 * The other servers with a joined member when none of ours is joined: a room we know but have
 * left lives on those servers, and our copy of it is stale. Joins and invite rejections must go
 * through one of them (make_join / make_leave), not be built on our old room head, which they
 * would never hear of. Empty while one of our users is joined.
 */
async function residentServersWithoutUs(hs: HomeserverContext, roomId: string): Promise<string[]> {
  const servers = new Set<string>();
  for (const member of await hs.storage.memberships.membersOfRoom(roomId, ['join'])) {
    if (belongsToServer(member.userId, hs.config.server_name)) return [];
    servers.add(serverOfId(member.userId));
  }
  return [...servers];
}

async function join(
  hs: HomeserverContext,
  requester: AuthenticatedUser,
  room: ResolvedRoom,
  reasonText?: string,
  via: readonly string[] = [],
) {
  const { roomId } = room;
  const known = (await hs.rooms.reads.roomRules(roomId)) !== null;
  const residents = known ? await residentServersWithoutUs(hs, roomId) : [];
  if (!known || residents.length > 0) {
    // server-server "Joining Rooms": a room this server is not (or no longer) in is joined through a resident server.
    if (requester.isGuest)
      throw MatrixError.of('M_GUEST_ACCESS_FORBIDDEN', 'Guests cannot join rooms over federation');
    const servers = await joinCandidates(hs, requester.userId, room, [...via, ...residents]);
    if (servers.length === 0) throw MatrixError.notFound(`No known servers for room ${roomId}`);
    await hs.roomFederation.handshakes.joinRemote(roomId, requester.userId, servers, reasonText);
    return reply(200, { room_id: roomId });
  }
  if (requester.isGuest) {
    // client-server "Guest access": guests join only rooms whose m.room.guest_access is can_join.
    const guestAccess = await hs.rooms.reads.stateEvent(roomId, 'm.room.guest_access', '');
    const alreadyJoined = (await hs.rooms.reads.membership(roomId, requester.userId)) === 'join';
    if (guestAccess?.pdu.content.guest_access !== 'can_join' && !alreadyJoined) {
      throw MatrixError.of('M_GUEST_ACCESS_FORBIDDEN', 'Guest access is not allowed in this room');
    }
  }
  await hs.rooms.membership.join(
    roomId,
    requester.userId,
    reasonText === undefined ? {} : { reason: reasonText },
  );
  return reply(200, { room_id: roomId });
}

function refuseThirdPartySigned(body: { third_party_signed?: unknown }): void {
  if (body.third_party_signed !== undefined) {
    throw MatrixError.of('M_UNKNOWN', 'Joining through a third-party invite is not supported by this server');
  }
}

const reasonOption = (text: string | undefined) => (text === undefined ? {} : { reason: text });

export const joinRoomById = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/rooms/{roomId}/join',
  operationId: 'joinRoomById',
  summary: 'Start the requesting user participating in a particular room.',
  description:
    'Joins a room (an invite, or the join rules, must allow it). A room this server is not in is joined over ' +
    'federation through the inviting server or the room ID’s server (404 M_NOT_FOUND when there is none to ask); ' +
    'guests need m.room.guest_access can_join (403 M_GUEST_ACCESS_FORBIDDEN) and cannot join over federation.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  refusedWhileSuspended: true,
  request: { params: RoomIdParams, body: JoinBody, allowEmptyBody: true },
  responses: { 200: RoomIdResponse, ...errors },
  async handler(req, hs) {
    refuseThirdPartySigned(req.body);
    return join(
      hs,
      req.requester,
      { roomId: checkedRoomId(req.params.roomId), servers: [] },
      req.body.reason,
    );
  },
});

export const joinRoomByIdOrAlias = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/join/{roomIdOrAlias}',
  operationId: 'joinRoom',
  summary: 'Start the requesting user participating in a particular room.',
  description:
    'As /rooms/{roomId}/join, naming the room by ID or alias (aliases of other servers are resolved through ' +
    'their server); `via` (or the deprecated `server_name`) names servers to join through.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  refusedWhileSuspended: true,
  request: { params: RoomIdOrAliasParams, query: ViaQuery, body: JoinBody, allowEmptyBody: true },
  responses: { 200: RoomIdResponse, ...errors },
  async handler(req, hs) {
    refuseThirdPartySigned(req.body);
    const via = [...(req.query.via ?? []), ...(req.query.server_name ?? [])];
    return join(hs, req.requester, await resolveRoom(hs, req.params.roomIdOrAlias), req.body.reason, via);
  },
});

export const knockRoute = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/knock/{roomIdOrAlias}',
  operationId: 'knockRoom',
  summary: 'Knock on a room, requesting permission to join.',
  description:
    'Only in rooms whose join rule is knock (or knock_restricted) and of a version that has knocking (7+); ' +
    'the auth rules refuse it otherwise (403 M_FORBIDDEN). A room this server is not in is knocked on through ' +
    "a resident server (`via`, the alias's servers, the room ID's server).",
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  refusedWhileSuspended: true,
  request: { params: RoomIdOrAliasParams, query: ViaQuery, body: ReasonBody, allowEmptyBody: true },
  responses: { 200: RoomIdResponse, ...errors },
  async handler(req, hs) {
    const room = await resolveRoom(hs, req.params.roomIdOrAlias);
    const { roomId } = room;
    if ((await hs.rooms.reads.roomRules(roomId)) === null) {
      // server-server "Knocking upon a room": through a resident server.
      const via = [...(req.query.via ?? []), ...(req.query.server_name ?? [])];
      const servers = await joinCandidates(hs, req.requester.userId, room, via);
      await hs.roomFederation.handshakes.knockRemote(roomId, req.requester.userId, servers, req.body.reason);
      return reply(200, { room_id: roomId });
    }
    await hs.rooms.membership.knock(roomId, req.requester.userId, reasonOption(req.body.reason));
    return reply(200, { room_id: roomId });
  },
});

const InviteBody = Type.Object(
  {
    user_id: Type.Optional(Type.String({ description: 'The fully qualified user ID of the invitee.' })),
    reason,
    id_server: Type.Optional(
      Type.String({
        description: 'Third-party invites: the identity server (host[:port]) to look the 3PID up on.',
      }),
    ),
    id_access_token: Type.Optional(
      Type.String({ description: 'Third-party invites: an access token for the identity server.' }),
    ),
    medium: Type.Optional(
      Type.String({ description: 'Third-party invites: the kind of address, e.g. email.' }),
    ),
    address: Type.Optional(Type.String({ description: 'Third-party invites: the invitee’s address.' })),
  },
  { additionalProperties: true },
);

export const inviteRoute = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/rooms/{roomId}/invite',
  operationId: 'inviteUser',
  summary: 'Invite a user to participate in a particular room.',
  description:
    'Any valid user ID of this server may be invited (as Synapse, whether or not the account exists); users of other ' +
    'servers are invited through their server, which must sign the invite. With id_server, id_access_token, medium and ' +
    'address instead of user_id: the 3PID is looked up on the identity server; a bound user is invited, else the identity ' +
    'server stores the invite and an m.room.third_party_invite is sent.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  refusedWhileSuspended: true,
  request: { params: RoomIdParams, body: InviteBody },
  responses: { 200: Empty, ...errors },
  async handler(req, hs) {
    const roomId = checkedRoomId(req.params.roomId);
    const inviteUser = async (invitee: string) => {
      if (!belongsToServer(invitee, hs.config.server_name)) {
        // server-server "Inviting to a room": the invitee's server signs the invite first.
        const content: JsonObject = { membership: 'invite' };
        if (req.body.reason !== undefined) content.reason = req.body.reason;
        await hs.roomFederation.handshakes.inviteRemote(roomId, req.requester.userId, invitee, content);
        return;
      }
      await hs.rooms.membership.invite(roomId, req.requester.userId, invitee, reasonOption(req.body.reason));
    };
    if (req.body.user_id === undefined) {
      const { id_server: idServer, id_access_token: idAccessToken, medium, address } = req.body;
      if (idServer === undefined && medium === undefined && address === undefined) {
        throw MatrixError.missingParam('Missing user_id');
      }
      if (
        idServer === undefined ||
        idAccessToken === undefined ||
        medium === undefined ||
        address === undefined
      ) {
        throw MatrixError.missingParam(
          'A third-party invite needs id_server, id_access_token, medium and address',
        );
      }
      await hs.thirdPartyInvites.inviteThirdParty(
        { roomId, inviter: req.requester.userId, idServer, idAccessToken, medium, address },
        inviteUser,
      );
      return reply(200, {});
    }
    await inviteUser(checkedUserId(req.body.user_id));
    return reply(200, {});
  },
});

export const leaveRoute = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/rooms/{roomId}/leave',
  operationId: 'leaveRoom',
  summary: 'Stop the requesting user participating in a particular room.',
  description:
    'Also declines an invite or withdraws a knock. Leaving twice with the same content answers the first leave.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: RoomIdParams, body: ReasonBody, allowEmptyBody: true },
  responses: { 200: Empty, ...errors },
  async handler(req, hs) {
    const roomId = checkedRoomId(req.params.roomId);
    const known = (await hs.rooms.reads.roomRules(roomId)) !== null;
    if (!known || (await residentServersWithoutUs(hs, roomId)).length > 0) {
      // An invite to (or a knock on) a room this server is not (or no longer) in is withdrawn through a resident server.
      const pending = await hs.rooms.reads.membership(roomId, req.requester.userId);
      if (pending === 'invite' || pending === 'knock') {
        await hs.roomFederation.handshakes.leaveRemote(roomId, req.requester.userId, req.body.reason);
        return reply(200, {});
      }
      if (!known) throw MatrixError.notFound(`Unknown room ${roomId}`);
    }
    await hs.rooms.membership.leave(roomId, req.requester.userId, reasonOption(req.body.reason));
    return reply(200, {});
  },
});

export const forgetRoute = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/rooms/{roomId}/forget',
  operationId: 'forgetRoom',
  summary: 'Stop the requesting user remembering about a particular room.',
  description:
    'Only once left (or banned): 400 M_UNKNOWN while joined, invited or knocking. Forgetting a room one never was in succeeds (as Synapse).',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: RoomIdParams,
    body: Type.Object({}, { additionalProperties: true }),
    allowEmptyBody: true,
  },
  responses: { 200: Empty, ...errors },
  async handler(req, hs) {
    const roomId = checkedRoomId(req.params.roomId);
    const { userId } = req.requester;
    const membership = await hs.storage.memberships.getMembership(roomId, userId);
    if (membership === null) return reply(200, {});
    if (membership.membership !== 'leave' && membership.membership !== 'ban') {
      throw MatrixError.of('M_UNKNOWN', `User ${userId} is in room ${roomId}`);
    }
    await hs.storage.memberships.forgetRoom(userId, roomId);
    // Sync caches the user's memberships: a forgotten room leaves `rooms.leave` at once.
    hs.sync.membershipChanged(roomId, userId);
    hs.slidingSync.membershipChanged(roomId, userId);
    return reply(200, {});
  },
});

function targetRoute(options: {
  name: 'kick' | 'ban' | 'unban';
  operationId: string;
  summary: string;
  description: string;
}) {
  return defineRoute({
    method: 'POST',
    path: `/_matrix/client/v3/rooms/{roomId}/${options.name}`,
    operationId: options.operationId,
    summary: options.summary,
    description: options.description,
    tags: TAGS,
    resource: 'client',
    auth: 'access-token',
    rateLimit: 'client',
    refusedWhileSuspended: true,
    request: { params: RoomIdParams, body: TargetBody },
    responses: { 200: Empty, ...errors },
    async handler(req, hs) {
      const roomId = checkedRoomId(req.params.roomId);
      const target = checkedUserId(req.body.user_id);
      const actor = req.requester.userId;
      const opts = reasonOption(req.body.reason);
      const { membership } = hs.rooms;
      if (options.name === 'kick') await membership.kick(roomId, actor, target, opts);
      else if (options.name === 'ban') await membership.ban(roomId, actor, target, opts);
      else await membership.unban(roomId, actor, target, opts);
      return reply(200, {});
    },
  });
}

export const kickRoute = targetRoute({
  name: 'kick',
  operationId: 'kick',
  summary: 'Kick a user from the room.',
  description: 'Needs the kick power level and more power than the target (403 M_FORBIDDEN otherwise).',
});

export const banRoute = targetRoute({
  name: 'ban',
  operationId: 'ban',
  summary: 'Ban a user in the room.',
  description: 'Needs the ban power level and more power than the target (403 M_FORBIDDEN otherwise).',
});

export const unbanRoute = targetRoute({
  name: 'unban',
  operationId: 'unban',
  summary: 'Unban a user from the room.',
  description: 'Needs the ban power level; the user must be banned (403 M_FORBIDDEN otherwise).',
});

export const roomMembershipRoutes = [
  joinRoomById,
  joinRoomByIdOrAlias,
  knockRoute,
  inviteRoute,
  leaveRoute,
  forgetRoute,
  kickRoute,
  banRoute,
  unbanRoute,
];
