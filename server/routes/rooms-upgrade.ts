/**
 * client-server "Room upgrades" (room_upgrades.yaml):
 *   POST /_matrix/client/v3/rooms/{roomId}/upgrade
 */
import { Type } from '@sinclair/typebox';
import { isValidRoomId, isValidUserId } from '../../protocol/identifiers.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

export const upgradeRoomRoute = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/rooms/{roomId}/upgrade',
  operationId: 'upgradeRoom',
  summary: 'Upgrades a room to a new room version.',
  description:
    'Needs the power to send m.room.tombstone (403 M_FORBIDDEN). Creates the replacement room (its create event names ' +
    'the predecessor and keeps the room type), copies name, topic, avatar, join rules, history visibility, guest access, ' +
    'encryption, server ACLs, space children, canonical alias, power levels and bans, moves local aliases and the ' +
    "directory listing, sends the tombstone, then raises the old room's events_default and invite to max(50, " +
    'users_default + 1). Pinned events are not copied: they name events of the old room.',
  tags: ['Room upgrades'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  refusedWhileSuspended: true,
  request: {
    params: Type.Object({ roomId: Type.String({ description: 'The ID of the room to upgrade.' }) }),
    body: Type.Object(
      {
        new_version: Type.String({ description: 'The new version for the room.' }),
        additional_creators: Type.Optional(
          Type.Array(Type.String(), {
            description:
              'v12+: user IDs to consider room creators besides the upgrader (not copied from the old room).',
          }),
        ),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object(
      { replacement_room: Type.String({ description: 'The ID of the new room.' }) },
      { description: 'The room was successfully upgraded.', additionalProperties: false },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { roomId } = req.params;
    if (!isValidRoomId(roomId)) throw MatrixError.invalidParam(`Invalid room ID: ${JSON.stringify(roomId)}`);
    const additional = req.body.additional_creators;
    if (additional?.some((userId) => !isValidUserId(userId, { historical: true }))) {
      throw MatrixError.invalidParam('additional_creators must be user IDs');
    }
    const replacement = await hs.rooms.upgradeRoom({
      roomId,
      upgrader: req.requester.userId,
      newVersion: req.body.new_version,
      ...(additional === undefined ? {} : { additionalCreators: additional }),
    });
    return reply(200, { replacement_room: replacement });
  },
});

export const roomUpgradeRoutes = [upgradeRoomRoute];
