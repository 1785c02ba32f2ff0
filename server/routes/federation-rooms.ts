/**
 * server-server room endpoints (joins.yaml, leaving.yaml, knocks.yaml, invites-v2.yaml,
 * events.yaml, backfill.yaml, event_auth.yaml, query.yaml, public_rooms.yaml):
 *   GET  /_matrix/federation/v1/make_join/{roomId}/{userId}    PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}
 *   GET  /_matrix/federation/v1/make_leave/{roomId}/{userId}   PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}
 *   GET  /_matrix/federation/v1/make_knock/{roomId}/{userId}   PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}
 *   PUT  /_matrix/federation/v2/invite/{roomId}/{eventId}
 *   GET  /_matrix/federation/v1/event/{eventId}                GET /_matrix/federation/v1/state/{roomId}
 *   GET  /_matrix/federation/v1/state_ids/{roomId}             GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}
 *   GET  /_matrix/federation/v1/backfill/{roomId}              POST /_matrix/federation/v1/get_missing_events/{roomId}
 *   GET  /_matrix/federation/v1/timestamp_to_event/{roomId}
 *   GET  /_matrix/federation/v1/query/directory                GET /_matrix/federation/v1/query/profile
 *   GET  /_matrix/federation/v1/publicRooms                    POST /_matrix/federation/v1/publicRooms
 * All X-Matrix authenticated; room endpoints also honour the room's server ACL.
 */

import { type TSchema, Type } from '@sinclair/typebox';
import type { JsonObject, Pdu } from '../../protocol/events.js';
import { belongsToServer, isValidRoomAlias, isValidUserId } from '../../protocol/identifiers.js';
import type { StoredEvent } from '../../storage/event-store.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import type { PublicRoomsQuery } from '../rooms/public-rooms.js';
import { allowedRoomOfPeer, assertAllowedInRoom, checkedRoomId } from './federation-room-access.js';

const TAGS = ['Federation rooms'];
const Anything = Type.Object({}, { additionalProperties: true, description: 'A JSON object.' });
const PduSchema = Type.Object({}, { additionalProperties: true, description: 'A persistent data unit.' });
const errors = { 400: MatrixErrorBody, 403: MatrixErrorBody, 404: MatrixErrorBody };

function roomFederation(hs: HomeserverContext) {
  return hs.roomFederation;
}

const pdus = (events: readonly StoredEvent[]): Pdu[] => events.map((event) => event.pdu);

const RoomUserParams = Type.Object({
  roomId: Type.String({ description: 'The room ID.' }),
  userId: Type.String({ description: 'The user ID the membership event is for.' }),
});
const RoomEventParams = Type.Object({
  roomId: Type.String({ description: 'The room ID.' }),
  eventId: Type.String({ description: 'The event ID.' }),
});
const MakeResponse = Type.Object(
  {
    room_version: Type.String({ description: 'The room version.' }),
    event: PduSchema,
  },
  { description: 'A template membership event to sign and send back.' },
);

function makeRoute(kind: 'join' | 'leave' | 'knock') {
  const versioned = kind !== 'leave';
  return defineRoute({
    method: 'GET',
    path: `/_matrix/federation/v1/make_${kind}/{roomId}/{userId}`,
    operationId: `make${kind[0]!.toUpperCase()}${kind.slice(1)}`,
    summary: `Get information needed to ${kind} a room.`,
    tags: TAGS,
    resource: 'federation',
    auth: 'x-matrix',
    rateLimit: 'federation',
    request: {
      params: RoomUserParams,
      query: Type.Object({
        ver: Type.Optional(
          Type.Array(Type.String(), {
            description: 'Room versions the sending server supports (default: 1).',
          }),
        ),
      }),
    },
    responses: { 200: MakeResponse, ...errors },
    async handler(req, hs) {
      const roomId = checkedRoomId(req.params.roomId);
      if (!isValidUserId(req.params.userId, { historical: true }))
        throw MatrixError.invalidParam('Invalid user ID');
      const origin = req.requester.serverName;
      await assertAllowedInRoom(hs, origin, roomId);
      const made = await roomFederation(hs).handshakes.makeMembership(
        origin,
        kind,
        roomId,
        req.params.userId,
        versioned ? (req.query.ver ?? ['1']) : undefined,
      );
      return reply(200, made);
    },
  });
}

