import { request } from 'node:http';
import { expect } from 'chai';
import { crashRoute, offSchemaRoute, probeRoutes } from './harness/probe-routes.js';
import { sendRaw } from './harness/raw-http.js';
import { TestHomeserver } from './harness/test-homeserver.js';

describe('HTTP request pipeline (client-server "API Standards")', () => {
  let hs: TestHomeserver;
  before(async () => {
    hs = await TestHomeserver.start({
      extraRoutes: [...probeRoutes, crashRoute, offSchemaRoute],
      configure: (config) => {
        config.limits.max_request_body_bytes = 4096;
      },
    });
  });
  after(() => hs.stop());

  const post = (path: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
    hs.fetch(path, { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } });

  describe('unknown endpoints and methods', () => {
    it('an unknown path is 404 M_UNRECOGNIZED', async () => {
      const res = await hs.fetch('/_matrix/client/v3/no/such/endpoint');
      expect(res.status).to.equal(404);
      expect(await res.json()).to.deep.equal({ errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
    });

    it('a known path with the wrong method is 405 M_UNRECOGNIZED with an Allow header', async () => {
      const res = await hs.fetch('/_matrix/client/versions', { method: 'DELETE' });
      expect(res.status).to.equal(405);
      expect(res.headers.get('allow')).to.equal('GET, HEAD, OPTIONS');
      expect(await res.json()).to.include({ errcode: 'M_UNRECOGNIZED' });
    });

    it('an absolute-form request target is routed by its path, its query read', async () => {
      const res = await sendRaw(
        hs.port,
        `POST http://127.0.0.1:${hs.port}/_test/echo/w?times=2 HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
          'Content-Type: application/json\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{"text":"x"}',
      );
      expect(res.status).to.equal(200);
      expect(res.text).to.contain('"times":2');
    });

    it('a target no URL parser makes a path of is 404 M_UNRECOGNIZED, and the server serves on', async () => {
      for (const target of [
        'http://[::1/x?access_token=secret-in-target',
        'http://xn--/_matrix/client/versions',
      ]) {
        const res = await sendRaw(hs.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        expect(res.status, target).to.equal(404);
        expect(res.text, target).to.contain('M_UNRECOGNIZED');
      }
      expect(hs.logLines.join('\n')).not.to.contain('secret-in-target');
      expect((await hs.fetch('/_matrix/client/versions')).status).to.equal(200);
    });

    it('a repeated query key is an array, a percent-encoded one decoded', async () => {
      const repeated = await post('/_test/echo/w?times=2&times=3', JSON.stringify({ text: 'x' }));
      expect(repeated.status).to.equal(400);
      expect(await repeated.json()).to.include({ errcode: 'M_INVALID_PARAM' });
      const encoded = await post('/_test/echo/w?%74imes=%34', JSON.stringify({ text: 'x' }));
      expect(await encoded.json()).to.include({ times: 4 });
    });

    it('HEAD is answered like GET without a body', async () => {
      const res = await hs.fetch('/health', { method: 'HEAD' });
      expect(res.status).to.equal(200);
      expect(await res.text()).to.equal('');
    });
  });

  describe('bodies', () => {
    it('valid input reaches the handler typed: path decoded, query coerced, body checked', async () => {
      const res = await post('/_test/echo/h%C3%A9llo%2Fw?times=3', JSON.stringify({ text: 'x', extra: 1 }));
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({ word: 'héllo/w', times: 3, text: 'x' });
    });

    it('a body that is not JSON is 400 M_NOT_JSON', async () => {
      for (const body of ['{"text":', 'text=x', '\u0000\u0001', '']) {
        const res = await post('/_test/echo/a', body);
        expect(res.status, JSON.stringify(body)).to.equal(400);
        expect(await res.json()).to.include({ errcode: 'M_NOT_JSON' });
      }
    });

    it('a body that is not UTF-8 is 400 M_NOT_JSON', async () => {
      const res = await post('/_test/echo/a', new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
      expect(res.status).to.equal(400);
      expect(await res.json()).to.include({ errcode: 'M_NOT_JSON' });
    });

    it('JSON of the wrong shape is 400 M_BAD_JSON naming the field', async () => {
      const res = await post('/_test/echo/a', JSON.stringify({ text: 'x', nested: { flag: 'yes' } }));
      expect(res.status).to.equal(400);
      const body = (await res.json()) as { errcode: string; error: string };
      expect(body.errcode).to.equal('M_BAD_JSON');
      expect(body.error).to.contain('nested.flag');
    });

    it('a JSON array where an object is expected is 400 M_BAD_JSON', async () => {
      const res = await post('/_test/echo/a', '[1,2]');
      expect(res.status).to.equal(400);
      expect(await res.json()).to.include({ errcode: 'M_BAD_JSON' });
    });

    it('a missing required field is 400 M_MISSING_PARAM naming it', async () => {
      const res = await post('/_test/echo/a', '{}');
      expect(res.status).to.equal(400);
      const body = (await res.json()) as { errcode: string; error: string };
      expect(body.errcode).to.equal('M_MISSING_PARAM');
      expect(body.error).to.contain("'text'");
    });

    it('a bad query value is 400 M_INVALID_PARAM, a missing one M_MISSING_PARAM', async () => {
      const bad = await post('/_test/echo/a?times=eleven', '{"text":"x"}');
      expect(bad.status).to.equal(400);
      expect(await bad.json()).to.include({ errcode: 'M_INVALID_PARAM' });
      const missing = await hs.fetch('/_test/slow');
      expect(missing.status).to.equal(400);
      expect(await missing.json()).to.include({ errcode: 'M_MISSING_PARAM' });
    });

    it('invalid percent-encoding in a path parameter is 400 M_INVALID_PARAM', async () => {
      const res = await sendRaw(
        hs.port,
        'POST /_test/echo/%E0%A4%A HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{"text":"x"}',
      );
      expect(res.status).to.equal(400);
      expect(res.text).to.contain('M_INVALID_PARAM');
    });

    it('a Content-Length over the limit is 413 M_TOO_LARGE before the body is read', async () => {
      const res = await sendRaw(
        hs.port,
        'POST /_test/echo/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{"text":"',
      );
      expect(res.status).to.equal(413);
      expect(res.text).to.contain('M_TOO_LARGE');
    });

    it('a chunked body that grows past the limit is 413 M_TOO_LARGE', async () => {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: hs.port,
            method: 'POST',
            path: '/_test/echo/a',
            headers: { 'Transfer-Encoding': 'chunked' },
          },
          (res) => {
            let text = '';
            res.on('data', (chunk: Buffer) => (text += chunk.toString()));
            res.on('end', () => resolve({ status: res.statusCode!, body: text }));
          },
        );
        req.on('error', reject);
        req.write('{"text":"');
        // Keep sending after the limit: the server must answer without waiting for the end.
        let sent = 0;
        const pump = setInterval(() => {
          if (req.destroyed || sent > 200) return clearInterval(pump);
          sent++;
          req.write('x'.repeat(1024));
        }, 1);
      });
      expect(status).to.equal(413);
      expect(JSON.parse(body)).to.include({ errcode: 'M_TOO_LARGE' });
    });

    it('a body just under the limit is accepted', async () => {
      const text = 'y'.repeat(4096 - JSON.stringify({ text: '' }).length);
      const res = await post('/_test/echo/a', JSON.stringify({ text }));
      expect(res.status).to.equal(200);
    });
  });

  describe('authentication seam', () => {
    it('no token is 401 M_MISSING_TOKEN', async () => {
      const res = await hs.fetch('/_test/whoami');
      expect(res.status).to.equal(401);
      expect(await res.json()).to.include({ errcode: 'M_MISSING_TOKEN' });
    });

    it('a token, by header or query, is 401 M_UNKNOWN_TOKEN while no accounts exist', async () => {
      const byHeader = await hs.fetch('/_test/whoami', { headers: { Authorization: 'Bearer syt_abc' } });
      expect(byHeader.status).to.equal(401);
      expect(await byHeader.json()).to.include({ errcode: 'M_UNKNOWN_TOKEN' });
      const byQuery = await hs.fetch('/_test/whoami?access_token=syt_abc');
      expect(byQuery.status).to.equal(401);
      expect(await byQuery.json()).to.include({ errcode: 'M_UNKNOWN_TOKEN' });
    });

    it('an Authorization header that is not Bearer is 401 M_MISSING_TOKEN', async () => {
      const res = await hs.fetch('/_test/whoami', { headers: { Authorization: 'Basic dXNlcjpwYXNz' } });
      expect(res.status).to.equal(401);
      expect(await res.json()).to.include({ errcode: 'M_MISSING_TOKEN' });
    });

    it('an authenticator that knows the token lets the request through', async () => {
      const other = await TestHomeserver.start({
        extraRoutes: probeRoutes,
        authenticator: {
          async authenticateAccessToken(token) {
            if (token !== 'good') throw new Error('unexpected token');
            return {
              kind: 'user',
              userId: '@alice:localhost',
              deviceId: 'DEV',
              isGuest: false,
              sessionId: 'S',
              isAdmin: false,
              isLocked: false,
              isSuspended: false,
            };
          },
          async authenticateServer() {
            throw new Error('not used');
          },
        },
      });
      try {
        const res = await other.fetch('/_test/whoami', { headers: { Authorization: 'Bearer good' } });
        expect(res.status).to.equal(200);
        expect(await res.json()).to.deep.equal({ user_id: '@alice:localhost' });
      } finally {
        await other.stop();
      }
    });
  });

  describe('failures', () => {
    it('an unexpected error is 500 M_UNKNOWN that leaks nothing, logged with the request ID', async () => {
      const res = await hs.fetch('/_test/crash/internal', { headers: { 'X-Request-Id': 'crash-1' } });
      expect(res.status).to.equal(500);
      const text = await res.text();
      expect(JSON.parse(text)).to.deep.equal({ errcode: 'M_UNKNOWN', error: 'Internal server error' });
      expect(text).not.to.contain('hunter2');
      const logged = hs.logs().find((line) => line.requestId === 'crash-1' && line.level === 50);
      expect(logged, 'error log line').to.not.equal(undefined);
      expect(JSON.stringify(logged)).to.contain('hunter2');
    });

    it('a ProtocolError is a 400 with its mapped errcode', async () => {
      const res = await hs.fetch('/_test/crash/protocol');
      expect(res.status).to.equal(400);
      expect(await res.json()).to.deep.equal({
        errcode: 'M_INVALID_PARAM',
        error: 'not a user ID (user_id)',
      });
    });

    it('a response off its declared schema is caught (500) when response checking is on', async () => {
      const res = await hs.fetch('/_test/off-schema');
      expect(res.status).to.equal(500);
      expect(await res.json()).to.include({ errcode: 'M_UNKNOWN' });
    });
  });

  describe('CORS (client-server "Web Browser Clients")', () => {
    const expectCorsHeaders = (res: Response) => {
      expect(res.headers.get('access-control-allow-origin')).to.equal('*');
      expect(res.headers.get('access-control-allow-methods')).to.equal('GET, POST, PUT, DELETE, OPTIONS');
      expect(res.headers.get('access-control-allow-headers')).to.equal(
        'X-Requested-With, Content-Type, Authorization',
      );
    };

    it('OPTIONS on any path, known or not, is answered with CORS headers and no endpoint logic', async () => {
      for (const path of ['/_matrix/client/versions', '/_test/whoami', '/_matrix/client/v3/unknown/thing']) {
        const res = await hs.fetch(path, {
          method: 'OPTIONS',
          headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' },
        });
        expect(res.status, path).to.equal(204);
        expectCorsHeaders(res);
      }
    });

    it('ordinary and error responses carry the CORS headers', async () => {
      expectCorsHeaders(await hs.fetch('/_matrix/client/versions'));
      expectCorsHeaders(await hs.fetch('/nowhere'));
      expectCorsHeaders(await hs.fetch('/_test/whoami'));
    });

    it('a configured origin list echoes only allowed origins', async () => {
      const strict = await TestHomeserver.start({
        configure: (config) => {
          config.cors.allowed_origins = ['https://app.example'];
        },
      });
      try {
        const allowed = await strict.fetch('/health', { headers: { Origin: 'https://app.example' } });
        expect(allowed.headers.get('access-control-allow-origin')).to.equal('https://app.example');
        expect(allowed.headers.get('vary')).to.match(/Origin/);
        const other = await strict.fetch('/health', { headers: { Origin: 'https://evil.example' } });
        expect(other.headers.get('access-control-allow-origin')).to.equal(null);
      } finally {
        await strict.stop();
      }
    });
  });

  describe('request IDs and logs', () => {
    it('echoes a sane X-Request-Id and generates one otherwise', async () => {
      const echoed = await hs.fetch('/health', { headers: { 'X-Request-Id': 'abc-123' } });
      expect(echoed.headers.get('x-request-id')).to.equal('abc-123');
      const generated = await hs.fetch('/health');
      expect(generated.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
      const replaced = await hs.fetch('/health', { headers: { 'X-Request-Id': 'has spaces<script>' } });
      expect(replaced.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
    });

    it('logs one line per request with method, path, status and duration', async () => {
      await hs.fetch('/health?probe=1', { headers: { 'X-Request-Id': 'log-line-1' } });
      const line = hs.logs().find((l) => l.requestId === 'log-line-1' && l.msg === 'request');
      expect(line).to.include({ method: 'GET', path: '/health', query: 'probe=1', status: 200 });
      expect(line?.durationMs).to.be.a('number');
    });

    it('never logs an access token, from the query or the Authorization header', async () => {
      await hs.fetch('/_test/whoami?access_token=secret-query-token', {
        headers: { 'X-Request-Id': 'tok-1' },
      });
      await hs.fetch('/_test/whoami', {
        headers: { 'X-Request-Id': 'tok-2', Authorization: 'Bearer secret-header-token' },
      });
      const all = hs.logLines.join('\n');
      expect(all).to.contain('tok-1');
      expect(all).to.contain('tok-2');
      expect(all).not.to.contain('secret-query-token');
      expect(all).not.to.contain('secret-header-token');
    });
  });
});

describe('rate limiting (client-server "Rate limiting")', () => {
  it('past the burst, answers 429 M_LIMIT_EXCEEDED with Retry-After and retry_after_ms', async () => {
    const hs = await TestHomeserver.start({
      extraRoutes: probeRoutes,
      configure: (config) => {
        config.rate_limits.client = { per_second: 0.5, burst: 3 };
      },
    });
    try {
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 5; i++) {
        last = await hs.fetch('/_test/whoami');
        statuses.push(last.status);
        if (last.status === 429) break;
      }
      // The limit is taken after authentication is attempted: the first three are 401s.
      expect(statuses).to.deep.equal([401, 401, 401, 429]);
      expect(Number(last!.headers.get('retry-after'))).to.be.within(1, 2);
      const body = (await last!.json()) as { errcode: string; retry_after_ms: number };
      expect(body.errcode).to.equal('M_LIMIT_EXCEEDED');
      expect(body.retry_after_ms).to.be.within(1, 2000);
      // Unlimited routes are unaffected.
      expect((await hs.fetch('/_matrix/client/versions')).status).to.equal(200);
    } finally {
      await hs.stop();
    }
  });
});
