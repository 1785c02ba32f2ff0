/**
 * Builds the Koa app for one listener from a route table. Knows no particular
 * route: request IDs and logging, CORS, error rendering, then dispatch through
 * the router (404 / 405 M_UNRECOGNIZED) into the compiled route pipeline. The
 * same dispatcher runs requests that arrive without Koa (WebSocket frames).
 * Every request passes here; Koa writes what is not a whole JSON answer.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
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
import { parseQuery, type RequestTarget, splitRequestTarget } from './request-url.js';
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
  // Koa writes only what is not a whole JSON answer, through a context made for the request
  // then: its response step (bodies, streams, HEAD, Content-Length) with the answer as the
  // only middleware, rather than `app.callback()`, which would build a second context.
  const { handleRequest } = app as unknown as Partial<KoaRequestHandler>;
  // Checked at start-up: a Koa without it fails here, not on the first stream or OPTIONS answer.
  if (typeof handleRequest !== 'function') throw new Error('This Koa has no handleRequest step');
  const koaHandle = handleRequest.bind(app);
  const answerThroughKoa = (request: HttpPipelineRequest, head: string[], answer: KoaAnswer) => {
    const { res } = request;
    for (let i = 0; i < head.length; i += 2) res.setHeader(head[i]!, head[i + 1]!);
    // Not async: an answer that throws (a bad header value) reaches serve's catch and is
    // rendered as a Matrix error, rather than as Koa's plain-text one.
    return koaHandle(request.koaContext(), (koa) => {
      answer(koa);
      return Promise.resolve();
    });
  };

  /**
   * Every request, in the order the steps must happen: request ID and logger, Connection: close
   * while stopping, CORS (OPTIONS answered there), then the route, whatever it throws rendered
   * as its Matrix error, and the access-log line. The path and query are split here; a Koa
   * context is made only for what needs one (an unusual target, a client address behind a
   * proxy, an answer Koa writes). Whole answers (JSON, every error) are written here in one writeHead.
   */
  const serve = async (request: HttpPipelineRequest): Promise<void> => {
    const { req, res } = request;
    const startedAt = performance.now();
    // The headers every answer carries, as name/value pairs.
    const head = ['X-Request-Id', request.requestId];
    try {
      if (options.stopping()) head.push('Connection', 'close');
      cors(req.headers, head);
      if (request.method === 'OPTIONS') {
        await answerThroughKoa(request, head, (koa) => {
          koa.status = 204;
        });
        return;
      }
      try {
        if (!request.routable) throw MatrixError.unrecognized();
        const match = dispatcher.router.match(request.method, request.path);
        if (match.kind === 'not-found') throw MatrixError.unrecognized();
        if (match.kind === 'method-not-allowed') throw MatrixError.methodNotAllowed(match.allowed);
        const response = await dispatcher.run(match.route, request, match.rawParams);
        const { body } = response;
        if (response.contentType === 'application/json' && !(body instanceof Readable)) {
          writeWhole(res, request.method, head, response.status, body, response.headers);
        } else {
          await answerThroughKoa(request, head, (koa) => {
            koa.body = body;
            koa.type = response.contentType;
            koa.status = response.status;
            if (response.headers) koa.set(response.headers);
          });
        }
      } catch (thrown) {
        if (thrown instanceof RequestAbortedError) {
          request.log.debug('Client closed the request before sending its body');
          await answerThroughKoa(request, head, (koa) => {
            koa.status = 400;
          });
          return;
        }
        const error = matrixErrorFor(thrown, request.log);
        // The rest of an oversized body is not worth reading: end the connection after the answer.
        if (error.status === 413 && !options.stopping()) head.push('Connection', 'close');
        writeWhole(res, request.method, head, error.status, JSON.stringify(error.toJSON()), error.headers);
      }
    } finally {
      logRequest(
        logger,
        request.requestId,
        request.method,
        request.path,
        request.querystring,
        res.statusCode,
        startedAt,
      );
    }
  };

  return (req, res) => {
    let request: HttpPipelineRequest;
    try {
      request = new HttpPipelineRequest(req, res, app, logger, signals);
    } catch (error) {
      // A bug, not input: still an answer rather than an exception out of the server's 'request' event.
      app.createContext(req, res).onerror(error as Error);
      return;
    }
    // What serve itself throws (a bug): Koa's last-resort answer, as its own handler gives.
    serve(request).catch((error: unknown) => request.koaContext().onerror(error as Error));
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
  res: ServerResponse,
  method: string,
  head: string[],
  status: number,
  body: string | Buffer,
  headers: Record<string, string> | undefined,
): void {
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
  if (empty || method === 'HEAD') res.end();
  else res.end(body);
}

