/**
 * Login sessions (client-server "Client Authentication"): one per access
 * token lineage, bound to a device. Sessions live in storage; what every
 * request asks ("is this session still alive?", "is this user an admin?") is
 * answered from bounded in-memory caches that logout, revocation, device
 * deletion and deactivation update at once, so a revoked token fails on its
 * very next request.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { isStorageError } from '../../storage/errors.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { Storage } from '../../storage/storage.js';
import type { MyelinConfig } from '../config/index.js';
import { MatrixError } from '../errors.js';
import { type AccessTokenClaims, type AccessTokenCodec, randomToken, tokenHash } from './access-tokens.js';
import { assertDeviceIdChoosable } from './device-ids.js';
import type { LastSeenRecorder } from './last-seen-recorder.js';

/** POST /login and /register's success body (login.yaml). */
export interface LoginResponseBody {
  user_id: string;
  access_token: string;
  device_id: string;
  refresh_token?: string;
  expires_in_ms?: number;
  /** Deprecated in the spec, still read by old clients. */
  home_server?: string;
}

/** POST /refresh's success body (refresh.yaml). */
export interface RefreshResponseBody {
  access_token: string;
  refresh_token?: string;
  expires_in_ms?: number;
}

export interface LoginSessionOptions {
  userId: string;
  /** A known device is reused and its earlier sessions end (spec "Relationship between access tokens and devices"). */
  deviceId?: string;
  /** Only for a new device. */
  initialDeviceDisplayName?: string;
  /** The client supports refresh tokens: its access token expires and comes with a refresh token. */
  withRefreshToken: boolean;
  isGuest?: boolean;
}

/** What authenticating a request needs to know of a session. */
export interface SessionState {
  readonly alive: boolean;
  readonly userId: string;
  readonly deviceId: string;
  readonly hasRefreshToken: boolean;
}

/** What authenticating a request needs to know of an account. */
export interface AccountFlags {
  readonly exists: boolean;
  readonly isAdmin: boolean;
  readonly isGuest: boolean;
  readonly deactivated: boolean;
  readonly locked: boolean;
  readonly suspended: boolean;
}

export interface SessionService {
  createLoginSession(options: LoginSessionOptions): Promise<LoginResponseBody>;
  /** POST /refresh: rotates the pair. Throws 401 M_UNKNOWN_TOKEN (soft_logout false) for an unusable refresh token. */
  refresh(refreshToken: string): Promise<RefreshResponseBody>;
  revokeSession(sessionId: string): Promise<void>;
  /** Every session of the user (but one) ends; deactivation and "log out all" call this. */
  revokeAllSessions(userId: string, options?: { exceptSessionId?: string }): Promise<void>;
  /** Deletes devices with their sessions; their tokens fail at once. */
  deleteDevices(userId: string, deviceIds: readonly string[]): Promise<void>;
  isSessionAlive(sessionId: string): Promise<boolean>;
  /** Call after changing an account's admin, guest, deactivated, locked or suspended flag so cached flags are re-read. */
  accountChanged(userId: string): void;
  /** POST /login/get_token: a single-use m.login.token for the user. */
  issueLoginToken(userId: string): Promise<{ loginToken: string; expiresInMs: number }>;
  /** The token's user if it was valid and unused; it is used up either way. */
  consumeLoginToken(loginToken: string): Promise<string | null>;

  // What the authenticator reads on every request (synchronous when cached).
  readonly tokens: AccessTokenCodec;
  readonly lastSeen: LastSeenRecorder;
  sessionState(sessionId: string): SessionState | Promise<SessionState>;
  accountFlags(userId: string): AccountFlags | Promise<AccountFlags>;
  /** A token was used on a live session: confirms a pending refresh (see refresh()). */
  tokenUsed(claims: AccessTokenClaims): void;
  /** Flushes last-seen data. */
  close(): Promise<void>;
}

const CACHE_SIZE = 100_000;
/**
 * This process updates its caches at once; the TTL bounds how long a change
 * made elsewhere (the register-user CLI making an admin, another worker
 * revoking a session) takes to be seen.
 */
