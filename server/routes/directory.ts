/**
 * client-server "Room aliases" (directory.yaml), "Published room directory"
 * (list_public_rooms.yaml) and "Spaces" (space_hierarchy.yaml):
 *   PUT    /_matrix/client/v3/directory/room/{roomAlias}
 *   GET    /_matrix/client/v3/directory/room/{roomAlias}
 *   DELETE /_matrix/client/v3/directory/room/{roomAlias}
 *   GET    /_matrix/client/v3/rooms/{roomId}/aliases
 *   GET    /_matrix/client/v3/directory/list/room/{roomId}
 *   PUT    /_matrix/client/v3/directory/list/room/{roomId}
 *   GET    /_matrix/client/v3/publicRooms
 *   POST   /_matrix/client/v3/publicRooms
 *   GET    /_matrix/client/v1/rooms/{roomId}/hierarchy
 * The rules live in rooms/room-directory.ts; aliases and directories of other servers
 * wait for federation.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { belongsToServer, isValidRoomAlias, isValidServerName } from '../../protocol/identifiers.js';
import { networkRoomSource } from '../appservice/network-directory.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import type { PublicRoomsPage, PublicRoomsQuery } from '../rooms/public-rooms.js';
import { EmptyResponse } from './shared-schemas.js';

const AliasParams = Type.Object({
  roomAlias: Type.String({ description: 'The room alias, `#localpart:server`.' }),
});

const RoomIdParams = Type.Object({
  roomId: Type.String({ description: 'The room ID.' }),
});

const Visibility = Type.Union([Type.Literal('public'), Type.Literal('private')], {
  description: 'The visibility of the room in the published room directory.',
});

const PublishedRoomsChunk = Type.Object(
  {
    room_id: Type.String({ description: 'The ID of the room.' }),
    num_joined_members: Type.Integer({ description: 'The number of members joined to the room.' }),
    world_readable: Type.Boolean({ description: 'Whether the room may be viewed by users without joining.' }),
    guest_can_join: Type.Boolean({ description: 'Whether guest users may join the room.' }),
    name: Type.Optional(Type.String({ description: 'The name of the room, if any.' })),
    topic: Type.Optional(Type.String({ description: 'The plain text topic of the room, if any.' })),
    avatar_url: Type.Optional(Type.String({ description: "The room's avatar URL, if one is set." })),
    canonical_alias: Type.Optional(Type.String({ description: 'The canonical alias of the room, if any.' })),
    join_rule: Type.Optional(Type.String({ description: "The room's join rule." })),
    room_type: Type.Optional(Type.String({ description: 'The `type` of the room (m.room.create), if any.' })),
  },
  { additionalProperties: true },
);

const PublicRoomsResponse = Type.Object(
  {
    chunk: Type.Array(PublishedRoomsChunk, { description: 'A paginated chunk of published rooms.' }),
    next_batch: Type.Optional(Type.String({ description: 'A token for the next page; absent on the last.' })),
    prev_batch: Type.Optional(
      Type.String({ description: 'A token for the previous page; absent on the first.' }),
    ),
    total_room_count_estimate: Type.Optional(
      Type.Integer({ description: 'How many published rooms match, in all pages.' }),
    ),
  },
  { description: 'A page of the published rooms on the server, largest first.' },
);

const ServerQuery = Type.Optional(
  Type.String({
    description:
      'The server whose directory to list (another server is asked over federation); default this one.',
  }),
);

/** The other server whose directory is asked for (listed over federation), or null for ours. */
function remoteDirectoryServer(server: string | undefined, hs: HomeserverContext): string | null {
  if (server === undefined || server === hs.config.server_name) return null;
  if (!isValidServerName(server)) throw MatrixError.invalidParam(`Invalid server name: ${server}`);
  return server;
}

