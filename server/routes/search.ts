/**
 * client-server "Server Side Search" (search.yaml):
 *   POST /_matrix/client/v3/search
 * Only the `room_events` category exists. The Myelin extension
 * `io.myelin.msgtypes` (media of a conversation) is described in spec/search.md.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { RoomEventFilterSchema } from '../rooms/event-filter.js';
import { MEDIA_MSGTYPES_KEY, type RoomEventsCriteria } from '../search/search-service.js';

const ContextLimit = (description: string) =>
  Type.Optional(Type.Integer({ minimum: 0, description: `${description} Defaults to 5, at most 20.` }));

const RoomEventsCriteriaSchema = Type.Object(
  {
    search_term: Type.String({
      description:
        'The string to search events for. Words must all appear (whole words, case and accents aside); ' +
        '`word*` matches a prefix; "quoted phrases" match in order; `-word` excludes; `OR` between words widens.',
    }),
    keys: Type.Optional(
      Type.Array(
        Type.Union([
          Type.Literal('content.body'),
          Type.Literal('content.name'),
          Type.Literal('content.topic'),
        ]),
        { description: 'The keys to search. Defaults to all.' },
      ),
    ),
    filter: Type.Optional(RoomEventFilterSchema),
    order_by: Type.Optional(
      Type.Union([Type.Literal('recent'), Type.Literal('rank')], {
        description: 'The order in which to search for results (default `rank`).',
      }),
    ),
    event_context: Type.Optional(
      Type.Object(
        {
          before_limit: ContextLimit('How many events before the result are returned.'),
          after_limit: ContextLimit('How many events after the result are returned.'),
          include_profile: Type.Optional(
            Type.Boolean({
              description:
                'Requests that the server returns the historic profile information for the users that sent the events that were returned.',
            }),
          ),
        },
        {
          description: 'Configures whether any context for the events returned are included in the response.',
        },
      ),
    ),
    include_state: Type.Optional(
      Type.Boolean({ description: 'Requests the server return the current state for each room returned.' }),
    ),
    groupings: Type.Optional(
      Type.Object(
        {
          group_by: Type.Optional(
            Type.Array(
              Type.Object({
                key: Type.Optional(
                  Type.Union([Type.Literal('room_id'), Type.Literal('sender')], {
                    description: 'Key that defines the group.',
                  }),
                ),
              }),
              { description: 'List of groups to request.' },
            ),
          ),
        },
        {
          description:
            'Requests that the server partitions the result set based on the provided list of keys.',
        },
      ),
    ),
    [MEDIA_MSGTYPES_KEY]: Type.Optional(
      Type.Array(Type.String(), {
        description:
          'Myelin extension: only m.room.message events with one of these `msgtype`s (e.g. `m.image`, `m.file`, ' +
          '`m.video`, `m.audio`). With it `search_term` may be empty, listing that media newest first. A media ' +
          "event's `filename` is searched along with its `body`.",
      }),
    ),
  },
  { description: 'Mapping of category name to search criteria.' },
);

const SearchResponse = Type.Object(
  {
    search_categories: Type.Object(
      {
        room_events: Type.Optional(
          Type.Object(
            {
              count: Type.Integer({
                description: 'An approximate count of the total number of results found.',
              }),
              highlights: Type.Array(Type.String(), {
                description:
                  'List of words which should be highlighted, useful for stemming which may change the query terms.',
              }),
              results: Type.Array(
                Type.Object(
                  {
                    rank: Type.Number({
                      description:
                        'A number that describes how closely this result matches the search. Higher is closer.',
                    }),
                    result: Type.Object(
                      {},
                      { additionalProperties: true, description: 'The event that matched.' },
                    ),
                    context: Type.Optional(
                      Type.Object(
                        {},
                        { additionalProperties: true, description: 'Context for result, if requested.' },
                      ),
                    ),
                  },
                  { additionalProperties: false },
                ),
                { description: 'List of results in the requested order.' },
              ),
              state: Type.Optional(
                Type.Record(Type.String(), Type.Array(Type.Object({}, { additionalProperties: true })), {
                  description: 'The current state for every room in the results.',
                }),
              ),
              groups: Type.Optional(
                Type.Object(
                  {},
                  { additionalProperties: true, description: 'Any groups that were requested.' },
                ),
              ),
              next_batch: Type.Optional(
                Type.String({ description: 'Token that can be used to get the next batch of results.' }),
              ),
            },
            { description: 'Mapping of category name to search criteria.' },
          ),
        ),
      },
      { description: 'Describes which categories to search in and their criteria.' },
    ),
  },
  { description: 'Results of the search.' },
);

export const search = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/search',
  operationId: 'search',
  summary: 'Perform a server-side search.',
  description:
    'Performs a full text search across the rooms the user is joined to, returning only events the user may see ' +
    '(history visibility at each event). Encrypted events are never indexed. The `io.myelin.msgtypes` extension ' +
    "lists or searches a conversation's shared media.",
  tags: ['Search'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    query: Type.Object({
      next_batch: Type.Optional(
        Type.String({
          description:
            'The point to return events from. If given, this should be a `next_batch` result from a previous call to this endpoint.',
        }),
      ),
    }),
    body: Type.Object(
      {
        search_categories: Type.Object(
          { room_events: Type.Optional(RoomEventsCriteriaSchema) },
          { description: 'Describes which categories to search in and their criteria.' },
        ),
      },
      { description: 'The search request.' },
    ),
  },
  responses: { 200: SearchResponse, 400: MatrixErrorBody, 429: MatrixErrorBody },
  async handler({ body, query, requester }, hs) {
    const criteria = body.search_categories.room_events;
    if (criteria === undefined) return reply(200, { search_categories: {} });
    const roomEvents: JsonObject = await hs.search.searchRoomEvents(
      requester,
      criteria as RoomEventsCriteria,
      query.next_batch,
    );
    return reply(200, { search_categories: { room_events: roomEvents } } as never);
  },
});

export const searchRoutes = [search];
