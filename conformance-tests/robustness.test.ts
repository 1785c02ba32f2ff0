import { expect } from 'chai';
import fc from 'fast-check';
import { allRoutes } from '../server/routes/index.js';
import { probeRoutes } from './harness/probe-routes.js';
import { sendRaw } from './harness/raw-http.js';
import { TestHomeserver } from './harness/test-homeserver.js';

/** Every declared route; generated requests mostly use its own method so they reach its pipeline. */
const routes = [...allRoutes, ...probeRoutes];

const pathSegment = fc.oneof(
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.constantFrom('%', '%E0%A4%A', '%ZZ', '%00', '%2F', '..', '', '%C0%AF', '!room:example.org', '@u:h'),
  fc.stringMatching(/^[A-Za-z0-9%._~!$&'()*+,;=:@-]{0,16}$/),
);

const anyMethod = fc.constantFrom(
  'GET',
  'POST',
  'PUT',
  'DELETE',
  'OPTIONS',
  'HEAD',
  'PATCH',
  'PROPFIND',
  'TRACE',
);

const target = fc.oneof(
  // A declared route, its parameters filled with anything.
  fc
    .tuple(
      fc.constantFrom(...routes),
      fc.array(pathSegment, { minLength: 4, maxLength: 4 }),
      anyMethod,
      fc.nat(9),
    )
    .map(([route, fillers, otherMethod, dice]) => {
      let i = 0;
      const path = route.path.replace(/\{[^}]+\}/g, () => fillers[i++ % fillers.length]!);
      return { method: dice < 7 ? route.method : otherMethod, path };
    }),
  // A declared path with something after it.
  fc
    .tuple(fc.constantFrom(...routes), anyMethod)
    .map(([route, m]) => ({ method: m, path: `${route.path}/xyz` })),
  // Anything at all.
  fc.tuple(fc.array(pathSegment, { maxLength: 6 }), anyMethod).map(([segments, m]) => ({
    method: m,
    path: `/${segments.join('/')}`,
  })),
  // A route that needs no credentials, so a good share of requests reaches a handler that
  // answers 200 (few of the declared routes do without an access token).
  fc
    .constantFrom(
      '/_matrix/client/versions',
      '/_matrix/client/v3/login',
      '/.well-known/matrix/client',
      '/_matrix/key/v2/server',
      '/_matrix/federation/v1/version',
    )
    .map((path) => ({ method: 'GET', path })),
);

const query = fc.oneof(
  fc.constant(''),
  fc.constantFrom(
    '?times=2',
    '?times=x',
    '?times=1&times=2',
    '?ms=',
    '?access_token=',
    '?access_token=a&access_token=b',
    '?%',
    '?a=%E0',
  ),
  fc.stringMatching(/^[A-Za-z0-9=&%_.-]{0,20}$/).map((q) => `?${q}`),
);

const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-16',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
  '',
  ';;;',
);

const authorization = fc.constantFrom(
  undefined,
  'Bearer x',
  'Bearer',
  'Basic abc',
  'X-Matrix origin=a',
  'Bearer a b',
);

const body = fc.oneof(
  fc.constant(new Uint8Array()),
  fc.uint8Array({ maxLength: 200 }),
  fc.json().map((json) => new TextEncoder().encode(json)),
  fc.jsonValue().map((value) => new TextEncoder().encode(JSON.stringify({ text: value, nested: value }))),
  fc.string({ unit: 'binary', maxLength: 50 }).map((s) => new TextEncoder().encode(s)),
);

function rawRequest(parts: {
  method: string;
  path: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: Uint8Array;
}): Buffer {
  const headers = ['Host: 127.0.0.1', 'Connection: close', `Content-Length: ${parts.body.length}`];
  if (parts.contentType !== undefined) headers.push(`Content-Type: ${parts.contentType}`);
  if (parts.authorization !== undefined) headers.push(`Authorization: ${parts.authorization}`);
  const head = `${parts.method} ${parts.path} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), parts.body]);
}

describe('robustness: no malformed request gets a 500', () => {
  let hs: TestHomeserver;
  before(async () => {
    hs = await TestHomeserver.start({
      extraRoutes: probeRoutes,
      configure: (config) => {
        config.rate_limits.enabled = false;
      },
    });
  });
  after(() => hs.stop());

  it('random methods, paths, queries, content types, credentials and bodies over the route table', async () => {
    const statuses = new Map<number | undefined, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.record({ target, query, contentType, authorization, body }),
        async ({ target, query, ...rest }) => {
          const res = await sendRaw(
            hs.port,
            rawRequest({ method: target.method, path: target.path + query, ...rest }),
          );
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expect(res.status, res.text.slice(0, 300)).to.be.a('number');
          expect(res.status!, res.text.slice(0, 300)).to.be.lessThan(500);
        },
      ),
      { numRuns: 300 },
    );
    // The generator reaches the handlers, the validators and the router alike.
    expect([...statuses.keys()]).to.include.members([200, 400, 404]);
  });

  it('oversized headers, bad request lines and raw garbage are refused without a 500', async () => {
    const cases = [
      `GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\nConnection: close\r\n\r\n`,
      `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      'GET /_matrix/client/versions\r\n\r\n',
      'NOT-HTTP AT ALL\r\n\r\n',
      'GET /_matrix/client/ver sions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      'POST /_test/echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\nConnection: close\r\n\r\n',
      'POST /_test/echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\n{}',
      'POST /_test/echo/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n',
      '\u0000\u0001\u0002\u00ff\r\n\r\n',
      'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      'GET http://evil.example/_matrix/client/versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ];
    for (const request of cases) {
      const res = await sendRaw(hs.port, Buffer.from(request, 'latin1'));
      if (res.status !== undefined) expect(res.status, request.slice(0, 60)).to.be.lessThan(500);
    }
    // Still serving.
    expect((await hs.fetch('/health')).status).to.equal(200);
  });
});