export const setRoomAlias = defineRoute({
  method: 'PUT',
  path: '/_matrix/client/v3/directory/room/{roomAlias}',
  operationId: 'setRoomAlias',
  summary: 'Create a new mapping from room alias to room ID.',
  description:
    'Only aliases of this server. As Synapse: the requester must be joined to the room (server admins ' +
    'excepted), and guests may not create aliases. An alias that exists already is a 409.',
  tags: ['Room directory'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: AliasParams,
    body: Type.Object(
      { room_id: Type.String({ description: 'The room ID to set.' }) },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: EmptyResponse,
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    409: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const registry = hs.appservices.registry;
    registry.checkAliasChange(req.params.roomAlias, registry.serviceOf(req.requester));
    await hs.directory.createAlias(req.requester, req.params.roomAlias, req.body.room_id);
    return reply(200, {});
  },
});

export const getRoomIdByAlias = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/directory/room/{roomAlias}',
  operationId: 'getRoomIdByAlias',
  summary: 'Get the room ID corresponding to this room alias.',
  description: 'Aliases of other servers are resolved by asking their server (federation query/directory).',
  tags: ['Room directory'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'client',
  request: { params: AliasParams },
  responses: {
    200: Type.Object(
      {
        room_id: Type.String({ description: 'The room ID for this room alias.' }),
        servers: Type.Array(Type.String(), { description: 'Servers that are aware of this room alias.' }),
      },
      { description: 'The room ID and other information for this alias.' },
    ),
    400: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const alias = req.params.roomAlias;
    if (isValidRoomAlias(alias) && !belongsToServer(alias, hs.config.server_name)) {
      return reply(200, await hs.roomFederation.remoteAlias(alias));
    }
    return reply(200, await hs.directory.getAlias(alias));
  },
});

export const deleteRoomAlias = defineRoute({
  method: 'DELETE',
  path: '/_matrix/client/v3/directory/room/{roomAlias}',
  operationId: 'deleteRoomAlias',
  summary: 'Remove a mapping of room alias to room ID.',
  description:
    "As Synapse: the alias's creator, a server admin, or a member of the room able to send " +
    "m.room.canonical_alias may delete it. The alias is then removed from the room's m.room.canonical_alias " +
    'event (if the requester may send it).',
  tags: ['Room directory'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: AliasParams },
  responses: {
    200: EmptyResponse,
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const registry = hs.appservices.registry;
    registry.checkAliasChange(req.params.roomAlias, registry.serviceOf(req.requester));
    await hs.directory.deleteAlias(req.requester, req.params.roomAlias);
    return reply(200, {});
  },
});

export const getLocalAliases = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/rooms/{roomId}/aliases',
  operationId: 'getLocalAliases',
  summary: 'Get a list of local aliases on a given room.',
  description: "For the room's joined members, server admins, or anyone if the room is world readable.",
  tags: ['Room directory'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: RoomIdParams },
  responses: {
    200: Type.Object(
      { aliases: Type.Array(Type.String(), { description: "The server's local aliases on the room." }) },
      { description: 'The list of local aliases for the room.' },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    return reply(200, { aliases: await hs.directory.aliasesOfRoom(req.requester, req.params.roomId) });
  },
});

export const getRoomVisibilityOnDirectory = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/directory/list/room/{roomId}',
  operationId: 'getRoomVisibilityOnDirectory',
  summary: 'Gets the visibility of a room in the directory.',
  tags: ['Room discovery'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'client',
  request: { params: RoomIdParams },
  responses: {
    200: Type.Object(
      { visibility: Visibility },
      { description: 'The visibility of the room in the directory.' },
    ),
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    return reply(200, { visibility: await hs.directory.visibility(req.params.roomId) });
  },
});

export const setRoomVisibilityOnDirectory = defineRoute({
  method: 'PUT',
  path: '/_matrix/client/v3/directory/list/room/{roomId}',
  operationId: 'setRoomVisibilityOnDirectory',
  summary: 'Sets the visibility of a room in the directory.',
  description:
    'As Synapse: server admins, or joined members whose power level allows sending m.room.canonical_alias. ' +
    'Guests may not.',
  tags: ['Room discovery'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: RoomIdParams,
    body: Type.Object(
      {
        visibility: Type.Optional({
          ...Visibility,
          description: 'The new visibility; defaults to `public`.',
        }),
      },
      { additionalProperties: true },
    ),
    allowEmptyBody: true,
  },
  responses: {
    200: EmptyResponse,
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    await hs.directory.setVisibility(req.requester, req.params.roomId, req.body.visibility ?? 'public');
    return reply(200, {});
  },
});

