/**
 * client-server "Account registration" (registration.yaml, registration_tokens.yaml):
 *   POST /_matrix/client/v3/register
 *   GET  /_matrix/client/v3/register/available
 *   GET  /_matrix/client/v1/register/m.login.registration_token/validity
 * and the third-party validation token requests, which this server refuses
 * with the spec's 403 M_THREEPID_DENIED because it sends no email or SMS
 * (registration.yaml, password_management.yaml, administrative_contact.yaml):
 *   POST /_matrix/client/v3/register/{email,msisdn}/requestToken
 *   POST /_matrix/client/v3/account/password/{email,msisdn}/requestToken
 *   POST /_matrix/client/v3/account/3pid/{email,msisdn}/requestToken
 */
import { type Static, Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { checkNewPassword } from '../accounts/password-policy.js';
import {
  checkUsernameAvailable,
  createAccount,
  isRegistrationTokenValid,
  localpartForUsername,
} from '../accounts/registration.js';
import {
  finishUserInteractiveAuth,
  requireUserInteractiveAuth,
  STAGE_DUMMY,
  STAGE_REGISTRATION_TOKEN,
  type UiaResult,
} from '../accounts/user-interactive-auth.js';
import { appserviceOfToken, LOGIN_APPSERVICE, registerAppserviceUser } from '../appservice/accounts.js';
import type { AppserviceRegistration } from '../appservice/registration.js';
import type { MyelinConfig } from '../config/index.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError, UserInteractiveAuthRequired } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { AuthData, userInteractiveAuthResponses } from './shared-schemas.js';

const REGISTER_PATH = '/_matrix/client/v3/register';
/** The UIA session param holding the password's hash, so later stages need not resend it (as Synapse does). */
const PASSWORD_HASH_PARAM = 'password_hash';

const RegisterBody = Type.Object(
  {
    auth: Type.Optional(AuthData),
    username: Type.Optional(
      Type.String({ description: 'The basis for the localpart of the desired user ID.' }),
    ),
    password: Type.Optional(Type.String({ description: 'The desired password for the account.' })),
    device_id: Type.Optional(Type.String({ description: 'ID of the client device; generated when absent.' })),
    initial_device_display_name: Type.Optional(
      Type.String({ description: 'A display name for the device, if it is new.' }),
    ),
    inhibit_login: Type.Optional(Type.Boolean({ description: 'Create the account without logging in.' })),
    refresh_token: Type.Optional(Type.Boolean({ description: 'The client supports refresh tokens.' })),
  },
  { additionalProperties: true },
);
type RegisterBody = Static<typeof RegisterBody>;

const RegisterResponse = Type.Object(
  {
    user_id: Type.String({ description: 'The fully-qualified Matrix user ID that has been registered.' }),
    access_token: Type.Optional(Type.String()),
    refresh_token: Type.Optional(Type.String()),
    expires_in_ms: Type.Optional(Type.Integer()),
    device_id: Type.Optional(Type.String()),
    home_server: Type.Optional(Type.String({ deprecated: true })),
  },
  { description: 'The account has been registered.' },
);

export const register = defineRoute({
  method: 'POST',
  path: REGISTER_PATH,
  operationId: 'register',
  summary: 'Register for an account on this homeserver.',
  description:
    'User accounts go through user-interactive authentication (m.login.dummy when registration is open, ' +
    'm.login.registration_token); guest accounts need none when guests are allowed. Application services ' +
    'register users of their namespace with `type: m.login.application_service` and their as_token.',
  tags: ['Account management'],
  resource: 'client',
  // No authentication: a client's stale token is ignored, and a service's user_id (bridge libraries send it
  // on every request) asserts nothing here. Only m.login.application_service reads the as_token.
  auth: 'none',
  // Drawn in the handler: a service's registrations are not limited (as when its sender was the requester).
  rateLimit: 'none',
  request: {
    query: Type.Object({
      kind: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('guest')], { default: 'user' })),
    }),
    body: RegisterBody,
    allowEmptyBody: true,
  },
  responses: userInteractiveAuthResponses(RegisterResponse),
  async handler(req, hs) {
    if ((req.body as { type?: unknown }).type === LOGIN_APPSERVICE && req.query.kind !== 'guest') {
      let service: AppserviceRegistration;
      try {
        service = appserviceOfToken(hs, req.headers, req.query as Record<string, unknown>);
      } catch (error) {
        takeRegistrationAttempt(hs, req.ip); // guessing tokens is rate limited
        throw error;
      }
      return reply(200, await registerForAppservice(hs, service, req.body));
    }
    takeRegistrationAttempt(hs, req.ip);
    if (req.query.kind === 'guest') return reply(200, await registerGuest(hs, req.body));

    const registration = hs.config.registration;
    if (registration.mode === 'closed') throw MatrixError.forbidden('Registration is disabled');
    // "Homeservers MUST perform the relevant checks and return these codes before performing User-Interactive Authentication."
    const requested = requestedLocalpart(req.body);
    if (requested !== undefined) await checkUsernameOpenToUsers(hs, requested);
    if (req.body.password !== undefined) checkNewPassword(req.body.password, registration);

    const auth = await authenticateRegistration(hs, req.body);
    const params = auth.clientDict as RegisterBody;
    const localpart = requestedLocalpart(params);
    if (localpart !== undefined) await checkUsernameOpenToUsers(hs, localpart);
    const passwordHash = await passwordHashFor(hs, req.body, auth);

    const userId = await createAccount(hs, {
      ...(localpart !== undefined ? { localpart } : {}),
      passwordHash,
    });
    await finishUserInteractiveAuth(hs, auth, { registrationTokenUsed: true });
    req.log.info({ userId, stages: auth.completed }, 'Registered a new account');

    if (params.inhibit_login === true) return reply(200, { user_id: userId });
    const login = await hs.sessions.createLoginSession({
      userId,
      ...(params.device_id !== undefined ? { deviceId: params.device_id } : {}),
      ...(params.initial_device_display_name !== undefined
        ? { initialDeviceDisplayName: params.initial_device_display_name }
        : {}),
      withRefreshToken: params.refresh_token === true,
    });
    return reply(200, login);
  },
});

