/**
 * client-server "Getting events for a room" and "Room membership" reads
 * (rooms.yaml, message_pagination.yaml, event_context.yaml,
 * room_event_by_timestamp.yaml, list_joined_rooms.yaml):
 *   GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}
 *   GET /_matrix/client/v3/rooms/{roomId}/state
 *   GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}[/{stateKey}]   (?format=content|event)
 *   GET /_matrix/client/v3/rooms/{roomId}/members                        (?at, membership, not_membership)
 *   GET /_matrix/client/v3/rooms/{roomId}/joined_members
 *   GET /_matrix/client/v3/joined_rooms
 *   GET /_matrix/client/v3/rooms/{roomId}/messages                       (?from, to, dir, limit, filter)
 *   GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}              (?limit, filter)
 *   GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event             (?ts, dir)
 * History visibility applies to every event served (rooms/history-visibility.ts):
 * rooms the user may not read answer 403 M_FORBIDDEN, events they may not see
 * 404 M_NOT_FOUND (as Synapse does). A user who left reads up to their leave.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject, StateMap } from '../../protocol/events.js';
import { splitStateTupleKey, stateTupleKey } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import type { HomeserverContext } from '../context.js';
import { isMatrixError, MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { toClientEvent, toClientEvents } from '../rooms/client-event-format.js';
import { parseRoomEventFilterJson, type RoomEventFilter } from '../rooms/event-filter.js';
import { encodeTimelineToken, parseTimelineToken } from '../rooms/pagination-token.js';
import {
  eventContext,
  lazyLoadedMembers,
  paginateRoom,
  requireReadAccess,
  stateAtPosition,
  stateForReader,
  visibleEventOrNotFound,
} from '../rooms/room-history.js';

const ROOM = '/_matrix/client/v3/rooms/{roomId}';
const TAGS = ['Room participation'];
/** Synapse's ceiling for /messages and /context. */
const MAX_LIMIT = 1000;

/** A room event in the client format (definitions/client_event.yaml). */
export const ClientEventSchema = Type.Unsafe<JsonObject>(
  Type.Object(
    {
      content: Type.Object({}, { additionalProperties: true }),
      event_id: Type.String(),
      origin_server_ts: Type.Integer(),
      room_id: Type.String(),
      sender: Type.String(),
      state_key: Type.Optional(Type.String()),
      type: Type.String(),
      unsigned: Type.Optional(Type.Object({}, { additionalProperties: true })),
    },
    { additionalProperties: true, title: 'ClientEvent', description: 'A room event as clients see it.' },
  ),
);

const clientEvents = (description: string) => Type.Array(ClientEventSchema, { description });

const RoomParams = Type.Object({ roomId: Type.String({ description: 'The room.' }) });
const RoomEventParams = Type.Object({
  roomId: Type.String({ description: 'The room the event is in.' }),
  eventId: Type.String({ description: 'The event.' }),
});

const errors = { 400: MatrixErrorBody, 403: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody };

const MembershipValue = Type.Union(
  ['join', 'invite', 'knock', 'leave', 'ban'].map((m) => Type.Literal(m)),
  { description: 'A membership: join, invite, knock, leave or ban.' },
);
const Direction = Type.Union([Type.Literal('b'), Type.Literal('f')], {
  description: '`b`: backwards (newest first), `f`: forwards (oldest first).',
});

export const getRoomEvent = defineRoute({
  method: 'GET',
  path: `${ROOM}/event/{eventId}`,
  operationId: 'getOneRoomEvent',
  summary: 'Get a single event by event ID.',
  description: '404 M_NOT_FOUND also when the requester may not see the event.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: RoomEventParams },
  responses: { 200: ClientEventSchema, ...errors },
  async handler(req, hs) {
    const { roomId, eventId } = req.params;
    const event = await visibleEventOrNotFound(hs, req.requester.userId, roomId, eventId);
    const [formatted] = await toClientEvents(hs, [event], req.requester);
    return reply(200, formatted!);
  },
});