export const getPublicRooms = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/publicRooms',
  operationId: 'getPublicRooms',
  summary: "Lists a server's published room directory.",
  description:
    'Published rooms with at least one joined member, the largest first, ties by room ID. At most 100 per page.',
  tags: ['Room discovery'],
  resource: 'client',
  auth: 'optional',
  rateLimit: 'client',
  request: {
    query: Type.Object({
      limit: Type.Optional(
        Type.Integer({ minimum: 0, description: 'Rooms per page (0: the default, 100; at most 100).' }),
      ),
      since: Type.Optional(Type.String({ description: 'A next_batch or prev_batch token.' })),
      server: ServerQuery,
    }),
  },
  responses: { 200: PublicRoomsResponse, 400: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const remote = remoteDirectoryServer(req.query.server, hs);
    if (remote !== null) {
      // As Synapse: asking another server on someone's behalf needs an account.
      if (req.requester === undefined)
        throw MatrixError.missingToken('Listing another server needs an access token.');
      const page = await hs.roomFederation.remotePublicRooms(remote, {
        ...(req.query.limit !== undefined ? { limit: req.query.limit } : {}),
        ...(req.query.since !== undefined ? { since: req.query.since } : {}),
      });
      return reply(200, page as unknown as PublicRoomsPage);
    }
    const query: PublicRoomsQuery = {
      ...(req.query.limit !== undefined ? { limit: req.query.limit } : {}),
      ...(req.query.since !== undefined ? { since: req.query.since } : {}),
    };
    return reply(200, await hs.directory.publicRooms(query));
  },
});

export const queryPublicRooms = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/publicRooms',
  operationId: 'queryPublicRooms',
  summary: "Lists a server's published room directory with an optional filter.",
  description:
    'generic_search_term matches the name, topic, canonical alias or room ID, case-insensitively; room_types ' +
    'keeps rooms of the listed types (`null`: rooms without a type). third_party_instance_id ' +
    '(`{appserviceId}|{networkId}`) lists the rooms an application service published for that network; ' +
    "include_all_networks adds every network to the server's own directory.",
  tags: ['Room discovery'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    query: Type.Object({ server: ServerQuery }),
    body: Type.Object(
      {
        limit: Type.Optional(
          Type.Integer({ minimum: 0, description: 'Rooms per page (0: the default, 100; at most 100).' }),
        ),
        since: Type.Optional(Type.String({ description: 'A next_batch or prev_batch token.' })),
        filter: Type.Optional(
          Type.Object(
            {
              generic_search_term: Type.Optional(
                Type.String({ maxLength: 1000, description: 'A string to search for in the room metadata.' }),
              ),
              room_types: Type.Optional(
                Type.Array(Type.Union([Type.String(), Type.Null()]), {
                  description: 'Room types to include; `null` for rooms without a type.',
                }),
              ),
            },
            { additionalProperties: true, description: 'Filter to apply to the results.' },
          ),
        ),
        include_all_networks: Type.Optional(
          Type.Boolean({
            description: "Include the rooms of every application service's third-party networks.",
          }),
        ),
        third_party_instance_id: Type.Optional(
          Type.String({ description: 'The third-party network to list: `{appserviceId}|{networkId}`.' }),
        ),
      },
      { additionalProperties: true },
    ),
    allowEmptyBody: true,
  },
  responses: { 200: PublicRoomsResponse, 400: MatrixErrorBody, 401: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const remote = remoteDirectoryServer(req.query.server, hs);
    const { body } = req;
    if (remote !== null) {
      const page = await hs.roomFederation.remotePublicRooms(remote, {
        ...(body.limit !== undefined ? { limit: body.limit } : {}),
        ...(body.since !== undefined ? { since: body.since } : {}),
        ...(body.include_all_networks !== undefined ? { includeAllNetworks: body.include_all_networks } : {}),
        filter: (body.filter ?? {}) as JsonObject,
      });
      return reply(200, page as unknown as PublicRoomsPage);
    }
    if (body.third_party_instance_id !== undefined && body.include_all_networks === true) {
      throw MatrixError.invalidParam("include_all_networks can't be used with third_party_instance_id");
    }
    const networkRooms = networkRoomSource(hs.storage, {
      includeAllNetworks: body.include_all_networks,
      thirdPartyInstanceId: body.third_party_instance_id,
    });
    const query: PublicRoomsQuery = {
      ...(networkRooms !== undefined ? { publishedRoomIds: networkRooms } : {}),
      ...(body.limit !== undefined ? { limit: body.limit } : {}),
      ...(body.since !== undefined ? { since: body.since } : {}),
      ...(body.filter?.generic_search_term !== undefined
        ? { genericSearchTerm: body.filter.generic_search_term }
        : {}),
      ...(body.filter?.room_types !== undefined ? { roomTypes: body.filter.room_types } : {}),
    };
    return reply(200, await hs.directory.publicRooms(query));
  },
});