/** Free, allowed, and outside every namespace an application service holds exclusively (M_EXCLUSIVE). */
async function checkUsernameOpenToUsers(hs: HomeserverContext, localpart: string): Promise<void> {
  const userId = await checkUsernameAvailable(hs, localpart);
  hs.appservices.registry.checkUserCreation(userId, undefined);
}

/** application-service "Server admin style permissions": no UIA, no password, whatever the registration mode. */
async function registerForAppservice(
  hs: HomeserverContext,
  service: AppserviceRegistration,
  body: RegisterBody,
) {
  const userId = await registerAppserviceUser(hs, service, body.username);
  hs.log.info({ userId, appservice: service.id }, 'An application service registered a user');
  if (body.inhibit_login === true) return { user_id: userId };
  return hs.sessions.createLoginSession({
    userId,
    ...(body.device_id !== undefined ? { deviceId: body.device_id } : {}),
    ...(body.initial_device_display_name !== undefined
      ? { initialDeviceDisplayName: body.initial_device_display_name }
      : {}),
    withRefreshToken: body.refresh_token === true,
  });
}

/** The registration bucket of the caller's address (the pipeline's, taken here so services can be spared). */
function takeRegistrationAttempt(hs: HomeserverContext, ip: string): void {
  const retryAfterMs = hs.rateLimiter.take('registration', ip);
  if (retryAfterMs > 0) throw MatrixError.limitExceeded(retryAfterMs);
}

/** The UIA flows /register offers in each registration mode. */
export function registrationFlows(mode: MyelinConfig['registration']['mode']): string[][] {
  if (mode === 'open') return [[STAGE_DUMMY], [STAGE_REGISTRATION_TOKEN]];
  return [[STAGE_REGISTRATION_TOKEN]];
}

