/**
 * client-server "Presence" (presence.yaml):
 *   PUT /_matrix/client/v3/presence/{userId}/status
 *   GET /_matrix/client/v3/presence/{userId}/status
 * Only the user sets their presence; others see it when they share a room.
 * With presence disabled (config presence.enabled: false) a PUT is accepted
 * and ignored and every GET answers offline, as Synapse does.
 */
import { Type } from '@sinclair/typebox';
import { belongsToServer, isValidUserId } from '../../protocol/identifiers.js';
import { presenceContent } from '../accounts/presence-service.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const STATUS_PATH = '/_matrix/client/v3/presence/{userId}/status';
/** Not in the spec; long enough for any status, short enough to fan out to every room-mate. */
export const MAX_STATUS_MSG_LENGTH = 1024;

const PresenceStateSchema = Type.Union(
  [Type.Literal('online'), Type.Literal('offline'), Type.Literal('unavailable')],
  { description: 'The presence state.' },
);

const UserIdParams = Type.Object({
  userId: Type.String({ description: 'The user whose presence state to use.' }),
});

export const setPresence = defineRoute({
  method: 'PUT',
  path: STATUS_PATH,
  operationId: 'setPresence',
  summary: "Update this user's presence state.",
  description:
    'Sets the presence state and status message (a status message left out is cleared). ' +
    'Only the user may set their own presence.',
  tags: ['Presence'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: UserIdParams,
    body: Type.Object(
      {
        presence: PresenceStateSchema,
        status_msg: Type.Optional(
          Type.Union([Type.String({ maxLength: MAX_STATUS_MSG_LENGTH }), Type.Null()], {
            description: 'The status message to attach to this state.',
          }),
        ),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object({}, { description: 'The new presence state was set.', additionalProperties: false }),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    if (req.params.userId !== req.requester.userId) {
      throw MatrixError.forbidden('You can only set your own presence state');
    }
    await hs.presence.setPresence(req.requester.userId, req.body.presence, req.body.status_msg ?? null);
    return reply(200, {});
  },
});

export const getPresence = defineRoute({
  method: 'GET',
  path: STATUS_PATH,
  operationId: 'getPresence',
  summary: "Get this user's presence state.",
  description:
    'Visible to the user and to users who share a room with them (403 M_FORBIDDEN for anyone else).',
  tags: ['Presence'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: UserIdParams },
  responses: {
    200: Type.Object(
      {
        presence: PresenceStateSchema,
        last_active_ago: Type.Optional(
          Type.Integer({ description: 'Milliseconds since an action was performed by this user.' }),
        ),
        status_msg: Type.Optional(
          Type.Union([Type.String(), Type.Null()], {
            description: 'The state message for this user if one was set.',
          }),
        ),
        currently_active: Type.Optional(
          Type.Boolean({ description: 'Whether the user is currently active.' }),
        ),
      },
      { description: 'The presence state for this user.' },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { userId } = req.params;
    if (!isValidUserId(userId, { historical: true })) throw MatrixError.invalidParam('Invalid user ID');
    if (!hs.presence.enabled) return reply(200, { presence: 'offline' as const });
    // A user of another server has no account here: their presence is what their server sent us.
    if (belongsToServer(userId, hs.config.server_name)) {
      const account = await hs.storage.accounts.getAccount(userId);
      if (!account || account.deactivated) throw MatrixError.notFound('No presence for this user');
    }
    if (
      userId !== req.requester.userId &&
      !(await hs.membership.sharesRoomWith(req.requester.userId, userId))
    ) {
      throw MatrixError.forbidden('You are not allowed to see their presence');
    }
    return reply(200, presenceContent(await hs.presence.getPresence(userId), Date.now()));
  },
});

export const presenceRoutes = [setPresence, getPresence];