const StrippedChildState = Type.Object(
  {
    type: Type.String(),
    state_key: Type.String(),
    content: Type.Record(Type.String(), Type.Unknown()),
    sender: Type.String(),
    origin_server_ts: Type.Integer(),
  },
  { additionalProperties: true },
);

export const getSpaceHierarchy = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v1/rooms/{roomId}/hierarchy',
  operationId: 'getSpaceHierarchy',
  summary: 'Retrieve a portion of a space tree.',
  description:
    'Depth first along m.space.child links (children in the spec order), showing the rooms the requester ' +
    'is joined or invited to, may join or knock on, or that are world readable. Rooms this server is not in ' +
    "are asked of a server in their link's via (federation /hierarchy, cached five minutes). " +
    'At most 50 rooms per page; next_batch tokens last five minutes.',
  tags: ['Spaces'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: RoomIdParams,
    query: Type.Object({
      suggested_only: Type.Optional(Type.Boolean({ description: 'Only follow suggested children.' })),
      limit: Type.Optional(
        Type.Integer({ minimum: 1, description: 'Rooms per page (default and most: 50).' }),
      ),
      max_depth: Type.Optional(Type.Integer({ minimum: 0, description: 'How deep to go into the space.' })),
      from: Type.Optional(Type.String({ description: 'A next_batch token from a previous page.' })),
    }),
  },
  responses: {
    200: Type.Object(
      {
        rooms: Type.Array(
          Type.Object(
            {
              room_id: Type.String(),
              num_joined_members: Type.Integer(),
              world_readable: Type.Boolean(),
              guest_can_join: Type.Boolean(),
              children_state: Type.Array(StrippedChildState),
            },
            { additionalProperties: true },
          ),
          { description: 'The rooms of this page.' },
        ),
        next_batch: Type.Optional(Type.String({ description: 'A token for the next page.' })),
      },
      { description: 'A portion of the space tree, starting at the requested room.' },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { query } = req;
    return reply(
      200,
      await hs.directory.hierarchy({
        roomId: req.params.roomId,
        requester: req.requester.userId,
        suggestedOnly: query.suggested_only ?? false,
        ...(query.max_depth !== undefined ? { maxDepth: query.max_depth } : {}),
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
        ...(query.from !== undefined ? { from: query.from } : {}),
      }),
    );
  },
});

export const directoryRoutes = [
  setRoomAlias,
  getRoomIdByAlias,
  deleteRoomAlias,
  getLocalAliases,
  getRoomVisibilityOnDirectory,
  setRoomVisibilityOnDirectory,
  getPublicRooms,
  queryPublicRooms,
  getSpaceHierarchy,
];
