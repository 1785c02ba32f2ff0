/**
 * client-server "Forming relationships between events" (relations.yaml) and
 * "Threading" (threads_list.yaml):
 *   GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}
 *   GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}
 *   GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}
 *   GET /_matrix/client/v1/rooms/{roomId}/threads
 * Child events are served only when the requester may see the parent (404
 * otherwise) and each child itself; every event carries its bundled aggregations.
 */
import { type Static, type TObject, Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { isValidEventId, isValidRoomId } from '../../protocol/identifiers.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import type { ClientEventRequester } from '../rooms/client-event-format.js';
import { MAX_RECURSION_DEPTH } from '../rooms/relations.js';

const ClientEvent = Type.Unsafe<JsonObject>(
  Type.Object(
    {
      event_id: Type.String(),
      type: Type.String(),
      sender: Type.String(),
      room_id: Type.String(),
      origin_server_ts: Type.Integer(),
      content: Type.Object({}, { additionalProperties: true }),
    },
    {
      additionalProperties: true,
      description: 'A room event in the client format, with bundled aggregations.',
    },
  ),
);

const RelationsResponse = Type.Object(
  {
    chunk: Type.Array(ClientEvent, {
      description:
        'The child events of the requested event, ordered topologically most-recent first (or oldest first with `dir=f`).',
    }),
    next_batch: Type.Optional(
      Type.String({ description: 'A token for the next page; absent when there are no more results.' }),
    ),
    prev_batch: Type.Optional(
      Type.String({ description: 'A token for the previous page; absent on the first page.' }),
    ),
    recursion_depth: Type.Optional(
      Type.Integer({
        description: 'The depth the server recursed to; present only when `recurse` was given.',
      }),
    ),
  },
  { description: 'The paginated child events which point to the parent.' },
);

const RelationsQuery = Type.Object({
  from: Type.Optional(
    Type.String({
      description:
        'The pagination token to start returning results from: a `next_batch` or `prev_batch` of a previous call, ' +
        'a `start` token of `/messages` or a `next_batch` of `/sync`.',
    }),
  ),
  to: Type.Optional(Type.String({ description: 'The pagination token to stop returning results at.' })),
  limit: Type.Optional(
    Type.Integer({
      minimum: 0,
      description: 'The maximum number of results in one chunk (default 50, at most 100).',
    }),
  ),
  dir: Type.Optional(
    Type.Union([Type.Literal('b'), Type.Literal('f')], {
      description: 'Direction to return events from: `b` (default) newest first, `f` oldest first.',
    }),
  ),
  recurse: Type.Optional(
    Type.Boolean({
      description: `Whether to include events which relate indirectly to the given event, up to ${MAX_RECURSION_DEPTH} levels.`,
    }),
  ),
});

const roomIdParam = Type.String({ description: 'The ID of the room containing the parent event.' });
const eventIdParam = Type.String({
  description: 'The ID of the parent event whose child events are to be returned.',
});
const relTypeParam = Type.String({ description: 'The relationship type to search for.' });
const eventTypeParam = Type.String({ description: 'The event type of child events to search for.' });

const relationErrors = {
  400: MatrixErrorBody,
  404: Type.Object(MatrixErrorBody.properties, {
    description:
      'The parent event was not found or the user does not have permission to read it (it might be in history ' +
      'that is not accessible to the user).',
    additionalProperties: true,
  }),
} as const;

async function relationsPage(
  hs: HomeserverContext,
  requester: ClientEventRequester,
  params: RelationsPathParams,
  query: Static<typeof RelationsQuery>,
) {
  if (!isValidRoomId(params.roomId)) throw MatrixError.invalidParam('Invalid room ID.');
  if (!isValidEventId(params.eventId)) throw MatrixError.notFound('Event not found.');
  return hs.relations.relations(requester, params.roomId, params.eventId, {
    relType: params.relType,
    eventType: params.eventType,
    from: query.from,
    to: query.to,
    limit: query.limit,
    dir: query.dir,
    recurse: query.recurse,
  });
}

const DESCRIPTION =
  'Retrieves the child events of a parent event, newest first by default. Pagination tokens are positions on ' +
  'the room event stream, so `from` and `to` also accept `/sync` and `/messages` tokens. Children the user ' +
  'cannot see, or sent by users they ignore, are left out.';

/** The three /relations paths differ only in how much of (relType, eventType) the path fixes. */
function relationsRoute<P extends TObject>(route: {
  path: string;
  operationId: string;
  summary: string;
  params: P;
}) {
  return defineRoute({
    method: 'GET',
    path: route.path,
    operationId: route.operationId,
    summary: route.summary,
    description: DESCRIPTION,
    tags: ['Event relationships'],
    resource: 'client',
    auth: 'access-token',
    rateLimit: 'none',
    request: { params: route.params, query: RelationsQuery },
    responses: { 200: RelationsResponse, ...relationErrors },
    async handler({ params, query, requester }, hs) {
      return reply(200, await relationsPage(hs, requester, params as RelationsPathParams, query));
    },
  });
}

type RelationsPathParams = { roomId: string; eventId: string; relType?: string; eventType?: string };

export const getRelatingEvents = relationsRoute({
  path: '/_matrix/client/v1/rooms/{roomId}/relations/{eventId}',
  operationId: 'getRelatingEvents',
  summary: 'Get the child events for a given parent event.',
  params: Type.Object({ roomId: roomIdParam, eventId: eventIdParam }),
});

export const getRelatingEventsWithRelType = relationsRoute({
  path: '/_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}',
  operationId: 'getRelatingEventsWithRelType',
  summary: 'Get the child events for a given parent event, with a given `relType`.',
  params: Type.Object({ roomId: roomIdParam, eventId: eventIdParam, relType: relTypeParam }),
});

export const getRelatingEventsWithRelTypeAndEventType = relationsRoute({
  path: '/_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}',
  operationId: 'getRelatingEventsWithRelTypeAndEventType',
  summary: 'Get the child events for a given parent event, with a given `relType` and `eventType`.',
  params: Type.Object({
    roomId: roomIdParam,
    eventId: eventIdParam,
    relType: relTypeParam,
    eventType: eventTypeParam,
  }),
});

export const getThreadRoots = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v1/rooms/{roomId}/threads',
  operationId: 'getThreadRoots',
  summary: 'Fetches a list of the threads in a room.',
  description:
    'Pages through the thread roots of a room, the most recently active thread first, each with its bundled ' +
    '`m.thread` aggregation; `include=participated` keeps the threads the user started or replied to.',
  tags: ['Threads'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      roomId: Type.String({ description: 'The room ID where the thread roots are located.' }),
    }),
    query: Type.Object({
      include: Type.Optional(
        Type.Union([Type.Literal('all'), Type.Literal('participated')], {
          description:
            'Which thread roots are of interest: `all` (default) or those the user `participated` in.',
        }),
      ),
      limit: Type.Optional(
        Type.Integer({
          minimum: 1,
          description: 'The maximum number of thread roots per response (default 20, at most 100).',
        }),
      ),
      from: Type.Optional(Type.String({ description: 'A pagination token from a previous result.' })),
    }),
  },
  responses: {
    200: Type.Object(
      {
        chunk: Type.Array(ClientEvent, {
          description: 'The thread roots, ordered by the latest event of each thread, newest first.',
        }),
        next_batch: Type.Optional(
          Type.String({ description: 'A token to supply to `from` to keep paginating; absent at the end.' }),
        ),
      },
      { description: 'A portion of the thread roots in the room.' },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
  },
  async handler({ params, query, requester }, hs) {
    if (!isValidRoomId(params.roomId)) throw MatrixError.invalidParam('Invalid room ID.');
    return reply(200, await hs.relations.threads(requester, params.roomId, query));
  },
});

export const relationRoutes = [
  getRelatingEvents,
  getRelatingEventsWithRelType,
  getRelatingEventsWithRelTypeAndEventType,
  getThreadRoots,
];
