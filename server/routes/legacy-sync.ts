/**
 * The pre-/sync reads (old_sync.yaml, room_initial_sync.yaml, peeking_events.yaml):
 *   GET /_matrix/client/v3/rooms/{roomId}/initialSync   (room previews: peeking)
 *   GET /_matrix/client/v3/events?room_id=…             (peeking: new events of one room)
 *   GET /_matrix/client/v3/events                       (deprecated event stream)
 *   GET /_matrix/client/v3/initialSync                  (deprecated snapshot)
 *   GET /_matrix/client/v3/events/{eventId}             (deprecated single event)
 * Peeking is what Element does to preview a world-readable room; the deprecated
 * ones are answered from the same sync engine and history rules as /sync, so
 * nothing here can show more than /sync or /messages would.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { isValidEventId, isValidRoomId } from '../../protocol/identifiers.js';
import type { StoredEvent } from '../../storage/event-store.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { toClientEvent, toClientEvents } from '../rooms/client-event-format.js';
import type { RoomReadAccess } from '../rooms/history-visibility.js';
import { encodeTimelineToken, parseTimelineToken } from '../rooms/pagination-token.js';
import { paginateRoom, requireReadAccess, stateForReader } from '../rooms/room-history.js';
import { MAX_SYNC_TIMEOUT_MS } from '../sync/sync-service.js';
import { ClientEventSchema } from './rooms-read.js';

const V3 = '/_matrix/client/v3';
const TAGS = ['Room participation'];
const errors = { 400: MatrixErrorBody, 403: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody };
/** Messages in a room snapshot when the client names no limit (Synapse's default). */
const DEFAULT_MESSAGES = 10;
/** Most events one /events answer carries. */
const MAX_STREAM_EVENTS = 100;

const PaginationChunk = Type.Object({
  start: Type.Optional(Type.String({ description: 'Pass to /messages (dir=b) for earlier events.' })),
  end: Type.String({ description: 'Pass to /events for later events.' }),
  chunk: Type.Array(ClientEventSchema),
});

const RoomInfo = Type.Object(
  {
    room_id: Type.String(),
    membership: Type.Optional(Type.String({ description: "The user's membership in the room." })),
    messages: Type.Optional(PaginationChunk),
    state: Type.Optional(Type.Array(ClientEventSchema)),
    visibility: Type.Optional(Type.Union([Type.Literal('private'), Type.Literal('public')])),
    account_data: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
  },
  { description: 'A snapshot of a room.' },
);

const EventChunk = Type.Object(
  {
    start: Type.String({ description: 'The token the events start after.' }),
    end: Type.String({ description: 'Pass as `from` to the next call.' }),
    chunk: Type.Array(Type.Object({}, { additionalProperties: true }), { description: 'The events.' }),
  },
  { description: 'The events received, which may be none.' },
);

/** One room as the v1 snapshots show it: the state the reader may see and its latest messages. */
async function roomSnapshot(
  hs: HomeserverContext,
  requester: AuthenticatedUser,
  roomId: string,
  access: RoomReadAccess,
  limit: number,
): Promise<JsonObject> {
  const stateIds = await stateForReader(hs, roomId, access);
  const [stateEvents, page, accountData, room] = await Promise.all([
    hs.storage.events.getEvents([...stateIds.values()]),
    paginateRoom(hs, requester, roomId, access, { direction: 'b', limit }),
    access.membership === null
      ? Promise.resolve([])
      : hs.storage.accountData.roomAccountData(requester.userId, roomId),
    hs.storage.rooms.getRoom(roomId),
  ]);
  const chronological = page.chunk.slice().reverse();
  return {
    room_id: roomId,
    ...(access.membership !== null ? { membership: access.membership } : {}),
    messages: {
      ...(page.end !== null ? { start: encodeTimelineToken(page.end) } : {}),
      end: encodeTimelineToken(page.start),
      chunk: await toClientEvents(hs, chronological, requester),
    },
    state: [...stateEvents.values()].map((event) => toClientEvent(event)),
    visibility: room?.isPublic === true ? 'public' : 'private',
    account_data: accountData.map((entry) => ({ type: entry.type, content: entry.content })),
  };
}

