/**
 * client-server "Account management" and "Adding Account Administrative
 * Contact Information" (password_management.yaml, account_deactivation.yaml,
 * administrative_contact.yaml):
 *   POST /_matrix/client/v3/account/password
 *   POST /_matrix/client/v3/account/deactivate
 *   GET  /_matrix/client/v3/account/3pid
 *   POST /_matrix/client/v3/account/3pid            (deprecated; refused)
 *   POST /_matrix/client/v3/account/3pid/add        (refused: no 3PID can be validated here)
 *   POST /_matrix/client/v3/account/3pid/bind       (refused: no identity server is trusted)
 *   POST /_matrix/client/v3/account/3pid/delete
 *   POST /_matrix/client/v3/account/3pid/unbind
 * The validation token requests live in register.ts.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import type { Account } from '../../storage/account-store.js';
import { checkNewPassword } from '../accounts/password-policy.js';
import {
  finishUserInteractiveAuth,
  requireUserInteractiveAuth,
  STAGE_DUMMY,
  STAGE_PASSWORD,
  type UiaPolicy,
  type UiaResult,
} from '../accounts/user-interactive-auth.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import {
  AuthData,
  EmptyResponse,
  UserInteractiveAuthResponse,
  userInteractiveAuthResponses,
} from './shared-schemas.js';

const PASSWORD_PATH = '/_matrix/client/v3/account/password';
const DEACTIVATE_PATH = '/_matrix/client/v3/account/deactivate';

const UnbindResult = Type.Object(
  {
    id_server_unbind_result: Type.Union([Type.Literal('success'), Type.Literal('no-support')], {
      description: 'Whether an identity server unbound the identifier; this server uses none.',
    }),
  },
  { description: 'Done.' },
);

/**
 * Who must prove themselves: a logged-in user with a password re-enters it; a
 * logged-in user without one (a JWT or otherwise passwordless account) has
 * only their access token to show, so m.login.dummy; without an access token,
 * the password stage says who the user is.
 */
async function reauthenticationPolicy(
  hs: HomeserverContext,
  requester: AuthenticatedUser | undefined,
): Promise<UiaPolicy> {
  if (!requester) return { flows: [[STAGE_PASSWORD]] };
  const account = await hs.storage.accounts.getAccount(requester.userId);
  return { flows: account?.passwordHash ? [[STAGE_PASSWORD]] : [[STAGE_DUMMY]] };
}

/**
 * User-interactive auth by the reauthentication policy, then the account it proves (the
 * requester's, or the password stage's user), which must still be active.
 * @throws UserInteractiveAuthRequired (401) until the stages are done; 403 M_FORBIDDEN,
 *   M_USER_DEACTIVATED.
 */
async function reauthenticatedAccount(
  hs: HomeserverContext,
  requester: AuthenticatedUser | undefined,
  uri: string,
  body: JsonObject,
): Promise<{ auth: UiaResult; account: Account }> {
  const auth = await requireUserInteractiveAuth(
    hs,
    { method: 'POST', uri, body, ...(requester ? { requester } : {}) },
    await reauthenticationPolicy(hs, requester),
  );
  const userId = requester?.userId ?? auth.authenticatedUserId;
  const account = userId === undefined ? null : await hs.storage.accounts.getAccount(userId);
  if (!account) throw MatrixError.forbidden('No user was authenticated');
  if (account.deactivated) throw MatrixError.of('M_USER_DEACTIVATED', 'This account has been deactivated');
  return { auth, account };
}

