/**
 * client-server "User-Interactive Authentication API": the 401 challenge,
 * sessions kept in storage (so a restart or another worker can continue a
 * flow), bound to the method and URI that started them, expiring after
 * SESSION_LIFETIME_MS. Stages: m.login.dummy, m.login.password,
 * m.login.registration_token.
 *
 * A route calls `requireUserInteractiveAuth`; it returns once a flow is
 * complete and otherwise throws the 401. After the operation succeeds the
 * route calls `finishUserInteractiveAuth` (the session is spent; a reserved
 * registration token use becomes completed when the route says so).
 */
import { randomBytes } from 'node:crypto';
import type { JsonObject, JsonValue } from '../../protocol/events.js';
import { isStorageError } from '../../storage/errors.js';
import type { Storage } from '../../storage/storage.js';
import type { UiaSession } from '../../storage/uia-session-store.js';
import type { MyelinConfig } from '../config/index.js';
import { type Errcode, MatrixError, UserInteractiveAuthRequired } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
import type { PasswordHasher } from './password-hash.js';

export const STAGE_DUMMY = 'm.login.dummy';
export const STAGE_PASSWORD = 'm.login.password';
export const STAGE_REGISTRATION_TOKEN = 'm.login.registration_token';

/** How long a client has to finish a flow once it started it. */
export const SESSION_LIFETIME_MS = 30 * 60 * 1000;
/** Expired sessions are swept at most this often, lazily, by the next request that uses UIA. */
const SWEEP_INTERVAL_MS = 60 * 1000;
/** The spec's registration token grammar: opaque identifier, at most 64 characters. */
const REGISTRATION_TOKEN = /^[A-Za-z0-9._~-]{1,64}$/;
/** Keys never kept in a stored session: secrets the client resends with every request. */
const SECRET_KEYS = new Set(['auth', 'password', 'new_password']);
/** The session param naming the logged-in user who started the session (absent: started without an access token). */
const REQUESTER_PARAM = 'requester';

export interface UiaRequest {
  readonly method: string;
  /** The endpoint's path (not the query): the session is bound to it. */
  readonly uri: string;
  readonly body: JsonObject;
  /** The logged-in user, for endpoints that require an access token: a password stage must authenticate them. */
  readonly requester?: AuthenticatedUser;
}

export interface UiaPolicy {
  /** Each flow is the list of stages to complete, in order. */
  readonly flows: readonly (readonly string[])[];
  readonly params?: Readonly<Record<string, JsonObject>>;
}

export interface UiaResult {
  readonly sessionId: string;
  /** The stages completed, in the order they were completed. */
  readonly completed: readonly string[];
  /** The user an m.login.password stage authenticated. */
  readonly authenticatedUserId?: string;
  /** The registration token an m.login.registration_token stage reserved a use of. */
  readonly registrationToken?: string;
  /**
   * The request's body without `auth`; when a later request carried only
   * `auth`, the body of the request that started the session (minus secrets).
   */
  readonly clientDict: JsonObject;
}

/** Per-homeserver bookkeeping: the clock, the session lifetime, when the last sweep ran. */
export interface UserInteractiveAuthState {
  lastSweepTs: number;
  readonly now: () => number;
  readonly sessionLifetimeMs: number;
}

export function createUserInteractiveAuthState(
  options: { now?: () => number; sessionLifetimeMs?: number } = {},
): UserInteractiveAuthState {
  return {
    lastSweepTs: 0,
    now: options.now ?? Date.now,
    sessionLifetimeMs: options.sessionLifetimeMs ?? SESSION_LIFETIME_MS,
  };
}

/** What the UIA engine needs from the homeserver context. */
export interface UiaHost {
  readonly config: Pick<MyelinConfig, 'server_name'>;
  readonly storage: Pick<Storage, 'uiaSessions' | 'registrationTokens' | 'accounts'>;
  readonly passwords: Pick<PasswordHasher, 'verify' | 'verifyDummy'>;
  readonly userInteractiveAuth: UserInteractiveAuthState;
}

