/**
 * Media across two real Myelin servers federating over TLS (issue #7): the peer endpoints
 * /_matrix/federation/v1/media/download and /thumbnail answer multipart/mixed (JSON metadata,
 * then the bytes); a client of B downloads A's media by its mxc URI through B, which fetches it
 * over federation once and serves its copy after (even with A gone); thumbnails of remote media.
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import sharp from 'sharp';
import { FederationRequestError } from '../federation/federation.js';
import { decodeMultipart, multipartBoundary } from '../protocol/multipart.js';
import type { TestUser } from './harness/accounts.js';
import { type FederatedServer, startAliceAndBob, type TestFederation } from './harness/test-federation.js';

function clientGet(server: FederatedServer, user: TestUser, path: string) {
  return server.server.fetch(path, { headers: { Authorization: `Bearer ${user.accessToken}` } });
}

describe('federation: media across servers (TLS, test CA)', function () {
  this.timeout(90_000);
  let federation: TestFederation;
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: TestUser;
  let bob: TestUser;
  let mediaId: string;
  let original: Buffer;
  let mediaIdThumbnailOnly: string;

  before(async () => {
    ({ federation, a, b, alice, bob } = await startAliceAndBob());
    const image = await sharp({ create: { width: 120, height: 80, channels: 3, background: '#3366cc' } })
      .png()
      .toBuffer();
    const uploaded = await a.server.fetch(
      `/_matrix/media/v3/upload?filename=${encodeURIComponent('map 🌍.png')}`,
      {
        method: 'POST',
        headers: { Authorization: `Bearer ${alice.accessToken}`, 'Content-Type': 'image/png' },
        body: image,
      },
    );
    expect(uploaded.status).to.equal(200);
    const contentUri = ((await uploaded.json()) as { content_uri: string }).content_uri;
    mediaId = contentUri.split('/').pop()!;
    const onA = await clientGet(a, alice, `/_matrix/client/v1/media/download/${a.serverName}/${mediaId}`);
    original = Buffer.from(await onA.arrayBuffer());
  });
  after(async () => {
    await federation?.stop();
  });

  it('serves its own media to a peer as multipart/mixed: a JSON part, then the bytes', async () => {
    const answer = await b.context.federation.client.requestBytes!({
      destination: a.serverName,
      method: 'GET',
      path: `/_matrix/federation/v1/media/download/${mediaId}`,
    });
    const boundary = multipartBoundary(String(answer.headers['content-type']));
    expect(boundary, String(answer.headers['content-type'])).to.be.a('string');
    const [metadata, content] = decodeMultipart(answer.body, boundary!);
    expect(metadata!.headers['content-type']).to.equal('application/json');
    expect(JSON.parse(metadata!.body.toString())).to.deep.equal({});
    expect(content!.headers['content-type']).to.equal('image/png');
    expect(content!.headers['content-disposition']).to.match(
      /^inline; filename\*=utf-8''map%20%F0%9F%8C%8D\.png$/,
    );
    expect(content!.body.equals(original)).to.equal(true);

    const thumb = await b.context.federation.client.requestBytes!({
      destination: a.serverName,
      method: 'GET',
      path: `/_matrix/federation/v1/media/thumbnail/${mediaId}`,
      query: { width: 32, height: 32, method: 'crop' },
    });
    const thumbParts = decodeMultipart(thumb.body, multipartBoundary(String(thumb.headers['content-type']))!);
    const meta = await sharp(thumbParts[1]!.body).metadata();
    expect([meta.width, meta.height]).to.deep.equal([32, 32]);
  });

  it('refuses unsigned requests and answers 404 for unknown media', async () => {
    const unsigned = await b.context.federation.client.requestBytes!({
      destination: a.serverName,
      method: 'GET',
      path: `/_matrix/federation/v1/media/download/${mediaId}`,
      signed: false,
    }).catch((error: unknown) => error);
    expect((unsigned as FederationRequestError).status).to.equal(401);
    const unknown = await b.context.federation.client.requestBytes!({
      destination: a.serverName,
      method: 'GET',
      path: '/_matrix/federation/v1/media/download/nope',
    }).catch((error: unknown) => error);
    expect(unknown).to.be.instanceOf(FederationRequestError);
    expect((unknown as FederationRequestError).status).to.equal(404);
    const viaClient = await clientGet(b, bob, `/_matrix/client/v1/media/download/${a.serverName}/nope`);
    expect(viaClient.status).to.equal(404);
    expect(((await viaClient.json()) as { errcode: string }).errcode).to.equal('M_NOT_FOUND');
  });

  it("a client of B downloads A's media through B, with its type and name; thumbnails too", async () => {
    const res = await clientGet(b, bob, `/_matrix/client/v1/media/download/${a.serverName}/${mediaId}`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('image/png');
    expect(res.headers.get('content-disposition')).to.include("filename*=utf-8''map%20%F0%9F%8C%8D.png");
    expect(Buffer.from(await res.arrayBuffer()).equals(original)).to.equal(true);
    const thumb = await clientGet(
      b,
      bob,
      `/_matrix/client/v1/media/thumbnail/${a.serverName}/${mediaId}?width=32&height=32&method=crop`,
    );
    expect(thumb.status).to.equal(200);
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).to.deep.equal([32, 32]);
  });

  it('serves its media to a signed peer at the deprecated r0 paths too (Synapse 1.67 fetches there)', async () => {
    const client = b.context.federation.client;
    const answer = await client.requestBytes!({
      destination: a.serverName,
      method: 'GET',
      path: `/_matrix/media/r0/download/${encodeURIComponent(a.serverName)}/${mediaId}`,
      query: { allow_remote: false },
    });
    expect(answer.headers['content-type']).to.equal('image/png');
    expect(answer.body.equals(original)).to.equal(true);
    const thumb = await client.requestBytes!({
      destination: a.serverName,
      method: 'GET',
      path: `/_matrix/media/r0/thumbnail/${encodeURIComponent(a.serverName)}/${mediaId}`,
      query: { width: 32, height: 32, method: 'crop', allow_remote: false },
    });
    const meta = await sharp(thumb.body).metadata();
    expect([meta.width, meta.height]).to.deep.equal([32, 32]);
    const unsigned = await client.requestBytes!({
      destination: a.serverName,
      method: 'GET',
      path: `/_matrix/media/r0/download/${encodeURIComponent(a.serverName)}/${mediaId}`,
      signed: false,
    }).catch((error: unknown) => error);
    expect((unsigned as FederationRequestError).status).to.equal(401);
    const relayed = await client.requestBytes!({
      destination: a.serverName,
      method: 'GET',
      path: `/_matrix/media/r0/download/${encodeURIComponent(b.serverName)}/${mediaId}`,
    }).catch((error: unknown) => error);
    expect((relayed as FederationRequestError).status).to.equal(404);
  });

  it('falls back to the deprecated download path when a peer does not know the federation media endpoint', async () => {
    // A server from before v1.11, as Synapse 1.67 answers: 400 M_UNRECOGNIZED for the
    // federation media endpoint, the bytes at /_matrix/media/v3/download.
    const seen: string[] = [];
    const old = createHttpsServer(
      {
        cert: await readFile(federation.certificates.certFile),
        key: await readFile(federation.certificates.keyFile),
      },
      (req, res) => {
        seen.push(req.url ?? '');
        const legacy = /^\/_matrix\/media\/v3\/download\/[^/]+\/(\w+)\?/.exec(req.url ?? '');
        if (legacy?.[1] === 'oldmedia') {
          res.writeHead(200, {
            'Content-Type': 'text/plain; charset=utf-8',
            'Content-Disposition': "inline; filename*=utf-8''old%20%F0%9F%93%9C.txt",
          });
          res.end('from an old server 📜');
          return;
        }
        res.writeHead(legacy ? 404 : 400, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errcode: legacy ? 'M_NOT_FOUND' : 'M_UNRECOGNIZED', error: 'no' }));
      },
    );
    await new Promise<void>((resolve) => old.listen(0, '127.0.0.1', resolve));
    const oldServer = `127.0.0.1:${(old.address() as AddressInfo).port}`;
    try {
      const res = await clientGet(b, bob, `/_matrix/client/v1/media/download/${oldServer}/oldmedia`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal('text/plain; charset=utf-8');
      expect(res.headers.get('content-disposition')).to.include("filename*=utf-8''old%20%F0%9F%93%9C.txt");
      expect(await res.text()).to.equal('from an old server 📜');
      expect(seen[0]).to.match(/^\/_matrix\/federation\/v1\/media\/download\/oldmedia/);
      expect(seen[1]).to.match(
        /^\/_matrix\/media\/v3\/download\/127\.0\.0\.1%3A\d+\/oldmedia\?.*allow_remote=false/,
      );
      const missing = await clientGet(b, bob, `/_matrix/client/v1/media/download/${oldServer}/missing`);
      expect(missing.status).to.equal(404);
    } finally {
      old.close();
    }
  });

  it("a remote thumbnail is asked of the origin's thumbnail endpoint, without downloading the whole file", async () => {
    const image = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#cc6633' } })
      .png()
      .toBuffer();
    const uploaded = await a.server.fetch('/_matrix/media/v3/upload', {
      method: 'POST',
      headers: { Authorization: `Bearer ${alice.accessToken}`, 'Content-Type': 'image/png' },
      body: image,
    });
    const otherId = ((await uploaded.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const path = `/_matrix/client/v1/media/thumbnail/${a.serverName}/${otherId}?width=96&height=96&method=crop`;
    const thumb = await clientGet(b, bob, path);
    expect(thumb.status).to.equal(200);
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).to.deep.equal([96, 96]);
    // B holds the thumbnail, not the file.
    expect(await b.context.storage.media.getMedia(a.serverName, otherId)).to.equal(null);
    const kept = await b.context.storage.media.getThumbnail({
      serverName: a.serverName,
      mediaId: otherId,
      width: 96,
      height: 96,
      method: 'crop',
      animated: false,
    });
    expect(kept?.contentType).to.match(/^image\//);
    mediaIdThumbnailOnly = otherId;
  });

  it('serves the cached copy once the origin server is gone', async () => {
    await a.server.stop();
    // The remote thumbnail too, from B's copy.
    const thumb = await clientGet(
      b,
      bob,
      `/_matrix/client/v1/media/thumbnail/${a.serverName}/${mediaIdThumbnailOnly}?width=96&height=96&method=crop`,
    );
    expect(thumb.status).to.equal(200);
    const res = await clientGet(b, bob, `/_matrix/client/v1/media/download/${a.serverName}/${mediaId}`);
    expect(res.status).to.equal(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(original)).to.equal(true);
  });
});
