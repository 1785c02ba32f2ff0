/**
 * client-server "Web Browser Clients": CORS headers on every response, and an
 * OPTIONS request on any path answered at once without running the endpoint.
 */
import type { Middleware } from 'koa';

const ALLOWED_METHODS = 'GET, POST, PUT, DELETE, OPTIONS';
const ALLOWED_HEADERS = 'X-Requested-With, Content-Type, Authorization';

export function cors(allowedOrigins: readonly string[]): Middleware {
  const anyOrigin = allowedOrigins.includes('*');
  const origins = new Set(allowedOrigins);
  return async (ctx, next) => {
    if (anyOrigin) {
      ctx.set('Access-Control-Allow-Origin', '*');
    } else {
      ctx.vary('Origin');
      const origin = ctx.get('Origin');
      if (origins.has(origin)) ctx.set('Access-Control-Allow-Origin', origin);
    }
    ctx.set('Access-Control-Allow-Methods', ALLOWED_METHODS);
    ctx.set('Access-Control-Allow-Headers', ALLOWED_HEADERS);
    ctx.set('Access-Control-Expose-Headers', 'X-Request-Id, Retry-After');
    if (ctx.method === 'OPTIONS') {
      ctx.status = 204;
      return;
    }
    await next();
  };
}