export const getRoomState = defineRoute({
  method: 'GET',
  path: `${ROOM}/state`,
  operationId: 'getRoomState',
  summary: 'Get all state events in the current state of a room.',
  description: 'For a user who left or was banned, the state when that happened.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: RoomParams },
  responses: { 200: clientEvents('The state events.'), ...errors },
  async handler(req, hs) {
    const { roomId } = req.params;
    const access = await requireReadAccess(hs, req.requester.userId, roomId);
    const events = await stateEvents(hs, await stateForReader(hs, roomId, access));
    return reply(
      200,
      events.map((event) => toClientEvent(event)),
    );
  },
});

const StateFormatQuery = Type.Object({
  format: Type.Optional(
    Type.Union([Type.Literal('content'), Type.Literal('event')], {
      description: '`content` (default): the content only; `event`: the whole client event.',
    }),
  ),
});

async function getStateEntry(
  hs: HomeserverContext,
  userId: string,
  roomId: string,
  eventType: string,
  stateKey: string,
  format: 'content' | 'event' | undefined,
): Promise<JsonObject> {
  const access = await requireReadAccess(hs, userId, roomId);
  const eventId =
    access.readUpTo === null
      ? await hs.storage.state.currentStateEventId(roomId, eventType, stateKey)
      : ((await stateForReader(hs, roomId, access)).get(stateTupleKey(eventType, stateKey)) ?? null);
  const event = eventId === null ? null : await hs.storage.events.getEvent(eventId);
  if (event === null) throw MatrixError.notFound(`No ${eventType} state with key '${stateKey}' in the room`);
  return format === 'event' ? toClientEvent(event) : event.pdu.content;
}

const StateEntryResponse = Type.Unsafe<JsonObject>(
  Type.Object(
    {},
    { additionalProperties: true, description: 'The content, or the client event with ?format=event.' },
  ),
);

export const getRoomStateWithKey = defineRoute({
  method: 'GET',
  path: `${ROOM}/state/{eventType}/{stateKey}`,
  operationId: 'getRoomStateWithKey',
  summary: 'Get the state identified by the type and key.',
  description:
    '404 M_NOT_FOUND when the room has no such state (for a user who left: had none when they left).',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      roomId: Type.String({ description: 'The room.' }),
      eventType: Type.String({ description: 'The type of state.' }),
      stateKey: Type.String({ description: 'The state key (may be empty).' }),
    }),
    query: StateFormatQuery,
  },
  responses: { 200: StateEntryResponse, ...errors },
  async handler(req, hs) {
    const { roomId, eventType, stateKey } = req.params;
    return reply(
      200,
      await getStateEntry(hs, req.requester.userId, roomId, eventType, stateKey, req.query.format),
    );
  },
});

export const getRoomStateWithEmptyKey = defineRoute({
  method: 'GET',
  path: `${ROOM}/state/{eventType}`,
  operationId: 'getRoomStateWithEmptyKey',
  summary: 'Get the state of a type with the empty state key (the trailing slash is optional).',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      roomId: Type.String({ description: 'The room.' }),
      eventType: Type.String({ description: 'The type of state.' }),
    }),
    query: StateFormatQuery,
  },
  responses: { 200: StateEntryResponse, ...errors },
  async handler(req, hs) {
    const { roomId, eventType } = req.params;
    return reply(200, await getStateEntry(hs, req.requester.userId, roomId, eventType, '', req.query.format));
  },
});

