/**
 * client-server "Syncing" (sync.yaml):
 *   GET /_matrix/client/v3/sync
 * Thin: the query is validated here, the work is hs.sync's (sync/sync-service.ts).
 * With use_state_after (v1.16) each room carries `state_after` (state up to the end
 * of the timeline) instead of `state`.
 */
import { Type } from '@sinclair/typebox';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { SerializedJson } from '../http/serialized-json.js';

const EventList = (description: string) =>
  Type.Object({ events: Type.Array(Type.Object({}, { additionalProperties: true })) }, { description });

export const SyncResponse = Type.Object(
  {
    next_batch: Type.String({
      description: 'The batch token to supply in the `since` param of the next `/sync` request.',
    }),
    rooms: Type.Optional(
      Type.Object(
        {
          join: Type.Optional(Type.Record(Type.String(), Type.Object({}, { additionalProperties: true }))),
          invite: Type.Optional(Type.Record(Type.String(), Type.Object({}, { additionalProperties: true }))),
          leave: Type.Optional(Type.Record(Type.String(), Type.Object({}, { additionalProperties: true }))),
          knock: Type.Optional(Type.Record(Type.String(), Type.Object({}, { additionalProperties: true }))),
        },
        { description: 'Updates to rooms.' },
      ),
    ),
    presence: Type.Optional(EventList('The updates to the presence status of other users.')),
    account_data: Type.Optional(EventList('The global private data created by this user.')),
    to_device: Type.Optional(EventList('Information on the send-to-device messages for the client device.')),
    device_lists: Type.Optional(
      Type.Object(
        { changed: Type.Optional(Type.Array(Type.String())), left: Type.Optional(Type.Array(Type.String())) },
        { description: 'Information on end-to-end device updates.' },
      ),
    ),
    device_one_time_keys_count: Type.Optional(
      Type.Record(Type.String(), Type.Integer(), { description: 'Unclaimed one-time keys per algorithm.' }),
    ),
    device_unused_fallback_key_types: Type.Optional(
      Type.Array(Type.String(), { description: 'Algorithms with an unused fallback key.' }),
    ),
  },
  {
    description: 'The initial snapshot or delta for the client to use to update its state.',
    additionalProperties: true,
  },
);

export const sync = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/sync',
  operationId: 'sync',
  summary: "Synchronise the client's state and receive new messages.",
  description:
    'Initial sync without `since`; incremental with it, waiting up to `timeout` ms (at most 5 minutes) ' +
    'for something that concerns the user. The same computation feeds the io.myelin WebSocket.',
  tags: ['Syncing'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'none',
  request: {
    query: Type.Object({
      filter: Type.Optional(Type.String({ description: 'A filter ID, or a Filter as JSON.' })),
      since: Type.Optional(Type.String({ description: 'A next_batch token from an earlier sync.' })),
      full_state: Type.Optional(
        Type.Boolean({ description: 'Send all state events of every joined room, even with `since`.' }),
      ),
      set_presence: Type.Optional(
        Type.Union([Type.Literal('offline'), Type.Literal('online'), Type.Literal('unavailable')], {
          description:
            'Marks the user online (default) or unavailable while syncing; offline changes nothing.',
        }),
      ),
      timeout: Type.Optional(
        Type.Integer({ minimum: 0, description: 'Most milliseconds to wait for something new (default 0).' }),
      ),
      use_state_after: Type.Optional(
        Type.Boolean({
          description:
            'Send `state_after` (the state up to the end of the timeline) instead of `state` in each room (v1.16).',
        }),
      ),
    }),
  },
  responses: { 200: SyncResponse, 400: MatrixErrorBody, 401: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const { query } = req;
    const answer = await hs.sync.syncText(
      req.requester,
      {
        since: query.since,
        filter: query.filter,
        timeoutMs: query.timeout ?? 0,
        fullState: query.full_state ?? false,
        setPresence: query.set_presence ?? 'online',
        useStateAfter: query.use_state_after ?? false,
      },
      req.signal,
    );
    // A fan-out answer is one object for every member woken with the same delta: encoded once.
    return reply(
      200,
      (answer.body === undefined ? SerializedJson.shared(answer) : new SerializedJson(answer.json)) as never,
    );
  },
});

export const syncRoutes = [sync];
