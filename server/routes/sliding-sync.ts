/**
 * MSC4186 simplified sliding sync:
 *   POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync
 * Thin: the body is normalised in sliding-sync/request.ts (both the dialect
 * matrix-rust-sdk speaks and the MSC's latest), the work is hs.slidingSync's.
 * `pos` and `timeout` are read from the query (as Synapse and Element X use
 * them) or from the body (as the MSC's latest text puts them).
 */
import { Type } from '@sinclair/typebox';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { parseSlidingSyncRequest } from '../sliding-sync/request.js';

const AnyObject = (description: string) => Type.Object({}, { additionalProperties: true, description });

const SlidingSyncBody = Type.Object(
  {
    conn_id: Type.Optional(Type.String({ description: 'Names the connection (per user and device).' })),
    pos: Type.Optional(Type.String({ description: 'The `pos` of the last processed response.' })),
    timeout: Type.Optional(Type.Integer({ minimum: 0, description: 'Most milliseconds to wait for news.' })),
    set_presence: Type.Optional(Type.String({ description: 'online (default), offline or unavailable.' })),
    lists: Type.Optional(Type.Record(Type.String(), AnyObject('A list: ranges, filters, room config.'))),
    room_subscriptions: Type.Optional(Type.Record(Type.String(), AnyObject('A room config.'))),
    extensions: Type.Optional(Type.Record(Type.String(), AnyObject('An extension config.'))),
  },
  { additionalProperties: true, description: 'Which rooms and extensions to sync, and how.' },
);

const SlidingSyncResponse = Type.Object(
  {
    pos: Type.String({ description: 'The position to send with the next request of the connection.' }),
    lists: Type.Optional(Type.Record(Type.String(), AnyObject('The list: `count` of matching rooms.'))),
    rooms: Type.Optional(
      Type.Record(Type.String(), AnyObject('What is new in the room for this connection.')),
    ),
    extensions: Type.Optional(AnyObject('Extension results.')),
  },
  { additionalProperties: true, description: 'The rooms and extension data new to the connection.' },
);

export const simplifiedSlidingSync = defineRoute({
  method: 'POST',
  path: '/_matrix/client/unstable/org.matrix.simplified_msc3575/sync',
  operationId: 'simplifiedSlidingSync',
  summary: 'Simplified sliding sync (MSC4186).',
  description:
    'Rooms sorted by recency, windowed by list ranges, plus room subscriptions and the to_device, e2ee, ' +
    'account_data, receipts and typing extensions. Each response sends only what the connection has not had; ' +
    'an unknown or expired `pos` gives 400 M_UNKNOWN_POS, after which the client starts a new connection.',
  tags: ['Syncing'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'none',
  request: {
    query: Type.Object({
      pos: Type.Optional(Type.String({ description: 'The `pos` of the last processed response.' })),
      timeout: Type.Optional(
        Type.Integer({ minimum: 0, description: 'Most milliseconds to wait for news.' }),
      ),
      set_presence: Type.Optional(Type.String({ description: 'online (default), offline or unavailable.' })),
    }),
    body: SlidingSyncBody,
  },
  responses: { 200: SlidingSyncResponse, 400: MatrixErrorBody, 401: MatrixErrorBody },
  async handler(req, hs) {
    const request = parseSlidingSyncRequest(req.body as Record<string, unknown>, req.query);
    const body = await hs.slidingSync.sync(req.requester, request, req.signal);
    return reply(200, body as never);
  },
});

export const slidingSyncRoutes = [simplifiedSlidingSync];
