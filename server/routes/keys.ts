/**
 * client-server "End-to-End Encryption" key management (keys.yaml, cross_signing.yaml):
 *   POST /_matrix/client/v3/keys/upload
 *   POST /_matrix/client/v3/keys/query
 *   POST /_matrix/client/v3/keys/claim
 *   GET  /_matrix/client/v3/keys/changes
 *   POST /_matrix/client/v3/keys/device_signing/upload   (user-interactive auth to replace keys)
 *   POST /_matrix/client/v3/keys/signatures/upload
 * Dehydrated devices are not in v1.19 (only MSC3814), so they are not served.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import {
  finishUserInteractiveAuth,
  requireUserInteractiveAuth,
  STAGE_DUMMY,
  STAGE_PASSWORD,
} from '../accounts/user-interactive-auth.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { parseSyncToken } from '../sync/sync-token.js';
import { AuthData, EmptyResponse, userInteractiveAuthResponses } from './shared-schemas.js';

const KEYS_PATH = '/_matrix/client/v3/keys';
const TAGS = ['End-to-end encryption'];
/** The spec's recommended wait for other servers. */
const DEFAULT_REMOTE_TIMEOUT_MS = 10_000;
const MAX_REMOTE_TIMEOUT_MS = 60_000;

const AnyObject = (description: string) => Type.Object({}, { additionalProperties: true, description });
const KeyMap = (description: string) =>
  Type.Record(Type.String(), Type.Union([Type.String(), AnyObject('A key object.')]), { description });
const Failures = Type.Record(Type.String(), AnyObject('Why the server could not be asked.'), {
  description: 'Servers that could not be reached, by server name.',
});
const OneTimeKeyCounts = Type.Record(Type.String(), Type.Integer(), {
  description: 'For each key algorithm, the number of unclaimed one-time keys held for this device.',
});
const Timeout = Type.Optional(
  Type.Integer({
    minimum: 0,
    description: 'How long (ms) to wait for other servers; 10 seconds by default.',
  }),
);

function remoteTimeout(timeout: number | undefined): number {
  return Math.min(timeout ?? DEFAULT_REMOTE_TIMEOUT_MS, MAX_REMOTE_TIMEOUT_MS);
}

export const uploadKeys = defineRoute({
  method: 'POST',
  path: `${KEYS_PATH}/upload`,
  operationId: 'uploadKeys',
  summary: 'Upload end-to-end encryption keys.',
  description:
    "Publishes the device's identity keys (their user_id and device_id must be the access token's, and they must be " +
    "signed with the device's own ed25519 key), signed one-time keys and fallback keys (one per algorithm).",
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    body: Type.Object(
      {
        device_keys: Type.Optional(AnyObject('Identity keys for the device.')),
        one_time_keys: Type.Optional(KeyMap('One-time keys, by `<algorithm>:<key_id>`.')),
        fallback_keys: Type.Optional(KeyMap('Fallback keys, by `<algorithm>:<key_id>`.')),
      },
      { additionalProperties: true },
    ),
    allowEmptyBody: true,
  },
  responses: {
    200: Type.Object({ one_time_key_counts: OneTimeKeyCounts }, { description: 'The keys were stored.' }),
    400: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { userId, deviceId } = req.requester;
    if (deviceId === null)
      throw MatrixError.invalidParam('This access token has no device to upload keys for');
    const counts = await hs.deviceKeys.uploadKeys(userId, deviceId, req.body);
    return reply(200, { one_time_key_counts: counts });
  },
});

export const queryKeys = defineRoute({
  method: 'POST',
  path: `${KEYS_PATH}/query`,
  operationId: 'queryKeys',
  summary: 'Download device identity keys.',
  description:
    'Device keys (with `unsigned.device_display_name`), master and self-signing keys, and your own user-signing ' +
    'key, with the signatures you may see.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    body: Type.Object(
      {
        timeout: Timeout,
        device_keys: Type.Record(Type.String(), Type.Array(Type.String()), {
          description: 'User ID -> device IDs (an empty list for all devices).',
        }),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object(
      {
        failures: Failures,
        device_keys: Type.Record(Type.String(), Type.Record(Type.String(), AnyObject('Device keys.')), {
          description: 'User ID -> device ID -> device keys.',
        }),
        master_keys: Type.Record(Type.String(), AnyObject('A master key.')),
        self_signing_keys: Type.Record(Type.String(), AnyObject('A self-signing key.')),
        user_signing_keys: Type.Record(Type.String(), AnyObject('A user-signing key.')),
      },
      { description: 'The device information.' },
    ),
    400: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const result = await hs.deviceKeys.queryKeys(
      req.requester.userId,
      req.body.device_keys,
      remoteTimeout(req.body.timeout),
    );
    return reply(200, result);
  },
});

export const claimKeys = defineRoute({
  method: 'POST',
  path: `${KEYS_PATH}/claim`,
  operationId: 'claimKeys',
  summary: 'Claim one-time encryption keys.',
  description:
    'One key per device: the oldest unclaimed one-time key of the algorithm, else the fallback key. ' +
    'Each one-time key is given out once.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    body: Type.Object(
      {
        timeout: Timeout,
        one_time_keys: Type.Record(Type.String(), Type.Record(Type.String(), Type.String()), {
          description: 'User ID -> device ID -> algorithm.',
        }),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object(
      {
        failures: Failures,
        one_time_keys: Type.Record(Type.String(), Type.Record(Type.String(), KeyMap('The claimed key.')), {
          description: 'User ID -> device ID -> `<algorithm>:<key_id>` -> key.',
        }),
      },
      { description: 'The claimed keys.' },
    ),
    400: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const result = await hs.deviceKeys.claimKeys(
      req.requester.userId,
      req.body.one_time_keys,
      remoteTimeout(req.body.timeout),
    );
    return reply(200, result);
  },
});

