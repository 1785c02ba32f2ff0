/**
 * The one request pipeline every route runs through, in this order: path
 * parameters decoded, body read under the size limit, authentication, rate
 * limit (keyed by the authenticated user or server, else the client address),
 * query/path/body validated against the route's schemas, handler,
 * response shaped (and checked against its schema when asked). HTTP (app.ts)
 * and WebSocket frames (ws/) both run routes through it.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import {
  type AuthenticatedServer,
  type AuthenticatedUser,
  type Authenticator,
  accessTokenOf,
  type RequestOrigin,
} from './auth.js';
import type { RateLimiter } from './rate-limit.js';
import { parseJsonBody } from './request-body.js';
import { type AuthRequirement, isRawResponse, type Route, type RouteRequest } from './route.js';
import { SerializedJson } from './serialized-json.js';
import type { RequestValidation, RouteValidators } from './validation.js';

export interface PipelineDependencies {
  readonly context: HomeserverContext;
  readonly authenticator: Authenticator;
  readonly rateLimiter: RateLimiter;
  readonly validation: RequestValidation;
  readonly maxRequestBodyBytes: number;
  /** Check every JSON response against its declared schema (tests, development); a mismatch is a 500. */
  readonly validateResponses: boolean;
}

/**
 * One request as the pipeline sees it, whatever carried it: an HTTP exchange
 * (app.ts) or a frame on a WebSocket (ws/). Nothing here knows Koa.
 */
export interface PipelineRequest {
  readonly method: string;
  /** The path and query as sent (what an X-Matrix signature covers). */
  readonly uri: string;
  /** The query string, parsed; a repeated key is an array. */
  readonly query: Readonly<Record<string, string | string[] | undefined>>;
  readonly headers: IncomingHttpHeaders;
  readonly ip: string;
  readonly requestId: string;
  readonly log: Logger;
  /** The body's bytes, refused with 413 M_TOO_LARGE past `limit`; read only for routes that declare a body. */
  readBody(limit: number): Promise<Buffer>;
  /** The body as it arrives, unread (routes with `streamBody`); without it, readBody is streamed instead. */
  bodyStream?(): Readable;
  /**
   * Aborted when the caller goes away or the server stops; asked for only by handlers that wait
   * (long polls). May be shared by the requests of one connection (HTTP) or stream (WebSocket).
   */
  signal(): AbortSignal;
}

/** A route's answer, ready to write: JSON responses carry their JSON text; raw ones may stream. */
export interface PipelineResponse {
  readonly status: number;
  readonly body: string | Buffer | Readable;
  readonly contentType: string;
  readonly headers: Record<string, string> | undefined;
}

/** Runs one route on one request; throws what the route throws (the caller renders errors). */
export type RouteRunner = (
  request: PipelineRequest,
  rawParams: Record<string, string>,
) => Promise<PipelineResponse>;

export function compileRoute(route: Route, deps: PipelineDependencies): RouteRunner {
  let compiled: RouteValidators | undefined;
  const hasBody = route.request?.body !== undefined;
  const allowEmptyBody = route.request?.allowEmptyBody ?? false;
  const bodyLimit = route.request?.maxBodyBytes ?? deps.maxRequestBodyBytes;

  return async (incoming, rawParams) => {
    compiled ??= deps.validation.compile(route);
    const validators = compiled;
    const params = decodePathParams(rawParams);
    const query: Record<string, unknown> = { ...incoming.query };
    const rawBody = hasBody ? await incoming.readBody(bodyLimit) : undefined;

    // A failed authentication still draws from the caller's bucket, so guessing tokens is rate limited too.
    let requester: AuthenticatedUser | AuthenticatedServer | undefined;
    let failure: unknown;
    let failed = false;
    try {
      requester = await authenticate(route, incoming, query, rawBody, deps.authenticator);
    } catch (thrown) {
      failure = thrown;
      failed = true;
    }
    const exempt =
      requester?.kind === 'user' &&
      ((requester.isAdmin && deps.context.config.rate_limits.exempt_admins) ||
        requester.appservice?.rateLimited === false);
    const retryAfterMs = exempt
      ? 0
      : deps.rateLimiter.take(route.rateLimit, rateLimitKey(requester, incoming.ip));
    if (retryAfterMs > 0) throw MatrixError.limitExceeded(retryAfterMs);
    if (failed) throw failure;
    if (requester?.kind === 'user' && requester.isLocked && route.allowLockedAccount !== true) {
      throw MatrixError.userLocked();
    }
    if (requester?.kind === 'user' && requester.isSuspended && route.refusedWhileSuspended === true) {
      throw MatrixError.userSuspended();
    }
    // The deprecated token parameter is credentials, not input, except where a route without
    // auth takes a token as its subject (federation openid/userinfo).
    if (route.auth !== 'none') delete query.access_token;

    const request = new PipelineRouteRequest(
      incoming,
      deps.validation.validateParams(validators, params),
      deps.validation.validateQuery(validators, query),
      rawBody === undefined
        ? undefined
        : deps.validation.validateBody(validators, parseJsonBody(rawBody, allowEmptyBody)),
      requester,
      deps.maxRequestBodyBytes,
    );
    const reply = await route.handler(request, deps.context);
    return responseOf(incoming, route, reply, validators, deps);
  };
}

