/**
 * server-server endpoints for spaces and generic queries (space_hierarchy.yaml, query.yaml):
 *   GET /_matrix/federation/v1/hierarchy/{roomId}
 *   GET /_matrix/federation/v1/query/{queryType}
 * The known query types (directory, profile) have their own literal routes, which the router
 * prefers; the generic route answers the rest with 404 M_UNRECOGNIZED (server-server "API
 * standards": unsupported endpoints).
 */

import { Type } from '@sinclair/typebox';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { allowedRoomOfPeer } from './federation-room-access.js';

const Anything = Type.Object({}, { additionalProperties: true, description: 'A JSON object.' });

export const getFederationSpaceHierarchy = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/hierarchy/{roomId}',
  operationId: 'getFederationSpaceHierarchy',
  summary: 'Retrieve a space and its children (no pagination).',
  description:
    'The room and those of its m.space.child rooms this server is in: children the requesting server ' +
    'could peek or join are summarised, the others listed in inaccessible_children. 404 when this server is ' +
    'not in the room or the requesting server could not peek or join it.',
  tags: ['Federation rooms'],
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    params: Type.Object({ roomId: Type.String({ description: 'The space (or room) ID.' }) }),
    query: Type.Object({
      suggested_only: Type.Optional(Type.Boolean({ description: 'Only suggested children.' })),
    }),
  },
  responses: {
    200: Type.Object(
      {
        room: Anything,
        children: Type.Array(Anything),
        inaccessible_children: Type.Array(Type.String()),
      },
      { description: 'The space room and its children.' },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    404: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { roomId, origin } = await allowedRoomOfPeer(req, hs);
    return reply(
      200,
      await hs.directory.federationHierarchy(roomId, origin, req.query.suggested_only ?? false),
    );
  },
});

export const queryInfo = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/query/{queryType}',
  operationId: 'queryInfo',
  summary: 'Query for information (query types this server does not know).',
  description:
    'directory and profile are served by their own routes; any other query type is answered ' +
    '404 M_UNRECOGNIZED.',
  tags: ['Federation rooms'],
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    params: Type.Object({ queryType: Type.String({ description: 'The type of query.' }) }),
    query: Type.Object({}, { additionalProperties: true }),
  },
  responses: { 200: Anything, 404: MatrixErrorBody },
  async handler(req) {
    throw MatrixError.unrecognized(`Unknown query type ${JSON.stringify(req.params.queryType)}`);
  },
});

export const federationQueryRoutes = [getFederationSpaceHierarchy, queryInfo];