type StageOutcome = { ok: true; result: JsonValue } | { ok: false; errcode: Errcode; message: string };

/**
 * Resolves when the request completes one of `policy.flows`; otherwise throws
 * UserInteractiveAuthRequired (the spec's 401) or a plain MatrixError (unknown
 * session, session started for another operation, malformed auth dict).
 */
export async function requireUserInteractiveAuth(
  hs: UiaHost,
  request: UiaRequest,
  policy: UiaPolicy,
): Promise<UiaResult> {
  await sweepExpiredSessions(hs);
  const auth = authDictOf(request.body);
  const bodyWithoutAuth = withoutKeys(request.body, new Set(['auth']));

  const sessionIdGiven = auth?.session;
  if (sessionIdGiven !== undefined && typeof sessionIdGiven !== 'string') {
    throw MatrixError.badJson("'auth.session' must be a string");
  }
  let session =
    sessionIdGiven === undefined
      ? await startSession(hs, request, bodyWithoutAuth)
      : await continueSession(hs, request, sessionIdGiven);
  const challenge = (completed: readonly string[] | undefined) => ({
    flows: policy.flows.map((stages) => ({ stages: [...stages] })),
    params: { ...(policy.params ?? {}) },
    session: session.sessionId,
    ...(completed ? { completed: [...completed] } : {}),
  });

  // "A client should first make a request with no auth parameter": always a 401, even when dummy would do.
  if (!auth) throw new UserInteractiveAuthRequired(challenge(undefined));

  const stage = auth.type;
  if (stage !== undefined) {
    if (typeof stage !== 'string') throw MatrixError.badJson("'auth.type' must be a string");
    const completedStages = Object.keys(session.completed);
    if (!flowComplete(policy.flows, completedStages)) {
      const failure = await attemptStage(hs, request, policy, session, stage, auth);
      if (!failure.ok) {
        throw new UserInteractiveAuthRequired(challenge(completedStages), {
          errcode: failure.errcode,
          message: failure.message,
        });
      }
      session = (await hs.storage.uiaSessions.getUiaSession(session.sessionId)) ?? session;
    }
  }

  const completed = Object.keys(session.completed);
  if (!flowComplete(policy.flows, completed)) throw new UserInteractiveAuthRequired(challenge(completed));

  const password = session.completed[STAGE_PASSWORD];
  const token = session.params.registration_token;
  return {
    sessionId: session.sessionId,
    completed,
    ...(typeof password === 'string' ? { authenticatedUserId: password } : {}),
    ...(typeof token === 'string' ? { registrationToken: token } : {}),
    clientDict: Object.keys(bodyWithoutAuth).length > 0 ? bodyWithoutAuth : session.clientDict,
  };
}

/**
 * The operation the flow authorised has succeeded: the session is spent. A
 * registration that consumed a token passes `registrationTokenUsed: true` so
 * its pending use becomes completed; otherwise a reserved use is given back.
 */
export async function finishUserInteractiveAuth(
  hs: UiaHost,
  result: UiaResult,
  options: { registrationTokenUsed?: boolean } = {},
): Promise<void> {
  // Whoever removes the session settles its reservation: here, or the sweep if it expired meanwhile.
  const session = await hs.storage.uiaSessions.getUiaSession(result.sessionId);
  await hs.storage.uiaSessions.deleteUiaSession(result.sessionId);
  const token = result.registrationToken;
  if (token === undefined) return;
  if (options.registrationTokenUsed) {
    await hs.storage.registrationTokens.completeRegistrationTokenUse(token);
  } else if (session) {
    await hs.storage.registrationTokens.releaseRegistrationTokenUse(token);
  }
}

/** Deletes sessions older than the lifetime and gives back the registration token uses they held. */
export async function sweepExpiredSessions(hs: UiaHost, force = false): Promise<void> {
  const state = hs.userInteractiveAuth;
  const now = state.now();
  if (!force && now - state.lastSweepTs < SWEEP_INTERVAL_MS) return;
  state.lastSweepTs = now;
  const expired = await hs.storage.uiaSessions.takeUiaSessionsCreatedBefore(now - state.sessionLifetimeMs);
  for (const session of expired) await releaseReservedToken(hs, session);
}

