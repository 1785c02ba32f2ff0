/**
 * client-server "Device management" (device_management.yaml):
 *   GET    /_matrix/client/v3/devices
 *   GET    /_matrix/client/v3/devices/{deviceId}
 *   PUT    /_matrix/client/v3/devices/{deviceId}   (application services may create)
 *   DELETE /_matrix/client/v3/devices/{deviceId}   (user-interactive auth but for application services)
 *   POST   /_matrix/client/v3/delete_devices       (user-interactive auth but for application services)
 * last_seen_ip and last_seen_ts are what storage holds merged with the
 * newest sighting the last-seen recorder has not flushed yet. The user agent
 * is recorded but, as in Synapse (MSC3852 was closed), not shown to clients.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import type { Device } from '../../storage/device-store.js';
import { isStorageError } from '../../storage/errors.js';
import { assertDeviceIdChoosable } from '../accounts/device-ids.js';
import {
  finishUserInteractiveAuth,
  requireUserInteractiveAuth,
  STAGE_DUMMY,
  STAGE_PASSWORD,
  type UiaPolicy,
} from '../accounts/user-interactive-auth.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { AuthData, EmptyResponse, userInteractiveAuthResponses } from './shared-schemas.js';

const DEVICES_PATH = '/_matrix/client/v3/devices';
const DELETE_DEVICES_PATH = '/_matrix/client/v3/delete_devices';
/** Synapse's limit on device display names. */
export const MAX_DEVICE_DISPLAY_NAME_LENGTH = 100;
/** As /login's device_id. */
const MAX_DEVICE_ID_BYTES = 255;

const DeviceBody = Type.Object(
  {
    device_id: Type.String({ description: 'Identifier of this device.' }),
    display_name: Type.Optional(
      Type.String({ description: 'Display name set by the user for this device.' }),
    ),
    last_seen_ip: Type.Optional(
      Type.String({ description: 'The IP address where this device was last seen.' }),
    ),
    last_seen_ts: Type.Optional(
      Type.Integer({
        description: 'The timestamp (ms since the unix epoch) when this device was last seen.',
      }),
    ),
  },
  { description: 'A device of the user.' },
);

const DeviceIdParams = Type.Object({
  deviceId: Type.String({ description: 'The device to act on.' }),
});

function deviceBody(hs: HomeserverContext, device: Device): typeof DeviceBody.static {
  const pending = hs.lastSeen.pending(device.userId, device.deviceId);
  const fresher = pending !== undefined && (device.lastSeenTs === null || pending.ts >= device.lastSeenTs);
  const ip = fresher ? pending.ip : device.lastSeenIp;
  const ts = fresher ? pending.ts : device.lastSeenTs;
  return {
    device_id: device.deviceId,
    ...(device.displayName !== null ? { display_name: device.displayName } : {}),
    ...(ip !== null ? { last_seen_ip: ip } : {}),
    ...(ts !== null ? { last_seen_ts: ts } : {}),
  };
}

/** Re-enter the password; an account without one (JWT login) has only its access token to show. */
async function deviceDeletionPolicy(hs: HomeserverContext, requester: AuthenticatedUser): Promise<UiaPolicy> {
  const account = await hs.storage.accounts.getAccount(requester.userId);
  return { flows: account?.passwordHash ? [[STAGE_PASSWORD]] : [[STAGE_DUMMY]] };
}

async function deleteWithAuth(
  hs: HomeserverContext,
  requester: AuthenticatedUser,
  request: { method: string; uri: string; body: JsonObject },
  deviceIds: readonly string[],
): Promise<void> {
  // application-service "Device management": a service deletes its users' devices without UIA.
  if (requester.appservice !== undefined) {
    await hs.sessions.deleteDevices(requester.userId, deviceIds);
    return;
  }
  const auth = await requireUserInteractiveAuth(
    hs,
    { ...request, requester },
    await deviceDeletionPolicy(hs, requester),
  );
  // The password stage matched the requester already; this guards a session someone else completed.
  if (auth.authenticatedUserId !== undefined && auth.authenticatedUserId !== requester.userId) {
    throw MatrixError.forbidden('Authenticated as a different user');
  }
  await hs.sessions.deleteDevices(requester.userId, deviceIds);
  await finishUserInteractiveAuth(hs, auth);
}

