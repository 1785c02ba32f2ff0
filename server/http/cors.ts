/**
 * client-server "Web Browser Clients": CORS headers on every response, and an
 * OPTIONS request on any path answered at once without running the endpoint
 * (app.ts). As header name/value pairs, what ServerResponse.writeHead takes:
 * this runs for every request.
 */
import type { IncomingHttpHeaders } from 'node:http';

const ALLOWED_METHODS = 'GET, POST, PUT, DELETE, OPTIONS';
const ALLOWED_HEADERS = 'X-Requested-With, Content-Type, Authorization';
const EXPOSED_HEADERS = 'X-Request-Id, Retry-After';
const COMMON = [
  'Access-Control-Allow-Methods',
  ALLOWED_METHODS,
  'Access-Control-Allow-Headers',
  ALLOWED_HEADERS,
  'Access-Control-Expose-Headers',
  EXPOSED_HEADERS,
] as const;

/** Appends a request's CORS headers, as name, value, name, value..., to `into`. */
export type CorsHeaders = (headers: IncomingHttpHeaders, into: string[]) => void;

export function corsHeaders(allowedOrigins: readonly string[]): CorsHeaders {
  if (allowedOrigins.includes('*')) {
    const pairs = ['Access-Control-Allow-Origin', '*', ...COMMON];
    return (_headers, into) => {
      for (const part of pairs) into.push(part);
    };
  }
  const origins = new Set(allowedOrigins);
  return (headers, into) => {
    // Nothing sets Vary before this runs, so there is nothing to append to.
    into.push('Vary', 'Origin');
    const origin = headers.origin ?? '';
    if (origins.has(origin)) into.push('Access-Control-Allow-Origin', origin);
    for (const part of COMMON) into.push(part);
  };
}
