/**
 * Builds the Koa app for one listener from a route table. Knows no particular
 * route: request IDs and logging, CORS, error rendering, then dispatch through
 * the router (404 / 405 M_UNRECOGNIZED) into the compiled route pipeline. The
 * same dispatcher runs requests that arrive without Koa (WebSocket frames).
 * Every request passes here, so it is one middleware that writes whole answers itself.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import Koa, { type ParameterizedContext } from 'koa';
import type { Logger } from 'pino';
import { MatrixError } from '../errors.js';
import { corsHeaders } from './cors.js';
import { matrixErrorFor } from './error-responses.js';
import {
  compileRoute,
  type PipelineDependencies,
  type PipelineRequest,
  type PipelineResponse,
  type RouteRunner,
} from './pipeline.js';
import { RequestAbortedError, readRawBody } from './request-body.js';
import { logRequest, requestIdFor } from './request-logging.js';
import type { RequestState } from './request-state.js';
import type { Route } from './route.js';
import { createRouter, type Router } from './router.js';

export interface HttpAppOptions {
  readonly dispatcher: RouteDispatcher;
  readonly logger: Logger;
  readonly shutdownSignal: AbortSignal;
  readonly corsAllowedOrigins: readonly string[];
  /** Trust X-Forwarded-For / -Proto (a reverse proxy sits in front of this listener). */
  readonly trustProxy: boolean;
  /** True once the server is stopping: answers then close their connection instead of keeping it alive. */
  readonly stopping: () => boolean;
}

/** One listener's route table, compiled: what the HTTP app and the WebSocket gateway both run requests through. */
export interface RouteDispatcher {
  readonly router: Router;
  /** Runs a matched route; throws what the route throws. */
  run(route: Route, request: PipelineRequest, rawParams: Record<string, string>): Promise<PipelineResponse>;
  /**
   * Routes and runs a request exactly as the HTTP app would, errors included:
   * whatever is thrown comes back as its Matrix error response.
   */
  dispatch(request: PipelineRequest): Promise<WholeResponse>;
}

/** A response with its whole body at hand (what a WebSocket frame carries). */
export type WholeResponse = Omit<PipelineResponse, 'body'> & { readonly body: string | Buffer };

export function createRouteDispatcher(
  routes: readonly Route[],
  pipeline: PipelineDependencies,
): RouteDispatcher {
  const router = createRouter(routes);
  // Compiling every route up front checks every schema at start-up, not on first request.
  const runners = new Map<Route, RouteRunner>(routes.map((route) => [route, compileRoute(route, pipeline)]));
  const run = (route: Route, request: PipelineRequest, rawParams: Record<string, string>) =>
    runners.get(route)!(request, rawParams);
  return {
    router,
    run,
    async dispatch(request) {
      try {
        const queryStart = request.uri.indexOf('?');
        const path = queryStart === -1 ? request.uri : request.uri.slice(0, queryStart);
        const match = router.match(request.method, path);
        if (match.kind === 'not-found') throw MatrixError.unrecognized();
        if (match.kind === 'method-not-allowed') throw MatrixError.methodNotAllowed(match.allowed);
        const response = await run(match.route, request, match.rawParams);
        // Frames carry whole bodies: a streamed answer (media) is gathered here, for WebSocket callers only.
        if (response.body instanceof Readable) {
          const chunks: Buffer[] = [];
          for await (const chunk of response.body) chunks.push(chunk as Buffer);
          return { ...response, body: Buffer.concat(chunks) };
        }
        return response as WholeResponse;
      } catch (thrown) {
        const error = matrixErrorFor(thrown, request.log);
        return {
          status: error.status,
          body: JSON.stringify(error.toJSON()),
          contentType: 'application/json',
          headers: Object.keys(error.headers).length > 0 ? error.headers : undefined,
        };
      }
    },
  };
}