export const getDevices = defineRoute({
  method: 'GET',
  path: DEVICES_PATH,
  operationId: 'getDevices',
  summary: "List registered devices for the current user's account.",
  tags: ['Device management'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  responses: {
    200: Type.Object(
      { devices: Type.Array(DeviceBody, { description: 'A list of all registered devices for this user.' }) },
      { description: 'Device information.' },
    ),
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const devices = await hs.storage.devices.listDevices(req.requester.userId);
    return reply(200, { devices: devices.map((device) => deviceBody(hs, device)) });
  },
});

export const getDevice = defineRoute({
  method: 'GET',
  path: `${DEVICES_PATH}/{deviceId}`,
  operationId: 'getDevice',
  summary: 'Get a single device.',
  tags: ['Device management'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: DeviceIdParams },
  responses: { 200: DeviceBody, 404: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const device = await hs.storage.devices.getDevice(req.requester.userId, req.params.deviceId);
    if (!device) throw MatrixError.notFound('Device not found');
    return reply(200, deviceBody(hs, device));
  },
});

/** application-service "Device management": a device made without a login (no access token). */
async function createAppserviceDevice(
  hs: HomeserverContext,
  userId: string,
  deviceId: string,
  displayName: string | null,
): Promise<void> {
  if (deviceId === '' || Buffer.byteLength(deviceId, 'utf8') > MAX_DEVICE_ID_BYTES) {
    throw MatrixError.invalidParam(`A device ID has 1 to ${MAX_DEVICE_ID_BYTES} bytes`);
  }
  assertDeviceIdChoosable(deviceId);
  try {
    await hs.storage.devices.createDevice({ userId, deviceId, displayName, createdTs: Date.now() });
  } catch (error) {
    // Made by a concurrent request: it exists, which is what was asked.
    if (!isStorageError(error, 'CONFLICT')) throw error;
  }
  hs.deviceKeys.devicesChanged(userId);
}

export const updateDevice = defineRoute({
  method: 'PUT',
  path: `${DEVICES_PATH}/{deviceId}`,
  operationId: 'updateDevice',
  summary: 'Create or update a device',
  description:
    'Sets the display name of one of your devices. An application service (as_token, acting as one of ' +
    'its users) may also create a device this way: 201.',
  tags: ['Device management'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: DeviceIdParams,
    body: Type.Object(
      {
        display_name: Type.Optional(
          Type.String({
            description: 'The new display name for this device. If not given, the display name is unchanged.',
          }),
        ),
      },
      { additionalProperties: true },
    ),
    allowEmptyBody: true,
  },
  responses: {
    200: EmptyResponse,
    201: { ...EmptyResponse, description: 'The device was created by the application service.' },
    400: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { userId } = req.requester;
    const displayName = req.body.display_name;
    if (displayName !== undefined && [...displayName].length > MAX_DEVICE_DISPLAY_NAME_LENGTH) {
      throw MatrixError.invalidParam(
        `Device display names are at most ${MAX_DEVICE_DISPLAY_NAME_LENGTH} characters`,
      );
    }
    const device = await hs.storage.devices.getDevice(userId, req.params.deviceId);
    if (!device && req.requester.appservice !== undefined) {
      await createAppserviceDevice(hs, userId, req.params.deviceId, displayName ?? null);
      return reply(201, {});
    }
    if (!device) throw MatrixError.notFound('Device not found');
    if (displayName !== undefined) {
      await hs.storage.devices.setDisplayName(userId, device.deviceId, displayName);
      // The name is in /keys/query (unsigned.device_display_name); storage recorded the change.
      if (displayName !== device.displayName) hs.deviceKeys.devicesChanged(userId);
    }
    return reply(200, {});
  },
});

export const deleteDevice = defineRoute({
  method: 'DELETE',
  path: `${DEVICES_PATH}/{deviceId}`,
  operationId: 'deleteDevice',
  summary: 'Delete a device.',
  description:
    'Needs user-interactive authentication (m.login.password; m.login.dummy for an account without a password). ' +
    "Deletes the device and ends its sessions: the device's access token fails on its next use. " +
    'Deleting a device that does not exist succeeds.',
  tags: ['Device management'],
  resource: 'client',
  auth: 'access-token',
  // A password is checked, but only for a caller who already holds the account's token; people clean up many devices in a row.
  rateLimit: 'client',
  request: {
    params: DeviceIdParams,
    body: Type.Object({ auth: Type.Optional(AuthData) }, { additionalProperties: true }),
    allowEmptyBody: true,
  },
  responses: userInteractiveAuthResponses(EmptyResponse),
  async handler(req, hs) {
    const uri = `${DEVICES_PATH}/${encodeURIComponent(req.params.deviceId)}`;
    await deleteWithAuth(hs, req.requester, { method: 'DELETE', uri, body: req.body as JsonObject }, [
      req.params.deviceId,
    ]);
    req.log.info({ userId: req.requester.userId, deviceId: req.params.deviceId }, 'Device deleted');
    return reply(200, {});
  },
});

export const deleteDevices = defineRoute({
  method: 'POST',
  path: DELETE_DEVICES_PATH,
  operationId: 'deleteDevices',
  summary: 'Bulk deletion of devices.',
  description:
    'Needs user-interactive authentication as for deleting one device. Unknown device IDs are ignored.',
  tags: ['Device management'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    body: Type.Object(
      {
        devices: Type.Array(Type.String(), {
          description: 'The list of device IDs to delete.',
          maxItems: 1000,
        }),
        auth: Type.Optional(AuthData),
      },
      { additionalProperties: true },
    ),
  },
  responses: userInteractiveAuthResponses(EmptyResponse),
  async handler(req, hs) {
    const deviceIds = [...new Set(req.body.devices)];
    await deleteWithAuth(
      hs,
      req.requester,
      { method: 'POST', uri: DELETE_DEVICES_PATH, body: req.body as JsonObject },
      deviceIds,
    );
    req.log.info({ userId: req.requester.userId, devices: deviceIds.length }, 'Devices deleted');
    return reply(200, {});
  },
});

export const deviceRoutes = [getDevices, getDevice, updateDevice, deleteDevice, deleteDevices];
