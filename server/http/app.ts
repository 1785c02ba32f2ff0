/**
 * Builds the Koa app for one listener from a route table. Knows no particular
 * route: request IDs and logging, CORS, error rendering, then dispatch through
 * the router (404 / 405 M_UNRECOGNIZED) into the compiled route pipeline. The
 * same dispatcher runs requests that arrive without Koa (WebSocket frames).
 * Every request passes here: Koa parses its URL and writes what is not a whole JSON answer.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
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

/** What node:http's createServer takes. */
export type HttpRequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** An answer Koa writes (raw bodies, streams, OPTIONS): applied to the request's context. */
type KoaAnswer = (ctx: ParameterizedContext) => void;

/**
 * Koa's per-request step behind `app.callback()` (Koa 2 and 3): runs the middleware on a
 * context, then writes `ctx.body` as Koa does, errors through `ctx.onerror`. Not in Koa's types.
 */
interface KoaRequestHandler {
  handleRequest(
    ctx: ParameterizedContext,
    middleware: (ctx: ParameterizedContext) => Promise<void>,
  ): Promise<void>;
}

export function createHttpApp(options: HttpAppOptions): HttpRequestListener {
  const { dispatcher, logger } = options;
  const signals = new RequestSignals(options.shutdownSignal);
  const app = new Koa({ proxy: options.trustProxy });
  // Errors are rendered below; Koa's own handler would print to stderr.
  app.silent = true;
  app.on('error', (err: unknown) => logger.warn({ err }, 'HTTP error outside a request handler'));
  const cors = corsHeaders(options.corsAllowedOrigins);
  // Koa writes only what is not a whole JSON answer, through the context already made for the
  // request: its response step (bodies, streams, HEAD, Content-Length) with the answer as the
  // only middleware, rather than `app.callback()`, which would build a second context.
  const { handleRequest } = app as unknown as Partial<KoaRequestHandler>;
  // Checked at start-up: a Koa without it fails here, not on the first stream or OPTIONS answer.
  if (typeof handleRequest !== 'function') throw new Error('This Koa has no handleRequest step');
  const koaHandle = handleRequest.bind(app);
  const answerThroughKoa = (ctx: ParameterizedContext, head: string[], answer: KoaAnswer) => {
    for (let i = 0; i < head.length; i += 2) ctx.res.setHeader(head[i]!, head[i + 1]!);
    // Not async: an answer that throws (a bad header value) reaches serve's catch and is
    // rendered as a Matrix error, rather than as Koa's plain-text one.
    return koaHandle(ctx, (koa) => {
      answer(koa);
      return Promise.resolve();
    });
  };

  /**
   * Every request, in the order the steps must happen: request ID and logger, Connection: close
   * while stopping, CORS (OPTIONS answered there), then the route, whatever it throws rendered
   * as its Matrix error, and the access-log line. Koa's context gives the parsed URL and client
   * address; whole answers (JSON, every error) are written here in one writeHead.
   */
  const serve = async (ctx: ParameterizedContext): Promise<void> => {
    const { req, res } = ctx;
    const startedAt = performance.now();
    const requestId = requestIdFor(req.headers['x-request-id'] as string | undefined);
    const request = new KoaPipelineRequest(ctx, requestId, logger, signals);
    // The headers every answer carries, as name/value pairs.
    const head = ['X-Request-Id', requestId];
    try {
      if (options.stopping()) head.push('Connection', 'close');
      cors(req.headers, head);
      if (ctx.method === 'OPTIONS') {
        await answerThroughKoa(ctx, head, (koa) => {
          koa.status = 204;
        });
        return;
      }
      try {
        const match = dispatcher.router.match(ctx.method, ctx.path);
        if (match.kind === 'not-found') throw MatrixError.unrecognized();
        if (match.kind === 'method-not-allowed') throw MatrixError.methodNotAllowed(match.allowed);
        const response = await dispatcher.run(match.route, request, match.rawParams);
        const { body } = response;
        if (response.contentType === 'application/json' && !(body instanceof Readable)) {
          writeWhole(ctx, head, response.status, body, response.headers);
        } else {
          await answerThroughKoa(ctx, head, (koa) => {
            koa.body = body;
            koa.type = response.contentType;
            koa.status = response.status;
            if (response.headers) koa.set(response.headers);
          });
        }
      } catch (thrown) {
        if (thrown instanceof RequestAbortedError) {
          request.log.debug('Client closed the request before sending its body');
          await answerThroughKoa(ctx, head, (koa) => {
            koa.status = 400;
          });
          return;
        }
        const error = matrixErrorFor(thrown, request.log);
        // The rest of an oversized body is not worth reading: end the connection after the answer.
        if (error.status === 413 && !options.stopping()) head.push('Connection', 'close');
        writeWhole(ctx, head, error.status, JSON.stringify(error.toJSON()), error.headers);
      }
    } finally {
      logRequest(logger, requestId, ctx.method, ctx.path, ctx.querystring, res.statusCode, startedAt);
    }
  };

  return (req, res) => {
    const ctx = app.createContext(req, res);
    // What serve itself throws (a bug): Koa's last-resort answer, as its own handler gives.
    serve(ctx).catch((error: unknown) => ctx.onerror(error as Error));
  };
}

