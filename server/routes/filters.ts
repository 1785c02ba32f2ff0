/**
 * client-server "Filtering" (filter.yaml):
 *   POST /_matrix/client/v3/user/{userId}/filter
 *   GET  /_matrix/client/v3/user/{userId}/filter/{filterId}
 * A user uploads and reads only their own filters (403 M_FORBIDDEN otherwise).
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { FilterSchema } from '../rooms/event-filter.js';

const UserIdParam = Type.String({ description: 'The ID of the user uploading or owning the filter.' });

export const defineFilter = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/user/{userId}/filter',
  operationId: 'defineFilter',
  summary: 'Upload a new filter.',
  description: 'Returns a filter ID that /sync (and /messages, /context) accept in place of the JSON.',
  tags: ['Filtering'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ userId: UserIdParam }), body: FilterSchema },
  responses: {
    200: Type.Object(
      { filter_id: Type.String({ description: 'The ID of the filter that was created.' }) },
      { description: 'The filter was created.' },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    if (req.params.userId !== req.requester.userId) {
      throw MatrixError.forbidden('You can only create filters for yourself');
    }
    const filterId = await hs.storage.filters.createFilter(req.requester.userId, req.body as JsonObject);
    return reply(200, { filter_id: filterId });
  },
});

export const getFilter = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/user/{userId}/filter/{filterId}',
  operationId: 'getFilter',
  summary: 'Download a filter.',
  tags: ['Filtering'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      userId: UserIdParam,
      filterId: Type.String({ description: 'The filter ID to download.' }),
    }),
  },
  responses: {
    200: Type.Object({}, { description: 'The filter definition.', additionalProperties: true }),
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    if (req.params.userId !== req.requester.userId) {
      throw MatrixError.forbidden('You can only read your own filters');
    }
    const filter = await hs.storage.filters.getFilter(req.requester.userId, req.params.filterId);
    if (filter === null) throw MatrixError.notFound('No such filter');
    return reply(200, filter);
  },
});

export const filterRoutes = [defineFilter, getFilter];
