/**
 * Gives every request an ID (the client's X-Request-Id when it is a sane token,
 * else a fresh one), echoes it, hands a child logger carrying it to everything
 * below, and writes one access-log line per request. Query values that can hold
 * credentials are redacted; headers are never logged.
 */
import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import type { RequestState } from './request-state.js';

const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const SECRET_QUERY_KEY = /token|password|secret/i;

export function requestLogging(logger: Logger): Middleware<RequestState> {
  return async (ctx, next) => {
    const offered = ctx.get('X-Request-Id');
    const requestId = ACCEPTABLE_REQUEST_ID.test(offered) ? offered : randomUUID();
    ctx.state.requestId = requestId;
    ctx.state.log = logger.child({ requestId });
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await next();
    } finally {
      ctx.state.log.info(
        {
          method: ctx.method,
          path: ctx.path,
          query: redactQuery(ctx.querystring),
          status: ctx.status,
          durationMs: Math.round((performance.now() - started) * 10) / 10,
        },
        'request',
      );
    }
  };
}

export function redactQuery(querystring: string): string | undefined {
  if (querystring === '') return undefined;
  const entries = [...new URLSearchParams(querystring)].map(([key, value]): [string, string] =>
    SECRET_QUERY_KEY.test(key) ? [key, 'REDACTED'] : [key, value],
  );
  return new URLSearchParams(entries).toString();
}