export const sendJoinV2 = defineRoute({
  method: 'PUT',
  path: '/_matrix/federation/v2/send_join/{roomId}/{eventId}',
  operationId: 'sendJoinV2',
  summary: 'Submit a signed join event to a resident server.',
  description:
    'Answers with the room state before the join and its full auth chain (members_omitted is always false).',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    params: RoomEventParams,
    query: Type.Object({
      omit_members: Type.Optional(Type.Boolean({ description: 'Ignored: the full state is always sent.' })),
    }),
    body: PduSchema,
  },
  responses: {
    200: Type.Object(
      {
        origin: Type.String(),
        members_omitted: Type.Boolean(),
        state: Type.Array(PduSchema),
        auth_chain: Type.Array(PduSchema),
        event: Type.Optional(PduSchema),
      },
      { description: 'The state before the join and its auth chain.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const { roomId, origin } = await allowedRoomOfPeer(req, hs);
    const rooms = roomFederation(hs);
    const { event, state } = await rooms.handshakes.sendMembership(
      origin,
      'join',
      roomId,
      req.params.eventId,
      req.body,
    );
    const answer = await rooms.handshakes.joinAnswer(req.params.eventId, state ?? new Map());
    return reply(200, {
      origin: hs.config.server_name,
      members_omitted: false,
      state: answer.state as unknown as JsonObject[],
      auth_chain: answer.auth_chain as unknown as JsonObject[],
      event: event as unknown as JsonObject,
    });
  },
});

function sendMembershipRoute(kind: 'leave' | 'knock') {
  const version = kind === 'leave' ? 'v2' : 'v1';
  return defineRoute({
    method: 'PUT',
    path: `/_matrix/federation/${version}/send_${kind}/{roomId}/{eventId}`,
    operationId: `send${kind[0]!.toUpperCase()}${kind.slice(1)}`,
    summary: `Submit a signed ${kind} event to a resident server.`,
    tags: TAGS,
    resource: 'federation',
    auth: 'x-matrix',
    rateLimit: 'federation',
    request: { params: RoomEventParams, body: PduSchema },
    responses: { 200: Anything, ...errors },
    async handler(req, hs) {
      const { roomId, origin } = await allowedRoomOfPeer(req, hs);
      const rooms = roomFederation(hs);
      await rooms.handshakes.sendMembership(origin, kind, roomId, req.params.eventId, req.body);
      if (kind === 'leave') return reply(200, {});
      const knockRoomState = await rooms.handshakes.strippedState(roomId);
      // knock_state_events is MSC2403's name, which Synapse up to 1.9x reads (a 500 without it).
      return reply(200, { knock_room_state: knockRoomState, knock_state_events: knockRoomState });
    },
  });
}

export const inviteV2 = defineRoute({
  method: 'PUT',
  path: '/_matrix/federation/v2/invite/{roomId}/{eventId}',
  operationId: 'sendInviteV2',
  summary: 'Invite a user of this server to a room.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    params: RoomEventParams,
    body: Type.Object(
      {
        room_version: Type.String({ description: 'The version of the room.' }),
        event: PduSchema,
        invite_room_state: Type.Optional(
          Type.Array(Type.Unknown(), { description: 'Stripped state of the room.' }),
        ),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object({ event: PduSchema }, { description: 'The invite, now also signed by this server.' }),
    ...errors,
  },
  async handler(req, hs) {
    const { roomId, origin } = await allowedRoomOfPeer(req, hs);
    const signed = await roomFederation(hs).handshakes.receiveInvite(
      origin,
      roomId,
      req.params.eventId,
      req.body,
    );
    return reply(200, { event: signed as unknown as JsonObject });
  },
});

const PdusResponse = Type.Object(
  {
    origin: Type.String({ description: 'This server.' }),
    origin_server_ts: Type.Integer(),
    pdus: Type.Array(PduSchema),
  },
  { description: 'The events.' },
);

export const getEvent = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/event/{eventId}',
  operationId: 'getEvent',
  summary: 'Get a single event.',
  description: 'Refused (403) to a server that may not see the event by the room history visibility.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: { params: Type.Object({ eventId: Type.String({ description: 'The event ID.' }) }) },
  responses: { 200: PdusResponse, ...errors },
  async handler(req, hs) {
    const origin = req.requester.serverName;
    const event = await roomFederation(hs).reads.event(origin, req.params.eventId);
    await assertAllowedInRoom(hs, origin, event.roomId);
    return reply(200, {
      origin: hs.config.server_name,
      origin_server_ts: Date.now(),
      pdus: [event.pdu as unknown as JsonObject],
    });
  },
});

const StateQuery = Type.Object({
  event_id: Type.String({ description: 'The event to get the state at (before it).' }),
});

export const getRoomState = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/state/{roomId}',
  operationId: 'getRoomState',
  summary: 'Get the state of a room at an event.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: { params: Type.Object({ roomId: Type.String() }), query: StateQuery },
  responses: {
    200: Type.Object(
      { pdus: Type.Array(PduSchema), auth_chain: Type.Array(PduSchema) },
      { description: 'The state before the event and its auth chain.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const { roomId, origin } = await allowedRoomOfPeer(req, hs);
    const { reads } = roomFederation(hs);
    const ids = await reads.stateAt(origin, roomId, req.query.event_id);
    return reply(200, {
      pdus: pdus(await reads.events(ids.state)) as unknown as JsonObject[],
      auth_chain: pdus(await reads.events(ids.authChain)) as unknown as JsonObject[],
    });
  },
});

