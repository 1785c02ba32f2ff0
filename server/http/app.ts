/**
 * Builds the Koa app for one listener from a route table. Knows no particular
 * route: request IDs and logging, CORS, error rendering, then dispatch through
 * the router (404 / 405 M_UNRECOGNIZED) into the compiled route pipeline. The
 * same dispatcher runs requests that arrive without Koa (WebSocket frames).
 */
import { Readable } from 'node:stream';
import Koa, { type ParameterizedContext } from 'koa';
import type { Logger } from 'pino';
import { MatrixError } from '../errors.js';
import { cors } from './cors.js';
import { errorResponses, matrixErrorFor } from './error-responses.js';
import {
  compileRoute,
  type PipelineDependencies,
  type PipelineRequest,
  type PipelineResponse,
  type RouteRunner,
} from './pipeline.js';
import { readRawBody } from './request-body.js';
import { requestLogging } from './request-logging.js';
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
  const { dispatcher } = options;
  const app = new Koa<RequestState>({ proxy: options.trustProxy });
  // Errors are rendered by errorResponses; Koa's own handler would print to stderr.
  app.silent = true;
  app.on('error', (err: unknown) => options.logger.warn({ err }, 'HTTP error outside a request handler'));

  app.use(requestLogging(options.logger));
  app.use(async (ctx, next) => {
    if (options.stopping()) ctx.set('Connection', 'close');
    await next();
  });
  app.use(cors(options.corsAllowedOrigins));
  app.use(errorResponses());
  app.use(async (ctx) => {
    const match = dispatcher.router.match(ctx.method, ctx.path);
    if (match.kind === 'not-found') throw MatrixError.unrecognized();
    if (match.kind === 'method-not-allowed') throw MatrixError.methodNotAllowed(match.allowed);
    const response = await dispatcher.run(
      match.route,
      pipelineRequestOf(ctx, options.shutdownSignal),
      match.rawParams,
    );
    ctx.body = response.body;
    ctx.type = response.contentType;
    ctx.status = response.status;
    if (response.headers) ctx.set(response.headers);
  });
  return app;
}

function pipelineRequestOf(
  ctx: ParameterizedContext<RequestState>,
  shutdownSignal: AbortSignal,
): PipelineRequest {
  return {
    method: ctx.method,
    uri: ctx.originalUrl,
    query: ctx.query,
    headers: ctx.headers,
    ip: ctx.ip,
    requestId: ctx.state.requestId,
    log: ctx.state.log,
    readBody: (limit) => readRawBody(ctx.req, limit),
    bodyStream: () => ctx.req,
    signal: () => requestSignal(ctx, shutdownSignal),
  };
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
