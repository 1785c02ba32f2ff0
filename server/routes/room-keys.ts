/**
 * client-server "Server-side key backups" (key_backup.yaml):
 *   POST   /_matrix/client/v3/room_keys/version
 *   GET    /_matrix/client/v3/room_keys/version
 *   GET    /_matrix/client/v3/room_keys/version/{version}
 *   PUT    /_matrix/client/v3/room_keys/version/{version}
 *   DELETE /_matrix/client/v3/room_keys/version/{version}
 *   GET|PUT|DELETE /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]?version=
 * A user's backups are theirs alone: every route acts on the requester's own.
 */
import { type TSchema, Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import type { BackedUpKeyScope } from '../../storage/key-backup-store.js';
import {
  backedUpKey,
  type KeyBackupData,
  keyBackupData,
  keysByRoom,
  type RoomKeyBackup,
} from '../e2e/key-backup.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const TAGS = ['End-to-end encryption'];

const AuthData = Type.Record(Type.String(), Type.Unknown(), {
  description:
    'Algorithm-dependent data (for m.megolm_backup.v1.curve25519-aes-sha2: public_key, signatures).',
});
const Algorithm = Type.String({
  minLength: 1,
  description: 'The algorithm used for storing backups, e.g. m.megolm_backup.v1.curve25519-aes-sha2.',
});

const VersionInfo = Type.Object(
  {
    algorithm: Algorithm,
    auth_data: AuthData,
    count: Type.Integer({ description: 'The number of keys stored in the backup.' }),
    etag: Type.String({ description: 'An opaque string that changes whenever the stored keys change.' }),
    version: Type.String({ description: 'The backup version.' }),
  },
  { description: 'The information about the backup.' },
);

const KeyBackupDataSchema = Type.Object(
  {
    first_message_index: Type.Integer({
      minimum: 0,
      description: 'The index of the first message in the session that the key can decrypt.',
    }),
    forwarded_count: Type.Integer({
      minimum: 0,
      description: 'The number of times this key has been forwarded via key-sharing between devices.',
    }),
    is_verified: Type.Boolean({
      description: 'Whether the device backing up the key verified the device that the key is from.',
    }),
    session_data: Type.Record(Type.String(), Type.Unknown(), { description: 'Algorithm-dependent data.' }),
  },
  { description: 'The key data.' },
);
const RoomKeyBackupSchema = Type.Object(
  { sessions: Type.Record(Type.String(), KeyBackupDataSchema, { description: 'Session ID to key data.' }) },
  { description: 'The backed up keys for a room.' },
);
const AllKeysSchema = Type.Object(
  {
    rooms: Type.Record(Type.String(), RoomKeyBackupSchema, { description: 'Room ID to its backed up keys.' }),
  },
  { description: 'The backed up keys.' },
);
const UpdateResponse = Type.Object(
  {
    etag: Type.String({ description: 'The new etag value representing stored keys in the backup.' }),
    count: Type.Integer({ description: 'The number of keys stored in the backup.' }),
  },
  { description: 'The update succeeded.' },
);
const Empty = Type.Object({}, { description: 'Done.', additionalProperties: false });

const VersionParam = Type.String({ description: 'The backup version.' });
const VersionQuery = Type.Object({
  version: Type.String({ description: 'The backup version. Writes must name the current one.' }),
});
const RoomIdParam = Type.String({ description: 'The ID of the room that the keys are for.' });
const SessionIdParam = Type.String({ description: 'The ID of the megolm session that the key is for.' });

const errors = { 400: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody };
const writeErrors = { ...errors, 403: MatrixErrorBody };

const VERSION_PATH = '/_matrix/client/v3/room_keys/version';
const KEYS_PATH = '/_matrix/client/v3/room_keys/keys';

export const postRoomKeysVersion = defineRoute({
  method: 'POST',
  path: VERSION_PATH,
  operationId: 'postRoomKeysVersion',
  summary: 'Create a new backup.',
  description: 'The new version becomes the current one; keys can be written only to the current version.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { body: Type.Object({ algorithm: Algorithm, auth_data: AuthData }) },
  responses: {
    200: Type.Object(
      { version: Type.String({ description: 'The backup version. This is an opaque string.' }) },
      { description: 'The version id of the new backup.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const { algorithm, auth_data } = req.body;
    return reply(200, {
      version: await hs.keyBackup.createVersion(req.requester.userId, algorithm, auth_data as JsonObject),
    });
  },
});

export const getRoomKeysVersionCurrent = defineRoute({
  method: 'GET',
  path: VERSION_PATH,
  operationId: 'getRoomKeysVersionCurrent',
  summary: 'Get information about the latest backup version.',
  description: '404 M_NOT_FOUND when there is no backup.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {},
  responses: { 200: VersionInfo, ...errors },
  async handler(req, hs) {
    return reply(200, await hs.keyBackup.getVersion(req.requester.userId));
  },
});

export const getRoomKeysVersion = defineRoute({
  method: 'GET',
  path: `${VERSION_PATH}/{version}`,
  operationId: 'getRoomKeysVersion',
  summary: 'Get information about an existing backup.',
  description: '404 M_NOT_FOUND for a version that does not exist or was deleted.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ version: VersionParam }) },
  responses: { 200: VersionInfo, ...errors },
  async handler(req, hs) {
    return reply(200, await hs.keyBackup.getVersion(req.requester.userId, req.params.version));
  },
});

export const putRoomKeysVersion = defineRoute({
  method: 'PUT',
  path: `${VERSION_PATH}/{version}`,
  operationId: 'putRoomKeysVersion',
  summary: 'Update information about an existing backup.',
  description:
    'Only `auth_data` can be modified: 400 M_INVALID_PARAM when the algorithm or the body version differs.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({ version: VersionParam }),
    body: Type.Object({
      algorithm: Algorithm,
      auth_data: AuthData,
      version: Type.Optional(Type.String({ description: 'If present, must be the version in the path.' })),
    }),
  },
  responses: { 200: Empty, ...errors },
  async handler(req, hs) {
    const { algorithm, auth_data, version } = req.body;
    await hs.keyBackup.updateVersion(req.requester.userId, req.params.version, {
      algorithm,
      auth_data: auth_data as JsonObject,
      ...(version === undefined ? {} : { version }),
    });
    return reply(200, {});
  },
});

export const deleteRoomKeysVersion = defineRoute({
  method: 'DELETE',
  path: `${VERSION_PATH}/{version}`,
  operationId: 'deleteRoomKeysVersion',
  summary: 'Delete an existing key backup.',
  description:
    'Deletes the backup and all its keys. Deleting a version deleted before succeeds; one that never existed is 404.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ version: VersionParam }) },
  responses: { 200: Empty, ...errors },
  async handler(req, hs) {
    await hs.keyBackup.deleteVersion(req.requester.userId, req.params.version);
    return reply(200, {});
  },
});

/** The three levels of /room_keys/keys: all keys, one room's, one session's. */
interface KeysLevel {
  readonly suffix: string;
  readonly params: TSchema | undefined;
  readonly scope: (params: Record<string, string>) => BackedUpKeyScope;
}

const ALL: KeysLevel = { suffix: '', params: undefined, scope: () => ({}) };
const ROOM: KeysLevel = {
  suffix: '/{roomId}',
  params: Type.Object({ roomId: RoomIdParam }),
  scope: (p) => ({ roomId: p.roomId! }),
};
const SESSION: KeysLevel = {
  suffix: '/{roomId}/{sessionId}',
  params: Type.Object({ roomId: RoomIdParam, sessionId: SessionIdParam }),
  scope: (p) => ({ roomId: p.roomId!, sessionId: p.sessionId! }),
};

const putKeysDescription =
  'A key replaces the stored key of its session only if it is verified and the stored one is not, then if its ' +
  'first_message_index is lower, then if its forwarded_count is lower. 403 M_WRONG_ROOM_KEYS_VERSION (with ' +
  'current_version) when `version` is not the current backup; 404 M_NOT_FOUND when there is no backup.';

export const putRoomKeys = defineRoute({
  method: 'PUT',
  path: KEYS_PATH,
  operationId: 'putRoomKeys',
  summary: 'Store several keys in the backup.',
  description: putKeysDescription,
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { query: VersionQuery, body: AllKeysSchema },
  responses: { 200: UpdateResponse, ...writeErrors },
  async handler(req, hs) {
    const keys = Object.entries(req.body.rooms).flatMap(([roomId, room]) =>
      Object.entries(room.sessions).map(([sessionId, data]) =>
        backedUpKey(roomId, sessionId, asKeyData(data)),
      ),
    );
    return reply(200, await hs.keyBackup.putKeys(req.requester.userId, req.query.version, keys));
  },
});

export const putRoomKeysByRoomId = defineRoute({
  method: 'PUT',
  path: `${KEYS_PATH}${ROOM.suffix}`,
  operationId: 'putRoomKeysByRoomId',
  summary: 'Store several keys in the backup for a given room.',
  description: putKeysDescription,
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ roomId: RoomIdParam }), query: VersionQuery, body: RoomKeyBackupSchema },
  responses: { 200: UpdateResponse, ...writeErrors },
  async handler(req, hs) {
    const { roomId } = req.params;
    const keys = Object.entries(req.body.sessions).map(([sessionId, data]) =>
      backedUpKey(roomId, sessionId, asKeyData(data)),
    );
    return reply(200, await hs.keyBackup.putKeys(req.requester.userId, req.query.version, keys));
  },
});