export const getRoomStateIds = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/state_ids/{roomId}',
  operationId: 'getRoomStateIds',
  summary: 'Get the state of a room at an event, as event IDs.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: { params: Type.Object({ roomId: Type.String() }), query: StateQuery },
  responses: {
    200: Type.Object(
      { pdu_ids: Type.Array(Type.String()), auth_chain_ids: Type.Array(Type.String()) },
      { description: 'The IDs of the state before the event and of its auth chain.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const { roomId, origin } = await allowedRoomOfPeer(req, hs);
    const ids = await roomFederation(hs).reads.stateAt(origin, roomId, req.query.event_id);
    return reply(200, { pdu_ids: ids.state, auth_chain_ids: ids.authChain });
  },
});

export const getEventAuth = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/event_auth/{roomId}/{eventId}',
  operationId: 'getEventAuth',
  summary: 'Get the auth chain of an event.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: { params: RoomEventParams },
  responses: {
    200: Type.Object({ auth_chain: Type.Array(PduSchema) }, { description: 'The auth chain.' }),
    ...errors,
  },
  async handler(req, hs) {
    const { roomId, origin } = await allowedRoomOfPeer(req, hs);
    const chain = await roomFederation(hs).reads.eventAuth(origin, roomId, req.params.eventId);
    return reply(200, { auth_chain: pdus(chain) as unknown as JsonObject[] });
  },
});

export const backfill = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/backfill/{roomId}',
  operationId: 'backfillRoom',
  summary: 'Retrieve the events before the given ones.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    params: Type.Object({ roomId: Type.String() }),
    query: Type.Object({
      v: Type.Array(Type.String(), { description: 'The events to start from (included).' }),
      limit: Type.Integer({ minimum: 0, description: 'The most events to return (at most 100 are).' }),
    }),
  },
  responses: { 200: PdusResponse, ...errors },
  async handler(req, hs) {
    const { roomId, origin } = await allowedRoomOfPeer(req, hs);
    const events = await roomFederation(hs).reads.backfill(origin, roomId, req.query.v, req.query.limit);
    return reply(200, {
      origin: hs.config.server_name,
      origin_server_ts: Date.now(),
      pdus: pdus(events) as unknown as JsonObject[],
    });
  },
});

export const getMissingEvents = defineRoute({
  method: 'POST',
  path: '/_matrix/federation/v1/get_missing_events/{roomId}',
  operationId: 'getMissingPreviousEvents',
  summary: 'Retrieve previous events that the sender is missing.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    params: Type.Object({ roomId: Type.String() }),
    body: Type.Object(
      {
        earliest_events: Type.Array(Type.String(), { description: 'The latest events the sender has.' }),
        latest_events: Type.Array(Type.String(), { description: 'The events to walk back from.' }),
        limit: Type.Optional(Type.Integer({ minimum: 0, description: 'At most this many (default 10).' })),
        min_depth: Type.Optional(Type.Integer({ description: 'The lowest depth to return (default 0).' })),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object({ events: Type.Array(PduSchema) }, { description: 'The missing events.' }),
    ...errors,
  },
  async handler(req, hs) {
    const { roomId, origin } = await allowedRoomOfPeer(req, hs);
    const events = await roomFederation(hs).reads.missingEvents(origin, roomId, req.body);
    return reply(200, { events: pdus(events) as unknown as JsonObject[] });
  },
});

export const timestampToEvent = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/timestamp_to_event/{roomId}',
  operationId: 'getEventByTimestamp',
  summary: 'Get the closest event to a timestamp.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    params: Type.Object({ roomId: Type.String() }),
    query: Type.Object({
      ts: Type.Integer({ description: 'The timestamp (ms).' }),
      dir: Type.Union([Type.Literal('f'), Type.Literal('b')], {
        description: 'Search forwards or backwards.',
      }),
    }),
  },
  responses: {
    200: Type.Object(
      { event_id: Type.String(), origin_server_ts: Type.Integer() },
      { description: 'The closest event.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const { roomId, origin } = await allowedRoomOfPeer(req, hs);
    const event = await roomFederation(hs).reads.timestampToEvent(
      origin,
      roomId,
      req.query.ts,
      req.query.dir,
    );
    return reply(200, { event_id: event.eventId, origin_server_ts: event.pdu.origin_server_ts });
  },
});

