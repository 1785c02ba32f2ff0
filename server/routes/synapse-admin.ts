/**
 * Synapse's admin API, where existing operator tooling expects it:
 *   GET    /_synapse/admin/v1/register                     (a nonce; docs admin_api/register_api.md)
 *   POST   /_synapse/admin/v1/register                     (shared-secret registration)
 *   GET    /_synapse/admin/v1/registration_tokens          (docs admin_api/registration_tokens.md)
 *   POST   /_synapse/admin/v1/registration_tokens/new
 *   GET    /_synapse/admin/v1/registration_tokens/{token}
 *   PUT    /_synapse/admin/v1/registration_tokens/{token}
 *   DELETE /_synapse/admin/v1/registration_tokens/{token}
 * The token endpoints are for server admins only (403 M_FORBIDDEN otherwise).
 */
import { Type } from '@sinclair/typebox';
import { isStorageError } from '../../storage/errors.js';
import type { RegistrationToken } from '../../storage/registration-token-store.js';
import {
  checkUsernameAvailable,
  createAccount,
  isRegistrationTokenValid,
  issueRegistrationToken,
  localpartForUsername,
} from '../accounts/registration.js';
import { MatrixError } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const TAGS = ['Synapse admin API'];
/** The spec's registration token grammar (client-server "Token-authenticated registration"). */
const TOKEN_PATTERN = '^[A-Za-z0-9._~-]{1,64}$';
/** Synapse limits the username and password of shared-secret registration to this many characters. */
const MAX_FIELD_LENGTH = 512;

export const getSharedSecretNonce = defineRoute({
  method: 'GET',
  path: '/_synapse/admin/v1/register',
  operationId: 'getSharedSecretRegistrationNonce',
  summary: 'Gets a single-use nonce for shared-secret registration (valid for 60 seconds).',
  tags: TAGS,
  resource: 'client',
  auth: 'none',
  rateLimit: 'client',
  responses: { 200: Type.Object({ nonce: Type.String() }, { description: 'A fresh nonce.' }) },
  async handler(_req, hs) {
    return reply(200, { nonce: hs.sharedSecretRegistration.issueNonce() });
  },
});