export const putRoomKeyBySessionId = defineRoute({
  method: 'PUT',
  path: `${KEYS_PATH}${SESSION.suffix}`,
  operationId: 'putRoomKeyBySessionId',
  summary: 'Store a key in the backup.',
  description: putKeysDescription,
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({ roomId: RoomIdParam, sessionId: SessionIdParam }),
    query: VersionQuery,
    body: KeyBackupDataSchema,
  },
  responses: { 200: UpdateResponse, ...writeErrors },
  async handler(req, hs) {
    const { roomId, sessionId } = req.params;
    const key = backedUpKey(roomId, sessionId, asKeyData(req.body));
    return reply(200, await hs.keyBackup.putKeys(req.requester.userId, req.query.version, [key]));
  },
});

export const getRoomKeys = defineRoute({
  method: 'GET',
  path: KEYS_PATH,
  operationId: 'getRoomKeys',
  summary: 'Retrieve the keys from the backup.',
  description: 'Any existing version can be read; 404 M_NOT_FOUND for an unknown one.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { query: VersionQuery },
  responses: { 200: AllKeysSchema, ...errors },
  async handler(req, hs) {
    const keys = await hs.keyBackup.getKeys(req.requester.userId, req.query.version, ALL.scope({}));
    return reply(200, { rooms: keysByRoom(keys) });
  },
});

