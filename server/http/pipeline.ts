/**
 * The one request pipeline every route runs through, in this order: path
 * parameters decoded, body read under the size limit, authentication, rate
 * limit (keyed by the authenticated user or server, else the client address),
 * query/path/body validated against the route's schemas, handler,
 * response written (and checked against its schema when asked).
 */
import type { ParameterizedContext } from 'koa';
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
import { parseJsonBody, readRawBody } from './request-body.js';
import type { RequestState } from './request-state.js';
import { isRawResponse, type Route, type RouteRequest } from './route.js';
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

export type KoaContext = ParameterizedContext<RequestState>;

export type RouteRunner = (ctx: KoaContext, rawParams: Record<string, string>) => Promise<void>;

export function compileRoute(route: Route, deps: PipelineDependencies): RouteRunner {
  const validators = deps.validation.compile(route);
  const hasBody = route.request?.body !== undefined;
  const allowEmptyBody = route.request?.allowEmptyBody ?? false;

  return async (ctx, rawParams) => {
    const params = decodePathParams(rawParams);
    const query: Record<string, unknown> = { ...ctx.query };
    const rawBody = hasBody ? await readRawBody(ctx.req, deps.maxRequestBodyBytes) : undefined;

    // A failed authentication still draws from the caller's bucket, so guessing tokens is rate limited too.
    const authentication = await authenticate(route, ctx, query, rawBody, deps.authenticator).then(
      (requester) => ({ requester, failure: undefined }),
      (failure: unknown) => ({ requester: undefined, failure }),
    );
    const requester = authentication.requester;
    const exempt =
      requester?.kind === 'user' && requester.isAdmin && deps.context.config.rate_limits.exempt_admins;
    const retryAfterMs = exempt ? 0 : deps.rateLimiter.take(route.rateLimit, rateLimitKey(requester, ctx.ip));
    if (retryAfterMs > 0) throw MatrixError.limitExceeded(retryAfterMs);
    if (authentication.failure !== undefined) throw authentication.failure;
    delete query.access_token;

    let signal: AbortSignal | undefined;
    const request: RouteRequest<unknown, unknown, unknown, typeof route.auth> = {
      params: deps.validation.validateParams(validators, params),
      query: deps.validation.validateQuery(validators, query),
      body:
        rawBody === undefined
          ? undefined
          : deps.validation.validateBody(validators, parseJsonBody(rawBody, allowEmptyBody)),
      requester,
      requestId: ctx.state.requestId,
      log: ctx.state.log,
      get signal() {
        signal ??= requestSignal(ctx, deps.context.shutdownSignal);
        return signal;
      },
      ip: ctx.ip,
      headers: ctx.headers,
    };

    const reply = await route.handler(request, deps.context);
    writeReply(ctx, route, reply, validators, deps);
  };
}

function decodePathParams(rawParams: Record<string, string>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, raw] of Object.entries(rawParams)) {
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
  ctx: KoaContext,
  query: Record<string, unknown>,
  rawBody: Uint8Array | undefined,
  authenticator: Authenticator,
): Promise<AuthenticatedUser | AuthenticatedServer | undefined> {
  switch (route.auth) {
    case 'none':
      return undefined;
    case 'optional': {
      const token = accessTokenOf(ctx.headers, query);
      return token === undefined ? undefined : authenticator.authenticateAccessToken(token, originOf(ctx));
    }
    case 'access-token': {
      const token = accessTokenOf(ctx.headers, query);
      if (token === undefined) throw MatrixError.missingToken();
      return authenticator.authenticateAccessToken(token, originOf(ctx));
    }
    case 'x-matrix':
      return authenticator.authenticateServer({
        method: ctx.method,
        uri: ctx.originalUrl,
        headers: ctx.headers,
        rawBody,
      });
  }
}

function originOf(ctx: KoaContext): RequestOrigin {
  return { ip: ctx.ip, userAgent: ctx.headers['user-agent'] };
}

function rateLimitKey(requester: AuthenticatedUser | AuthenticatedServer | undefined, ip: string): string {
  if (requester?.kind === 'user') return requester.userId;
  if (requester?.kind === 'server') return requester.serverName;
  return ip;
}

/**
 * Aborts when the server stops or the client goes away before its answer is
 * written. Built only for handlers that ask (long polls), and unhooked from the
 * server-wide signal when the response ends so nothing accumulates there.
 */
function requestSignal(ctx: KoaContext, shutdownSignal: AbortSignal): AbortSignal {
  const controller = new AbortController();
  if (shutdownSignal.aborted) controller.abort();
  const onShutdown = () => controller.abort();
  shutdownSignal.addEventListener('abort', onShutdown, { once: true });
  ctx.res.once('close', () => {
    shutdownSignal.removeEventListener('abort', onShutdown);
    if (!ctx.res.writableFinished) controller.abort();
  });
  return controller.signal;
}

function writeReply(
  ctx: KoaContext,
  route: Route,
  reply: { status: number; body: unknown; headers?: Record<string, string> },
  validators: RouteValidators,
  deps: PipelineDependencies,
): void {
  const spec = route.responses[reply.status];
  if (!spec) {
    ctx.state.log.error(
      { status: reply.status, route: route.operationId },
      'Handler replied with an undeclared status',
    );
    throw MatrixError.internal();
  }
  if (isRawResponse(spec)) {
    ctx.body = typeof reply.body === 'string' ? reply.body : Buffer.from(reply.body as Uint8Array);
    ctx.type = spec.contentType;
  } else {
    if (deps.validateResponses) {
      const mismatch = deps.validation.checkResponse(validators, reply.status, reply.body);
      if (mismatch) {
        ctx.state.log.error({ route: route.operationId, mismatch }, 'Response does not match its schema');
        throw MatrixError.internal();
      }
    }
    ctx.body = JSON.stringify(reply.body);
    ctx.type = 'application/json';
  }
  ctx.status = reply.status;
  if (reply.headers) ctx.set(reply.headers);
}