export const queryDirectory = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/query/directory',
  operationId: 'queryRoomDirectory',
  summary: 'Resolve a room alias of this server to a room ID.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: { query: Type.Object({ room_alias: Type.String({ description: 'The alias.' }) }) },
  responses: {
    200: Type.Object(
      { room_id: Type.String(), servers: Type.Array(Type.String()) },
      { description: 'The room and servers that can be joined through.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const alias = req.query.room_alias;
    if (!isValidRoomAlias(alias)) throw MatrixError.invalidParam('Invalid room alias');
    if (!belongsToServer(alias, hs.config.server_name))
      throw MatrixError.notFound(`${alias} is not an alias of this server`);
    const resolved = await hs.directory.resolveAlias(alias);
    if (resolved === null) throw MatrixError.notFound(`Room alias ${alias} not found`);
    return reply(200, { room_id: resolved.room_id, servers: resolved.servers });
  },
});

export const queryProfile = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/query/profile',
  operationId: 'queryProfile',
  summary: 'Query the profile of a user of this server.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    query: Type.Object({
      user_id: Type.String({ description: 'The user.' }),
      field: Type.Optional(Type.String({ description: 'One field only (displayname, avatar_url...).' })),
    }),
  },
  responses: { 200: Anything, ...errors },
  async handler(req, hs) {
    const userId = req.query.user_id;
    if (!isValidUserId(userId, { historical: true }) || !belongsToServer(userId, hs.config.server_name)) {
      throw MatrixError.notFound(`${userId} is not a user of this server`);
    }
    const profile = (await hs.profiles.getProfile(userId)) as JsonObject;
    const field = req.query.field;
    if (field === undefined) return reply(200, profile);
    // A field the user has not set is left out with a 200, as the spec says: a 404 here makes
    // Synapse fail the whole remote profile lookup (it asks for each field in turn).
    return reply(200, field in profile ? { [field]: profile[field] as JsonObject[string] } : {});
  },
});

const PublicRoomsAnswer: TSchema = Anything;

export const getPublicRoomsFederation = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/publicRooms',
  operationId: 'getPublicRoomsFederation',
  summary: "Lists this server's published room directory.",
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    query: Type.Object({
      limit: Type.Optional(Type.Integer({ minimum: 0, description: 'Rooms per page.' })),
      since: Type.Optional(Type.String({ description: 'A pagination token.' })),
      include_all_networks: Type.Optional(
        Type.Boolean({ description: 'No bridged networks here: ignored.' }),
      ),
      third_party_instance_id: Type.Optional(
        Type.String({ description: 'No bridged networks here: lists none.' }),
      ),
    }),
  },
  responses: { 200: PublicRoomsAnswer, ...errors },
  async handler(req, hs) {
    const query: PublicRoomsQuery = {
      ...(req.query.limit !== undefined ? { limit: req.query.limit } : {}),
      ...(req.query.since !== undefined ? { since: req.query.since } : {}),
    };
    return reply(200, (await hs.directory.publicRooms(query)) as unknown as JsonObject);
  },
});

export const queryPublicRoomsFederation = defineRoute({
  method: 'POST',
  path: '/_matrix/federation/v1/publicRooms',
  operationId: 'queryPublicRoomsFederation',
  summary: "Lists this server's published room directory with a filter.",
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    body: Type.Object(
      {
        limit: Type.Optional(Type.Integer({ minimum: 0 })),
        since: Type.Optional(Type.String()),
        filter: Type.Optional(
          Type.Object(
            {
              generic_search_term: Type.Optional(Type.String()),
              room_types: Type.Optional(Type.Array(Type.Union([Type.String(), Type.Null()]))),
            },
            { additionalProperties: true },
          ),
        ),
      },
      { additionalProperties: true },
    ),
    allowEmptyBody: true,
  },
  responses: { 200: PublicRoomsAnswer, ...errors },
  async handler(req, hs) {
    const { body } = req;
    const query: PublicRoomsQuery = {
      ...(body.limit !== undefined ? { limit: body.limit } : {}),
      ...(body.since !== undefined ? { since: body.since } : {}),
      ...(body.filter?.generic_search_term !== undefined
        ? { genericSearchTerm: body.filter.generic_search_term }
        : {}),
      ...(body.filter?.room_types !== undefined ? { roomTypes: body.filter.room_types } : {}),
    };
    return reply(200, (await hs.directory.publicRooms(query)) as unknown as JsonObject);
  },
});

export const federationRoomRoutes = [
  makeRoute('join'),
  sendJoinV2,
  makeRoute('leave'),
  sendMembershipRoute('leave'),
  makeRoute('knock'),
  sendMembershipRoute('knock'),
  inviteV2,
  getEvent,
  getRoomState,
  getRoomStateIds,
  getEventAuth,
  backfill,
  getMissingEvents,
  timestampToEvent,
  queryDirectory,
  queryProfile,
  getPublicRoomsFederation,
  queryPublicRoomsFederation,
];
