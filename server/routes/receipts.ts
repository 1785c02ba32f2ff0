/**
 * client-server "Receipts" (receipts.yaml):
 *   POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}
 * m.read and m.read.private, unthreaded or threaded (`thread_id`: 'main' or a
 * thread root); m.fully_read sets the read marker as /read_markers does. The
 * event must be in the room and visible to the user, who must be joined.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { isValidEventId, isValidRoomId } from '../../protocol/identifiers.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { CLIENT_RECEIPT_TYPES, FULLY_READ, RECEIPT_READ } from '../rooms/receipts.js';
import { visibleEventOrNotFound } from '../rooms/room-history.js';

const MAIN_THREAD = 'main';

/**
 * The checks every receipt and read marker target passes: the user is joined,
 * the event is an accepted timeline event of this room, and the user may see it
 * (an event they may not see answers as if it did not exist).
 */
export async function checkReceiptTarget(
  hs: HomeserverContext,
  userId: string,
  roomId: string,
  eventId: string,
): Promise<JsonObject> {
  if (!isValidRoomId(roomId)) throw MatrixError.invalidParam('Invalid room ID');
  if (!isValidEventId(eventId)) throw MatrixError.invalidParam('Invalid event ID');
  const membership = await hs.storage.memberships.getMembership(roomId, userId);
  if (membership?.membership !== 'join') throw MatrixError.forbidden('You are not joined to this room');
  return (await visibleEventOrNotFound(hs, userId, roomId, eventId)).pdu.content;
}

/** The thread an event declares itself part of (an m.thread relation); null for the main timeline or an indirect relation. */
function declaredThreadOf(content: JsonObject): string | null {
  const relatesTo = content['m.relates_to'];
  if (typeof relatesTo !== 'object' || relatesTo === null || Array.isArray(relatesTo)) return null;
  const { rel_type: relType, event_id: rootId } = relatesTo;
  return relType === 'm.thread' && typeof rootId === 'string' ? rootId : null;
}

export const postReceipt = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}',
  operationId: 'postReceipt',
  summary: 'Send a receipt for the given event ID.',
  description:
    'Updates the marker for the given receipt type to the event given. A receipt for an event ' +
    "older than the user's current one is accepted but does not move the marker back. " +
    '`m.fully_read` sets the fully read marker (room account data) as `/read_markers` does.',
  tags: ['Room participation'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      roomId: Type.String({ description: 'The room in which to send the event.' }),
      receiptType: Type.String({
        enum: [...CLIENT_RECEIPT_TYPES],
        description: 'The type of receipt to send: `m.read`, `m.read.private` or `m.fully_read`.',
      }),
      eventId: Type.String({ description: 'The event ID to acknowledge up to.' }),
    }),
    body: Type.Object(
      {
        thread_id: Type.Optional(
          Type.String({
            minLength: 1,
            description:
              "The thread root's event ID (or `main`) for which thread this receipt is intended to be " +
              'under. If not specified, the read receipt is unthreaded (default).',
          }),
        ),
      },
      { additionalProperties: true },
    ),
    allowEmptyBody: true,
  },
  responses: {
    200: Type.Object({}, { description: 'The receipt was sent.', additionalProperties: false }),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { roomId, receiptType, eventId } = req.params;
    const userId = req.requester.userId;
    const threadId = req.body.thread_id ?? null;
    if (threadId !== null) {
      if (receiptType === FULLY_READ) {
        throw MatrixError.invalidParam('thread_id is not allowed for m.fully_read');
      }
      if (threadId !== MAIN_THREAD && !isValidEventId(threadId)) {
        throw MatrixError.invalidParam("thread_id must be 'main' or a thread root event ID");
      }
    }
    const content = await checkReceiptTarget(hs, userId, roomId, eventId);
    if (threadId !== null) {
      // spec "Threaded read receipts": 400 when the event is not related to the thread.
      const declared = declaredThreadOf(content);
      const mismatch =
        threadId === MAIN_THREAD
          ? declared !== null
          : eventId !== threadId && declared !== null && declared !== threadId;
      if (mismatch) throw MatrixError.invalidParam('The event is not in the thread given by thread_id');
    }
    await hs.receipts.setReceipt({ roomId, userId, receiptType, eventId, threadId });
    if (receiptType === RECEIPT_READ) hs.federation.announce.readReceipt(roomId, userId, eventId, threadId);
    return reply(200, {});
  },
});

export const receiptRoutes = [postReceipt];