/** Statuses whose answer has no body (Koa's `statuses.empty`). */
const EMPTY_BODY_STATUSES = new Set([204, 205, 304]);
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Writes a whole JSON answer as Koa would (Content-Type with its charset, Content-Length,
 * no body for HEAD or a bodiless status, the route's headers last), in one writeHead of
 * name/value pairs rather than a setHeader per header.
 */
function writeWhole(
  ctx: ParameterizedContext,
  head: string[],
  status: number,
  body: string | Buffer,
  headers: Record<string, string> | undefined,
): void {
  const { res } = ctx;
  // As Koa: nobody left to read the answer (the client went away), so only end the response.
  if (res.writableEnded || (res.socket !== null && !res.socket.writable)) {
    res.end();
    return;
  }
  const empty = EMPTY_BODY_STATUSES.has(status);
  if (!empty) {
    const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    head.push('Content-Type', JSON_CONTENT_TYPE, 'Content-Length', String(length));
  }
  if (headers !== undefined && hasAny(headers)) {
    // The route's own headers replace any of the above with the same name.
    for (let i = 0; i < head.length; i += 2) res.setHeader(head[i]!, head[i + 1]!);
    for (const name in headers) res.setHeader(name, headers[name]!);
    res.statusCode = status;
  } else {
    res.writeHead(status, head);
  }
  if (empty || ctx.method === 'HEAD') res.end();
  else res.end(body);
}

function hasAny(headers: Record<string, string>): boolean {
  for (const _ in headers) return true;
  return false;
}

const NO_QUERY: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The pipeline's view of a Koa request. A class rather than an object of closures:
 * this is built for every request.
 */
class KoaPipelineRequest implements PipelineRequest {
  readonly method: string;
  readonly uri: string;
  readonly headers: IncomingHttpHeaders;
  private childLog: Logger | undefined;

  constructor(
    private readonly ctx: ParameterizedContext,
    readonly requestId: string,
    private readonly logger: Logger,
    private readonly signals: RequestSignals,
  ) {
    this.method = ctx.method;
    this.uri = ctx.originalUrl;
    this.headers = ctx.req.headers;
  }

  /** A child logger carrying the request ID, made on first use: most requests log nothing but their access line. */
  get log(): Logger {
    this.childLog ??= this.logger.child({ requestId: this.requestId });
    return this.childLog;
  }

  get query(): Readonly<Record<string, string | string[] | undefined>> {
    // Koa parses even an empty query string into a fresh object; the pipeline copies it anyway.
    return this.ctx.querystring === '' ? NO_QUERY : this.ctx.query;
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
    return this.signals.signalFor(this.ctx.res);
  }
}

/**
 * Request signals: each aborts when the server stops or its client goes away before its answer
 * is written. Built only for handlers that ask (long polls). The open ones sit in a set that one
 * shutdown listener aborts, rather than each adding and removing its own listener on the
 * server-wide signal (an EventTarget's removal walks its listeners: a cost per long poll that
 * grows with the number waiting).
 */
class RequestSignals {
  private readonly open = new Set<AbortController>();

  constructor(private readonly shutdownSignal: AbortSignal) {
    shutdownSignal.addEventListener(
      'abort',
      () => {
        for (const controller of this.open) controller.abort();
        this.open.clear();
      },
      { once: true },
    );
  }

  signalFor(res: ServerResponse): AbortSignal {
    const controller = new AbortController();
    if (this.shutdownSignal.aborted) {
      controller.abort();
      return controller.signal;
    }
    this.open.add(controller);
    res.once('close', () => {
      this.open.delete(controller);
      if (!res.writableFinished) controller.abort();
    });
    return controller.signal;
  }
}
