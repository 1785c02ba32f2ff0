/**
 * client-server "Sending events to a room", "Redactions" and "Reporting content"
 * (room_send.yaml, room_state.yaml, redaction.yaml, report_content.yaml):
 *   PUT  /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}
 *   PUT  /_matrix/client/v3/rooms/{roomId}/state/{eventType}[/{stateKey}]
 *   PUT  /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}
 *   POST /_matrix/client/v3/rooms/{roomId}/report[/{eventId}]
 *   POST /_matrix/client/v3/users/{userId}/report
 *   GET  /_synapse/admin/v1/event_reports   (Synapse's admin API, server admins only)
 * Sends are idempotent per device and transaction ID. As Synapse, a send to a room the
 * user is not in is 403 M_FORBIDDEN whether or not the room exists here; an event over
 * 65,536 bytes is 413 M_TOO_LARGE.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { belongsToServer, isValidEventId, isValidRoomId, isValidUserId } from '../../protocol/identifiers.js';
import type { HomeserverContext } from '../context.js';
import { isMatrixError, MatrixError } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import type { ClientTransaction, SentEvent } from '../rooms/room-event-sender.js';

const EventContent = Type.Record(Type.String(), Type.Unknown(), { description: 'The content of the event.' });

const EventIdResponse = Type.Object(
  { event_id: Type.String({ description: 'A unique identifier for the event.' }) },
  { description: 'An ID for the sent event.', additionalProperties: false },
);

const Empty = Type.Object({}, { description: 'Done.', additionalProperties: false });

const errors = {
  400: MatrixErrorBody,
  403: MatrixErrorBody,
  404: MatrixErrorBody,
  413: MatrixErrorBody,
  429: MatrixErrorBody,
};

const roomIdParam = Type.String({ description: 'The room.' });
const eventTypeParam = Type.String({ description: 'The type of event.' });
const txnIdParam = Type.String({
  description: 'The transaction ID for this event: the same ID from the same device gives the same event.',
});

function checkedRoomId(roomId: string): string {
  if (!isValidRoomId(roomId)) throw MatrixError.invalidParam(`Invalid room ID: ${JSON.stringify(roomId)}`);
  return roomId;
}

function checkedEventType(eventType: string): string {
  if (eventType === '') throw MatrixError.invalidParam('The event type must not be empty');
  return eventType;
}

function transactionOf(requester: AuthenticatedUser, txnId: string): ClientTransaction | undefined {
  if (txnId === '') throw MatrixError.invalidParam('The transaction ID must not be empty');
  // The spec scopes transactions to devices; an application service acting without one is scoped by
  // its session (`appservice:<id>`), so a bridge's retry is not sent twice (the key has the sender too).
  return { deviceId: requester.deviceId ?? requester.sessionId, txnId };
}

/** Synapse answers a room this server does not know as it does a room the user is not in. */
async function asMember(
  hs: HomeserverContext,
  roomId: string,
  userId: string,
  send: Promise<SentEvent>,
): Promise<SentEvent> {
  try {
    return await send;
  } catch (error) {
    if (
      isMatrixError(error) &&
      error.errcode === 'M_NOT_FOUND' &&
      (await hs.rooms.reads.roomRules(roomId)) === null
    ) {
      throw MatrixError.forbidden(`User ${userId} is not in room ${roomId}`);
    }
    throw error;
  }
}

/**
 * application-service "Timestamp massaging": a service may set origin_server_ts with `ts` on
 * /send and /state; others' `ts` is ignored (as Synapse). Not a valid timestamp: M_INVALID_PARAM.
 */
function massagedTimestamp(
  requester: AuthenticatedUser,
  query: unknown,
): { originServerTs: number } | Record<string, never> {
  const ts = (query as { ts?: unknown }).ts;
  if (requester.appservice === undefined || ts === undefined) return {};
  const value = typeof ts === 'string' && /^\d{1,16}$/.test(ts) ? Number(ts) : Number.NaN;
  if (!Number.isSafeInteger(value)) throw MatrixError.invalidParam('ts must be a timestamp in milliseconds');
  return { originServerTs: value };
}

