/**
 * client-server "Room Tagging" (tags.yaml):
 *   GET    /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags
 *   PUT    /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}
 *   DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}
 * Only the user sees and changes their tags; they are stored as the room's
 * `m.tag` account data, which sync carries.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { checkOwnAccountData, checkRoomIdParam } from './account-data.js';
import { EmptyResponse } from './shared-schemas.js';

/** spec "Room Tagging": the name of a tag MUST NOT exceed 255 bytes. */
const MAX_TAG_BYTES = 255;

const TagsPath = '/_matrix/client/v3/user/{userId}/rooms/{roomId}/tags';

const UserIdParam = Type.String({
  description:
    'The ID of the user whose tags to use. The access token must be authorised to make requests for this user ID.',
});
const RoomIdParam = Type.String({ description: 'The ID of the room the tags are on.' });
const TagParam = Type.String({ minLength: 1, description: 'The tag, e.g. `m.favourite` or `u.work`.' });

const TagSchema = Type.Object(
  {
    order: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        description:
          'A number in a range `[0,1]` describing a relative position of the room under the given tag.',
      }),
    ),
  },
  { additionalProperties: true, description: 'Extra data for the tag, e.g. ordering.' },
);

function checkTagName(tag: string): void {
  if (Buffer.byteLength(tag, 'utf8') > MAX_TAG_BYTES) {
    throw MatrixError.invalidParam(`A tag name must not exceed ${MAX_TAG_BYTES} bytes`);
  }
}

export const getRoomTags = defineRoute({
  method: 'GET',
  path: TagsPath,
  operationId: 'getRoomTags',
  summary: 'List the tags for a room.',
  description: 'List the tags set by a user on a room.',
  tags: ['User data'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ userId: UserIdParam, roomId: RoomIdParam }) },
  responses: {
    200: Type.Object(
      { tags: Type.Record(Type.String(), TagSchema) },
      { description: 'The list of tags for the user for the room.' },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { userId, roomId } = req.params;
    checkOwnAccountData(req.requester.userId, userId);
    checkRoomIdParam(roomId);
    return reply(200, { tags: await hs.tags.tagsOf(userId, roomId) });
  },
});

export const setRoomTag = defineRoute({
  method: 'PUT',
  path: `${TagsPath}/{tag}`,
  operationId: 'setRoomTag',
  summary: 'Add a tag to a room.',
  description: 'Adds the tag to the room, or replaces its data. Tag names are at most 255 bytes.',
  tags: ['User data'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({ userId: UserIdParam, roomId: RoomIdParam, tag: TagParam }),
    body: TagSchema,
  },
  responses: { 200: EmptyResponse, 400: MatrixErrorBody, 403: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const { userId, roomId, tag } = req.params;
    checkOwnAccountData(req.requester.userId, userId);
    checkRoomIdParam(roomId);
    checkTagName(tag);
    await hs.tags.setTag(userId, roomId, tag, req.body as JsonObject);
    return reply(200, {});
  },
});

export const deleteRoomTag = defineRoute({
  method: 'DELETE',
  path: `${TagsPath}/{tag}`,
  operationId: 'deleteRoomTag',
  summary: 'Remove a tag from the room.',
  description: 'Removes the tag; removing a tag the room does not have succeeds and changes nothing.',
  tags: ['User data'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ userId: UserIdParam, roomId: RoomIdParam, tag: TagParam }) },
  responses: { 200: EmptyResponse, 400: MatrixErrorBody, 403: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const { userId, roomId, tag } = req.params;
    checkOwnAccountData(req.requester.userId, userId);
    checkRoomIdParam(roomId);
    await hs.tags.removeTag(userId, roomId, tag);
    return reply(200, {});
  },
});

export const tagRoutes = [getRoomTags, setRoomTag, deleteRoomTag];
