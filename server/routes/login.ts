/**
 * client-server "Login", "Refreshing access tokens", "Logout", "whoami"
 * (login.yaml, login_token.yaml, refresh.yaml, logout.yaml, whoami.yaml):
 *   GET  /_matrix/client/v3/login
 *   POST /_matrix/client/v3/login            m.login.password, m.login.token, org.matrix.login.jwt
 *   POST /_matrix/client/v1/login/get_token
 *   POST /_matrix/client/v3/refresh
 *   POST /_matrix/client/v3/logout
 *   POST /_matrix/client/v3/logout/all
 *   GET  /_matrix/client/v3/account/whoami
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import type { Account } from '../../storage/account-store.js';
import { createAccount } from '../accounts/registration.js';
import { finishUserInteractiveAuth, requireUserInteractiveAuth } from '../accounts/user-interactive-auth.js';
import { appserviceLoginAccount, appserviceOfToken, LOGIN_APPSERVICE } from '../appservice/accounts.js';
import type { HomeserverContext } from '../context.js';
import { isMatrixError, MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const LOGIN_PASSWORD = 'm.login.password';
const LOGIN_TOKEN = 'm.login.token';
const LOGIN_JWT = 'org.matrix.login.jwt';
/** client-server "User Identifiers": the whole ID is at most 255 bytes. */
const MAX_USER_ID_LENGTH = 255;
const MAX_DEVICE_ID_LENGTH = 255;
const MAX_DEVICE_DISPLAY_NAME_LENGTH = 100;
/** A login failure says the same for an unknown user and a wrong password. */
const BAD_CREDENTIALS = 'Invalid username or password.';
/** appendices "User Identifiers": the historical grammar is wider, but new accounts use this one. */
const NEW_LOCALPART = /^[a-z0-9._=\-/+]+$/;

const LoginFlows = Type.Object(
  {
    flows: Type.Array(
      Type.Object({
        type: Type.String({ description: 'The login type, supplied as `type` when logging in.' }),
        get_login_token: Type.Optional(
          Type.Boolean({ description: 'For m.login.token: POST /login/get_token is available.' }),
        ),
      }),
      { description: "The homeserver's supported login types." },
    ),
  },
  { description: 'The login types the homeserver supports.' },
);

const LoginRequest = Type.Object(
  {
    type: Type.String({ description: 'The login type, one of those GET /login lists.' }),
    identifier: Type.Optional(
      Type.Object(
        { type: Type.String({ description: 'm.id.user, m.id.thirdparty or m.id.phone.' }) },
        { additionalProperties: true, description: 'Identification information for the user.' },
      ),
    ),
    user: Type.Optional(Type.String({ description: 'Deprecated: the user ID or localpart.' })),
    medium: Type.Optional(Type.String({ description: 'Deprecated: a third-party identifier medium.' })),
    address: Type.Optional(Type.String({ description: 'Deprecated: a third-party identifier.' })),
    password: Type.Optional(Type.String({ description: 'For m.login.password.' })),
    token: Type.Optional(Type.String({ description: 'For m.login.token and org.matrix.login.jwt.' })),
    device_id: Type.Optional(
      Type.String({ minLength: 1, maxLength: MAX_DEVICE_ID_LENGTH, description: 'ID of the client device.' }),
    ),
    initial_device_display_name: Type.Optional(
      Type.String({ description: 'A display name for a newly created device.' }),
    ),
    refresh_token: Type.Optional(Type.Boolean({ description: 'The client supports refresh tokens.' })),
  },
  { additionalProperties: true },
);

export const LoginResponse = Type.Object(
  {
    user_id: Type.String({ description: 'The fully-qualified Matrix ID for the account.' }),
    access_token: Type.String({ description: 'An access token for the account.' }),
    device_id: Type.String({ description: 'ID of the logged-in device.' }),
    refresh_token: Type.Optional(Type.String({ description: 'A refresh token for the account.' })),
    expires_in_ms: Type.Optional(
      Type.Integer({ description: 'The lifetime of the access token, in milliseconds.' }),
    ),
    home_server: Type.Optional(Type.String({ description: 'Deprecated: the server name.' })),
  },
  { description: 'The user has been authenticated.' },
);