export const roomInitialSync = defineRoute({
  method: 'GET',
  path: `${V3}/rooms/{roomId}/initialSync`,
  operationId: 'roomInitialSync',
  summary: 'Snapshot the current state of a room and its most recent messages.',
  description:
    'For members, and for anyone in a world-readable room (room previews). Someone who left sees the room as it was when they left.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ roomId: Type.String({ description: 'The room to get the data.' }) }) },
  responses: { 200: RoomInfo, ...errors },
  async handler(req, hs) {
    const { roomId } = req.params;
    if (!isValidRoomId(roomId)) throw MatrixError.invalidParam('Invalid room ID');
    const access = await requireReadAccess(hs, req.requester.userId, roomId);
    return reply(200, (await roomSnapshot(hs, req.requester, roomId, access, DEFAULT_MESSAGES)) as never);
  },
});

/**
 * The events of one room after `from` that the user may see, waiting up to the
 * timeout for the first (peeking_events.yaml).
 */
async function peekEvents(
  hs: HomeserverContext,
  requester: AuthenticatedUser,
  roomId: string,
  from: string | undefined,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<{ start: string; end: string; chunk: JsonObject[] }> {
  await requireReadAccess(hs, requester.userId, roomId);
  const after =
    from === undefined ? await hs.storage.events.latestStreamOrdering() : parseTimelineToken(from);
  const start = encodeTimelineToken(after);
  const deadline = Date.now() + Math.min(timeoutMs, MAX_SYNC_TIMEOUT_MS);
  for (;;) {
    const mark = hs.notifier.mark();
    const events = await hs.storage.events.roomEventsAfter(roomId, after, MAX_STREAM_EVENTS);
    const last = events.at(-1);
    if (last !== undefined) {
      // Read access is judged again for each event: a peeker loses sight when the room stops being world-readable.
      const visible = await hs.historyVisibility.filterVisibleEvents(requester.userId, roomId, events);
      return {
        start,
        end: encodeTimelineToken(last.streamOrdering),
        chunk: await toClientEvents(hs, visible, requester),
      };
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0 || signal.aborted) return { start, end: start, chunk: [] };
    const outcome = await hs.notifier.waitForChange({
      userId: requester.userId,
      roomIds: [roomId],
      sinceMark: mark,
      timeoutMs: remaining,
      signal,
    });
    if (outcome !== 'changed') return { start, end: start, chunk: [] };
  }
}

/** The deprecated stream: what /sync would hand out after `from`, as a flat list of events. */
async function streamEvents(
  hs: HomeserverContext,
  requester: AuthenticatedUser,
  from: string | undefined,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<{ start: string; end: string; chunk: JsonObject[] }> {
  const since = from ?? (await hs.sync.currentToken());
  const body = await hs.sync.sync(requester, { since, timeoutMs, fullState: false }, signal);
  const chunk: JsonObject[] = [];
  const rooms = (body.rooms ?? {}) as Record<string, Record<string, JsonObject> | undefined>;
  for (const [roomId, room] of Object.entries(rooms.join ?? {})) {
    const timeline = ((room as JsonObject).timeline as { events?: JsonObject[] } | undefined)?.events ?? [];
    for (const event of timeline) chunk.push({ ...event, room_id: roomId });
  }
  chunk.push(...(((body.presence as JsonObject | undefined)?.events as JsonObject[] | undefined) ?? []));
  return { start: since, end: body.next_batch as string, chunk };
}

export const getEvents = defineRoute({
  method: 'GET',
  path: `${V3}/events`,
  operationId: 'getEvents',
  summary: 'Listen on the event stream (deprecated), or of one room (peeking).',
  description:
    'With `room_id`: new events of that room, for members and for anyone while it is world-readable. Without: ' +
    'the deprecated stream of every joined room, from the same sync engine as /sync.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    query: Type.Object({
      from: Type.Optional(Type.String({ description: 'The token to stream from.' })),
      timeout: Type.Optional(Type.Integer({ minimum: 0, description: 'Most milliseconds to wait.' })),
      room_id: Type.Optional(Type.String({ description: 'Peek at this room only.' })),
    }),
  },
  responses: { 200: EventChunk, ...errors },
  async handler(req, hs) {
    const { from, timeout, room_id: roomId } = req.query;
    const timeoutMs = timeout ?? 0;
    if (roomId !== undefined) {
      if (!isValidRoomId(roomId)) throw MatrixError.invalidParam('Invalid room_id');
      return reply(200, await peekEvents(hs, req.requester, roomId, from, timeoutMs, req.signal));
    }
    return reply(200, await streamEvents(hs, req.requester, from, timeoutMs, req.signal));
  },
});