export const getMembersByRoom = defineRoute({
  method: 'GET',
  path: `${ROOM}/members`,
  operationId: 'getMembersByRoom',
  summary: 'Get the m.room.member events for the room.',
  description:
    'At the current state, or at the `at` token; for a user who left, at their leave. `membership` and ' +
    "`not_membership` together form an 'or' (the spec's wording).",
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: RoomParams,
    query: Type.Object({
      at: Type.Optional(Type.String({ description: 'A pagination token (e.g. a sync prev_batch).' })),
      membership: Type.Optional(MembershipValue),
      not_membership: Type.Optional(MembershipValue),
    }),
  },
  responses: {
    200: Type.Object({ chunk: clientEvents('The member events.') }, { description: 'The members.' }),
    ...errors,
  },
  async handler(req, hs) {
    const { roomId } = req.params;
    const { at, membership, not_membership: notMembership } = req.query;
    const access = await requireReadAccess(hs, req.requester.userId, roomId);
    let state: StateMap;
    if (at !== undefined) {
      const position = parseTimelineToken(at, 'at');
      state = await stateAtPosition(hs, roomId, Math.min(position, access.readUpTo ?? position));
    } else {
      state = await stateForReader(hs, roomId, access);
    }
    const members = (await stateEvents(hs, state, 'm.room.member')).filter((event) => {
      if (membership === undefined && notMembership === undefined) return true;
      const value = event.pdu.content.membership;
      return (
        (membership !== undefined && value === membership) ||
        (notMembership !== undefined && value !== notMembership)
      );
    });
    return reply(200, { chunk: members.map((event) => toClientEvent(event)) });
  },
});

const RoomMember = Type.Object(
  {
    display_name: Type.Optional(Type.String({ description: 'The display name.' })),
    avatar_url: Type.Optional(Type.String({ description: 'The avatar, an mxc:// URI.' })),
  },
  { title: 'RoomMember' },
);

export const getJoinedMembersByRoom = defineRoute({
  method: 'GET',
  path: `${ROOM}/joined_members`,
  operationId: 'getJoinedMembersByRoom',
  summary: 'Gets the list of currently joined users and their profile data.',
  description: 'Only for members of the room (403 M_FORBIDDEN otherwise).',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: RoomParams },
  responses: {
    200: Type.Object(
      { joined: Type.Record(Type.String(), RoomMember, { description: 'User ID -> RoomMember.' }) },
      { description: 'The joined members.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const { roomId } = req.params;
    const own = await hs.storage.memberships.getMembership(roomId, req.requester.userId);
    if (own?.membership !== 'join') throw MatrixError.forbidden(`You are not joined to room ${roomId}`);
    const members = await stateEvents(hs, await hs.storage.state.currentState(roomId), 'm.room.member');
    const joined: Record<string, { display_name?: string; avatar_url?: string }> = {};
    for (const event of members) {
      const { content } = event.pdu;
      if (content.membership !== 'join' || event.pdu.state_key === undefined) continue;
      const member: { display_name?: string; avatar_url?: string } = {};
      if (typeof content.displayname === 'string') member.display_name = content.displayname;
      if (typeof content.avatar_url === 'string') member.avatar_url = content.avatar_url;
      joined[event.pdu.state_key] = member;
    }
    return reply(200, { joined });
  },
});

export const getJoinedRooms = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/joined_rooms',
  operationId: 'getJoinedRooms',
  summary: "Lists the user's current rooms.",
  tags: ['Room membership'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  responses: {
    200: Type.Object(
      {
        joined_rooms: Type.Array(Type.String(), { description: 'The ID of each room the user has joined.' }),
      },
      { description: 'The rooms the user has joined.' },
    ),
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const rooms = await hs.storage.memberships.membershipsOfUser(req.requester.userId, ['join']);
    return reply(200, { joined_rooms: rooms.map((record) => record.roomId) });
  },
});

/** A RoomEventFilter from the query string; bad JSON or shape is 400 M_INVALID_PARAM. */
function parseFilterParam(text: string | undefined): RoomEventFilter | undefined {
  if (text === undefined || text === '') return undefined;
  try {
    return parseRoomEventFilterJson(text);
  } catch (error) {
    if (isMatrixError(error)) throw MatrixError.invalidParam(`Invalid filter: ${error.message}`);
    throw error;
  }
}

function effectiveLimit(
  limit: number | undefined,
  filter: RoomEventFilter | undefined,
  fallback: number,
): number {
  const asked = Math.min(limit ?? fallback, MAX_LIMIT);
  return filter?.limit === undefined ? asked : Math.min(asked, filter.limit);
}

