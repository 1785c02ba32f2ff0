import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import sharp from 'sharp';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

/** A web page on loopback, with an OpenGraph image and a redirect to it. */
async function startSite(): Promise<{ server: Server; base: string }> {
  const image = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#3366cc' } })
    .png()
    .toBuffer();
  const server = createServer((req, res) => {
    if (req.url === '/page') {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><html><head><title>Fallback title</title>
        <meta property="og:title" content="Myelin &amp; friends">
        <meta property="og:description" content="A page about media">
        <meta property="og:image" content="/cat.png"></head><body>hi</body></html>`);
    } else if (req.url === '/cat.png') {
      res.setHeader('Content-Type', 'image/png');
      res.end(image);
    } else if (req.url === '/slow') {
      // Never answers: the preview's time limit must end the wait.
    } else if (req.url === '/huge') {
      res.setHeader('Content-Type', 'text/html');
      res.end(`<html>${'x'.repeat(300_000)}</html>`);
    } else if (req.url?.startsWith('/away')) {
      // To another loopback address, which no allowlist in these tests covers.
      res.statusCode = 301;
      res.setHeader('Location', `http://127.0.0.2:${(server.address() as AddressInfo).port}/page`);
      res.end();
    } else if (req.url === '/moved') {
      res.statusCode = 302;
      res.setHeader('Location', '/page');
      res.end();
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function preview(hs: TestHomeserver, user: TestUser, url: string) {
  return call(hs, user, 'GET', `/_matrix/client/v1/media/preview_url?url=${encodeURIComponent(url)}`);
}

describe('media: URL previews', function () {
  this.timeout(30_000);
  let site: { server: Server; base: string };
  before(async () => {
    site = await startSite();
  });
  after(() => new Promise<void>((resolve) => site.server.close(() => resolve())));

  it('refuses a loopback page by default, by address and by name, and non-HTTP URLs', async () => {
    const hs = await TestHomeserver.start({ configure: fastAccounts });
    try {
      const alice = await createUser(hs, 'alice');
      const direct = await preview(hs, alice, `${site.base}/page`);
      expect(direct.status).to.equal(403);
      const port = new URL(site.base).port;
      const byName = await preview(hs, alice, `http://localhost:${port}/page`);
      expect(byName.status).to.equal(403);
      const notHttp = await preview(hs, alice, 'file:///etc/passwd');
      expect(notHttp.status).to.equal(400);
    } finally {
      await hs.stop();
    }
  });

  it('previews an allowlisted page: OpenGraph fields, the image stored as media', async () => {
    const hs = await TestHomeserver.start({
      configure: (config) => {
        fastAccounts(config);
        config.media.url_preview.ip_allowlist = ['127.0.0.1/32'];
        config.media.url_preview.timeout_ms = 1000;
        config.media.url_preview.max_page_bytes = 100_000;
      },
    });
    try {
      const alice = await createUser(hs, 'alice');
      const res = await preview(hs, alice, `${site.base}/moved`);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body).to.include({
        'og:title': 'Myelin & friends',
        'og:description': 'A page about media',
        'og:image:type': 'image/png',
        'og:image:width': 40,
        'og:image:height': 30,
      });
      expect(res.body['og:image']).to.match(/^mxc:\/\/localhost\//);
      // Every redirect hop is checked again: an allowed page cannot bounce the server elsewhere.
      const bounced = await preview(hs, alice, `${site.base}/away`);
      expect(bounced.status).to.equal(403);
      const started = Date.now();
      expect((await preview(hs, alice, `${site.base}/slow`)).status).to.equal(502);
      expect(Date.now() - started).to.be.below(3000);
      expect((await preview(hs, alice, `${site.base}/huge`)).status).to.equal(413);
      const image = await hs.fetch(
        `/_matrix/client/v1/media/download/${String(res.body['og:image']).slice(6)}`,
        { headers: { Authorization: `Bearer ${alice.accessToken}` } },
      );
      expect(image.headers.get('content-type')).to.equal('image/png');
    } finally {
      await hs.stop();
    }
  });
});
