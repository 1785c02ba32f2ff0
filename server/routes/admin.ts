/**
 * client-server "Server administration" (admin.yaml):
 *   GET /_matrix/client/v3/admin/whois/{userId}
 *   GET|PUT /_matrix/client/v1/admin/suspend/{userId}   (v1.18, "Account suspension")
 *   GET|PUT /_matrix/client/v1/admin/lock/{userId}      (v1.18, "Account locking")
 * whois: a user may look themselves up; server admins anyone local. Each device is one
 * session with its most recent connection (devices keep their last IP, user agent
 * and time, as Synapse reports them). Suspending and locking are for server admins,
 * on local, active, non-admin accounts; authorisation is checked before any lookup
 * so the answers tell nothing about who exists.
 */
import { type Static, type TBoolean, type TObject, Type } from '@sinclair/typebox';
import { belongsToServer, isValidUserId } from '../../protocol/identifiers.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
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

type ModerationFlag = 'suspended' | 'locked';

/** The target of a suspend/lock call, checked in the spec's order; its account when it may be moderated. */
async function moderationTarget(
  hs: HomeserverContext,
  requester: AuthenticatedUser,
  userId: string,
  changing: boolean,
) {
  if (!requester.isAdmin) throw MatrixError.forbidden('Requesting user is not a server administrator');
  if (!isValidUserId(userId, { historical: true }) || !belongsToServer(userId, hs.config.server_name)) {
    throw MatrixError.invalidParam('User does not belong to the local server');
  }
  const account = await hs.storage.accounts.getAccount(userId);
  if (account === null || account.deactivated) throw MatrixError.notFound('User not found');
  if (changing && account.isAdmin) throw MatrixError.forbidden('Server administrators cannot be moderated');
  return account;
}

function moderationRoutes(flag: ModerationFlag, path: string, noun: string) {
  const Body = Type.Object({
    [flag]: Type.Boolean({ description: `Whether the account is ${flag}.` }),
  }) as TObject<{ [K in ModerationFlag]: TBoolean }>;
  const errorsOf = { 400: MatrixErrorBody, 403: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody };
  const params = Type.Object({ userId: Type.String({ description: 'The user to look up or change.' }) });
  const common = {
    path,
    tags: ['Server administration'],
    resource: 'client',
    auth: 'access-token',
    rateLimit: 'client',
  } as const;
  const get = defineRoute({
    ...common,
    method: 'GET',
    operationId: `getAdmin${noun}User`,
    summary: `Gets information about the ${flag} status of a particular user.`,
    request: { params },
    responses: { 200: Body, ...errorsOf },
    async handler(req, hs) {
      const account = await moderationTarget(hs, req.requester, req.params.userId, false);
      return reply(200, { [flag]: account[flag] } as Static<typeof Body>);
    },
  });
  const put = defineRoute({
    ...common,
    method: 'PUT',
    operationId: `setAdmin${noun}User`,
    summary: `Set the ${flag} status of a particular user.`,
    request: { params, body: Body },
    responses: { 200: Body, ...errorsOf },
    async handler(req, hs) {
      const { userId } = req.params;
      await moderationTarget(hs, req.requester, userId, true);
      const value = (req.body as Record<ModerationFlag, boolean>)[flag];
      if (flag === 'suspended') await hs.storage.accounts.setSuspended(userId, value);
      else await hs.storage.accounts.setLocked(userId, value);
      hs.sessions.accountChanged(userId);
      req.log.info({ userId, [flag]: value, admin: req.requester.userId }, `Account ${flag} status changed`);
      return reply(200, { [flag]: value } as Static<typeof Body>);
    },
  });
  return [get, put];
}

export const adminRoutes = [
  getWhoIs,
  ...moderationRoutes('suspended', '/_matrix/client/v1/admin/suspend/{userId}', 'Suspend'),
  ...moderationRoutes('locked', '/_matrix/client/v1/admin/lock/{userId}', 'Lock'),
];