async function authenticateRegistration(hs: HomeserverContext, body: RegisterBody): Promise<UiaResult> {
  const request = { method: 'POST', uri: REGISTER_PATH, body: body as JsonObject };
  try {
    return await requireUserInteractiveAuth(hs, request, {
      flows: registrationFlows(hs.config.registration.mode),
    });
  } catch (error) {
    // The client need not resend the password at later stages: keep its hash (never the password) with the session.
    if (error instanceof UserInteractiveAuthRequired && body.password !== undefined) {
      const session = await hs.storage.uiaSessions.getUiaSession(error.challenge.session);
      if (session && session.params[PASSWORD_HASH_PARAM] === undefined) {
        const hash = await hs.passwords.hash(body.password);
        await hs.storage.uiaSessions.setUiaSessionParam(session.sessionId, PASSWORD_HASH_PARAM, hash);
      }
    }
    throw error;
  }
}

async function passwordHashFor(hs: HomeserverContext, body: RegisterBody, auth: UiaResult): Promise<string> {
  if (body.password !== undefined) return hs.passwords.hash(body.password);
  const session = await hs.storage.uiaSessions.getUiaSession(auth.sessionId);
  const stored = session?.params[PASSWORD_HASH_PARAM];
  if (typeof stored === 'string') return stored;
  throw MatrixError.missingParam("Missing parameter 'password'");
}

/** An empty username is treated as none: the server picks one. */
function requestedLocalpart(body: { username?: unknown }): string | undefined {
  if (typeof body.username !== 'string' || body.username === '') return undefined;
  return localpartForUsername(body.username);
}

/**
 * "When registering a guest account, all parameters in the request body with
 * the exception of initial_device_display_name MUST BE ignored."
 */
async function registerGuest(hs: HomeserverContext, body: RegisterBody) {
  if (!hs.config.registration.allow_guests) {
    throw MatrixError.of('M_GUEST_ACCESS_FORBIDDEN', 'Guest access is disabled on this server');
  }
  const userId = await createAccount(hs, { passwordHash: null, isGuest: true });
  return hs.sessions.createLoginSession({
    userId,
    isGuest: true,
    withRefreshToken: false,
    ...(body.initial_device_display_name !== undefined
      ? { initialDeviceDisplayName: body.initial_device_display_name }
      : {}),
  });
}

export const checkUsernameAvailability = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/register/available',
  operationId: 'checkUsernameAvailability',
  summary: 'Checks to see if a username is available on the server.',
  tags: ['Account management'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'client',
  request: {
    query: Type.Object({
      username: Type.String({ description: 'The username to check the availability of.' }),
    }),
  },
  responses: {
    200: Type.Object(
      { available: Type.Boolean({ description: 'Always true with 200.' }) },
      { description: 'The username is available.' },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    if (hs.config.registration.mode === 'closed') throw MatrixError.forbidden('Registration is disabled');
    const localpart = localpartForUsername(req.query.username);
    await checkUsernameOpenToUsers(hs, localpart);
    return reply(200, { available: true });
  },
});

export const registrationTokenValidity = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v1/register/m.login.registration_token/validity',
  operationId: 'registrationTokenValidity',
  summary: 'Query if a given registration token is still valid.',
  tags: ['Account management'],
  resource: 'client',
  auth: 'none',
  // "Servers should be sure to rate limit this endpoint to avoid brute force attacks."
  rateLimit: 'registration',
  request: { query: Type.Object({ token: Type.String({ description: 'The token to check validity of.' }) }) },
  responses: {
    200: Type.Object(
      { valid: Type.Boolean({ description: 'True if the token is still valid.' }) },
      { description: 'The check has a result.' },
    ),
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    if (hs.config.registration.mode === 'closed') {
      throw MatrixError.forbidden('Registration is not enabled on this homeserver.');
    }
    const token =
      req.query.token.length <= 64
        ? await hs.storage.registrationTokens.getRegistrationToken(req.query.token)
        : null;
    return reply(200, { valid: token !== null && isRegistrationTokenValid(token, Date.now()) });
  },
});

