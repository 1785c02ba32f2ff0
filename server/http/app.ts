/**
 * Builds the Koa app for one listener from a route table. Knows no particular
 * route: request IDs and logging, CORS, error rendering, then dispatch through
 * the router (404 / 405 M_UNRECOGNIZED) into the compiled route pipeline.
 */
import Koa from 'koa';
import type { Logger } from 'pino';
import { MatrixError } from '../errors.js';
import { cors } from './cors.js';
import { errorResponses } from './error-responses.js';
import { compileRoute, type PipelineDependencies, type RouteRunner } from './pipeline.js';
import { requestLogging } from './request-logging.js';
import type { RequestState } from './request-state.js';
import type { Route } from './route.js';
import { createRouter } from './router.js';

export interface HttpAppOptions {
  readonly routes: readonly Route[];
  readonly logger: Logger;
  readonly pipeline: PipelineDependencies;
  readonly corsAllowedOrigins: readonly string[];
  /** Trust X-Forwarded-For / -Proto (a reverse proxy sits in front of this listener). */
  readonly trustProxy: boolean;
  /** True once the server is stopping: answers then close their connection instead of keeping it alive. */
  readonly stopping: () => boolean;
}

export function createHttpApp(options: HttpAppOptions): Koa<RequestState> {
  const router = createRouter(options.routes);
  // Compiling every route up front checks every schema at start-up, not on first request.
  const runners = new Map<Route, RouteRunner>(
    options.routes.map((route) => [route, compileRoute(route, options.pipeline)]),
  );

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
    const match = router.match(ctx.method, ctx.path);
    if (match.kind === 'not-found') throw MatrixError.unrecognized();
    if (match.kind === 'method-not-allowed') throw MatrixError.methodNotAllowed(match.allowed);
    await runners.get(match.route)!(ctx, match.rawParams);
  });
  return app;
}