/** What a handler is given. A class rather than an object literal with a getter and a closure: one per request. */
class PipelineRouteRequest implements RouteRequest<unknown, unknown, unknown, AuthRequirement> {
  readonly requestId: string;
  readonly ip: string;
  readonly headers: IncomingHttpHeaders;
  private abortSignal: AbortSignal | undefined;

  constructor(
    private readonly incoming: PipelineRequest,
    readonly params: unknown,
    readonly query: unknown,
    readonly body: unknown,
    readonly requester: AuthenticatedUser | AuthenticatedServer | undefined,
    private readonly maxBodyBytes: number,
  ) {
    this.requestId = incoming.requestId;
    this.ip = incoming.ip;
    this.headers = incoming.headers;
  }

  /** Asked of the incoming request only when used: it may make its logger then. */
  get log(): Logger {
    return this.incoming.log;
  }

  /** Built on first use: only handlers that wait (long polls) ask. */
  get signal(): AbortSignal {
    this.abortSignal ??= this.incoming.signal();
    return this.abortSignal;
  }

  bodyStream(): Readable {
    return streamOf(this.incoming, this.maxBodyBytes);
  }
}

function streamOf(incoming: PipelineRequest, limit: number): Readable {
  if (incoming.bodyStream) return incoming.bodyStream();
  return Readable.from(
    (async function* () {
      yield await incoming.readBody(limit);
    })(),
  );
}

function decodePathParams(rawParams: Record<string, string>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const name in rawParams) {
    const raw = rawParams[name]!;
    try {
      params[name] = decodeURIComponent(raw);
    } catch {
      throw MatrixError.invalidParam(`Path parameter '${name}' is not valid percent-encoding`);
    }
  }
  return params;
}

async function authenticate(
  route: Route,
  incoming: PipelineRequest,
  query: Record<string, unknown>,
  rawBody: Uint8Array | undefined,
  authenticator: Authenticator,
): Promise<AuthenticatedUser | AuthenticatedServer | undefined> {
  switch (route.auth) {
    case 'none':
      return undefined;
    case 'optional': {
      const token = accessTokenOf(incoming.headers, query);
      return token === undefined
        ? undefined
        : authenticator.authenticateAccessToken(token, originOf(incoming), query);
    }
    case 'access-token': {
      const token = accessTokenOf(incoming.headers, query);
      if (token === undefined) throw MatrixError.missingToken();
      return authenticator.authenticateAccessToken(token, originOf(incoming), query);
    }
    case 'x-matrix':
      return authenticator.authenticateServer({
        method: incoming.method,
        uri: incoming.uri,
        headers: incoming.headers,
        rawBody,
      });
  }
}

function originOf(incoming: PipelineRequest): RequestOrigin {
  return { ip: incoming.ip, userAgent: incoming.headers['user-agent'] };
}

function rateLimitKey(requester: AuthenticatedUser | AuthenticatedServer | undefined, ip: string): string {
  if (requester?.kind === 'user') return requester.userId;
  if (requester?.kind === 'server') return requester.serverName;
  return ip;
}

function responseOf(
  incoming: PipelineRequest,
  route: Route,
  reply: { status: number; body: unknown; headers?: Record<string, string> },
  validators: RouteValidators,
  deps: PipelineDependencies,
): PipelineResponse {
  const spec = route.responses[reply.status];
  if (!spec) {
    incoming.log.error(
      { status: reply.status, route: route.operationId },
      'Handler replied with an undeclared status',
    );
    throw MatrixError.internal();
  }
  if (isRawResponse(spec)) {
    return {
      status: reply.status,
      body:
        typeof reply.body === 'string' || reply.body instanceof Readable
          ? reply.body
          : Buffer.from(reply.body as Uint8Array),
      contentType: spec.contentType,
      headers: reply.headers,
    };
  }
  const shared = reply.body instanceof SerializedJson ? reply.body : undefined;
  const serialized = shared?.json;
  if (deps.validateResponses) {
    const body = serialized === undefined ? reply.body : JSON.parse(serialized);
    const mismatch = deps.validation.checkResponse(validators, reply.status, body);
    if (mismatch) {
      incoming.log.error({ route: route.operationId, mismatch }, 'Response does not match its schema');
      throw MatrixError.internal();
    }
  }
  return {
    status: reply.status,
    body: shared?.bytes ?? serialized ?? JSON.stringify(reply.body),
    contentType: 'application/json',
    headers: reply.headers,
  };
}