async function startSession(hs: UiaHost, request: UiaRequest, clientDict: JsonObject): Promise<UiaSession> {
  const session = {
    sessionId: randomBytes(18).toString('base64url'),
    createdTs: hs.userInteractiveAuth.now(),
    method: request.method,
    uri: request.uri,
    clientDict: withoutKeys(clientDict, SECRET_KEYS),
  };
  await hs.storage.uiaSessions.createUiaSession(session);
  if (!request.requester) return { ...session, completed: {}, params: {} };
  await hs.storage.uiaSessions.setUiaSessionParam(
    session.sessionId,
    REQUESTER_PARAM,
    request.requester.userId,
  );
  return { ...session, completed: {}, params: { [REQUESTER_PARAM]: request.requester.userId } };
}

async function continueSession(hs: UiaHost, request: UiaRequest, sessionId: string): Promise<UiaSession> {
  const state = hs.userInteractiveAuth;
  const session = await hs.storage.uiaSessions.getUiaSession(sessionId);
  if (session && session.createdTs < state.now() - state.sessionLifetimeMs) {
    await sweepExpiredSessions(hs, true);
    throw unknownSession();
  }
  if (!session) throw unknownSession();
  if (session.method !== request.method || session.uri !== request.uri) {
    throw MatrixError.forbidden('Requested operation has changed during the UI authentication session.');
  }
  // A session proves something about whoever started it: a stranger's session (or an anonymous one) proves nothing for this user.
  if (session.params[REQUESTER_PARAM] !== request.requester?.userId) {
    throw MatrixError.forbidden('This authentication session belongs to another user.');
  }
  return session;
}

async function releaseReservedToken(hs: UiaHost, session: UiaSession): Promise<void> {
  const token = session.params.registration_token;
  if (typeof token === 'string') await hs.storage.registrationTokens.releaseRegistrationTokenUse(token);
}

function unknownSession(): MatrixError {
  return MatrixError.of('M_UNKNOWN', 'Unknown or expired session ID');
}

/** A flow is complete when each of its stages is. */
function flowComplete(flows: UiaPolicy['flows'], completed: readonly string[]): boolean {
  return flows.some((flow) => flow.every((stage) => completed.includes(stage)));
}

/** "The flows' stages must be completed in order": the stage must be the next one of a flow the completed stages begin. */
function stageExpectedNext(flows: UiaPolicy['flows'], completed: readonly string[], stage: string): boolean {
  return flows.some(
    (flow) => completed.every((done, index) => flow[index] === done) && flow[completed.length] === stage,
  );
}

async function attemptStage(
  hs: UiaHost,
  request: UiaRequest,
  policy: UiaPolicy,
  session: UiaSession,
  stage: string,
  auth: JsonObject,
): Promise<StageOutcome> {
  const completed = Object.keys(session.completed);
  if (!policy.flows.some((flow) => flow.includes(stage))) {
    return {
      ok: false,
      errcode: 'M_UNRECOGNIZED',
      message: `Authentication type ${stage} is not offered here`,
    };
  }
  if (completed.includes(stage)) return { ok: true, result: session.completed[stage] ?? true };
  if (!stageExpectedNext(policy.flows, completed, stage)) {
    return { ok: false, errcode: 'M_FORBIDDEN', message: `Authentication stage ${stage} is out of order` };
  }
  const outcome = await runStage(hs, request, session, stage, auth);
  if (outcome.ok) {
    await hs.storage.uiaSessions.markUiaStageCompleted(session.sessionId, stage, outcome.result);
  }
  return outcome;
}