const Empty = Type.Object({}, { description: 'Done.' });
const Error400 = { ...MatrixErrorBody, description: 'Part of the request was invalid.' };
const Error401 = { ...MatrixErrorBody, description: 'The token is unknown, expired or has been used.' };
const Error403 = { ...MatrixErrorBody, description: 'The login attempt failed.' };
const Error429 = { ...MatrixErrorBody, description: 'This request was rate-limited.' };

export const getLoginFlows = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/login',
  operationId: 'getLoginFlows',
  summary: 'Get the supported login types to authenticate users',
  tags: ['Session management'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'client',
  responses: { 200: LoginFlows, 429: Error429 },
  async handler(_req, hs) {
    const flows: { type: string; get_login_token?: boolean }[] = [
      { type: LOGIN_PASSWORD },
      { type: LOGIN_TOKEN, get_login_token: true },
    ];
    if (hs.jwtLogin) flows.push({ type: LOGIN_JWT });
    if (hs.appservices.registry.size > 0) flows.push({ type: LOGIN_APPSERVICE });
    return reply(200, { flows });
  },
});

export const login = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/login',
  operationId: 'login',
  summary: 'Authenticates the user.',
  description:
    'm.login.password (identifier m.id.user or the legacy `user`, localpart or user ID, case-insensitive), m.login.token (from /login/get_token), m.login.application_service (with an as_token, for users of its namespace) and, when configured, org.matrix.login.jwt.',
  tags: ['Session management'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'login',
  request: { body: LoginRequest },
  responses: { 200: LoginResponse, 400: Error400, 401: Error401, 403: Error403, 429: Error429 },
  async handler(req, hs) {
    const body = req.body;
    let account: Account;
    switch (body.type) {
      case LOGIN_PASSWORD:
        account = await passwordLogin(hs, body);
        break;
      case LOGIN_TOKEN:
        account = await tokenLogin(hs, body.token);
        break;
      case LOGIN_JWT:
        if (!hs.jwtLogin) throw MatrixError.of('M_UNKNOWN', 'Unknown login type.');
        account = await jwtLogin(hs, body.token);
        break;
      case LOGIN_APPSERVICE:
        account = await appserviceLoginAccount(
          hs,
          appserviceOfToken(hs, req.headers, req.query as Record<string, unknown>),
          body,
        );
        break;
      default:
        throw MatrixError.of('M_UNKNOWN', 'Unknown login type.');
    }
    const session = await hs.sessions.createLoginSession({
      userId: account.userId,
      ...(body.device_id !== undefined ? { deviceId: body.device_id } : {}),
      ...(body.initial_device_display_name !== undefined
        ? {
            initialDeviceDisplayName: body.initial_device_display_name.slice(
              0,
              MAX_DEVICE_DISPLAY_NAME_LENGTH,
            ),
          }
        : {}),
      withRefreshToken: body.refresh_token === true,
      isGuest: account.isGuest,
    });
    req.log.info({ userId: account.userId, deviceId: session.device_id, type: body.type }, 'Logged in');
    return reply(200, session);
  },
});

type LoginBody = { identifier?: { type: string; [key: string]: unknown }; user?: string; password?: string };

async function passwordLogin(hs: HomeserverContext, body: LoginBody): Promise<Account> {
  if (typeof body.password !== 'string') throw MatrixError.missingParam("m.login.password needs 'password'");
  const userId = userIdFromIdentifier(hs, body);
  if (userId === undefined) {
    // A third-party identifier: this server binds none, so it names nobody (spec: 403).
    await hs.passwords.verifyDummy(body.password);
    throw MatrixError.forbidden(BAD_CREDENTIALS);
  }
  takeAccountAttempt(hs, userId);
  const account = userId.length <= MAX_USER_ID_LENGTH ? await findAccount(hs, userId) : undefined;
  const valid = account?.passwordHash
    ? await hs.passwords.verify(body.password, account.passwordHash)
    : await hs.passwords.verifyDummy(body.password);
  if (!account || !valid) throw MatrixError.forbidden(BAD_CREDENTIALS);
  assertMayLogIn(account);
  return account;
}