export const getKeysChanges = defineRoute({
  method: 'GET',
  path: `${KEYS_PATH}/changes`,
  operationId: 'getKeysChanges',
  summary: 'Query users with recent device key updates.',
  description:
    'Users sharing a room with you whose devices or keys changed between two sync tokens, or who started ' +
    'sharing a room with you (`changed`), and users who no longer share one (`left`).',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    query: Type.Object({
      from: Type.String({ description: 'A `next_batch` of an earlier /sync.' }),
      to: Type.String({ description: 'A later `next_batch`, typically the latest.' }),
    }),
  },
  responses: {
    200: Type.Object(
      {
        changed: Type.Array(Type.String(), { description: 'Users whose devices or keys changed.' }),
        left: Type.Array(Type.String(), { description: 'Users who no longer share a room with you.' }),
      },
      { description: 'The users whose device lists changed.' },
    ),
    400: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const from = parseSyncToken(req.query.from, 'from').deviceLists;
    const latest = await hs.deviceKeys.latestDeviceListPosition();
    const to = Math.min(parseSyncToken(req.query.to, 'to').deviceLists, latest);
    const changes = await hs.deviceKeys.deviceListChanges(req.requester.userId, from, to);
    return reply(200, changes);
  },
});

export const uploadCrossSigningKeys = defineRoute({
  method: 'POST',
  path: `${KEYS_PATH}/device_signing/upload`,
  operationId: 'uploadCrossSigningKeys',
  summary: 'Upload cross-signing keys.',
  description:
    'The first upload of a master key, or one repeating the keys held, needs no user-interactive auth; replacing ' +
    'keys does (m.login.password; m.login.dummy for an account without a password). Self-signing and ' +
    'user-signing keys must be signed by the master key.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    body: Type.Object(
      {
        master_key: Type.Optional(AnyObject("The user's master signing key.")),
        self_signing_key: Type.Optional(AnyObject("The user's self-signing key.")),
        user_signing_key: Type.Optional(AnyObject("The user's user-signing key.")),
        auth: Type.Optional(AuthData),
      },
      { additionalProperties: true },
    ),
  },
  responses: userInteractiveAuthResponses(EmptyResponse),
  async handler(req, hs) {
    const { userId } = req.requester;
    const upload = req.body;
    const hasKeys =
      upload.master_key !== undefined ||
      upload.self_signing_key !== undefined ||
      upload.user_signing_key !== undefined;
    if (!hasKeys && upload.auth === undefined) return reply(200, {});
    // application-service "Cross-signing": a service replaces its users' keys without UIA.
    const exempt = req.requester.appservice !== undefined;
    if (hasKeys && (exempt || !(await hs.deviceKeys.crossSigningUploadNeedsAuth(userId, upload)))) {
      await hs.deviceKeys.uploadCrossSigningKeys(userId, upload);
      return reply(200, {});
    }
    const account = await hs.storage.accounts.getAccount(userId);
    const auth = await requireUserInteractiveAuth(
      hs,
      {
        method: 'POST',
        uri: `${KEYS_PATH}/device_signing/upload`,
        body: req.body as JsonObject,
        requester: req.requester,
      },
      { flows: account?.passwordHash ? [[STAGE_PASSWORD]] : [[STAGE_DUMMY]] },
    );
    if (auth.authenticatedUserId !== undefined && auth.authenticatedUserId !== userId) {
      throw MatrixError.forbidden('Authenticated as a different user');
    }
    // Keys sent with the first request of the flow count when the last one carries only `auth`.
    await hs.deviceKeys.uploadCrossSigningKeys(userId, hasKeys ? upload : auth.clientDict);
    await finishUserInteractiveAuth(hs, auth);
    return reply(200, {});
  },
});

export const uploadCrossSigningSignatures = defineRoute({
  method: 'POST',
  path: `${KEYS_PATH}/signatures/upload`,
  operationId: 'uploadCrossSigningSignatures',
  summary: 'Upload cross-signing signatures.',
  description:
    'Signatures of your devices (by your self-signing key), of your master key (by a device) and of other ' +
    "users' master keys (by your user-signing key). Each is verified; failures are reported per key.",
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    body: Type.Record(Type.String(), Type.Record(Type.String(), AnyObject('A signed key object.')), {
      description: 'User ID -> key ID (a device ID or a public key) -> the signed key.',
    }),
  },
  responses: {
    200: Type.Object(
      {
        failures: Type.Record(Type.String(), Type.Record(Type.String(), AnyObject('An error.')), {
          description: 'User ID -> key ID -> error, for the signatures that were refused.',
        }),
      },
      { description: 'The signatures were processed.' },
    ),
    400: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const failures = await hs.deviceKeys.uploadSignatures(req.requester.userId, req.body);
    return reply(200, { failures });
  },
});

export const keysRoutes = [
  uploadKeys,
  queryKeys,
  claimKeys,
  getKeysChanges,
  uploadCrossSigningKeys,
  uploadCrossSigningSignatures,
];
