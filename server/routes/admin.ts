/**
 * client-server "Server administration" (admin.yaml):
 *   GET /_matrix/client/v3/admin/whois/{userId}
 * A user may look themselves up; server admins anyone local. Each device is one
 * session with its most recent connection (devices keep their last IP, user agent
 * and time, as Synapse reports them).
 */
import { Type } from '@sinclair/typebox';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const ConnectionInfo = Type.Object({
  ip: Type.Optional(Type.String({ description: 'Most recently seen IP address of the session.' })),
  last_seen: Type.Optional(Type.Integer({ description: 'When the session was last active (ms).' })),
  user_agent: Type.Optional(Type.String({ description: 'User agent string last seen in the session.' })),
});

export const getWhoIs = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/admin/whois/{userId}',
  operationId: 'getWhoIs',
  summary: 'Gets information about a particular user.',
  description: 'Restricted to the user themselves and to server admins.',
  tags: ['Server administration'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: Type.Object({ userId: Type.String({ description: 'The user to look up.' }) }) },
  responses: {
    200: Type.Object(
      {
        user_id: Type.String(),
        devices: Type.Record(
          Type.String(),
          Type.Object({ sessions: Type.Array(Type.Object({ connections: Type.Array(ConnectionInfo) })) }),
        ),
      },
      { description: 'The lookup was successful.' },
    ),
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { userId } = req.params;
    // Authorisation before any lookup, so the answer tells nothing about who exists.
    if (userId !== req.requester.userId && !req.requester.isAdmin) {
      throw MatrixError.forbidden('Only server admins may look up other users');
    }
    if ((await hs.storage.accounts.getAccount(userId)) === null) throw MatrixError.notFound('No such user');
    const devices: Record<string, { sessions: { connections: object[] }[] }> = {};
    for (const device of await hs.storage.devices.listDevices(userId)) {
      const connection = {
        ...(device.lastSeenIp !== null ? { ip: device.lastSeenIp } : {}),
        ...(device.lastSeenTs !== null ? { last_seen: device.lastSeenTs } : {}),
        ...(device.lastSeenUserAgent !== null ? { user_agent: device.lastSeenUserAgent } : {}),
      };
      devices[device.deviceId] = { sessions: [{ connections: [connection] }] };
    }
    return reply(200, { user_id: userId, devices });
  },
});

export const adminRoutes = [getWhoIs];
