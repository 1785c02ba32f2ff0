/**
 * client-server "Typing Notifications" (typing.yaml):
 *   PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}
 * Only for yourself, only in a room you are joined to. Other members see it
 * as the room's ephemeral `m.typing` event in sync.
 */
import { Type } from '@sinclair/typebox';
import { isValidRoomId } from '../../protocol/identifiers.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

export const setTyping = defineRoute({
  method: 'PUT',
  path: '/_matrix/client/v3/rooms/{roomId}/typing/{userId}',
  operationId: 'setTyping',
  summary: 'Informs the server that the user has started or stopped typing.',
  description:
    'The user types for the next `timeout` milliseconds (30 s when left out, at most 120 s), ' +
    'or has stopped typing when `typing` is false. Only the user may set their own typing state, ' +
    'and only in a room they are joined to (403 M_FORBIDDEN otherwise).',
  tags: ['Room participation'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      roomId: Type.String({ description: 'The room in which the user is typing.' }),
      userId: Type.String({ description: 'The user who has started to type.' }),
    }),
    body: Type.Object(
      {
        typing: Type.Boolean({
          description: 'Whether the user is typing or not. If `false`, the `timeout` key can be omitted.',
        }),
        timeout: Type.Optional(
          Type.Integer({
            minimum: 0,
            description: 'The length of time in milliseconds to mark this user as typing.',
          }),
        ),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object({}, { description: 'The new typing state was set.', additionalProperties: false }),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { roomId, userId } = req.params;
    if (userId !== req.requester.userId) {
      throw MatrixError.forbidden('You can only set your own typing state');
    }
    if (!isValidRoomId(roomId)) throw MatrixError.invalidParam('Invalid room ID');
    const membership = await hs.storage.memberships.getMembership(roomId, userId);
    if (membership?.membership !== 'join') throw MatrixError.forbidden('You are not joined to this room');
    hs.typing.setTyping(roomId, userId, req.body.typing, req.body.timeout);
    hs.federation.announce.typing(roomId, userId, req.body.typing);
    return reply(200, {});
  },
});

export const typingRoutes = [setTyping];