async function sendState(
  hs: HomeserverContext,
  requester: AuthenticatedUser,
  roomIdText: string,
  eventType: string,
  stateKey: string,
  content: JsonObject,
  query: unknown,
) {
  const roomId = checkedRoomId(roomIdText);
  const type = checkedEventType(eventType);
  const sender = requester.userId;
  if (type === 'm.room.canonical_alias') await hs.directory.checkCanonicalAlias(roomId, content);
  const guard = () => hs.relations.checkNewRelation(roomId, sender, type, content, stateKey);
  const sent = await asMember(
    hs,
    roomId,
    sender,
    hs.rooms.sender.sendEvent({
      roomId,
      sender,
      type,
      stateKey,
      content,
      guard,
      ...massagedTimestamp(requester, query),
    }),
  );
  return reply(200, { event_id: sent.eventId });
}

export const sendMessage = defineRoute({
  method: 'PUT',
  path: '/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}',
  operationId: 'sendMessage',
  summary: 'Send a message event to the given room.',
  description:
    'Idempotent per device: the same transaction ID gives the same event_id. 403 M_FORBIDDEN when not allowed to ' +
    '(not joined, below the power level); 413 M_TOO_LARGE over 65,536 bytes; relations are checked first ' +
    '(M_DUPLICATE_ANNOTATION, M_INVALID_PARAM). Redactions go through /redact (400 here).',
  tags: ['Room participation'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  refusedWhileSuspended: true,
  request: {
    params: Type.Object({ roomId: roomIdParam, eventType: eventTypeParam, txnId: txnIdParam }),
    body: EventContent,
  },
  responses: { 200: EventIdResponse, ...errors },
  async handler(req, hs) {
    const roomId = checkedRoomId(req.params.roomId);
    const type = checkedEventType(req.params.eventType);
    if (type === 'm.room.redaction') {
      throw MatrixError.invalidParam('Send redactions with PUT /rooms/{roomId}/redact/{eventId}/{txnId}');
    }
    const txn = transactionOf(req.requester, req.params.txnId);
    const sender = req.requester.userId;
    const content = req.body as JsonObject;
    // Relation checks run inside the send, only when the transaction is new: a retried
    // reaction gets its event ID back, not M_DUPLICATE_ANNOTATION.
    const guard = () => hs.relations.checkNewRelation(roomId, sender, type, content);
    const sent = await asMember(
      hs,
      roomId,
      sender,
      hs.rooms.sender.sendEvent({
        roomId,
        sender,
        type,
        content,
        guard,
        ...(txn === undefined ? {} : { txn }),
        ...massagedTimestamp(req.requester, req.query),
      }),
    );
    return reply(200, { event_id: sent.eventId });
  },
});

const stateDescription =
  'The auth rules decide (403 M_FORBIDDEN below the power level); m.room.canonical_alias must name aliases of the room ' +
  '(400 M_BAD_ALIAS). 413 M_TOO_LARGE over 65,536 bytes.';

export const setRoomState = defineRoute({
  method: 'PUT',
  path: '/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}',
  operationId: 'setRoomStateWithKey',
  summary: 'Send a state event to the given room.',
  description: stateDescription,
  tags: ['Room participation'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  refusedWhileSuspended: true,
  request: {
    params: Type.Object({
      roomId: roomIdParam,
      eventType: eventTypeParam,
      stateKey: Type.String({
        description: 'The state_key for the state to send. Defaults to the empty string.',
      }),
    }),
    body: EventContent,
  },
  responses: { 200: EventIdResponse, ...errors },
  async handler(req, hs) {
    const { roomId, eventType, stateKey } = req.params;
    return sendState(hs, req.requester, roomId, eventType, stateKey, req.body as JsonObject, req.query);
  },
});

export const setRoomStateEmptyKey = defineRoute({
  method: 'PUT',
  path: '/_matrix/client/v3/rooms/{roomId}/state/{eventType}',
  operationId: 'setRoomStateEmptyKey',
  summary: 'Send a state event with an empty state_key to the given room.',
  description: stateDescription,
  tags: ['Room participation'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  refusedWhileSuspended: true,
  request: {
    params: Type.Object({ roomId: roomIdParam, eventType: eventTypeParam }),
    body: EventContent,
  },
  responses: { 200: EventIdResponse, ...errors },
  async handler(req, hs) {
    const { roomId, eventType } = req.params;
    return sendState(hs, req.requester, roomId, eventType, '', req.body as JsonObject, req.query);
  },
});

export const redactEventRoute = defineRoute({
  method: 'PUT',
  path: '/_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}',
  operationId: 'redactEvent',
  summary: 'Strips all non-integrity-critical information out of an event.',
  description:
    "Allowed at the room's redact power level, or for one's own events (403 M_FORBIDDEN otherwise; 404 M_NOT_FOUND " +
    'for an event this server does not have, unless at the redact level). Once the redaction is stored, the ' +
    "room version's redaction algorithm is applied to the event. Idempotent per device and transaction ID.",
  tags: ['Room participation'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      roomId: roomIdParam,
      eventId: Type.String({ description: 'The ID of the event to redact.' }),
      txnId: txnIdParam,
    }),
    body: Type.Object(
      { reason: Type.Optional(Type.String({ description: 'The reason for the event being redacted.' })) },
      { additionalProperties: true },
    ),
    allowEmptyBody: true,
  },
  responses: { 200: EventIdResponse, ...errors },
  async handler(req, hs) {
    const roomId = checkedRoomId(req.params.roomId);
    const { eventId } = req.params;
    if (!isValidEventId(eventId))
      throw MatrixError.invalidParam(`Invalid event ID: ${JSON.stringify(eventId)}`);
    if (req.requester.isSuspended) {
      // client-server "Account suspension": own events may still be redacted, others' not.
      const target = await hs.storage.events.getEvent(eventId);
      if (target?.pdu.sender !== req.requester.userId) throw MatrixError.userSuspended();
    }
    const txn = transactionOf(req.requester, req.params.txnId);
    const sent = await hs.rooms.redactions.redact({
      roomId,
      sender: req.requester.userId,
      targetEventId: eventId,
      ...(req.body.reason === undefined ? {} : { reason: req.body.reason }),
      ...(txn === undefined ? {} : { txn }),
    });
    return reply(200, { event_id: sent.eventId });
  },
});

const ReportBody = Type.Object(
  {
    reason: Type.Optional(Type.String({ description: 'The reason the content is being reported.' })),
  },
  { additionalProperties: true },
);

const reportStorageNote =
  ' Reports are stored for the administrators (GET /_synapse/admin/v1/event_reports lists event reports) and logged (structured, warn level).';

export const reportEvent = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/rooms/{roomId}/report/{eventId}',
  operationId: 'reportEvent',
  summary: 'Report an event in a joined room as inappropriate.',
  description: `The reporter must be joined to the room; 404 M_NOT_FOUND otherwise, or when the event is unknown.${reportStorageNote}`,
  tags: ['Reporting content'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      roomId: roomIdParam,
      eventId: Type.String({ description: 'The event to report.' }),
    }),
    body: ReportBody,
    allowEmptyBody: true,
  },
  responses: { 200: Empty, 400: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const { roomId, eventId } = req.params;
    const reporter = req.requester.userId;
    const notFound = () => MatrixError.notFound('The event was not found or you are not joined to the room.');
    if (!isValidRoomId(roomId)) throw notFound();
    const membership = await hs.storage.memberships.getMembership(roomId, reporter);
    if (membership?.membership !== 'join') throw notFound();
    const event = await hs.storage.events.getEvent(eventId);
    if (event === null || event.roomId !== roomId || event.outlier) throw notFound();
    await hs.rooms.reports.record({
      reporter,
      roomId,
      eventId,
      ...(req.body.reason === undefined ? {} : { reason: req.body.reason }),
      receivedTs: Date.now(),
    });
    return reply(200, {});
  },
});