export const getRoomKeysByRoomId = defineRoute({
  method: 'GET',
  path: `${KEYS_PATH}${ROOM.suffix}`,
  operationId: 'getRoomKeysByRoomId',
  summary: 'Retrieve the keys from the backup for a given room.',
  description: 'No keys for the room: `{"sessions": {}}`. 404 M_NOT_FOUND for an unknown version.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ roomId: RoomIdParam }), query: VersionQuery },
  responses: { 200: RoomKeyBackupSchema, ...errors },
  async handler(req, hs) {
    const keys = await hs.keyBackup.getKeys(req.requester.userId, req.query.version, ROOM.scope(req.params));
    return reply(200, keysByRoom(keys)[req.params.roomId] ?? emptyRoom());
  },
});

export const getRoomKeyBySessionId = defineRoute({
  method: 'GET',
  path: `${KEYS_PATH}${SESSION.suffix}`,
  operationId: 'getRoomKeyBySessionId',
  summary: 'Retrieve a key from the backup.',
  description: '404 M_NOT_FOUND when the key or the version does not exist.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ roomId: RoomIdParam, sessionId: SessionIdParam }), query: VersionQuery },
  responses: { 200: KeyBackupDataSchema, ...errors },
  async handler(req, hs) {
    const [key] = await hs.keyBackup.getKeys(
      req.requester.userId,
      req.query.version,
      SESSION.scope(req.params),
    );
    if (key === undefined) throw MatrixError.notFound('Key not found.');
    return reply(200, keyBackupData(key));
  },
});

function deleteKeysRoute(level: KeysLevel, operationId: string, summary: string) {
  return defineRoute({
    method: 'DELETE',
    path: `${KEYS_PATH}${level.suffix}`,
    operationId,
    summary,
    description: '404 M_NOT_FOUND for an unknown version.',
    tags: TAGS,
    resource: 'client',
    auth: 'access-token',
    rateLimit: 'client',
    request: { ...(level.params ? { params: level.params } : {}), query: VersionQuery },
    responses: { 200: UpdateResponse, ...errors },
    async handler(req, hs) {
      const params = (req.params ?? {}) as Record<string, string>;
      return reply(
        200,
        await hs.keyBackup.deleteKeys(req.requester.userId, req.query.version, level.scope(params)),
      );
    },
  });
}

export const deleteRoomKeys = deleteKeysRoute(ALL, 'deleteRoomKeys', 'Delete the keys from the backup.');
export const deleteRoomKeysByRoomId = deleteKeysRoute(
  ROOM,
  'deleteRoomKeysByRoomId',
  'Delete the keys from the backup for a given room.',
);
export const deleteRoomKeyBySessionId = deleteKeysRoute(
  SESSION,
  'deleteRoomKeyBySessionId',
  'Delete a key from the backup.',
);

function asKeyData(data: {
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  session_data: Record<string, unknown>;
}): KeyBackupData {
  return { ...data, session_data: data.session_data as JsonObject };
}

function emptyRoom(): RoomKeyBackup {
  return { sessions: {} };
}

export const roomKeysRoutes = [
  postRoomKeysVersion,
  getRoomKeysVersionCurrent,
  getRoomKeysVersion,
  putRoomKeysVersion,
  deleteRoomKeysVersion,
  getRoomKeys,
  getRoomKeysByRoomId,
  getRoomKeyBySessionId,
  putRoomKeys,
  putRoomKeysByRoomId,
  putRoomKeyBySessionId,
  deleteRoomKeys,
  deleteRoomKeysByRoomId,
  deleteRoomKeyBySessionId,
];
