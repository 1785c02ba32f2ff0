/**
 * server-server "End-to-End Encryption" and "Device Management" reads (user_keys.yaml,
 * user_devices.yaml), for users of this server only:
 *   GET  /_matrix/federation/v1/user/devices/{userId}
 *   POST /_matrix/federation/v1/user/keys/query
 *   POST /_matrix/federation/v1/user/keys/claim
 * All X-Matrix authenticated. Users of other servers are left out (never asked onwards).
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { belongsToServer, isValidUserId } from '../../protocol/identifiers.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const TAGS = ['Federation end-to-end encryption'];
const AnyObject = (description: string) => Type.Object({}, { additionalProperties: true, description });
const errors = { 400: MatrixErrorBody, 403: MatrixErrorBody, 404: MatrixErrorBody };

function isLocalUser(hs: HomeserverContext, userId: string): boolean {
  return isValidUserId(userId, { historical: true }) && belongsToServer(userId, hs.config.server_name);
}

/** Only this server's users: a peer asks each server for its own users. */
function localOnly<T>(hs: HomeserverContext, byUser: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(byUser).filter(([userId]) => isLocalUser(hs, userId)));
}

export const getUserDevices = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/user/devices/{userId}',
  operationId: 'getUserDevices',
  summary: "Get a local user's devices and their keys.",
  description:
    'The device list with each device key and display name, the stream position of the list, and the ' +
    "user's master and self-signing keys.",
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: { params: Type.Object({ userId: Type.String({ description: 'The user ID.' }) }) },
  responses: {
    200: Type.Object(
      {
        user_id: Type.String(),
        stream_id: Type.Integer(),
        devices: Type.Array(AnyObject('A device: device_id, keys, device_display_name.')),
        master_key: Type.Optional(AnyObject("The user's master key.")),
        self_signing_key: Type.Optional(AnyObject("The user's self-signing key.")),
      },
      { description: 'The devices.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const { userId } = req.params;
    if (!isLocalUser(hs, userId)) throw MatrixError.invalidParam(`${userId} is not a user of this server`);
    // The stream ID of our last m.device_list_update for the user, read before the devices: an
    // update not yet recorded may then be in the list already (applying it again is harmless),
    // but the list never lacks a change the stream ID claims.
    const { lastStreamId: streamId } = await hs.storage.e2eKeys.outboundDeviceList(userId);
    const [devices, keys] = await Promise.all([
      hs.storage.devices.listDevices(userId),
      hs.deviceKeys.queryKeys(req.requester.serverName, { [userId]: [] }, 0),
    ]);
    const deviceKeys = keys.device_keys[userId] ?? {};
    const body: { user_id: string; stream_id: number; devices: JsonObject[]; [key: string]: unknown } = {
      user_id: userId,
      stream_id: streamId,
      devices: devices.map((device) => {
        const entry: JsonObject = { device_id: device.deviceId };
        const held = deviceKeys[device.deviceId];
        if (held !== undefined) {
          const { unsigned: _unsigned, ...withoutUnsigned } = held;
          entry.keys = withoutUnsigned;
        }
        if (device.displayName) entry.device_display_name = device.displayName;
        return entry;
      }),
    };
    if (keys.master_keys[userId]) body.master_key = keys.master_keys[userId];
    if (keys.self_signing_keys[userId]) body.self_signing_key = keys.self_signing_keys[userId];
    return reply(200, body);
  },
});

export const queryUserKeys = defineRoute({
  method: 'POST',
  path: '/_matrix/federation/v1/user/keys/query',
  operationId: 'queryUserKeys',
  summary: 'Download device and cross-signing keys of local users.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    body: Type.Object({
      device_keys: Type.Record(Type.String(), Type.Array(Type.String()), {
        description: 'The devices to ask for, by user; an empty list means all of them.',
      }),
    }),
  },
  responses: {
    200: Type.Object(
      {
        device_keys: AnyObject('Device keys by user and device.'),
        master_keys: AnyObject('Master keys by user.'),
        self_signing_keys: AnyObject('Self-signing keys by user.'),
      },
      { description: 'The keys.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const result = await hs.deviceKeys.queryKeys(
      req.requester.serverName,
      localOnly(hs, req.body.device_keys),
      0,
    );
    return reply(200, {
      device_keys: result.device_keys,
      master_keys: result.master_keys,
      self_signing_keys: result.self_signing_keys,
    });
  },
});

export const claimUserKeys = defineRoute({
  method: 'POST',
  path: '/_matrix/federation/v1/user/keys/claim',
  operationId: 'claimUserKeys',
  summary: 'Claim one-time keys of local users.',
  description: 'One key per device: a one-time key while any is left, else the fallback key.',
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    body: Type.Object({
      one_time_keys: Type.Record(Type.String(), Type.Record(Type.String(), Type.String()), {
        description: 'The key algorithm to claim, by user and device.',
      }),
    }),
  },
  responses: {
    200: Type.Object(
      { one_time_keys: AnyObject('The claimed keys by user, device and key ID.') },
      { description: 'The claimed keys.' },
    ),
    ...errors,
  },
  async handler(req, hs) {
    const result = await hs.deviceKeys.claimKeys(
      req.requester.serverName,
      localOnly(hs, req.body.one_time_keys),
      0,
    );
    return reply(200, { one_time_keys: result.one_time_keys });
  },
});

export const federationE2eRoutes = [getUserDevices, queryUserKeys, claimUserKeys];