export const changePassword = defineRoute({
  method: 'POST',
  path: PASSWORD_PATH,
  operationId: 'changePassword',
  summary: "Changes a user's password.",
  description:
    'Needs user-interactive authentication: m.login.password (m.login.dummy for a logged-in account that has no password). ' +
    'With logout_devices (default true) every other device and session of the user is logged out.',
  tags: ['Account management'],
  resource: 'client',
  auth: 'optional',
  // Each attempt may check a password: drawn from the login bucket.
  rateLimit: 'login',
  request: {
    body: Type.Object(
      {
        new_password: Type.String({ description: 'The new password for the account.' }),
        logout_devices: Type.Optional(
          Type.Boolean({
            description: "Revoke the user's other access tokens and devices. Defaults to true.",
          }),
        ),
        auth: Type.Optional(AuthData),
      },
      { additionalProperties: true },
    ),
  },
  responses: userInteractiveAuthResponses(EmptyResponse),
  async handler(req, hs) {
    const requester = req.requester;
    if (requester?.isGuest) {
      throw MatrixError.of('M_GUEST_ACCESS_FORBIDDEN', 'Guest accounts cannot change their password');
    }
    checkNewPassword(req.body.new_password, hs.config.registration);
    const { auth, account } = await reauthenticatedAccount(
      hs,
      requester,
      PASSWORD_PATH,
      req.body as JsonObject,
    );
    const userId = account.userId;

    await hs.storage.accounts.setPasswordHash(userId, await hs.passwords.hash(req.body.new_password));
    if (req.body.logout_devices !== false) {
      // "The homeserver SHOULD NOT revoke the access token provided in the request."
      const others = (await hs.storage.devices.listDevices(userId))
        .map((device) => device.deviceId)
        .filter((deviceId) => deviceId !== requester?.deviceId);
      await hs.sessions.deleteDevices(userId, others);
      await hs.sessions.revokeAllSessions(userId, requester ? { exceptSessionId: requester.sessionId } : {});
    }
    await finishUserInteractiveAuth(hs, auth);
    req.log.info({ userId, loggedOutOthers: req.body.logout_devices !== false }, 'Password changed');
    return reply(200, {});
  },
});

export const deactivateAccount = defineRoute({
  method: 'POST',
  path: DEACTIVATE_PATH,
  operationId: 'deactivateAccount',
  summary: "Deactivate a user's account.",
  description:
    'Needs user-interactive authentication as for a password change. Every access token and device of the ' +
    "user goes at once; `erase` is recorded for a later erasure of the user's data.",
  tags: ['Account management'],
  resource: 'client',
  auth: 'optional',
  rateLimit: 'login',
  request: {
    body: Type.Object(
      {
        auth: Type.Optional(AuthData),
        id_server: Type.Optional(Type.String({ description: 'Ignored: this server binds no identifiers.' })),
        erase: Type.Optional(
          Type.Boolean({ description: "Whether the user's content should be erased. Defaults to false." }),
        ),
      },
      { additionalProperties: true },
    ),
    allowEmptyBody: true,
  },
  responses: userInteractiveAuthResponses(UnbindResult),
  async handler(req, hs) {
    const requester = req.requester;
    const { auth, account } = await reauthenticatedAccount(
      hs,
      requester,
      DEACTIVATE_PATH,
      req.body as JsonObject,
    );
    const erase = req.body.erase === true;
    await deactivate(hs, account.userId, erase);
    await finishUserInteractiveAuth(hs, auth);
    req.log.info({ userId: account.userId, erase }, 'Account deactivated');
    // "If the homeserver does not know which id_server that was, it must return no-support."
    return reply(200, { id_server_unbind_result: 'no-support' as const });
  },
});

/**
 * client-server "Account deactivation": the account is marked first (so no new
 * login can start), then every session ends and every device goes, then the
 * listeners run (#4: leave every room).
 */
export async function deactivate(hs: HomeserverContext, userId: string, erase: boolean): Promise<void> {
  await hs.storage.accounts.setDeactivated(userId, true, erase);
  hs.sessions.accountChanged(userId);
  const devices = await hs.storage.devices.listDevices(userId);
  await hs.sessions.deleteDevices(
    userId,
    devices.map((device) => device.deviceId),
  );
  await hs.sessions.revokeAllSessions(userId);
  for (const listener of hs.onAccountDeactivated) await listener({ userId, erase });
}

const ThreePidsResponse = Type.Object(
  {
    threepids: Type.Array(
      Type.Object({
        medium: Type.String(),
        address: Type.String(),
        validated_at: Type.Integer(),
        added_at: Type.Integer(),
      }),
    ),
  },
  { description: 'The third-party identifiers associated with the account (always none here).' },
);