export const initialSync = defineRoute({
  method: 'GET',
  path: `${V3}/initialSync`,
  operationId: 'initialSync',
  summary: "Get the user's current state (deprecated: use /sync).",
  description:
    'Every room the user is joined or invited to (and, with `archived`, left), with state and latest messages.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    query: Type.Object({
      limit: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'Messages per room.' })),
      archived: Type.Optional(Type.Boolean({ description: 'Include rooms the user has left.' })),
    }),
  },
  responses: {
    200: Type.Object(
      {
        end: Type.String(),
        rooms: Type.Array(RoomInfo),
        presence: Type.Array(Type.Object({}, { additionalProperties: true })),
        account_data: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
      },
      { description: "The user's current state." },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const { userId } = req.requester;
    const limit = req.query.limit ?? DEFAULT_MESSAGES;
    const wanted = req.query.archived === true ? ['join', 'invite', 'leave', 'ban'] : ['join', 'invite'];
    const end = await hs.sync.currentToken();
    const memberships = await hs.storage.memberships.membershipsOfUser(userId);
    const rooms: JsonObject[] = [];
    for (const record of memberships) {
      if (!wanted.includes(record.membership) || record.forgotten) continue;
      if (record.membership === 'invite') {
        rooms.push({ room_id: record.roomId, membership: 'invite' });
        continue;
      }
      const access = await hs.historyVisibility.roomReadAccess(userId, record.roomId);
      if (access !== null) rooms.push(await roomSnapshot(hs, req.requester, record.roomId, access, limit));
    }
    const global = await hs.storage.accountData.globalAccountData(userId);
    return reply(200, {
      end,
      rooms: rooms as never,
      presence: [],
      account_data: global.map((entry) => ({ type: entry.type, content: entry.content })),
    });
  },
});

export const getOneEvent = defineRoute({
  method: 'GET',
  path: `${V3}/events/{eventId}`,
  operationId: 'getOneEvent',
  summary: 'Get a single event by event ID (deprecated: use /rooms/{roomId}/event/{eventId}).',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ eventId: Type.String({ description: 'The event ID to get.' }) }) },
  responses: { 200: ClientEventSchema, ...errors },
  async handler(req, hs) {
    const { eventId } = req.params;
    if (!isValidEventId(eventId)) throw MatrixError.invalidParam('Invalid event ID');
    const event: StoredEvent | null = await hs.storage.events.getEvent(eventId);
    // Not found and not visible look the same, so the answer tells nothing of rooms the user cannot read.
    if (
      event === null ||
      event.outlier ||
      !(await hs.historyVisibility.canSeeEvent(req.requester.userId, event))
    ) {
      throw MatrixError.notFound('Event not found');
    }
    const [formatted] = await toClientEvents(hs, [event], req.requester);
    return reply(200, formatted!);
  },
});

export const legacySyncRoutes = [roomInitialSync, getEvents, initialSync, getOneEvent];