export function createHttpApp(options: HttpAppOptions): Koa<RequestState> {
  const { dispatcher, logger, shutdownSignal } = options;
  const app = new Koa<RequestState>({ proxy: options.trustProxy });
  // Errors are rendered below; Koa's own handler would print to stderr.
  app.silent = true;
  app.on('error', (err: unknown) => logger.warn({ err }, 'HTTP error outside a request handler'));
  const cors = corsHeaders(options.corsAllowedOrigins);

  // One middleware, in the order the steps must happen: request ID and logger, Connection: close
  // while stopping, CORS (OPTIONS answered there), then the route, whatever it throws rendered as
  // its Matrix error. Whole answers (JSON, every error) are written here, not by Koa.
  app.use(async (ctx) => {
    const { req, res } = ctx;
    const startedAt = performance.now();
    const requestId = requestIdFor(req.headers['x-request-id'] as string | undefined);
    const log = logger.child({ requestId });
    ctx.state.requestId = requestId;
    ctx.state.log = log;
    res.setHeader('X-Request-Id', requestId);
    try {
      if (options.stopping()) res.setHeader('Connection', 'close');
      cors(req, res);
      if (ctx.method === 'OPTIONS') {
        ctx.status = 204;
        return;
      }
      try {
        const match = dispatcher.router.match(ctx.method, ctx.path);
        if (match.kind === 'not-found') throw MatrixError.unrecognized();
        if (match.kind === 'method-not-allowed') throw MatrixError.methodNotAllowed(match.allowed);
        const response = await dispatcher.run(
          match.route,
          new KoaPipelineRequest(ctx, shutdownSignal),
          match.rawParams,
        );
        if (response.contentType === 'application/json' && !(response.body instanceof Readable)) {
          writeWhole(ctx, response.status, response.body, response.headers);
        } else {
          ctx.body = response.body;
          ctx.type = response.contentType;
          ctx.status = response.status;
          if (response.headers) ctx.set(response.headers);
        }
      } catch (thrown) {
        if (thrown instanceof RequestAbortedError) {
          log.debug('Client closed the request before sending its body');
          ctx.status = 400;
          return;
        }
        const error = matrixErrorFor(thrown, log);
        // The rest of an oversized body is not worth reading: end the connection after the answer.
        if (error.status === 413) res.setHeader('Connection', 'close');
        writeWhole(ctx, error.status, JSON.stringify(error.toJSON()), error.headers);
      }
    } finally {
      logRequest(log, ctx.method, ctx.path, ctx.querystring, res.statusCode, startedAt);
    }
  });
  return app;
}

/** Statuses whose answer has no body (Koa's `statuses.empty`). */
const EMPTY_BODY_STATUSES = new Set([204, 205, 304]);
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Writes a whole JSON answer as Koa would (Content-Type with its charset, Content-Length,
 * no body for HEAD or a bodiless status, the route's headers last), without its
 * per-response body, type and header machinery. The body is sent by end() here;
 * Koa is told not to respond.
 */
function writeWhole(
  ctx: ParameterizedContext<RequestState>,
  status: number,
  body: string | Buffer,
  headers: Record<string, string> | undefined,
): void {
  const { res } = ctx;
  ctx.respond = false;
  // As Koa: nobody left to read the answer (the client went away), so only end the response.
  if (res.writableEnded || (res.socket !== null && !res.socket.writable)) {
    res.end();
    return;
  }
  res.statusCode = status;
  const empty = EMPTY_BODY_STATUSES.has(status);
  if (!empty) {
    res.setHeader('Content-Type', JSON_CONTENT_TYPE);
    res.setHeader('Content-Length', typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  }
  if (headers) for (const name in headers) res.setHeader(name, headers[name]!);
  if (empty || ctx.method === 'HEAD') res.end();
  else res.end(body);
}

/**
 * The pipeline's view of a Koa request. A class rather than an object of closures:
 * this is built for every request.
 */
class KoaPipelineRequest implements PipelineRequest {
  readonly method: string;
  readonly uri: string;
  readonly headers: IncomingHttpHeaders;
  readonly requestId: string;
  readonly log: Logger;

  constructor(
    private readonly ctx: ParameterizedContext<RequestState>,
    private readonly shutdownSignal: AbortSignal,
  ) {
    this.method = ctx.method;
    this.uri = ctx.originalUrl;
    this.headers = ctx.req.headers;
    this.requestId = ctx.state.requestId;
    this.log = ctx.state.log;
  }

  get query(): Readonly<Record<string, string | string[] | undefined>> {
    return this.ctx.query;
  }

  get ip(): string {
    return this.ctx.ip;
  }

  readBody(limit: number): Promise<Buffer> {
    return readRawBody(this.ctx.req, limit);
  }

  bodyStream(): Readable {
    return this.ctx.req;
  }

  signal(): AbortSignal {
    return requestSignal(this.ctx, this.shutdownSignal);
  }
}

/**
 * Aborts when the server stops or the client goes away before its answer is
 * written. Built only for handlers that ask (long polls), and unhooked from the
 * server-wide signal when the response ends so nothing accumulates there.
 */
function requestSignal(ctx: ParameterizedContext<RequestState>, shutdownSignal: AbortSignal): AbortSignal {
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