export const getAccount3pids = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/account/3pid',
  operationId: 'getAccount3PIDs',
  summary: "Gets a list of a user's third-party identifiers.",
  tags: ['Account management'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  responses: { 200: ThreePidsResponse },
  async handler() {
    return reply(200, { threepids: [] });
  },
});

const ThreePidCredentials = Type.Object(
  {
    client_secret: Type.String(),
    sid: Type.String(),
    id_server: Type.Optional(Type.String()),
    id_access_token: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

export const post3pids = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/account/3pid',
  operationId: 'post3PIDs',
  summary: "Adds contact information to the user's account (deprecated).",
  description: 'Always 403 M_THREEPID_AUTH_FAILED: this server consults no identity server.',
  tags: ['Account management'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    body: Type.Object({ three_pid_creds: ThreePidCredentials }, { additionalProperties: true }),
  },
  responses: { 200: EmptyResponse, 403: MatrixErrorBody },
  async handler(): Promise<never> {
    throw new MatrixError(
      403,
      'M_THREEPID_AUTH_FAILED',
      'The third-party credentials could not be verified: this server consults no identity server.',
    );
  },
});

export const add3pid = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/account/3pid/add',
  operationId: 'add3PID',
  summary: "Adds contact information to the user's account.",
  description:
    'Always 400 M_THREEPID_AUTH_FAILED: this server sends no email or SMS, so no validation session can exist.',
  tags: ['Account management'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    body: Type.Object(
      { client_secret: Type.String(), sid: Type.String(), auth: Type.Optional(AuthData) },
      { additionalProperties: true },
    ),
  },
  responses: { 200: EmptyResponse, 400: MatrixErrorBody, 401: UserInteractiveAuthResponse },
  async handler(): Promise<never> {
    throw MatrixError.of(
      'M_THREEPID_AUTH_FAILED',
      'No validated third-party identifier session: this server sends no email or SMS to validate one.',
    );
  },
});

export const bind3pid = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/account/3pid/bind',
  operationId: 'bind3PID',
  summary: "Binds a 3PID to the user's account through an identity server.",
  description: 'Always 400 M_SERVER_NOT_TRUSTED: this server trusts no identity server.',
  tags: ['Account management'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    body: Type.Object(
      {
        client_secret: Type.String(),
        id_server: Type.String(),
        id_access_token: Type.String(),
        sid: Type.String(),
      },
      { additionalProperties: true },
    ),
  },
  responses: { 200: EmptyResponse, 400: MatrixErrorBody },
  async handler(): Promise<never> {
    throw MatrixError.of(
      'M_SERVER_NOT_TRUSTED',
      'This server trusts no identity server to bind identifiers.',
    );
  },
});

const ThreePidAddress = Type.Object(
  {
    medium: Type.Union([Type.Literal('email'), Type.Literal('msisdn')]),
    address: Type.String(),
    id_server: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

/** No identifier is ever associated with an account here, so there is nothing to remove and no identity server to tell. */
function no3pidToRemove(path: string, operationId: string, summary: string) {
  return defineRoute({
    method: 'POST',
    path,
    operationId,
    summary,
    description: 'No third-party identifier is ever associated here: answers no-support.',
    tags: ['Account management'],
    resource: 'client',
    auth: 'access-token',
    rateLimit: 'client',
    request: { body: ThreePidAddress },
    responses: { 200: UnbindResult },
    async handler() {
      return reply(200, { id_server_unbind_result: 'no-support' as const });
    },
  });
}

export const delete3pid = no3pidToRemove(
  '/_matrix/client/v3/account/3pid/delete',
  'delete3pidFromAccount',
  "Deletes a third-party identifier from the user's account.",
);

export const unbind3pid = no3pidToRemove(
  '/_matrix/client/v3/account/3pid/unbind',
  'unbind3pidFromAccount',
  "Removes a user's third-party identifier from an identity server.",
);

export const accountRoutes = [
  changePassword,
  deactivateAccount,
  getAccount3pids,
  post3pids,
  add3pid,
  bind3pid,
  delete3pid,
  unbind3pid,
];
