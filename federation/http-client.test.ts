import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import {
  createTestCertificates,
  freePort,
  type TestCertificates,
} from '../conformance-tests/harness/test-federation.js';
import { generateSigningKey } from '../protocol/signing.js';
import { parseXMatrixHeader, verifyRequestSignature } from '../protocol/x-matrix.js';
import { FederationRequestError } from './federation.js';
import { createFederationHttpClient, TlsAgents, wellKnownFetcher } from './http-client.js';
import { createServerResolver } from './server-resolver.js';

describe('federation HTTP client (TLS with a test CA)', function () {
  this.timeout(30_000);
  let certificates: TestCertificates;
  let server: Server;
  let port: number;
  let handler: (
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
    body: string,
  ) => void;
  const key = generateSigningKey('c1');

  before(async () => {
    certificates = await createTestCertificates();
    server = createServer(
      { cert: readFileSync(certificates.certFile), key: readFileSync(certificates.keyFile) },
      (req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        req.on('end', () => handler(req, res, body));
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(certificates.dir, { recursive: true, force: true });
  });

  function clientWith(options: { trustCa?: boolean; maxResponseBytes?: number; timeoutMs?: number } = {}) {
    const agents = new TlsAgents(
      options.trustCa === false ? undefined : readFileSync(certificates.caFile, 'utf8'),
    );
    const resolver = createServerResolver({
      resolveSrv: async () => [],
      fetchWellKnown: async () => ({ ok: false }),
      overrides: { 'hs.test': `127.0.0.1:${port}` },
    });
    return {
      agents,
      client: createFederationHttpClient(
        {
          serverName: 'origin.test',
          signingKey: key,
          requestTimeoutMs: options.timeoutMs ?? 5000,
          maxResponseBytes: options.maxResponseBytes ?? 1_000_000,
        },
        resolver,
        agents,
      ),
    };
  }

  it('sends a signed request with the Host header of the server name, checking the certificate against its name', async () => {
    let seen: { host?: string; authorization?: string; url?: string; body?: string } = {};
    handler = (req, res, body) => {
      seen = { host: req.headers.host, authorization: req.headers.authorization, url: req.url, body };
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    };
    // The certificate names localhost: a destination `localhost:PORT` checks TLS against it (step 2).
    const { client } = clientWith();
    const answer = await client.request({
      destination: `localhost:${port}`,
      method: 'POST',
      path: '/_matrix/federation/v1/user/keys/query',
      query: { a: 'x y', b: ['1', '2'] },
      body: { device_keys: {} },
    });
    expect(answer).to.deep.equal({ ok: true });
    expect(seen.host).to.equal(`localhost:${port}`);
    expect(seen.url).to.equal('/_matrix/federation/v1/user/keys/query?a=x+y&b=1&b=2');
    const credentials = parseXMatrixHeader(seen.authorization!)!;
    expect(credentials.destination).to.equal(`localhost:${port}`);
    const verdict = verifyRequestSignature(
      {
        method: 'POST',
        uri: seen.url!,
        origin: 'origin.test',
        destination: `localhost:${port}`,
        content: JSON.parse(seen.body!),
      },
      credentials,
      key.publicKey,
    );
    expect(verdict.ok).to.equal(true);
    await client.close();
  });

  it('refuses a certificate that does not name the server (override to an address, other name)', async () => {
    handler = (_req, res) => res.writeHead(200).end('{}');
    const { client } = clientWith();
    const error = await client
      .request({ destination: 'hs.test', method: 'GET', path: '/x', signed: false })
      .catch((e: unknown) => e);
    expect(error).to.be.instanceOf(FederationRequestError);
    expect((error as Error).message).to.match(/altnames|hostname|certificate/i);
    await client.close();
  });

  it('refuses an untrusted certificate authority', async () => {
    const { client } = clientWith({ trustCa: false });
    const error = await client
      .request({ destination: `localhost:${port}`, method: 'GET', path: '/x', signed: false })
      .catch((e: unknown) => e);
    expect((error as FederationRequestError).status).to.equal(0);
    await client.close();
  });

  it('reports error answers with their status and errcode', async () => {
    handler = (_req, res) =>
      res
        .writeHead(403, { 'content-type': 'application/json' })
        .end('{"errcode":"M_FORBIDDEN","error":"no"}');
    const { client } = clientWith();
    const error = (await client
      .request({ destination: `localhost:${port}`, method: 'GET', path: '/x' })
      .catch((e: unknown) => e)) as FederationRequestError;
    expect([error.status, error.errcode]).to.deep.equal([403, 'M_FORBIDDEN']);
    await client.close();
  });

  it('cuts responses over the size limit, declared or streamed', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(200_000) });
    for (const declared of [true, false]) {
      handler = (_req, res) => {
        res.writeHead(200, declared ? { 'content-length': String(big.length) } : {});
        res.end(big);
      };
      const { client } = clientWith({ maxResponseBytes: 100_000 });
      const error = (await client
        .request({ destination: `localhost:${port}`, method: 'GET', path: '/big' })
        .catch((e: unknown) => e)) as FederationRequestError;
      expect(error.message).to.contain('larger than 100000 bytes');
      await client.close();
    }
  });

  it('gives up after the request timeout', async () => {
    handler = () => {};
    const { client } = clientWith({ timeoutMs: 300 });
    const started = Date.now();
    const error = (await client
      .request({ destination: `localhost:${port}`, method: 'GET', path: '/slow' })
      .catch((e: unknown) => e)) as FederationRequestError;
    expect(error.message).to.contain('timed out');
    expect(Date.now() - started).to.be.lessThan(3000);
    await client.close();
  });

  it('fetches /.well-known/matrix/server over TLS, following redirects, with its max-age', async () => {
    handler = (req, res) => {
      if (req.url === '/.well-known/matrix/server') {
        res.writeHead(302, { location: '/moved' }).end();
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
        res.end('{"m.server":"delegated.test:8448"}');
      }
    };
    const agents = new TlsAgents(readFileSync(certificates.caFile, 'utf8'));
    const fetchWellKnown = wellKnownFetcher(agents, port);
    expect(await fetchWellKnown('localhost')).to.deep.equal({
      ok: true,
      body: { 'm.server': 'delegated.test:8448' },
      maxAgeMs: 60_000,
    });
    handler = (_req, res) => res.writeHead(404).end();
    expect(await fetchWellKnown('localhost')).to.deep.equal({ ok: false });
    await agents.close();
  });

  it('tries the next SRV target when one does not answer (RFC 2782 order)', async () => {
    handler = (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":"second"}');
    const closed = await freePort();
    const srvAsked: string[] = [];
    const resolver = createServerResolver({
      resolveSrv: async (name) => {
        srvAsked.push(name);
        return name === '_matrix-fed._tcp.localhost'
          ? [
              { name: '127.0.0.1', port: port, priority: 10, weight: 0 },
              { name: '127.0.0.1', port: closed, priority: 0, weight: 0 },
            ]
          : [];
      },
      fetchWellKnown: async () => ({ ok: false }),
    });
    const agents = new TlsAgents(readFileSync(certificates.caFile, 'utf8'));
    const client = createFederationHttpClient(
      { serverName: 'origin.test', signingKey: key, requestTimeoutMs: 5000, maxResponseBytes: 1_000_000 },
      resolver,
      agents,
    );
    try {
      // The certificate names localhost: TLS is checked against the server name on both targets.
      expect(await client.request({ destination: 'localhost', method: 'GET', path: '/x' })).to.deep.equal({
        ok: 'second',
      });
      expect(srvAsked).to.deep.equal(['_matrix-fed._tcp.localhost']);
    } finally {
      await agents.close();
    }
  });
});