export const reportRoom = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/rooms/{roomId}/report',
  operationId: 'reportRoom',
  summary: 'Report a room as inappropriate.',
  description: `The reporter need not be in the room; 404 M_NOT_FOUND for a room this server does not know.${reportStorageNote}`,
  tags: ['Reporting content'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ roomId: roomIdParam }), body: ReportBody, allowEmptyBody: true },
  responses: { 200: Empty, 400: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const { roomId } = req.params;
    if (!isValidRoomId(roomId) || (await hs.rooms.reads.roomRules(roomId)) === null) {
      throw MatrixError.notFound('The room was not found.');
    }
    await hs.rooms.reports.record({
      reporter: req.requester.userId,
      roomId,
      ...(req.body.reason === undefined ? {} : { reason: req.body.reason }),
      receivedTs: Date.now(),
    });
    return reply(200, {});
  },
});

export const reportUser = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/users/{userId}/report',
  operationId: 'reportUser',
  summary: 'Report a user as inappropriate.',
  description: `404 M_NOT_FOUND for an unknown user of this server; users of other servers are accepted as given.${reportStorageNote}`,
  tags: ['Reporting content'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({ userId: Type.String({ description: 'The user being reported.' }) }),
    body: ReportBody,
    allowEmptyBody: true,
  },
  responses: { 200: Empty, 400: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const { userId } = req.params;
    if (!isValidUserId(userId, { historical: true })) throw MatrixError.invalidParam('Invalid user ID');
    if (
      belongsToServer(userId, hs.config.server_name) &&
      (await hs.storage.accounts.getAccount(userId)) === null
    ) {
      throw MatrixError.notFound('The user was not found.');
    }
    await hs.rooms.reports.record({
      reporter: req.requester.userId,
      userId,
      ...(req.body.reason === undefined ? {} : { reason: req.body.reason }),
      receivedTs: Date.now(),
    });
    return reply(200, {});
  },
});