function hasAny(headers: Record<string, string>): boolean {
  for (const _ in headers) return true;
  return false;
}

const NO_QUERY: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The pipeline's view of an HTTP request, built for every request (a class rather than an
 * object of closures). The path, query string and query come from the target as Koa would
 * give them; a Koa context is made only when asked for.
 */
class HttpPipelineRequest implements PipelineRequest {
  readonly method: string;
  readonly uri: string;
  readonly headers: IncomingHttpHeaders;
  readonly requestId: string;
  readonly path: string;
  readonly querystring: string;
  /** False when not even Koa's URL parser makes a path of the target (`http://[::1/`): no route has it. */
  readonly routable: boolean;
  private context: ParameterizedContext | undefined;
  private childLog: Logger | undefined;
  private parsedQuery: Readonly<Record<string, string | string[] | undefined>> | undefined;
  private address: string | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    private readonly app: Koa,
    private readonly logger: Logger,
    private readonly signals: RequestSignals,
  ) {
    this.method = req.method ?? 'GET';
    this.uri = req.url ?? '/';
    this.headers = req.headers;
    this.requestId = requestIdFor(req.headers['x-request-id'] as string | undefined);
    const target = splitRequestTarget(this.uri) ?? koaTargetOf(this.koaContext());
    this.routable = target !== undefined;
    // Nothing of a target that cannot be parsed is logged: it may hold credentials anywhere.
    this.path = target?.path ?? '';
    this.querystring = target?.querystring ?? '';
  }

  /** Koa's context for this request, made on first use. */
  koaContext(): ParameterizedContext {
    this.context ??= this.app.createContext(this.req, this.res);
    return this.context;
  }

  /** A child logger carrying the request ID, made on first use: most requests log nothing but their access line. */
  get log(): Logger {
    this.childLog ??= this.logger.child({ requestId: this.requestId });
    return this.childLog;
  }

  get query(): Readonly<Record<string, string | string[] | undefined>> {
    // The pipeline copies it, so an empty query can be one shared object.
    this.parsedQuery ??= this.querystring === '' ? NO_QUERY : parseQuery(this.querystring);
    return this.parsedQuery;
  }

  /**
   * The client's address; behind a trusted proxy, the first address of X-Forwarded-For, read
   * as Koa reads it (its proxyIpHeader and maxIpsCount are left at their defaults here) without
   * building a Koa context for every request.
   */
  get ip(): string {
    this.address ??=
      (this.app.proxy ? forwardedFor(this.req.headers['x-forwarded-for']) : '') ||
      (this.req.socket.remoteAddress ?? '');
    return this.address;
  }

  readBody(limit: number): Promise<Buffer> {
    return readRawBody(this.req, limit);
  }

  bodyStream(): Readable {
    return this.req;
  }

  signal(): AbortSignal {
    return this.signals.signalFor(this.res);
  }
}

/** The target as Koa reads it (absolute form, `*`...); undefined when its URL parser throws. */
function koaTargetOf(ctx: ParameterizedContext): RequestTarget | undefined {
  try {
    return { path: ctx.path, querystring: ctx.querystring };
  } catch {
    return undefined;
  }
}

/**
 * Request signals: each aborts when the server stops or its client goes away. One per
 * connection, shared by the requests it carries: an HTTP/1 client can only give up on a
 * request by closing its connection, and a long-polling client sends a request per message
 * it gets, so a signal (and the notifier's one abort listener on it) per request was a cost
 * per message. The open ones sit in a set that one shutdown listener aborts, rather than
 * each adding and removing its own listener on the server-wide signal. Built only for
 * handlers that ask (long polls).
 */
class RequestSignals {
  private readonly open = new Set<AbortController>();
  private readonly byConnection = new WeakMap<Socket, AbortController>();

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
    const connection = res.socket;
    if (this.shutdownSignal.aborted || connection === null || connection.destroyed) {
      return AbortSignal.abort();
    }
    let controller = this.byConnection.get(connection);
    if (controller === undefined) {
      const opened = new AbortController();
      this.byConnection.set(connection, opened);
      this.open.add(opened);
      connection.once('close', () => {
        this.open.delete(opened);
        opened.abort();
      });
      controller = opened;
    }
    return controller.signal;
  }
}

/** The first address of an X-Forwarded-For header (repeated headers joined), as Koa's `ips[0]`. */
function forwardedFor(header: string | string[] | undefined): string {
  if (header === undefined) return '';
  const value = Array.isArray(header) ? header.join(',') : header;
  const comma = value.indexOf(',');
  return (comma === -1 ? value : value.slice(0, comma)).trim();
}
