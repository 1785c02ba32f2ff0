/**
 * client-server "Client Config" (account-data.yaml):
 *   PUT /_matrix/client/v3/user/{userId}/account_data/{type}
 *   GET /_matrix/client/v3/user/{userId}/account_data/{type}
 *   PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
 *   GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
 * Only the user reads and writes their own account data. Types the server
 * manages (m.fully_read, m.push_rules) are refused with 405 M_BAD_JSON but can
 * be read. Each write wakes the user's syncs.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { isValidRoomId } from '../../protocol/identifiers.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

/** spec "Client Config", "Server Behaviour": types the server manages. */
const SERVER_MANAGED_TYPES: ReadonlySet<string> = new Set(['m.fully_read', 'm.push_rules']);

/** Stores the entry and wakes the user's syncs (also used for m.tag). */
export async function storeAccountData(
  hs: HomeserverContext,
  userId: string,
  roomId: string | null,
  type: string,
  content: JsonObject,
): Promise<void> {
  await hs.storage.accountData.putAccountData(userId, roomId, type, content);
  hs.notifier.notifyUsers([userId], 'account_data');
}

/** Account data belongs to its user alone: anyone else is refused. */
export function checkOwnAccountData(requesterUserId: string, userId: string): void {
  if (userId !== requesterUserId) {
    throw MatrixError.forbidden("You cannot use another user's account data");
  }
}

export function checkRoomIdParam(roomId: string): void {
  if (!isValidRoomId(roomId)) throw MatrixError.invalidParam('Invalid room ID');
}

function refuseServerManagedType(type: string): void {
  if (SERVER_MANAGED_TYPES.has(type)) {
    throw new MatrixError(405, 'M_BAD_JSON', `Cannot set ${type} through this API`);
  }
}

const ContentBody = Type.Record(Type.String(), Type.Unknown(), {
  description: 'The content of the account data.',
});
const EmptyResponse = Type.Object(
  {},
  { description: 'The account data was successfully added.', additionalProperties: false },
);
const ContentResponse = Type.Record(Type.String(), Type.Unknown(), {
  description: 'The account data content for the given type.',
});

const TypeParam = Type.String({
  minLength: 1,
  description: 'The event type of the account data. Custom types should be namespaced to avoid clashes.',
});
const UserIdParam = Type.String({
  description:
    'The ID of the user whose account data to use. The access token must be authorised to make requests for this user ID.',
});
const RoomIdParam = Type.String({ description: 'The ID of the room the account data is for.' });

const GLOBAL_PATH = '/_matrix/client/v3/user/{userId}/account_data/{type}';
const ROOM_PATH = '/_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}';

export const setAccountData = defineRoute({
  method: 'PUT',
  path: GLOBAL_PATH,
  operationId: 'setAccountData',
  summary: 'Set some account data for the user.',
  description:
    "Sets global account data, available to the user's clients in the top-level `account_data` of /sync. " +
    '`m.fully_read` and `m.push_rules` are managed by the server: 405 M_BAD_JSON.',
  tags: ['User data'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ userId: UserIdParam, type: TypeParam }), body: ContentBody },
  responses: {
    200: EmptyResponse,
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    405: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { userId, type } = req.params;
    checkOwnAccountData(req.requester.userId, userId);
    refuseServerManagedType(type);
    await storeAccountData(hs, userId, null, type, req.body as JsonObject);
    return reply(200, {});
  },
});

export const getAccountData = defineRoute({
  method: 'GET',
  path: GLOBAL_PATH,
  operationId: 'getAccountData',
  summary: 'Get some account data for the user.',
  description: 'Only the user may read their account data. 404 M_NOT_FOUND when none of this type is set.',
  tags: ['User data'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ userId: UserIdParam, type: TypeParam }) },
  responses: {
    200: ContentResponse,
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { userId, type } = req.params;
    checkOwnAccountData(req.requester.userId, userId);
    const entry = await hs.storage.accountData.getAccountData(userId, null, type);
    if (entry === null) throw MatrixError.notFound('Account data not found');
    return reply(200, entry.content);
  },
});

export const setRoomAccountData = defineRoute({
  method: 'PUT',
  path: ROOM_PATH,
  operationId: 'setAccountDataPerRoom',
  summary: 'Set some account data for the user that is specific to a room.',
  description:
    "Sets room account data, available to the user's clients in the room's `account_data` in /sync. " +
    '`m.fully_read` (set it with /read_markers) and `m.push_rules` are managed by the server: 405 M_BAD_JSON.',
  tags: ['User data'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({ userId: UserIdParam, roomId: RoomIdParam, type: TypeParam }),
    body: ContentBody,
  },
  responses: {
    200: EmptyResponse,
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    405: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { userId, roomId, type } = req.params;
    checkOwnAccountData(req.requester.userId, userId);
    checkRoomIdParam(roomId);
    refuseServerManagedType(type);
    await storeAccountData(hs, userId, roomId, type, req.body as JsonObject);
    return reply(200, {});
  },
});

export const getRoomAccountData = defineRoute({
  method: 'GET',
  path: ROOM_PATH,
  operationId: 'getAccountDataPerRoom',
  summary: 'Get some account data for the user that is specific to a room.',
  description: 'Only the user may read their account data. 404 M_NOT_FOUND when none of this type is set.',
  tags: ['User data'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ userId: UserIdParam, roomId: RoomIdParam, type: TypeParam }) },
  responses: {
    200: ContentResponse,
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { userId, roomId, type } = req.params;
    checkOwnAccountData(req.requester.userId, userId);
    checkRoomIdParam(roomId);
    const entry = await hs.storage.accountData.getAccountData(userId, roomId, type);
    if (entry === null) throw MatrixError.notFound('Account data not found');
    return reply(200, entry.content);
  },
});

export const accountDataRoutes = [setAccountData, getAccountData, setRoomAccountData, getRoomAccountData];
