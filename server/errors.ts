/**
 * The one error type the server throws toward a client. The HTTP status of each
 * errcode is chosen here and nowhere else; the error middleware renders it as
 * the spec's standard error response `{"errcode", "error", ...extra}`.
 */
import type { ProtocolError, ProtocolErrorCode } from '../protocol/errors.js';

/** client-server-api "Standard error response": common and endpoint-specific errcodes, with their usual status. */
const STATUS_BY_ERRCODE = {
  M_BAD_JSON: 400,
  M_NOT_JSON: 400,
  M_MISSING_PARAM: 400,
  M_INVALID_PARAM: 400,
  M_UNKNOWN: 400,
  M_FORBIDDEN: 403,
  M_UNKNOWN_TOKEN: 401,
  M_MISSING_TOKEN: 401,
  M_UNAUTHORIZED: 401,
  M_USER_LOCKED: 401,
  M_USER_SUSPENDED: 403,
  M_USER_DEACTIVATED: 403,
  M_NOT_FOUND: 404,
  M_UNRECOGNIZED: 404,
  M_LIMIT_EXCEEDED: 429,
  M_TOO_LARGE: 413,
  M_USER_IN_USE: 400,
  M_INVALID_USERNAME: 400,
  M_ROOM_IN_USE: 400,
  M_BAD_ALIAS: 400,
  M_INVALID_ROOM_STATE: 400,
  M_BAD_STATE: 400,
  M_UNSUPPORTED_ROOM_VERSION: 400,
  M_INCOMPATIBLE_ROOM_VERSION: 400,
  M_GUEST_ACCESS_FORBIDDEN: 403,
  M_EXCLUSIVE: 400,
  M_RESOURCE_LIMIT_EXCEEDED: 403,
  M_USER_LIMIT_EXCEEDED: 403,
  M_CANNOT_LEAVE_SERVER_NOTICE_ROOM: 403,
  M_CAPTCHA_NEEDED: 401,
  M_CAPTCHA_INVALID: 400,
  M_SERVER_NOT_TRUSTED: 400,
  M_THREEPID_AUTH_FAILED: 400,
  M_THREEPID_DENIED: 403,
  M_THREEPID_IN_USE: 400,
  M_THREEPID_MEDIUM_NOT_SUPPORTED: 400,
  M_THREEPID_NOT_FOUND: 400,
  M_WEAK_PASSWORD: 400,
  M_UNKNOWN_DEVICE: 400,
  M_UNABLE_TO_AUTHORISE_JOIN: 400,
  M_UNABLE_TO_GRANT_JOIN: 400,
  M_PROFILE_TOO_LARGE: 400,
  M_KEY_TOO_LARGE: 400,
  M_DUPLICATE_ANNOTATION: 400,
  M_WRONG_ROOM_KEYS_VERSION: 403,
  M_INVALID_SIGNATURE: 400,
  M_CANNOT_OVERWRITE_MEDIA: 409,
  M_NOT_YET_UPLOADED: 504,
  /** application-service "Pinging": POST /appservice/{appserviceId}/ping. */
  M_URL_NOT_SET: 400,
  M_BAD_STATUS: 502,
  M_CONNECTION_FAILED: 502,
  M_CONNECTION_TIMEOUT: 504,
  /** MSC4186 simplified sliding sync: a `pos` the server does not (or no longer) know; the client starts over. */
  M_UNKNOWN_POS: 400,
} as const;

export type Errcode = keyof typeof STATUS_BY_ERRCODE;

export type MatrixErrorExtra = Record<string, unknown>;

