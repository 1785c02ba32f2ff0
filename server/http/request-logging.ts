/**
 * Gives every request an ID (the client's X-Request-Id when it is a sane token,
 * else a fresh one), carried by every log line about it, and one access-log
 * line when it is answered. Query values that can hold credentials
 * are redacted; headers are never logged.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';

const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const SECRET_QUERY_KEY = /token|password|secret/i;

export function requestIdFor(offered: string | undefined): string {
  return offered !== undefined && ACCEPTABLE_REQUEST_ID.test(offered) ? offered : randomUUID();
}

/** The access-log line of one answered request. */
export function logRequest(
  logger: Logger,
  requestId: string,
  method: string,
  path: string,
  querystring: string,
  status: number,
  startedAt: number,
): void {
  if (!logger.isLevelEnabled('info')) return;
  // The same line a child logger bound to the request ID writes, without making one per request.
  logger.info(
    {
      requestId,
      method,
      path,
      query: redactQuery(querystring),
      status,
      durationMs: Math.round((performance.now() - startedAt) * 10) / 10,
    },
    'request',
  );
}

export function redactQuery(querystring: string): string | undefined {
  if (querystring === '') return undefined;
  const entries = [...new URLSearchParams(querystring)].map(([key, value]): [string, string] =>
    SECRET_QUERY_KEY.test(key) ? [key, 'REDACTED'] : [key, value],
  );
  return new URLSearchParams(entries).toString();
}