const EventReportBody = Type.Object(
  {
    id: Type.Integer({ description: 'The report ID.' }),
    received_ts: Type.Integer({ description: 'When the report arrived, ms since the epoch.' }),
    room_id: Type.String(),
    event_id: Type.String(),
    user_id: Type.String({ description: 'The reporter.' }),
    reason: Type.Union([Type.String(), Type.Null()]),
  },
  { description: 'A report of an event.' },
);

export const listEventReports = defineRoute({
  method: 'GET',
  path: '/_synapse/admin/v1/event_reports',
  operationId: 'listEventReports',
  summary: 'Lists reported events (server admins only), as Synapse does.',
  description:
    'Pages with `from` (an offset) and `limit`; `dir` b (newest first, default) or f; filters `room_id` and `user_id` (the reporter). ' +
    'Reports of whole rooms and of users are stored too but not listed here. 403 M_FORBIDDEN for non-admins.',
  tags: ['Synapse admin API'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    query: Type.Object({
      from: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'Reports to skip.' })),
      limit: Type.Optional(Type.Integer({ minimum: 0, default: 100, description: 'Reports per page.' })),
      dir: Type.Optional(Type.Union([Type.Literal('b'), Type.Literal('f')], { default: 'b' })),
      room_id: Type.Optional(Type.String({ description: 'Only reports about this room.' })),
      user_id: Type.Optional(Type.String({ description: 'Only reports by this user.' })),
    }),
  },
  responses: {
    200: Type.Object(
      {
        event_reports: Type.Array(EventReportBody),
        next_token: Type.Optional(Type.Integer({ description: 'The `from` of the next page, if any.' })),
        total: Type.Integer({ description: 'Matching reports over all pages.' }),
      },
      { description: 'A page of event reports.' },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    if (!req.requester.isAdmin) throw MatrixError.forbidden('You are not a server admin');
    const from = req.query.from ?? 0;
    const page = await hs.rooms.reports.list({
      from,
      limit: req.query.limit ?? 100,
      direction: req.query.dir ?? 'b',
      eventsOnly: true,
      ...(req.query.room_id === undefined ? {} : { roomId: req.query.room_id }),
      ...(req.query.user_id === undefined ? {} : { reporter: req.query.user_id }),
    });
    const next = from + page.reports.length;
    return reply(200, {
      event_reports: page.reports.map((report) => ({
        id: report.reportId,
        received_ts: report.receivedTs,
        room_id: report.roomId ?? '',
        event_id: report.eventId ?? '',
        user_id: report.reporter,
        reason: report.reason ?? null,
      })),
      ...(next < page.total && page.reports.length > 0 ? { next_token: next } : {}),
      total: page.total,
    });
  },
});

export const roomSendRoutes = [
  sendMessage,
  setRoomState,
  setRoomStateEmptyKey,
  redactEventRoute,
  reportRoom,
  reportEvent,
  reportUser,
  listEventReports,
];