export const registerWithSharedSecret = defineRoute({
  method: 'POST',
  path: '/_synapse/admin/v1/register',
  operationId: 'registerWithSharedSecret',
  summary:
    'Creates an account, authenticated by an HMAC-SHA1 of the request under the registration shared secret.',
  description:
    'mac = hex HMAC-SHA1(secret, nonce NUL username NUL password NUL ("admin" | "notadmin") [NUL user_type]). ' +
    "Compatible with Synapse's register_new_matrix_user. Reserved usernames are allowed; the password policy is not applied.",
  tags: TAGS,
  resource: 'client',
  auth: 'none',
  rateLimit: 'client',
  request: {
    body: Type.Object(
      {
        nonce: Type.String(),
        username: Type.String(),
        password: Type.String(),
        mac: Type.String(),
        admin: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
        displayname: Type.Optional(Type.Union([Type.String(), Type.Null()])),
        user_type: Type.Optional(Type.Union([Type.String(), Type.Null()])),
        refresh_token: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object(
      {
        user_id: Type.String(),
        access_token: Type.String(),
        device_id: Type.String(),
        home_server: Type.Optional(Type.String()),
        refresh_token: Type.Optional(Type.String()),
        expires_in_ms: Type.Optional(Type.Integer()),
      },
      { description: 'The account was created and logged in.' },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
  },
  async handler(req, hs) {
    const body = req.body;
    // The nonce goes first and is used up even if the rest is wrong (as Synapse does).
    if (!hs.sharedSecretRegistration.consumeNonce(body.nonce)) {
      throw MatrixError.of('M_UNKNOWN', 'Unrecognised nonce');
    }
    if (body.username.length > MAX_FIELD_LENGTH || body.username.includes('\0')) {
      throw MatrixError.invalidParam('Invalid username');
    }
    if (body.password.length > MAX_FIELD_LENGTH || body.password.includes('\0')) {
      throw MatrixError.invalidParam('Invalid password');
    }
    if (body.user_type && body.user_type !== 'bot' && body.user_type !== 'support') {
      throw MatrixError.invalidParam('Invalid user type');
    }
    const admin = body.admin === true;
    const macMatches = hs.sharedSecretRegistration.macMatches(
      {
        nonce: body.nonce,
        username: body.username,
        password: body.password,
        admin,
        userType: body.user_type ?? null,
      },
      body.mac,
    );
    if (!macMatches) throw MatrixError.forbidden('HMAC incorrect');

    const localpart = localpartForUsername(body.username);
    await checkUsernameAvailable(hs, localpart, { allowReserved: true });
    const userId = await createAccount(hs, {
      localpart,
      passwordHash: await hs.passwords.hash(body.password),
      isAdmin: admin,
      ...(typeof body.displayname === 'string' ? { displayName: body.displayname } : {}),
    });
    req.log.info({ userId, admin }, 'Registered an account with the shared secret');
    const login = await hs.sessions.createLoginSession({
      userId,
      withRefreshToken: body.refresh_token === true,
    });
    return reply(200, { ...login, home_server: hs.config.server_name });
  },
});

const RegistrationTokenBody = Type.Object(
  {
    token: Type.String(),
    uses_allowed: Type.Union([Type.Integer(), Type.Null()]),
    pending: Type.Integer(),
    completed: Type.Integer(),
    expiry_time: Type.Union([Type.Integer(), Type.Null()]),
  },
  { description: 'A registration token.' },
);

function tokenBody(token: RegistrationToken) {
  return {
    token: token.token,
    uses_allowed: token.usesAllowed,
    pending: token.pending,
    completed: token.completed,
    expiry_time: token.expiryTs,
  };
}

function requireAdmin(requester: AuthenticatedUser): void {
  if (!requester.isAdmin) throw MatrixError.forbidden('You are not a server admin');
}

const TokenParams = Type.Object({ token: Type.String({ description: 'The registration token.' }) });
const UsesAllowed = Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
  description: 'How many registrations the token may complete; null: unlimited.',
});
const ExpiryTime = Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
  description: 'When the token stops being valid, in ms since the epoch; null: never.',
});

export const listRegistrationTokens = defineRoute({
  method: 'GET',
  path: '/_synapse/admin/v1/registration_tokens',
  operationId: 'listRegistrationTokens',
  summary: 'Lists registration tokens (server admins only).',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    query: Type.Object({
      valid: Type.Optional(
        Type.Boolean({ description: 'true: only valid tokens; false: only invalid ones.' }),
      ),
    }),
  },
  responses: {
    200: Type.Object(
      { registration_tokens: Type.Array(RegistrationTokenBody) },
      { description: 'The tokens.' },
    ),
    403: MatrixErrorBody,
  },
  async handler(req, hs) {
    requireAdmin(req.requester);
    const now = Date.now();
    const tokens = (await hs.storage.registrationTokens.listRegistrationTokens()).filter(
      (token) => req.query.valid === undefined || isRegistrationTokenValid(token, now) === req.query.valid,
    );
    return reply(200, { registration_tokens: tokens.map(tokenBody) });
  },
});

export const createRegistrationToken = defineRoute({
  method: 'POST',
  path: '/_synapse/admin/v1/registration_tokens/new',
  operationId: 'createRegistrationToken',
  summary: 'Creates a registration token (server admins only).',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    body: Type.Object(
      {
        token: Type.Optional(
          Type.String({ pattern: TOKEN_PATTERN, description: 'Default: randomly generated.' }),
        ),
        uses_allowed: Type.Optional(UsesAllowed),
        expiry_time: Type.Optional(ExpiryTime),
        length: Type.Optional(
          Type.Integer({ minimum: 1, maximum: 64, description: 'Length of a generated token; default 16.' }),
        ),
      },
      { additionalProperties: true },
    ),
    allowEmptyBody: true,
  },
  responses: { 200: RegistrationTokenBody, 400: MatrixErrorBody, 403: MatrixErrorBody },
  async handler(req, hs) {
    requireAdmin(req.requester);
    const { token, uses_allowed: usesAllowed = null, expiry_time: expiryTs = null, length } = req.body;
    if (expiryTs !== null && expiryTs < Date.now())
      throw MatrixError.invalidParam('expiry_time must not be in the past');
    const created = await issueRegistrationToken(hs.storage.registrationTokens, {
      token,
      usesAllowed,
      expiryTs,
      length,
    });
    req.log.info({ token: created.token, usesAllowed, expiryTs }, 'Created a registration token');
    return reply(200, tokenBody(created));
  },
});

