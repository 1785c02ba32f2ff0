import { expect } from 'chai';
import { TestHomeserver } from './harness/test-homeserver.js';

describe('discovery endpoints (client-server "API Standards", "Server Discovery")', () => {
  let hs: TestHomeserver;
  before(async () => {
    hs = await TestHomeserver.start({
      configure: (config) => {
        config.well_known.identity_server_base_url = 'https://id.example.org';
      },
    });
  });
  after(() => hs.stop());

  it('GET /_matrix/client/versions lists v1.1 to v1.19, the r0 releases, and unstable_features', async () => {
    const res = await hs.fetch('/_matrix/client/versions');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    const body = (await res.json()) as { versions: string[]; unstable_features: Record<string, boolean> };
    for (let minor = 1; minor <= 19; minor++) expect(body.versions).to.include(`v1.${minor}`);
    expect(body.versions).to.include.members(['r0.0.1', 'r0.5.0', 'r0.6.1']);
    expect(body.versions).not.to.include('v1.20');
    // Simplified sliding sync (MSC4186), the flag Element X and matrix-rust-sdk look for.
    expect(body.unstable_features).to.deep.equal({ 'org.matrix.simplified_msc3575': true });
  });

  it('GET /_matrix/client/versions with an unknown token is 401 M_UNKNOWN_TOKEN (auth is optional, not ignored)', async () => {
    const res = await hs.fetch('/_matrix/client/versions', { headers: { Authorization: 'Bearer nope' } });
    expect(res.status).to.equal(401);
    expect(await res.json()).to.include({ errcode: 'M_UNKNOWN_TOKEN' });
  });

  it('GET /.well-known/matrix/client gives public_baseurl and the configured identity server', async () => {
    const res = await hs.fetch('/.well-known/matrix/client');
    expect(res.status).to.equal(200);
    expect(res.headers.get('access-control-allow-origin')).to.equal('*');
    expect(await res.json()).to.deep.equal({
      'm.homeserver': { base_url: hs.config.public_baseurl },
      'm.identity_server': { base_url: 'https://id.example.org' },
    });
  });

  it('GET /.well-known/matrix/server gives the server name with port 443 when it names none', async () => {
    const res = await hs.fetch('/.well-known/matrix/server');
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ 'm.server': 'localhost:443' });
  });

  it('GET /health answers 200 OK as plain text', async () => {
    const res = await hs.fetch('/health');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain/);
    expect(await res.text()).to.equal('OK');
  });
});

describe('discovery with delegation and without federation', () => {
  it('/.well-known/matrix/server returns the configured delegation', async () => {
    const hs = await TestHomeserver.start({
      serverName: 'example.org',
      configure: (config) => {
        config.well_known.server_delegation = 'matrix.example.org:8448';
        config.well_known.client_base_url = 'https://matrix.example.org';
      },
    });
    try {
      expect(await (await hs.fetch('/.well-known/matrix/server')).json()).to.deep.equal({
        'm.server': 'matrix.example.org:8448',
      });
      expect(await (await hs.fetch('/.well-known/matrix/client')).json()).to.deep.equal({
        'm.homeserver': { base_url: 'https://matrix.example.org' },
      });
    } finally {
      await hs.stop();
    }
  });

  it('/.well-known/matrix/server is 404 M_NOT_FOUND when federation is disabled', async () => {
    const hs = await TestHomeserver.start({
      serverName: 'example.org:8448',
      configure: (config) => {
        config.federation.enabled = false;
      },
    });
    try {
      const res = await hs.fetch('/.well-known/matrix/server');
      expect(res.status).to.equal(404);
      expect(await res.json()).to.include({ errcode: 'M_NOT_FOUND' });
    } finally {
      await hs.stop();
    }
  });
});
