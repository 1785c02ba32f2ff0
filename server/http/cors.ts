/**
 * client-server "Web Browser Clients": CORS headers on every response, and an
 * OPTIONS request on any path answered at once without running the endpoint
 * (app.ts). Written straight onto the response: this runs for every request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

const ALLOWED_METHODS = 'GET, POST, PUT, DELETE, OPTIONS';
const ALLOWED_HEADERS = 'X-Requested-With, Content-Type, Authorization';
const EXPOSED_HEADERS = 'X-Request-Id, Retry-After';

export type CorsHeaders = (req: IncomingMessage, res: ServerResponse) => void;

export function corsHeaders(allowedOrigins: readonly string[]): CorsHeaders {
  const anyOrigin = allowedOrigins.includes('*');
  const origins = new Set(allowedOrigins);
  return (req, res) => {
    if (anyOrigin) {
      res.setHeader('Access-Control-Allow-Origin', '*');
    } else {
      // Nothing sets Vary before this runs, so there is nothing to append to.
      res.setHeader('Vary', 'Origin');
      const origin = req.headers.origin ?? '';
      if (origins.has(origin)) res.setHeader('Access-Control-Allow-Origin', origin);
    }
    res.setHeader('Access-Control-Allow-Methods', ALLOWED_METHODS);
    res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS);
    res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
  };
}