/** The user ID a password login names (not yet checked to exist); undefined for a third-party identifier. */
function userIdFromIdentifier(hs: HomeserverContext, body: LoginBody): string | undefined {
  let user: unknown;
  if (body.identifier !== undefined) {
    switch (body.identifier.type) {
      case 'm.id.user':
        user = body.identifier.user;
        if (typeof user !== 'string') throw MatrixError.badJson("identifier 'user' must be a string");
        break;
      case 'm.id.thirdparty':
      case 'm.id.phone':
        return undefined;
      default:
        throw MatrixError.of('M_UNKNOWN', 'Unknown identifier type.');
    }
  } else if (body.user !== undefined) {
    user = body.user;
  } else if ((body as { medium?: unknown }).medium !== undefined) {
    return undefined;
  } else {
    throw MatrixError.missingParam("m.login.password needs 'identifier'");
  }
  return qualifiedUserId(user as string, hs.config.server_name);
}

/** A localpart or a full user ID as typed; a user ID of another server names nobody here. */
function qualifiedUserId(user: string, serverName: string): string {
  return user.startsWith('@') ? user : `@${user}:${serverName}`;
}

/**
 * Login is case-insensitive: a unique case-insensitive match logs in; when
 * several accounts differ only by case, only the exact one does (as Synapse).
 */
async function findAccount(hs: HomeserverContext, userId: string): Promise<Account | undefined> {
  const candidates = await hs.storage.accounts.findAccountsCaseInsensitive(userId);
  if (candidates.length === 1) return candidates[0];
  return candidates.find((account) => account.userId === userId);
}

/** Per-account attempts, besides the per-address bucket the pipeline already drew from. */
function takeAccountAttempt(hs: HomeserverContext, userId: string): void {
  const key = `account:${userId.slice(0, MAX_USER_ID_LENGTH + 1).toLowerCase()}`;
  const retryAfterMs = hs.rateLimiter.take('login', key);
  if (retryAfterMs > 0) throw MatrixError.limitExceeded(retryAfterMs);
}

async function tokenLogin(hs: HomeserverContext, token: string | undefined): Promise<Account> {
  if (typeof token !== 'string' || token === '')
    throw MatrixError.missingParam("m.login.token needs 'token'");
  const userId = await hs.sessions.consumeLoginToken(token);
  if (userId === null) throw MatrixError.forbidden('Invalid or expired login token.');
  const account = await hs.storage.accounts.getAccount(userId);
  if (!account) throw MatrixError.forbidden('Invalid or expired login token.');
  assertMayLogIn(account);
  return account;
}

async function jwtLogin(hs: HomeserverContext, token: string | undefined): Promise<Account> {
  if (typeof token !== 'string' || token === '')
    throw MatrixError.forbidden("org.matrix.login.jwt needs 'token'");
  const userId = await hs.jwtLogin!.verify(token);
  if (userId.length > MAX_USER_ID_LENGTH) throw MatrixError.forbidden('The JWT names an invalid user ID.');
  const account = await findAccount(hs, userId);
  if (account) {
    assertMayLogIn(account);
    return account;
  }
  if (!hs.config.jwt_login.create_account)
    throw MatrixError.forbidden('No account for the user the JWT names.');
  const localpart = userId.slice(1, userId.lastIndexOf(`:${hs.config.server_name}`));
  if (!NEW_LOCALPART.test(localpart)) {
    throw MatrixError.of('M_INVALID_USERNAME', 'The JWT names a user ID that cannot be registered.');
  }
  try {
    // M_EXCLUSIVE for a user of an application service's exclusive namespace.
    await createAccount(hs, { localpart, passwordHash: null });
    hs.log.info({ userId }, 'Created an account on its first JWT login');
  } catch (error) {
    // Two first logins raced: the other one created it.
    if (!isMatrixError(error) || error.errcode !== 'M_USER_IN_USE') throw error;
  }
  const created = await hs.storage.accounts.getAccount(userId);
  if (!created) throw MatrixError.internal();
  return created;
}

const GetTokenRequest = Type.Object(
  {
    auth: Type.Optional(
      Type.Object({}, { additionalProperties: true, description: 'User-interactive authentication.' }),
    ),
  },
  { additionalProperties: true },
);