const CACHE_TTL_MS = 60_000;
const DEVICE_ID_LENGTH = 10;
const DEVICE_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const DEAD: Omit<SessionState, 'userId' | 'deviceId'> = { alive: false, hasRefreshToken: false };

/**
 * A refresh that has not been confirmed yet: until the new access or refresh
 * token is used, the replaced refresh token may be presented again (spec
 * "Refreshing access tokens": the client may have lost the answer).
 */
interface PendingRotation {
  readonly replacedHash: string;
  readonly accessTokenId: string;
  /** Given again, unchanged, to a repeated refresh (memory only, until confirmed). */
  readonly answer: RefreshResponseBody;
  readonly accessExpiresAtMs: number | undefined;
}

export function createSessionService(deps: {
  config: MyelinConfig;
  storage: Storage;
  tokens: AccessTokenCodec;
  lastSeen: LastSeenRecorder;
  log: Logger;
  /** A device was created or deleted (its device-list change is already stored): wakes the syncs that report it. */
  onDevicesChanged?: (userId: string) => void;
}): SessionService {
  const { config, storage, tokens, lastSeen } = deps;
  const sessions = new LazyLruCache<string, SessionState>({ max: CACHE_SIZE, ttl: CACHE_TTL_MS });
  const sessionLoads = new Map<string, Promise<SessionState>>();
  const accounts = new LazyLruCache<string, AccountFlags>({ max: CACHE_SIZE, ttl: CACHE_TTL_MS });
  let accountEpoch = 0;
  const pendingRotations = new Map<string, PendingRotation>();
  const refreshLocks = new Map<string, Promise<unknown>>();

  const markDead = (sessionId: string, userId = '', deviceId = '') => {
    sessions.set(sessionId, { ...DEAD, userId, deviceId });
    pendingRotations.delete(sessionId);
  };

  const loadSession = (sessionId: string): Promise<SessionState> => {
    let load = sessionLoads.get(sessionId);
    if (!load) {
      load = storage.sessions
        .getSession(sessionId)
        .then((row) => {
          const state: SessionState = row
            ? {
                alive: !row.revoked,
                userId: row.userId,
                deviceId: row.deviceId,
                hasRefreshToken: row.refreshTokenHash !== null,
              }
            : { ...DEAD, userId: '', deviceId: '' };
          // A revocation that landed while we read wins over what we read.
          const meanwhile = sessions.get(sessionId);
          if (meanwhile) return meanwhile;
          sessions.set(sessionId, state);
          return state;
        })
        .finally(() => sessionLoads.delete(sessionId));
      sessionLoads.set(sessionId, load);
    }
    return load;
  };

  const loadAccount = async (userId: string): Promise<AccountFlags> => {
    const epoch = accountEpoch;
    const account = await storage.accounts.getAccount(userId);
    const flags: AccountFlags = account
      ? {
          exists: true,
          isAdmin: account.isAdmin,
          isGuest: account.isGuest,
          deactivated: account.deactivated,
          locked: account.locked,
          suspended: account.suspended,
        }
      : {
          exists: false,
          isAdmin: false,
          isGuest: false,
          deactivated: false,
          locked: false,
          suspended: false,
        };
    if (epoch === accountEpoch) accounts.set(userId, flags);
    return flags;
  };

  const accessTokenFor = async (userId: string, deviceId: string, sessionId: string, expiring: boolean) => {
    const expiresInMs = expiring ? config.sessions.access_token_lifetime_ms : undefined;
    const issued = await tokens.issue({
      userId,
      deviceId,
      sessionId,
      expiresAtMs: expiresInMs === undefined ? undefined : Date.now() + expiresInMs,
    });
    return { ...issued, expiresInMs };
  };

  const refreshExpiry = (now: number): number | null =>
    config.sessions.refresh_token_lifetime_ms > 0 ? now + config.sessions.refresh_token_lifetime_ms : null;

  const revokeSession = async (sessionId: string): Promise<void> => {
    const known = sessions.get(sessionId);
    markDead(sessionId, known?.userId, known?.deviceId);
    try {
      await storage.sessions.revokeSession(sessionId);
    } catch (error) {
      if (!isStorageError(error, 'NOT_FOUND')) throw error;
    }
  };

  const unknownRefreshToken = (message: string) =>
    MatrixError.of('M_UNKNOWN_TOKEN', message, { soft_logout: false });

  const rotate = async (sessionId: string, userId: string, deviceId: string, replacedHash: string) => {
    const refreshToken = newRefreshToken();
    const access = await accessTokenFor(userId, deviceId, sessionId, true);
    try {
      await storage.sessions.rotateRefreshToken(
        sessionId,
        tokenHash(refreshToken),
        refreshExpiry(Date.now()),
      );
    } catch (error) {
      if (isStorageError(error, 'NOT_FOUND')) throw unknownRefreshToken('The session has ended.');
      throw error;
    }
    const body: RefreshResponseBody = { access_token: access.token, refresh_token: refreshToken };
    if (access.expiresInMs !== undefined) body.expires_in_ms = access.expiresInMs;
    pendingRotations.set(sessionId, {
      replacedHash,
      accessTokenId: access.tokenId,
      answer: body,
      accessExpiresAtMs: access.expiresInMs === undefined ? undefined : Date.now() + access.expiresInMs,
    });
    return body;
  };

  const refreshUnlocked = async (refreshToken: string): Promise<RefreshResponseBody> => {
    const hash = tokenHash(refreshToken);
    const found = await storage.sessions.findRefreshToken(hash);
    if (!found) throw unknownRefreshToken('Unknown refresh token.');
    const { session, isCurrent } = found;
    const state = await sessionState(session.sessionId);
    if (session.revoked || !state.alive) throw unknownRefreshToken('The session has ended.');

    if (!isCurrent) {
      const pending = pendingRotations.get(session.sessionId);
      if (pending?.replacedHash === hash) {
        // The client lost the answer to its last refresh and has used nothing from it: the same answer again.
        const { answer, accessExpiresAtMs } = pending;
        if (accessExpiresAtMs === undefined) return answer;
        return { ...answer, expires_in_ms: Math.max(0, accessExpiresAtMs - Date.now()) };
      }
      // A replaced refresh token after its successor was used: stolen or replayed. End the session.
      deps.log.warn(
        { userId: session.userId, deviceId: session.deviceId },
        'Refresh token reused; session revoked',
      );
      await revokeSession(session.sessionId);
      throw unknownRefreshToken('This refresh token was already used; the session has been ended.');
    }
    if (session.refreshTokenExpiresTs !== null && session.refreshTokenExpiresTs <= Date.now()) {
      await revokeSession(session.sessionId);
      throw unknownRefreshToken('The refresh token has expired.');
    }
    // client-server "Account locking": no new access token until the account is unlocked.
    if ((await (accounts.get(session.userId) ?? loadAccount(session.userId))).locked)
      throw MatrixError.userLocked();
    return rotate(session.sessionId, session.userId, session.deviceId, hash);
  };

  const sessionState = (sessionId: string): SessionState | Promise<SessionState> =>
    sessions.get(sessionId) ?? loadSession(sessionId);

  return {
    tokens,
    lastSeen,

    async createLoginSession(options) {
      const { userId, withRefreshToken } = options;
      if (options.deviceId !== undefined) assertDeviceIdChoosable(options.deviceId);
      for (let attempt = 0; ; attempt++) {
        const deviceId = options.deviceId ?? generateDeviceId();
        const existing = options.deviceId ? await storage.devices.getDevice(userId, deviceId) : null;
        if (existing) {
          for (const old of await storage.sessions.listSessions(userId)) {
            if (old.deviceId === deviceId && !old.revoked) markDead(old.sessionId, userId, deviceId);
          }
        }
        const now = Date.now();
        const sessionId = randomToken(18);
        const refreshToken = withRefreshToken ? newRefreshToken() : undefined;
        try {
          await storage.transaction((tx) => {
            if (existing) {
              void tx.sessions.revokeSessionsOfDevice(userId, deviceId);
            } else {
              void tx.devices.createDevice({
                userId,
                deviceId,
                displayName: options.initialDeviceDisplayName ?? null,
                createdTs: now,
              });
            }
            void tx.sessions.createSession({
              sessionId,
              userId,
              deviceId,
              createdTs: now,
              refreshTokenHash: refreshToken === undefined ? null : tokenHash(refreshToken),
              refreshTokenExpiresTs: refreshToken === undefined ? null : refreshExpiry(now),
            });
          });
        } catch (error) {
          // Two logins raced to create the same device: the second reuses it.
          if (isStorageError(error, 'CONFLICT') && attempt < 3) continue;
          throw error;
        }
        if (!existing) deps.onDevicesChanged?.(userId);
        sessions.set(sessionId, { alive: true, userId, deviceId, hasRefreshToken: withRefreshToken });
        const access = await accessTokenFor(userId, deviceId, sessionId, withRefreshToken);
        const body: LoginResponseBody = {
          user_id: userId,
          access_token: access.token,
          device_id: deviceId,
          home_server: config.server_name,
        };
        if (refreshToken !== undefined) body.refresh_token = refreshToken;
        if (access.expiresInMs !== undefined) body.expires_in_ms = access.expiresInMs;
        return body;
      }
    },

    refresh(refreshToken) {
      // Refreshes of one token run one after another, so two racing requests cannot both rotate it.
      const key = tokenHash(refreshToken);
      const previous = refreshLocks.get(key) ?? Promise.resolve();
      const run = previous.catch(() => {}).then(() => refreshUnlocked(refreshToken));
      const settled = run.catch(() => {});
      refreshLocks.set(key, settled);
      void settled.then(() => {
        if (refreshLocks.get(key) === settled) refreshLocks.delete(key);
      });
      return run;
    },

    revokeSession,

    async revokeAllSessions(userId, options = {}) {
      const markAll = async () => {
        for (const session of await storage.sessions.listSessions(userId)) {
          if (session.sessionId !== options.exceptSessionId)
            markDead(session.sessionId, userId, session.deviceId);
        }
      };
      await markAll();
      await storage.sessions.revokeSessionsOfUser(userId, options.exceptSessionId);
      // Sessions created while we were revoking were revoked in storage too; make the cache agree.
      await markAll();
      accountEpoch++;
      accounts.delete(userId);
    },

    async deleteDevices(userId, deviceIds) {
      const doomed = new Set(deviceIds);
      for (const session of await storage.sessions.listSessions(userId)) {
        if (doomed.has(session.deviceId)) markDead(session.sessionId, userId, session.deviceId);
      }
      lastSeen.forgetDevices(userId, deviceIds);
      await storage.devices.deleteDevices(userId, deviceIds);
      if (deviceIds.length > 0) deps.onDevicesChanged?.(userId);
    },

    async isSessionAlive(sessionId) {
      return (await sessionState(sessionId)).alive;
    },

    accountChanged(userId) {
      accountEpoch++;
      accounts.delete(userId);
    },

    async issueLoginToken(userId) {
      const loginToken = randomToken(32);
      const now = Date.now();
      const expiresInMs = config.sessions.login_token_lifetime_ms;
      await storage.loginTokens.createLoginToken({
        tokenHash: tokenHash(loginToken),
        userId,
        createdTs: now,
        expiresTs: now + expiresInMs,
      });
      return { loginToken, expiresInMs };
    },

    consumeLoginToken(loginToken) {
      return storage.loginTokens.consumeLoginToken(tokenHash(loginToken), Date.now());
    },

    sessionState,

    accountFlags(userId) {
      return accounts.get(userId) ?? loadAccount(userId);
    },

    tokenUsed(claims) {
      if (pendingRotations.size === 0) return;
      if (pendingRotations.get(claims.sessionId)?.accessTokenId === claims.tokenId) {
        pendingRotations.delete(claims.sessionId);
      }
    },

    close() {
      return lastSeen.close();
    },
  };
}

function newRefreshToken(): string {
  return `myr_${randomToken(32)}`;
}

function generateDeviceId(): string {
  const bytes = randomBytes(DEVICE_ID_LENGTH);
  let id = '';
  for (const byte of bytes) id += DEVICE_ID_ALPHABET[byte % DEVICE_ID_ALPHABET.length];
  return id;
}