const EmailValidationRequest = Type.Object(
  {
    client_secret: Type.String({ description: 'A unique string generated by the client.' }),
    email: Type.String({ description: 'The email address to validate.' }),
    send_attempt: Type.Integer({ description: 'Incremented by the client to request a new email.' }),
    next_link: Type.Optional(Type.String()),
    id_server: Type.Optional(Type.String()),
    id_access_token: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

const MsisdnValidationRequest = Type.Object(
  {
    client_secret: Type.String({ description: 'A unique string generated by the client.' }),
    country: Type.String({ description: 'The two-letter country code the phone number is in.' }),
    phone_number: Type.String({ description: 'The phone number to validate.' }),
    send_attempt: Type.Integer({ description: 'Incremented by the client to request a new SMS.' }),
    next_link: Type.Optional(Type.String()),
    id_server: Type.Optional(Type.String()),
    id_access_token: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

const RequestTokenResponse = Type.Object(
  { sid: Type.String(), submit_url: Type.Optional(Type.String()) },
  { description: 'A validation token was sent.' },
);

/**
 * A requestToken endpoint this server cannot serve: it has no mail or SMS
 * sender and delegates to no identity server, so it refuses with the spec's
 * "does not permit the address to be bound" (403 M_THREEPID_DENIED).
 */
function thirdPartyTokenRequestRefused(options: {
  path: string;
  operationId: string;
  summary: string;
  medium: 'email' | 'msisdn';
}) {
  const what = options.medium === 'email' ? 'email' : 'SMS';
  return defineRoute({
    method: 'POST',
    path: options.path,
    operationId: options.operationId,
    summary: options.summary,
    description: `This server sends no ${what}: always 403 M_THREEPID_DENIED.`,
    tags: ['Account management'],
    resource: 'client',
    auth: 'none',
    rateLimit: 'client',
    request: { body: options.medium === 'email' ? EmailValidationRequest : MsisdnValidationRequest },
    responses: { 200: RequestTokenResponse, 400: MatrixErrorBody, 403: MatrixErrorBody },
    async handler(): Promise<never> {
      throw MatrixError.of(
        'M_THREEPID_DENIED',
        `This server cannot send ${what} (no ${what} sender is configured), so it does not validate ` +
          `${options.medium === 'email' ? 'email addresses' : 'phone numbers'}.`,
      );
    },
  });
}

export const thirdPartyTokenRequestRoutes = [
  thirdPartyTokenRequestRefused({
    path: '/_matrix/client/v3/register/email/requestToken',
    operationId: 'requestTokenToRegisterEmail',
    summary: 'Begins the validation process for an email to be used during registration.',
    medium: 'email',
  }),
  thirdPartyTokenRequestRefused({
    path: '/_matrix/client/v3/register/msisdn/requestToken',
    operationId: 'requestTokenToRegisterMSISDN',
    summary:
      'Requests a validation token be sent to the given phone number for the purpose of registering an account.',
    medium: 'msisdn',
  }),
  thirdPartyTokenRequestRefused({
    path: '/_matrix/client/v3/account/password/email/requestToken',
    operationId: 'requestTokenToResetPasswordEmail',
    summary:
      "Requests a validation token be sent to the given email address for the purpose of resetting a user's password.",
    medium: 'email',
  }),
  thirdPartyTokenRequestRefused({
    path: '/_matrix/client/v3/account/password/msisdn/requestToken',
    operationId: 'requestTokenToResetPasswordMSISDN',
    summary:
      "Requests a validation token be sent to the given phone number for the purpose of resetting a user's password.",
    medium: 'msisdn',
  }),
  thirdPartyTokenRequestRefused({
    path: '/_matrix/client/v3/account/3pid/email/requestToken',
    operationId: 'requestTokenTo3PIDEmail',
    summary: "Begins the validation process for an email address for association with the user's account.",
    medium: 'email',
  }),
  thirdPartyTokenRequestRefused({
    path: '/_matrix/client/v3/account/3pid/msisdn/requestToken',
    operationId: 'requestTokenTo3PIDMSISDN',
    summary: "Begins the validation process for a phone number for association with the user's account.",
    medium: 'msisdn',
  }),
];

export const registerRoutes = [
  register,
  checkUsernameAvailability,
  registrationTokenValidity,
  ...thirdPartyTokenRequestRoutes,
];