function runStage(
  hs: UiaHost,
  request: UiaRequest,
  session: UiaSession,
  stage: string,
  auth: JsonObject,
): Promise<StageOutcome> {
  switch (stage) {
    case STAGE_DUMMY:
      return Promise.resolve({ ok: true, result: true });
    case STAGE_PASSWORD:
      return passwordStage(hs, request, auth);
    case STAGE_REGISTRATION_TOKEN:
      return registrationTokenStage(hs, session, auth);
    default:
      return Promise.resolve({
        ok: false,
        errcode: 'M_UNRECOGNIZED',
        message: `Authentication type ${stage} is not supported`,
      });
  }
}

/** "Password-based": identifier m.id.user (or the legacy top-level `user`), user ID or localpart, any case. */
async function passwordStage(hs: UiaHost, request: UiaRequest, auth: JsonObject): Promise<StageOutcome> {
  const user = userNamed(auth);
  if (user === 'third-party') {
    throw MatrixError.forbidden('No third-party identifiers are bound to accounts on this server.');
  }
  const password = auth.password;
  if (user === undefined || typeof password !== 'string') {
    throw MatrixError.badJson("m.login.password needs 'identifier' (m.id.user) and 'password' strings");
  }
  const userId = user.startsWith('@') ? user : `@${user}:${hs.config.server_name}`;
  const candidates = await hs.storage.accounts.findAccountsCaseInsensitive(userId);
  const account = candidates.find((a) => a.userId === userId) ?? candidates[0];
  const verified =
    account?.passwordHash && !account.deactivated
      ? await hs.passwords.verify(password, account.passwordHash)
      : await hs.passwords.verifyDummy(password);
  if (!account || !verified)
    return { ok: false, errcode: 'M_FORBIDDEN', message: 'Invalid username or password' };
  if (request.requester && request.requester.userId !== account.userId) {
    return {
      ok: false,
      errcode: 'M_FORBIDDEN',
      message: 'The password given is not that of the logged-in user',
    };
  }
  return { ok: true, result: account.userId };
}

function userNamed(auth: JsonObject): string | 'third-party' | undefined {
  const identifier = auth.identifier;
  if (isJsonObject(identifier)) {
    if (identifier.type === 'm.id.thirdparty' || identifier.type === 'm.id.phone') return 'third-party';
    if (identifier.type === 'm.id.user' && typeof identifier.user === 'string') return identifier.user;
    return undefined;
  }
  return typeof auth.user === 'string' ? auth.user : undefined;
}

/** "Token-authenticated registration": a use is reserved (pending) now and completed when the account exists. */
async function registrationTokenStage(
  hs: UiaHost,
  session: UiaSession,
  auth: JsonObject,
): Promise<StageOutcome> {
  const token = auth.token;
  if (typeof token !== 'string')
    throw MatrixError.invalidParam("m.login.registration_token needs a 'token' string");
  const invalid: StageOutcome = {
    ok: false,
    errcode: 'M_UNAUTHORIZED',
    message: 'Invalid registration token',
  };
  if (!REGISTRATION_TOKEN.test(token)) return invalid;
  const state = hs.userInteractiveAuth;
  if (!(await hs.storage.registrationTokens.reserveRegistrationTokenUse(token, state.now()))) return invalid;
  try {
    await hs.storage.uiaSessions.setUiaSessionParam(session.sessionId, 'registration_token', token);
  } catch (error) {
    await hs.storage.registrationTokens.releaseRegistrationTokenUse(token);
    if (isStorageError(error, 'NOT_FOUND')) throw unknownSession();
    throw error;
  }
  return { ok: true, result: true };
}

/** The `auth` dict; absent and null both mean none was given. */
function authDictOf(body: JsonObject): JsonObject | undefined {
  const auth = body.auth;
  if (auth === undefined || auth === null) return undefined;
  if (!isJsonObject(auth)) throw MatrixError.badJson("'auth' must be an object");
  return auth;
}

function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function withoutKeys(body: JsonObject, keys: ReadonlySet<string>): JsonObject {
  const kept: JsonObject = {};
  for (const [key, value] of Object.entries(body)) if (!keys.has(key)) kept[key] = value;
  return kept;
}
