/**
 * The frames of the io.myelin WebSocket protocol (spec/websocket.md): what a
 * client may send, parsed into typed commands, and the frames the server
 * writes. Convenience commands (send, typing, receipt, read_marker, reaction,
 * redaction) are spelled out here as the REST requests they stand for, so
 * every one of them runs through the same route and pipeline as over HTTP.
 */
import { MatrixError } from '../errors.js';

/** A client's request ID, echoed on its response. */
export type RequestId = string | number;

/** A REST call carried by a frame: method, path with query, JSON body. */
export interface CarriedRequest {
  readonly id: RequestId;
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
}

export interface SyncCommand {
  readonly since: string | undefined;
  /** A filter ID or an inline filter (JSON text), as /sync's `filter`. */
  readonly filter: string | undefined;
  readonly fullState: boolean;
  readonly setPresence: 'online' | 'offline' | 'unavailable' | undefined;
}

export type ClientCommand =
  | { kind: 'auth'; accessToken: string }
  | { kind: 'sync'; sync: SyncCommand }
  | { kind: 'sync_stop' }
  /** The client has processed the deltas up to this next_batch: their to-device messages may go. */
  | { kind: 'sync_ack'; nextBatch: string }
  | { kind: 'ping'; id: RequestId | undefined }
  | { kind: 'request'; request: CarriedRequest };

/**
 * A frame that cannot become a command. With a request ID the client gets a
 * `response` carrying the error (exactly as a REST call with that mistake
 * would); without one, an `error` frame.
 */
export class FrameError extends Error {
  constructor(
    readonly error: MatrixError,
    readonly id: RequestId | undefined,
  ) {
    super(error.message);
  }
}

const MAX_REQUEST_ID_LENGTH = 256;
const PRESENCE_STATES = new Set(['online', 'offline', 'unavailable']);
const CLIENT_V3 = '/_matrix/client/v3';

/** Parses one text frame from `userId`'s socket (undefined before auth); throws FrameError for anything malformed. */
export function parseClientFrame(text: string, userId: string | undefined): ClientCommand {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    throw new FrameError(MatrixError.notJson('Frame is not JSON.'), undefined);
  }
  if (!isObject(frame)) throw new FrameError(MatrixError.badJson('Frame must be a JSON object.'), undefined);
  const id = requestIdOf(frame);
  if (typeof frame.type !== 'string') {
    throw new FrameError(MatrixError.missingParam("Frame has no string 'type'."), id);
  }
  try {
    return commandOf(frame.type, frame, id, userId ?? '');
  } catch (error) {
    if (error instanceof MatrixError) throw new FrameError(error, id);
    throw error;
  }
}

function commandOf(
  type: string,
  frame: Record<string, unknown>,
  id: RequestId | undefined,
  userId: string,
): ClientCommand {
  switch (type) {
    case 'auth':
      return { kind: 'auth', accessToken: requiredString(frame, 'access_token') };
    case 'sync':
      return { kind: 'sync', sync: syncCommandOf(frame) };
    case 'sync_stop':
      return { kind: 'sync_stop' };
    case 'sync_ack':
      return { kind: 'sync_ack', nextBatch: requiredString(frame, 'next_batch') };
    case 'ping':
      return { kind: 'ping', id };
    case 'request':
      return {
        kind: 'request',
        request: {
          id: requiredId(id),
          method: requiredString(frame, 'method').toUpperCase(),
          path: requiredPath(frame),
          body: frame.body,
        },
      };
    case 'send':
    case 'typing':
    case 'receipt':
    case 'read_marker':
    case 'reaction':
    case 'redaction':
      return { kind: 'request', request: convenienceRequest(type, frame, requiredId(id), userId) };
    default:
      throw MatrixError.unrecognized(`Unknown frame type '${type}'.`);
  }
}

function syncCommandOf(frame: Record<string, unknown>): SyncCommand {
  const since = optionalString(frame, 'since');
  const rawFilter = frame.filter;
  let filter: string | undefined;
  if (rawFilter === undefined || rawFilter === null) filter = undefined;
  else if (typeof rawFilter === 'string') filter = rawFilter;
  else if (isObject(rawFilter)) filter = JSON.stringify(rawFilter);
  else throw MatrixError.invalidParam("'filter' must be a filter ID or a filter object.");
  const fullState = frame.full_state ?? false;
  if (typeof fullState !== 'boolean') throw MatrixError.invalidParam("'full_state' must be a boolean.");
  const setPresence = optionalString(frame, 'set_presence');
  if (setPresence !== undefined && !PRESENCE_STATES.has(setPresence)) {
    throw MatrixError.invalidParam("'set_presence' must be online, offline or unavailable.");
  }
  return {
    since,
    filter,
    fullState,
    setPresence: setPresence as SyncCommand['setPresence'],
  };
}