export const getRoomMessages = defineRoute({
  method: 'GET',
  path: `${ROOM}/messages`,
  operationId: 'getRoomEvents',
  summary: 'Get a list of events for this room.',
  description:
    'Tokens are opaque: `t<n>` from this endpoint and /context, or the `prev_batch`/`next_batch` of /sync. ' +
    'Without `from`, starts at the newest (`dir=b`) or oldest (`dir=f`) event the user may see. `end` is ' +
    'absent when history is exhausted. Supports `lazy_load_members` in the filter.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: RoomParams,
    query: Type.Object({
      from: Type.Optional(Type.String({ description: 'The token to start from.' })),
      to: Type.Optional(Type.String({ description: 'The token to stop at.' })),
      dir: Direction,
      limit: Type.Optional(
        Type.Integer({ minimum: 0, description: 'The maximum number of events (default 10).' }),
      ),
      filter: Type.Optional(Type.String({ description: 'A JSON RoomEventFilter.' })),
    }),
  },
  responses: {
    200: Type.Object(
      {
        start: Type.String({ description: 'The token the chunk starts at.' }),
        end: Type.Optional(Type.String({ description: 'The token to continue from; absent at the end.' })),
        chunk: clientEvents('The events, in the order of `dir`.'),
        state: Type.Optional(clientEvents('Member events of the senders, with lazy_load_members.')),
      },
      { description: 'A page of events.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const { roomId } = req.params;
    const { query } = req;
    const from =
      query.from === undefined || query.from === '' ? undefined : parseTimelineToken(query.from, 'from');
    const to = query.to === undefined || query.to === '' ? undefined : parseTimelineToken(query.to, 'to');
    const filter = parseFilterParam(query.filter);
    const access = await requireReadAccess(hs, req.requester.userId, roomId);
    const page = await paginateRoom(hs, req.requester, roomId, access, {
      direction: query.dir,
      from,
      to,
      limit: effectiveLimit(query.limit, filter, 10),
      filter,
    });
    const [chunk, members] = await Promise.all([
      toClientEvents(hs, page.chunk, req.requester),
      filter?.lazy_load_members ? lazyLoadedMembers(hs, page.chunk) : Promise.resolve([]),
    ]);
    return reply(200, {
      start: query.from !== undefined && query.from !== '' ? query.from : encodeTimelineToken(page.start),
      ...(page.end !== null ? { end: encodeTimelineToken(page.end) } : {}),
      chunk,
      ...(filter?.lazy_load_members ? { state: members.map((event) => toClientEvent(event)) } : {}),
    });
  },
});

export const getEventContext = defineRoute({
  method: 'GET',
  path: `${ROOM}/context/{eventId}`,
  operationId: 'getEventContext',
  summary: 'Get events and state around the specified event.',
  description:
    '`limit` (default 10) is split between events before and after. The filter applies to those and to ' +
    '`state`, not to `event`; `lazy_load_members` limits `state` to the senders.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: RoomEventParams,
    query: Type.Object({
      limit: Type.Optional(
        Type.Integer({ minimum: 0, description: 'The maximum number of context events.' }),
      ),
      filter: Type.Optional(Type.String({ description: 'A JSON RoomEventFilter.' })),
    }),
  },
  responses: {
    200: Type.Object(
      {
        start: Type.String({ description: 'A token to paginate backwards from.' }),
        end: Type.String({ description: 'A token to paginate forwards from.' }),
        events_before: clientEvents('Events before, newest first.'),
        event: ClientEventSchema,
        events_after: clientEvents('Events after, oldest first.'),
        state: clientEvents('The state at the last event returned.'),
      },
      { description: 'The event with its context.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const { roomId, eventId } = req.params;
    const filter = parseFilterParam(req.query.filter);
    const limit = effectiveLimit(req.query.limit, filter, 10);
    const access = await requireReadAccess(hs, req.requester.userId, roomId).catch((error: unknown) => {
      // An event of a room one cannot read is an event one may not see.
      if (isMatrixError(error) && error.errcode === 'M_FORBIDDEN')
        throw MatrixError.notFound('Event not found.');
      throw error;
    });
    const context = await eventContext(hs, req.requester, roomId, eventId, access, limit, filter);
    const [formatted, before, after] = await Promise.all([
      toClientEvents(hs, [context.event], req.requester),
      toClientEvents(hs, context.before, req.requester),
      toClientEvents(hs, context.after, req.requester),
    ]);
    return reply(200, {
      start: encodeTimelineToken(context.start),
      end: encodeTimelineToken(context.end),
      events_before: before,
      event: formatted[0]!,
      events_after: after,
      state: context.state.map((event) => toClientEvent(event)),
    });
  },
});

export const getEventByTimestamp = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v1/rooms/{roomId}/timestamp_to_event',
  operationId: 'getEventByTimestamp',
  summary: 'Get the closest event ID to the given timestamp.',
  description: 'The closest event the requester may see, in the direction given; 404 M_NOT_FOUND when none.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: RoomParams,
    query: Type.Object({
      ts: Type.Integer({
        description: 'The timestamp to search from, in milliseconds since the Unix epoch.',
      }),
      dir: Type.Union([Type.Literal('f'), Type.Literal('b')], { description: 'f: forwards, b: backwards.' }),
    }),
  },
  responses: {
    200: Type.Object(
      {
        event_id: Type.String({ description: 'The ID of the event found.' }),
        origin_server_ts: Type.Integer({ description: "The event's timestamp." }),
      },
      { description: 'An event was found.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const { roomId } = req.params;
    const { ts, dir } = req.query;
    const access = await requireReadAccess(hs, req.requester.userId, roomId);
    const found = await closestVisibleEvent(hs, req.requester.userId, roomId, ts, dir, access.readUpTo);
    if (found === null) {
      const direction = dir === 'f' ? 'forward' : 'backward';
      throw MatrixError.notFound(`Unable to find event from ${ts} in ${direction} direction`);
    }
    return reply(200, { event_id: found.eventId, origin_server_ts: found.pdu.origin_server_ts });
  },
});

/** How far past an invisible closest event the search goes on. */
const TIMESTAMP_SEARCH_BATCHES = 5;

async function closestVisibleEvent(
  hs: HomeserverContext,
  userId: string,
  roomId: string,
  ts: number,
  dir: 'f' | 'b',
  readUpTo: number | null,
): Promise<StoredEvent | null> {
  const closest = await hs.storage.events.closestEventByTimestamp(roomId, ts, dir);
  if (closest === null) return null;
  const withinReach = (event: StoredEvent) => readUpTo === null || event.streamOrdering <= readUpTo;
  if (withinReach(closest) && (await hs.historyVisibility.canSeeEvent(userId, closest))) return closest;
  // Walk on in stream order from there, one visibility pass per batch.
  let position = closest.streamOrdering;
  for (let i = 0; i < TIMESTAMP_SEARCH_BATCHES; i++) {
    const batch =
      dir === 'f'
        ? await hs.storage.events.roomEventsAfter(roomId, position, 50)
        : await hs.storage.events.roomEventsBefore(roomId, position, 50);
    const candidates = batch.filter(
      (event) =>
        withinReach(event) &&
        (dir === 'f' ? event.pdu.origin_server_ts >= ts : event.pdu.origin_server_ts <= ts),
    );
    const [first] = await hs.historyVisibility.filterVisibleEvents(userId, roomId, candidates);
    if (first !== undefined) return first;
    const last = batch.at(-1);
    if (last === undefined || batch.length < 50) return null;
    position = last.streamOrdering;
  }
  return null;
}

/** The events of a state map (optionally of one type), in a stable order. */
async function stateEvents(hs: HomeserverContext, state: StateMap, type?: string): Promise<StoredEvent[]> {
  const entries = [...state.entries()].filter(
    ([key]) => type === undefined || splitStateTupleKey(key)[0] === type,
  );
  const events = await hs.storage.events.getEvents(entries.map(([, eventId]) => eventId));
  const found: StoredEvent[] = [];
  for (const [, eventId] of entries) {
    const event = events.get(eventId);
    if (event !== undefined) found.push(event);
  }
  return found;
}

export const roomsReadRoutes = [
  getRoomEvent,
  getRoomState,
  getRoomStateWithKey,
  getRoomStateWithEmptyKey,
  getMembersByRoom,
  getJoinedMembersByRoom,
  getJoinedRooms,
  getRoomMessages,
  getEventContext,
  getEventByTimestamp,
];