export const generateLoginToken = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v1/login/get_token',
  operationId: 'generateLoginToken',
  summary: 'Optional endpoint to generate a single-use, time-limited, `m.login.token` token.',
  description: 'Requires re-authentication with m.login.password (user-interactive auth).',
  tags: ['Session management'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'login',
  request: { body: GetTokenRequest, allowEmptyBody: true },
  responses: {
    200: Type.Object(
      {
        login_token: Type.String({ description: 'The login token for the m.login.token flow.' }),
        expires_in_ms: Type.Integer({
          description: 'The time remaining in milliseconds until the token expires.',
        }),
      },
      { description: 'The login token an unauthenticated client can use to log in as the requesting user.' },
    ),
    400: Error400,
    401: Type.Object({}, { additionalProperties: true, description: 'Additional authentication required.' }),
    429: Error429,
  },
  async handler(req, hs) {
    if (req.requester.isGuest) throw MatrixError.forbidden('Guests cannot create login tokens.');
    const uia = await requireUserInteractiveAuth(
      hs,
      {
        method: 'POST',
        uri: generateLoginToken.path,
        body: req.body as JsonObject,
        requester: req.requester,
      },
      { flows: [[LOGIN_PASSWORD]] },
    );
    const { loginToken, expiresInMs } = await hs.sessions.issueLoginToken(req.requester.userId);
    await finishUserInteractiveAuth(hs, uia);
    return reply(200, { login_token: loginToken, expires_in_ms: expiresInMs });
  },
});

export const refresh = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/refresh',
  operationId: 'refresh',
  summary: 'Refresh an access token',
  description:
    'Rotates the pair: a new access token and refresh token. A refresh token presented again after its successor was used ends the session.',
  tags: ['Session management'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'client',
  request: {
    body: Type.Object(
      { refresh_token: Type.String({ description: 'The refresh token' }) },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object(
      {
        access_token: Type.String({ description: 'The new access token to use.' }),
        refresh_token: Type.Optional(Type.String({ description: 'The new refresh token to use.' })),
        expires_in_ms: Type.Optional(
          Type.Integer({ description: 'The lifetime of the access token, in ms.' }),
        ),
      },
      { description: 'A new access token and refresh token were generated.' },
    ),
    401: Error401,
    429: Error429,
  },
  async handler(req, hs) {
    return reply(200, await hs.sessions.refresh(req.body.refresh_token));
  },
});

export const logout = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/logout',
  allowLockedAccount: true,
  operationId: 'logout',
  summary: 'Invalidates a user access token',
  description: 'Ends the session of the access token and deletes its device.',
  tags: ['Session management'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  responses: { 200: Empty, 401: Error401 },
  async handler(req, hs) {
    const { userId, deviceId, sessionId } = req.requester;
    await hs.sessions.revokeSession(sessionId);
    if (deviceId !== null) await hs.sessions.deleteDevices(userId, [deviceId]);
    return reply(200, {});
  },
});

export const logoutAll = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/logout/all',
  allowLockedAccount: true,
  operationId: 'logout_all',
  summary: 'Invalidates all access tokens for a user',
  description: 'Ends every session of the user and deletes every device.',
  tags: ['Session management'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  responses: { 200: Empty, 401: Error401 },
  async handler(req, hs) {
    const { userId } = req.requester;
    await hs.sessions.revokeAllSessions(userId);
    const devices = await hs.storage.devices.listDevices(userId);
    await hs.sessions.deleteDevices(
      userId,
      devices.map((device) => device.deviceId),
    );
    return reply(200, {});
  },
});

export const whoami = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/account/whoami',
  operationId: 'getTokenOwner',
  summary: 'Gets information about the owner of an access token.',
  tags: ['Session management'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  responses: {
    200: Type.Object(
      {
        user_id: Type.String({ description: 'The user ID that owns the access token.' }),
        device_id: Type.Optional(Type.String({ description: 'Device ID associated with the access token.' })),
        is_guest: Type.Optional(Type.Boolean({ description: 'When true, the user is a guest user.' })),
      },
      { description: 'The token belongs to a known user.' },
    ),
    401: Error401,
  },
  async handler(req) {
    const { userId, deviceId, isGuest } = req.requester;
    return reply(200, {
      user_id: userId,
      ...(deviceId !== null ? { device_id: deviceId } : {}),
      is_guest: isGuest,
    });
  },
});

export const loginRoutes = [getLoginFlows, login, generateLoginToken, refresh, logout, logoutAll, whoami];

/** A deactivated account never logs in again; a locked one not until it is unlocked (client-server "Account locking"). */
function assertMayLogIn(account: Account): void {
  if (account.deactivated) throw MatrixError.of('M_USER_DEACTIVATED', 'This account has been deactivated.');
  if (account.locked) throw MatrixError.userLocked();
}