export const getRegistrationToken = defineRoute({
  method: 'GET',
  path: '/_synapse/admin/v1/registration_tokens/{token}',
  operationId: 'getRegistrationToken',
  summary: 'Gets one registration token (server admins only).',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: TokenParams },
  responses: { 200: RegistrationTokenBody, 403: MatrixErrorBody, 404: MatrixErrorBody },
  async handler(req, hs) {
    requireAdmin(req.requester);
    const token = await hs.storage.registrationTokens.getRegistrationToken(req.params.token);
    if (!token) throw noSuchToken(req.params.token);
    return reply(200, tokenBody(token));
  },
});

export const updateRegistrationToken = defineRoute({
  method: 'PUT',
  path: '/_synapse/admin/v1/registration_tokens/{token}',
  operationId: 'updateRegistrationToken',
  summary: 'Changes the allowed uses or the expiry of a registration token (server admins only).',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: TokenParams,
    body: Type.Object(
      { uses_allowed: Type.Optional(UsesAllowed), expiry_time: Type.Optional(ExpiryTime) },
      { additionalProperties: true },
    ),
    allowEmptyBody: true,
  },
  responses: { 200: RegistrationTokenBody, 400: MatrixErrorBody, 403: MatrixErrorBody, 404: MatrixErrorBody },
  async handler(req, hs) {
    requireAdmin(req.requester);
    const { uses_allowed: usesAllowed, expiry_time: expiryTs } = req.body;
    if (typeof expiryTs === 'number' && expiryTs < Date.now()) {
      throw MatrixError.invalidParam('expiry_time must not be in the past');
    }
    try {
      await hs.storage.registrationTokens.updateRegistrationToken(req.params.token, {
        ...(usesAllowed !== undefined ? { usesAllowed } : {}),
        ...(expiryTs !== undefined ? { expiryTs } : {}),
      });
    } catch (error) {
      if (isStorageError(error, 'NOT_FOUND')) throw noSuchToken(req.params.token);
      throw error;
    }
    const token = await hs.storage.registrationTokens.getRegistrationToken(req.params.token);
    if (!token) throw noSuchToken(req.params.token);
    return reply(200, tokenBody(token));
  },
});

export const deleteRegistrationToken = defineRoute({
  method: 'DELETE',
  path: '/_synapse/admin/v1/registration_tokens/{token}',
  operationId: 'deleteRegistrationToken',
  summary: 'Deletes a registration token (server admins only).',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: { params: TokenParams },
  responses: {
    200: Type.Object({}, { description: 'Deleted.', additionalProperties: false }),
    403: MatrixErrorBody,
    404: MatrixErrorBody,
  },
  async handler(req, hs) {
    requireAdmin(req.requester);
    try {
      await hs.storage.registrationTokens.deleteRegistrationToken(req.params.token);
    } catch (error) {
      if (isStorageError(error, 'NOT_FOUND')) throw noSuchToken(req.params.token);
      throw error;
    }
    return reply(200, {});
  },
});

function noSuchToken(token: string): MatrixError {
  const shown = token.length > 64 ? `${token.slice(0, 64)}...` : token;
  return MatrixError.notFound(`No such registration token: ${shown}`);
}

export const synapseAdminRoutes = [
  getSharedSecretNonce,
  registerWithSharedSecret,
  listRegistrationTokens,
  createRegistrationToken,
  getRegistrationToken,
  updateRegistrationToken,
  deleteRegistrationToken,
];