export class MatrixError extends Error {
  override readonly name = 'MatrixError';
  constructor(
    readonly status: number,
    readonly errcode: Errcode,
    message: string,
    readonly extra: MatrixErrorExtra = {},
    /** Response headers that belong to this error (Retry-After, Allow). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  /** The error with the usual status of its errcode. */
  static of(errcode: Errcode, message: string, extra?: MatrixErrorExtra): MatrixError {
    return new MatrixError(STATUS_BY_ERRCODE[errcode], errcode, message, extra);
  }

  /** The spec's error response body. */
  toJSON(): Record<string, unknown> {
    return { ...this.extra, errcode: this.errcode, error: this.message };
  }

  static badJson(message: string): MatrixError {
    return MatrixError.of('M_BAD_JSON', message);
  }
  static notJson(message = 'Content not JSON.'): MatrixError {
    return MatrixError.of('M_NOT_JSON', message);
  }
  static missingParam(message: string): MatrixError {
    return MatrixError.of('M_MISSING_PARAM', message);
  }
  static invalidParam(message: string): MatrixError {
    return MatrixError.of('M_INVALID_PARAM', message);
  }
  /** client-server "Account locking": 401 with soft_logout, so clients keep their session and state. */
  static userLocked(): MatrixError {
    return MatrixError.of('M_USER_LOCKED', 'This account has been locked', { soft_logout: true });
  }
  static userSuspended(): MatrixError {
    return MatrixError.of('M_USER_SUSPENDED', 'You cannot perform this action while suspended.');
  }
  static forbidden(message: string): MatrixError {
    return MatrixError.of('M_FORBIDDEN', message);
  }
  static notFound(message: string): MatrixError {
    return MatrixError.of('M_NOT_FOUND', message);
  }
  static tooLarge(message: string): MatrixError {
    return MatrixError.of('M_TOO_LARGE', message);
  }
  /** 404 for an endpoint we do not serve. */
  static unrecognized(message = 'Unrecognized request'): MatrixError {
    return MatrixError.of('M_UNRECOGNIZED', message);
  }
  /** 405: the endpoint exists but not with this method. */
  static methodNotAllowed(allowed: readonly string[]): MatrixError {
    return new MatrixError(405, 'M_UNRECOGNIZED', 'Unrecognized request', {}, { Allow: allowed.join(', ') });
  }
  static missingToken(message = 'Missing access token.'): MatrixError {
    return MatrixError.of('M_MISSING_TOKEN', message);
  }
  static unknownToken(message = 'Unrecognised access token.', softLogout = false): MatrixError {
    return MatrixError.of('M_UNKNOWN_TOKEN', message, softLogout ? { soft_logout: true } : {});
  }
  static unauthorized(message: string): MatrixError {
    return MatrixError.of('M_UNAUTHORIZED', message);
  }
  /** 429 with the Retry-After header (seconds, rounded up) and the deprecated `retry_after_ms`. */
  static limitExceeded(retryAfterMs: number): MatrixError {
    const ms = Math.max(0, Math.ceil(retryAfterMs));
    return new MatrixError(
      429,
      'M_LIMIT_EXCEEDED',
      'Too many requests',
      { retry_after_ms: ms },
      { 'Retry-After': String(Math.ceil(ms / 1000)) },
    );
  }
  static unsupportedRoomVersion(message: string): MatrixError {
    return MatrixError.of('M_UNSUPPORTED_ROOM_VERSION', message);
  }
  /** 500: the message is for the client and must not carry internals. */
  static internal(): MatrixError {
    return new MatrixError(500, 'M_UNKNOWN', 'Internal server error');
  }
}

/** A known errcode (e.g. one a remote server answered with), so it can be passed on. */
export function isErrcode(text: unknown): text is Errcode {
  return typeof text === 'string' && Object.hasOwn(STATUS_BY_ERRCODE, text);
}

export function isMatrixError(e: unknown): e is MatrixError {
  return e instanceof MatrixError;
}

/** What a User-Interactive Authentication 401 tells the client besides any errcode. */
export interface UserInteractiveAuthChallenge {
  readonly flows: { stages: string[] }[];
  readonly params: Record<string, unknown>;
  readonly session: string;
  readonly completed?: string[];
}

/**
 * client-server "User-interactive API in the REST API": a 401 whose body is the
 * challenge (flows, params, session, completed); `errcode`/`error` appear only
 * after a failed stage attempt.
 */
export class UserInteractiveAuthRequired extends MatrixError {
  constructor(
    readonly challenge: UserInteractiveAuthChallenge,
    readonly failure?: { errcode: Errcode; message: string },
  ) {
    super(
      401,
      failure?.errcode ?? 'M_UNAUTHORIZED',
      failure?.message ?? 'Additional authentication required',
    );
  }

  override toJSON(): Record<string, unknown> {
    const body: Record<string, unknown> = { ...this.challenge };
    if (this.failure) {
      body.errcode = this.failure.errcode;
      body.error = this.failure.message;
    }
    return body;
  }
}

const ERRCODE_BY_PROTOCOL_CODE: Record<ProtocolErrorCode, Errcode> = {
  BAD_JSON: 'M_BAD_JSON',
  BAD_BASE64: 'M_INVALID_PARAM',
  BAD_IDENTIFIER: 'M_INVALID_PARAM',
  BAD_EVENT: 'M_BAD_JSON',
  EVENT_TOO_LARGE: 'M_TOO_LARGE',
  BAD_SIGNATURE: 'M_INVALID_PARAM',
  MISSING_SIGNATURE: 'M_INVALID_PARAM',
  BAD_KEY: 'M_INVALID_PARAM',
  BAD_AUTHORIZATION: 'M_UNAUTHORIZED',
  UNSUPPORTED_ROOM_VERSION: 'M_UNSUPPORTED_ROOM_VERSION',
  MISSING_EVENT: 'M_NOT_FOUND',
};

/**
 * A ProtocolError reaching the edge means the client sent something the protocol
 * rejects: always a 400, whatever the errcode's usual status (M_TOO_LARGE for an
 * event is about the event, not the request body).
 */
export function matrixErrorFromProtocolError(e: ProtocolError): MatrixError {
  const message = e.field ? `${e.message} (${e.field})` : e.message;
  return new MatrixError(400, ERRCODE_BY_PROTOCOL_CODE[e.code], message);
}