/** The REST request each convenience frame stands for. */
function convenienceRequest(
  type: string,
  frame: Record<string, unknown>,
  id: RequestId,
  userId: string,
): CarriedRequest {
  const room = segment(requiredString(frame, 'room_id'));
  const txnId = () => segment(optionalString(frame, 'txn_id') ?? `io.myelin.ws.${id}`);
  switch (type) {
    case 'send':
      return {
        id,
        method: 'PUT',
        path: `${CLIENT_V3}/rooms/${room}/send/${segment(requiredString(frame, 'event_type'))}/${txnId()}`,
        body: frame.content,
      };
    case 'typing':
      return {
        id,
        method: 'PUT',
        path: `${CLIENT_V3}/rooms/${room}/typing/${segment(userId)}`,
        body: withoutUndefined({ typing: frame.typing, timeout: frame.timeout }),
      };
    case 'receipt':
      return {
        id,
        method: 'POST',
        path: `${CLIENT_V3}/rooms/${room}/receipt/${segment(optionalString(frame, 'receipt_type') ?? 'm.read')}/${segment(requiredString(frame, 'event_id'))}`,
        body: withoutUndefined({ thread_id: frame.thread_id }),
      };
    case 'read_marker':
      return {
        id,
        method: 'POST',
        path: `${CLIENT_V3}/rooms/${room}/read_markers`,
        body: withoutUndefined({
          'm.fully_read': frame.fully_read,
          'm.read': frame.read,
          'm.read.private': frame.read_private,
        }),
      };
    case 'reaction':
      return {
        id,
        method: 'PUT',
        path: `${CLIENT_V3}/rooms/${room}/send/m.reaction/${txnId()}`,
        body: {
          'm.relates_to': {
            rel_type: 'm.annotation',
            event_id: requiredString(frame, 'event_id'),
            key: requiredString(frame, 'key'),
          },
        },
      };
    default:
      return {
        id,
        method: 'PUT',
        path: `${CLIENT_V3}/rooms/${room}/redact/${segment(requiredString(frame, 'event_id'))}/${txnId()}`,
        body: withoutUndefined({ reason: frame.reason }),
      };
  }
}

/** The `{"type":"response"}` frame: the REST status and the REST body, verbatim (JSON text). */
export function responseFrame(
  id: RequestId,
  status: number,
  bodyJson: string,
  headers: Record<string, string> | undefined,
): string {
  const extra = headers ? `,"headers":${JSON.stringify(headers)}` : '';
  return `{"type":"response","id":${JSON.stringify(id)},"status":${status},"body":${bodyJson}${extra}}`;
}

/** A response whose REST body is not JSON (text, bytes): carried as a string, base64 for binary types. */
export function rawResponseFrame(
  id: RequestId,
  status: number,
  body: string | Buffer,
  contentType: string,
  headers: Record<string, string> | undefined,
): string {
  const textual = /^text\/|[+/](json|xml|javascript)\b/.test(contentType);
  const frame: Record<string, unknown> = { type: 'response', id, status, content_type: contentType };
  if (textual) frame.body = typeof body === 'string' ? body : body.toString('utf8');
  else frame.body_base64 = (typeof body === 'string' ? Buffer.from(body) : body).toString('base64');
  if (headers) frame.headers = headers;
  return JSON.stringify(frame);
}

/** The `{"type":"sync"}` frame around a /sync response body. */
export function syncFrame(bodyJson: string): string {
  return `{"type":"sync","body":${bodyJson}}`;
}

/** The `{"type":"error"}` frame: a Matrix error not tied to a request (bad frame, failed auth, sync failure). */
export function errorFrame(error: MatrixError, context?: { id?: RequestId; in?: 'sync' | 'auth' }): string {
  return JSON.stringify({
    type: 'error',
    ...(context?.id !== undefined ? { id: context.id } : {}),
    ...(context?.in !== undefined ? { in: context.in } : {}),
    ...error.toJSON(),
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requestIdOf(frame: Record<string, unknown>): RequestId | undefined {
  const id = frame.id;
  if (typeof id === 'number' && Number.isFinite(id)) return id;
  if (typeof id === 'string' && id.length > 0 && id.length <= MAX_REQUEST_ID_LENGTH) return id;
  return undefined;
}

function requiredId(id: RequestId | undefined): RequestId {
  if (id === undefined) {
    throw MatrixError.missingParam(
      `A request frame needs an 'id' (a string of 1-${MAX_REQUEST_ID_LENGTH} characters or a number).`,
    );
  }
  return id;
}

function requiredString(frame: Record<string, unknown>, key: string): string {
  const value = frame[key];
  if (value === undefined || value === null) throw MatrixError.missingParam(`Missing '${key}'.`);
  if (typeof value !== 'string') throw MatrixError.badJson(`'${key}' must be a string.`);
  return value;
}

function optionalString(frame: Record<string, unknown>, key: string): string | undefined {
  const value = frame[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw MatrixError.badJson(`'${key}' must be a string.`);
  return value;
}

function requiredPath(frame: Record<string, unknown>): string {
  const path = requiredString(frame, 'path');
  if (!path.startsWith('/')) throw MatrixError.invalidParam("'path' must start with '/'.");
  return path;
}

function segment(value: string): string {
  return encodeURIComponent(value);
}

function withoutUndefined(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}
