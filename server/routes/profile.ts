/**
 * client-server "Profiles" (profile.yaml):
 *   GET    /_matrix/client/v3/profile/{userId}
 *   GET    /_matrix/client/v3/profile/{userId}/{keyName}
 *   PUT    /_matrix/client/v3/profile/{userId}/{keyName}
 *   DELETE /_matrix/client/v3/profile/{userId}/{keyName}
 * keyName is displayname, avatar_url, m.tz or a custom field (v1.16). Profiles of users
 * of other servers are asked of their server (federation query/profile). Any
 * profile may be read (the spec's minimum is users visible through rooms;
 * it allows more); only its owner may change it.
 */
import { Type } from '@sinclair/typebox';
import type { JsonValue } from '../../protocol/events.js';
import { belongsToServer, isValidUserId } from '../../protocol/identifiers.js';
import { checkProfileKey } from '../accounts/profile-service.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { EmptyResponse } from './shared-schemas.js';

const PROFILE_PATH = '/_matrix/client/v3/profile/{userId}';

function isRemoteUser(userId: string, serverName: string): boolean {
  return isValidUserId(userId, { historical: true }) && !belongsToServer(userId, serverName);
}

const UserIdParams = Type.Object({
  userId: Type.String({ description: 'The user whose profile to use.' }),
});

const FieldParams = Type.Object({
  userId: Type.String({ description: 'The user whose profile to use.' }),
  keyName: Type.String({
    description:
      'The profile field: `displayname`, `avatar_url`, `m.tz` or a custom field following the Common Namespaced Identifier Grammar.',
  }),
});

const ProfileBody = Type.Object(
  {
    displayname: Type.Optional(Type.String({ description: "The user's display name if they have set one." })),
    avatar_url: Type.Optional(Type.String({ description: "The user's avatar URL if they have set one." })),
    'm.tz': Type.Optional(Type.String({ description: "The user's time zone." })),
  },
  {
    additionalProperties: true,
    description: 'The profile information for this user, custom fields included.',
  },
);

const FieldBody = Type.Record(Type.String(), Type.Unknown(), {
  description: 'An object with one property, named after the field, holding its value.',
});

export const getProfile = defineRoute({
  method: 'GET',
  path: PROFILE_PATH,
  operationId: 'getUserProfile',
  summary: 'Get all profile information for a user.',
  tags: ['User data'],
  resource: 'client',
  auth: 'optional',
  rateLimit: 'client',
  request: { params: UserIdParams },
  responses: { 200: ProfileBody, 400: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const { userId } = req.params;
    // A user of another server: asked of their server (server-server query/profile).
    if (isRemoteUser(userId, hs.config.server_name))
      return reply(200, await hs.roomFederation.remoteProfile(userId));
    return reply(200, await hs.profiles.getProfile(userId));
  },
});

export const getProfileField = defineRoute({
  method: 'GET',
  path: `${PROFILE_PATH}/{keyName}`,
  operationId: 'getProfileField',
  summary: 'Get a profile field for a user.',
  tags: ['User data'],
  resource: 'client',
  auth: 'optional',
  rateLimit: 'client',
  request: { params: FieldParams },
  responses: { 200: FieldBody, 400: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const { userId, keyName } = req.params;
    if (isRemoteUser(userId, hs.config.server_name)) {
      const remote = await hs.roomFederation.remoteProfile(userId, keyName);
      if (remote[keyName] === undefined) throw MatrixError.notFound(`${userId} has no ${keyName}`);
      return reply(200, { [keyName]: remote[keyName] });
    }
    return reply(200, { [keyName]: await hs.profiles.getField(userId, keyName) });
  },
});

export const setProfileField = defineRoute({
  method: 'PUT',
  path: `${PROFILE_PATH}/{keyName}`,
  operationId: 'setProfileField',
  summary: 'Set a profile field for a user.',
  description:
    'The body holds one property named after the field. avatar_url must be an mxc:// URI; displayname and m.tz strings; ' +
    'custom fields any JSON value but null. The whole profile stays within 64 KiB (M_PROFILE_TOO_LARGE); keys are at most ' +
    '255 bytes (M_KEY_TOO_LARGE). An empty displayname or avatar_url removes it.',
  tags: ['User data'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  refusedWhileSuspended: true,
  request: { params: FieldParams, body: FieldBody },
  responses: {
    200: EmptyResponse,
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { userId, keyName } = req.params;
    checkProfileKey(keyName);
    if (!Object.hasOwn(req.body, keyName)) throw MatrixError.missingParam(`Missing key '${keyName}'`);
    await hs.profiles.setField(req.requester, userId, keyName, req.body[keyName] as JsonValue);
    return reply(200, {});
  },
});

export const deleteProfileField = defineRoute({
  method: 'DELETE',
  path: `${PROFILE_PATH}/{keyName}`,
  operationId: 'deleteProfileField',
  summary: "Remove a specific field from a user's profile.",
  tags: ['User data'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  refusedWhileSuspended: true,
  request: { params: FieldParams },
  responses: {
    200: EmptyResponse,
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    await hs.profiles.deleteField(req.requester, req.params.userId, req.params.keyName);
    return reply(200, {});
  },
});

export const profileRoutes = [getProfile, getProfileField, setProfileField, deleteProfileField];
