/**
 * Myelin extension: archiving a conversation (spec/archiving.md).
 *   PUT    /_matrix/client/unstable/io.myelin/user/{userId}/rooms/{roomId}/archive
 *   DELETE /_matrix/client/unstable/io.myelin/user/{userId}/rooms/{roomId}/archive
 * Archived is the `io.myelin.archived` room tag (with `m.lowpriority` beside
 * it); sync carries both in the room's `m.tag` account data.
 */
import { Type } from '@sinclair/typebox';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { checkOwnAccountData, checkRoomIdParam } from './account-data.js';
import { EmptyResponse } from './shared-schemas.js';

const ArchivePath = '/_matrix/client/unstable/io.myelin/user/{userId}/rooms/{roomId}/archive';

const params = Type.Object({
  userId: Type.String({ description: 'The user archiving the room; must be the requester.' }),
  roomId: Type.String({ description: 'The room to archive or bring back.' }),
});

export const archiveRoom = defineRoute({
  method: 'PUT',
  path: ArchivePath,
  operationId: 'archiveRoom',
  summary: 'Archive a conversation.',
  description:
    'Tags the room `io.myelin.archived` and `m.lowpriority` (unless it already was low priority), so standard ' +
    'clients move it out of their main list and clients that know the extension can filter it out of sync with ' +
    'the room filter `io.myelin.archived: exclude`. With `unarchive_on_activity`, the next message someone else ' +
    'sends in the room brings it back. Archiving again replaces the choice.',
  tags: ['User data'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params,
    body: Type.Object(
      {
        unarchive_on_activity: Type.Optional(
          Type.Boolean({
            description: 'Bring the room back when someone else sends a message in it (default false).',
          }),
        ),
      },
      { description: 'How the room is archived.' },
    ),
  },
  responses: { 200: EmptyResponse, 400: MatrixErrorBody, 403: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const { userId, roomId } = req.params;
    checkOwnAccountData(req.requester.userId, userId);
    checkRoomIdParam(roomId);
    await hs.archive.archive(userId, roomId, {
      unarchiveOnActivity: req.body.unarchive_on_activity === true,
    });
    return reply(200, {});
  },
});

export const unarchiveRoom = defineRoute({
  method: 'DELETE',
  path: ArchivePath,
  operationId: 'unarchiveRoom',
  summary: 'Bring an archived conversation back.',
  description:
    'Removes the `io.myelin.archived` tag, and `m.lowpriority` if archiving added it. Unarchiving a room that ' +
    'is not archived succeeds and changes nothing.',
  tags: ['User data'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params },
  responses: { 200: EmptyResponse, 400: MatrixErrorBody, 403: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const { userId, roomId } = req.params;
    checkOwnAccountData(req.requester.userId, userId);
    checkRoomIdParam(roomId);
    await hs.archive.unarchive(userId, roomId);
    return reply(200, {});
  },
});

export const archiveRoutes = [archiveRoom, unarchiveRoom];
