import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { deflateSync } from 'node:zlib';
import { expect } from 'chai';
import sharp from 'sharp';
import type { MyelinConfig } from '../server/config/index.js';
import { createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';
import { until } from './harness/until.js';

const PREVIEW_KEY = 'io.myelin.preview';

async function upload(
  hs: TestHomeserver,
  user: TestUser,
  body: RequestInit['body'],
  contentType = 'application/octet-stream',
  fileName?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const query = fileName ? `?filename=${encodeURIComponent(fileName)}` : '';
  const res = await hs.fetch(`/_matrix/media/v3/upload${query}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${user.accessToken}`, 'Content-Type': contentType },
    body,
    duplex: 'half',
  } as RequestInit);
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function mediaPath(contentUri: unknown): string {
  return String(contentUri).slice('mxc://'.length);
}

function download(
  hs: TestHomeserver,
  user: TestUser | undefined,
  contentUri: unknown,
  init: RequestInit = {},
) {
  return hs.fetch(`/_matrix/client/v1/media/download/${mediaPath(contentUri)}`, {
    ...init,
    headers: { ...(user ? { Authorization: `Bearer ${user.accessToken}` } : {}), ...(init.headers ?? {}) },
  });
}

function thumbnail(hs: TestHomeserver, user: TestUser, contentUri: unknown, query: string) {
  return hs.fetch(`/_matrix/client/v1/media/thumbnail/${mediaPath(contentUri)}?${query}`, {
    headers: { Authorization: `Bearer ${user.accessToken}` },
  });
}

async function png(width: number, height: number): Promise<Buffer> {
  // A gradient, so crop and scale visibly differ.
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      pixels[i] = (x * 255) / width;
      pixels[i + 1] = (y * 255) / height;
      pixels[i + 2] = 128;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

function* deterministicChunks(total: number, chunkSize: number): Generator<Buffer> {
  let sent = 0;
  let n = 0;
  while (sent < total) {
    const size = Math.min(chunkSize, total - sent);
    const chunk = Buffer.alloc(size, n++ % 251);
    sent += size;
    yield chunk;
  }
}

/** A PNG header claiming width x height 1-bit grey pixels, with a tiny (truncated) IDAT: costs bytes, not pixels. */
function bombPng(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  const rows = deflateSync(Buffer.alloc(((width + 7) >> 3) + 1).fill(0));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', rows),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

async function storedFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && !entry.parentPath.endsWith('tmp'))
      found.push(path.join(entry.parentPath, entry.name));
  }
  return found;
}

describe('media: upload and download', function () {
  this.timeout(60_000);
  let hs: TestHomeserver;
  let alice: TestUser;

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    alice = await createUser(hs, 'alice');
  });
  after(() => hs.stop());

  for (const size of [0, 1]) {
    it(`round-trips ${size} byte(s) byte-equal`, async () => {
      const bytes = randomBytes(size);
      const up = await upload(hs, alice, bytes);
      expect(up.status, JSON.stringify(up.json)).to.equal(200);
      expect(up.json.content_uri).to.match(/^mxc:\/\/localhost\/[A-Za-z0-9_-]+$/);
      const res = await download(hs, alice, up.json.content_uri);
      expect(res.status).to.equal(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).to.equal(true);
    });
  }

  it('streams a 10 MB upload and download byte-equal', async () => {
    const total = 10 * 1024 * 1024;
    const expected = createHash('sha256');
    for (const chunk of deterministicChunks(total, 65_536)) expected.update(chunk);
    const up = await upload(
      hs,
      alice,
      Readable.toWeb(Readable.from(deterministicChunks(total, 65_536))) as never,
    );
    expect(up.status, JSON.stringify(up.json)).to.equal(200);
    const res = await download(hs, alice, up.json.content_uri);
    expect(res.headers.get('content-length')).to.equal(String(total));
    const got = createHash('sha256');
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) got.update(chunk);
    expect(got.digest('hex')).to.equal(expected.digest('hex'));
  });

  it('serves the sniffed type, never the claimed one, and HTML only as an attachment', async () => {
    const image = await png(20, 10);
    const up = await upload(hs, alice, image, 'text/html', 'page.html');
    const res = await download(hs, alice, up.json.content_uri);
    expect(res.headers.get('content-type')).to.equal('image/png');
    expect(res.headers.get('content-disposition')).to.equal('inline; filename="page.html"');
    expect(res.headers.get('content-security-policy')).to.contain('sandbox');
    expect(res.headers.get('cross-origin-resource-policy')).to.equal('cross-origin');

    const html = await upload(hs, alice, '<!DOCTYPE html><script>alert(1)</script>', 'image/png', 'x.png');
    const page = await download(hs, alice, html.json.content_uri);
    expect(page.headers.get('content-type')).to.equal('text/html');
    expect(page.headers.get('content-disposition')).to.equal('attachment; filename="x.png"');
  });

  it('refuses unauthenticated access to the authenticated endpoints, and freezes the legacy ones', async () => {
    const up = await upload(hs, alice, Buffer.from('hello'));
    expect((await download(hs, undefined, up.json.content_uri)).status).to.equal(401);
    const config = await hs.fetch('/_matrix/client/v1/media/config');
    expect(config.status).to.equal(401);
    const legacy = await hs.fetch(`/_matrix/media/v3/download/${mediaPath(up.json.content_uri)}`);
    expect(legacy.status).to.equal(404);
    const noUpload = await hs.fetch('/_matrix/media/v3/upload', { method: 'POST', body: 'x' });
    expect(noUpload.status).to.equal(401);
  });

  it('answers a Range with the right slice, and an ETag with 304', async () => {
    const bytes = randomBytes(200_000);
    const up = await upload(hs, alice, bytes);
    const res = await download(hs, alice, up.json.content_uri, { headers: { Range: 'bytes=1000-70999' } });
    expect(res.status).to.equal(206);
    expect(res.headers.get('content-range')).to.equal('bytes 1000-70999/200000');
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(1000, 71000))).to.equal(true);
    const tail = await download(hs, alice, up.json.content_uri, { headers: { Range: 'bytes=-10' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(-10))).to.equal(true);
    const outside = await download(hs, alice, up.json.content_uri, { headers: { Range: 'bytes=300000-' } });
    expect(outside.status).to.equal(416);
    const etag = res.headers.get('etag')!;
    const cached = await download(hs, alice, up.json.content_uri, { headers: { 'If-None-Match': etag } });
    expect(cached.status).to.equal(304);
  });

  it('uploads asynchronously into a created ID, once', async () => {
    const created = await hs.fetch('/_matrix/media/v1/create', {
      method: 'POST',
      headers: { Authorization: `Bearer ${alice.accessToken}` },
    });
    const { content_uri, unused_expires_at } = (await created.json()) as Record<string, unknown>;
    expect(unused_expires_at).to.be.a('number');
    const early = await hs.fetch(
      `/_matrix/client/v1/media/download/${mediaPath(content_uri)}?timeout_ms=100`,
      {
        headers: { Authorization: `Bearer ${alice.accessToken}` },
      },
    );
    expect(early.status).to.equal(504);
    const put = (body: string) =>
      hs.fetch(`/_matrix/media/v3/upload/${mediaPath(content_uri)}`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${alice.accessToken}`, 'Content-Type': 'text/plain' },
        body,
      });
    // A download waiting for the upload gets the content as soon as it arrives.
    const waiting = hs.fetch(`/_matrix/client/v1/media/download/${mediaPath(content_uri)}?timeout_ms=10000`, {
      headers: { Authorization: `Bearer ${alice.accessToken}` },
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    expect((await put('first')).status).to.equal(200);
    const waited = await waiting;
    expect(waited.status).to.equal(200);
    expect(await waited.text()).to.equal('first');
    expect(Date.now() - started).to.be.below(5000);
    const second = await put('second');
    expect(second.status).to.equal(409);
    expect(((await second.json()) as { errcode: string }).errcode).to.equal('M_CANNOT_OVERWRITE_MEDIA');
    expect(await (await download(hs, alice, content_uri)).text()).to.equal('first');
  });

  it('makes thumbnails of the requested size; crop differs from scale', async () => {
    const up = await upload(hs, alice, await png(1000, 500), 'image/png');
    const crop = await thumbnail(hs, alice, up.json.content_uri, 'width=96&height=96&method=crop');
    expect(crop.status).to.equal(200);
    const cropMeta = await sharp(Buffer.from(await crop.arrayBuffer())).metadata();
    expect([cropMeta.width, cropMeta.height]).to.deep.equal([96, 96]);
    const scale = await thumbnail(hs, alice, up.json.content_uri, 'width=320&height=240&method=scale');
    const scaleMeta = await sharp(Buffer.from(await scale.arrayBuffer())).metadata();
    expect([scaleMeta.width, scaleMeta.height]).to.deep.equal([320, 160]);
    const small = await thumbnail(hs, alice, up.json.content_uri, 'width=96&height=96&method=scale');
    const smallMeta = await sharp(Buffer.from(await small.arrayBuffer())).metadata();
    expect(smallMeta.width! / smallMeta.height!).to.equal(2);
  });

  it('keeps a GIF animated when asked, and still when not', async () => {
    const frame = (colour: string) =>
      sharp({ create: { width: 200, height: 100, channels: 3, background: colour } })
        .png()
        .toBuffer();
    const gif = await sharp([await frame('#ff0000'), await frame('#00ff00'), await frame('#0000ff')], {
      join: { animated: true },
    })
      .gif()
      .toBuffer();
    const up = await upload(hs, alice, gif, 'image/gif');
    expect((up.json[PREVIEW_KEY] as Record<string, unknown>).animated).to.equal(true);
    const moving = await thumbnail(
      hs,
      alice,
      up.json.content_uri,
      'width=96&height=96&method=crop&animated=true',
    );
    expect(moving.headers.get('content-type')).to.equal('image/gif');
    const movingMeta = await sharp(Buffer.from(await moving.arrayBuffer()), { animated: true }).metadata();
    expect(movingMeta.pages).to.equal(3);
    expect([movingMeta.width, movingMeta.pageHeight]).to.deep.equal([96, 96]);
    const still = await thumbnail(
      hs,
      alice,
      up.json.content_uri,
      'width=96&height=96&method=crop&animated=false',
    );
    expect(still.headers.get('content-type')).to.equal('image/png');
    expect((await sharp(Buffer.from(await still.arrayBuffer())).metadata()).pages ?? 1).to.equal(1);
  });

  it('refuses to thumbnail a 50,000 x 50,000 PNG without spending its pixels in memory', async () => {
    const before = process.memoryUsage().rss;
    const up = await upload(hs, alice, bombPng(50_000, 50_000), 'image/png');
    expect(up.status).to.equal(200);
    const res = await thumbnail(hs, alice, up.json.content_uri, 'width=96&height=96&method=crop');
    expect(res.status).to.equal(413);
    expect(((await res.json()) as { errcode: string }).errcode).to.equal('M_TOO_LARGE');
    expect(process.memoryUsage().rss - before).to.be.below(200 * 1024 * 1024);
  });

  it('strips GPS from a JPEG, returns it smaller, and describes it with a blurhash', async () => {
    const jpeg = await sharp(await png(300, 200))
      .jpeg({ quality: 90 })
      .withExif({
        IFD0: { Make: 'Phone', Model: 'Camera 3000' },
        IFD3: {
          GPSLatitudeRef: 'N',
          GPSLatitude: '51/1 30/1 0/1',
          GPSLongitudeRef: 'W',
          GPSLongitude: '0/1 7/1 0/1',
        },
      })
      .toBuffer();
    expect((await sharp(jpeg).metadata()).exif).to.not.equal(undefined);
    const up = await upload(hs, alice, jpeg, 'image/jpeg');
    const preview = up.json[PREVIEW_KEY] as Record<string, unknown>;
    expect(preview).to.include({ mimetype: 'image/jpeg', w: 300, h: 200 });
    expect(preview.blurhash).to.be.a('string');
    const res = await download(hs, alice, up.json.content_uri);
    const stored = Buffer.from(await res.arrayBuffer());
    expect(stored.length).to.be.below(jpeg.length);
    expect((await sharp(stored).metadata()).exif).to.equal(undefined);
    expect(stored.includes(Buffer.from('Camera 3000'))).to.equal(false);

    const facts = await hs.fetch(
      `/_matrix/client/unstable/io.myelin/media/preview/${mediaPath(up.json.content_uri)}`,
      {
        headers: { Authorization: `Bearer ${alice.accessToken}` },
      },
    );
    expect(await facts.json()).to.deep.equal(preview);
  });

  it('refuses an upload over the size limit with 413 M_TOO_LARGE', async () => {
    hs.config.media.max_upload_bytes = 1000;
    try {
      const up = await upload(hs, alice, randomBytes(5000));
      expect(up.status).to.equal(413);
      expect(up.json.errcode).to.equal('M_TOO_LARGE');
      const config = await hs.fetch('/_matrix/client/v1/media/config', {
        headers: { Authorization: `Bearer ${alice.accessToken}` },
      });
      expect(await config.json()).to.deep.equal({ 'm.upload.size': 1000 });
    } finally {
      hs.config.media.max_upload_bytes = 52_428_800;
    }
  });

  it('holds each user to their quota', async () => {
    const bob = await createUser(hs, 'bob');
    hs.config.media.user_quota_bytes = 10_000;
    try {
      expect((await upload(hs, bob, randomBytes(6000))).status).to.equal(200);
      const over = await upload(hs, bob, randomBytes(6000));
      expect(over.status).to.equal(413);
      expect(over.json.errcode).to.equal('M_TOO_LARGE');
      // Without a Content-Length the quota is checked once the size is known.
      const streamed = await upload(hs, bob, Readable.toWeb(Readable.from([randomBytes(6000)])) as never);
      expect(streamed.status).to.equal(413);
      expect((await upload(hs, bob, randomBytes(3000))).status).to.equal(200);
    } finally {
      hs.config.media.user_quota_bytes = 0;
    }
  });

  it('answers 404 M_NOT_FOUND for media of other servers (until federation)', async () => {
    const res = await hs.fetch('/_matrix/client/v1/media/download/elsewhere.org/abc', {
      headers: { Authorization: `Bearer ${alice.accessToken}` },
    });
    expect(res.status).to.equal(404);
    expect(((await res.json()) as { errcode: string }).errcode).to.equal('M_NOT_FOUND');
  });

  it('never serves quarantined media; the clean-up removes files nothing uses', async () => {
    const admin = await createUser(hs, 'admin');
    await hs.homeserver.context.storage.accounts.setAdmin(admin.userId, true);
    const up = await upload(hs, alice, randomBytes(500));
    const admin_ = (path: string) =>
      hs.fetch(path, { method: 'POST', headers: { Authorization: `Bearer ${admin.accessToken}` } });
    const path_ = mediaPath(up.json.content_uri);
    expect(
      (
        await hs.fetch(`/_synapse/admin/v1/media/quarantine/${path_}`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${alice.accessToken}` },
        })
      ).status,
    ).to.equal(403);
    expect((await admin_(`/_synapse/admin/v1/media/quarantine/${path_}`)).status).to.equal(200);
    expect((await download(hs, alice, up.json.content_uri)).status).to.equal(404);
    expect((await admin_(`/_synapse/admin/v1/media/unquarantine/${path_}`)).status).to.equal(200);
    expect((await download(hs, alice, up.json.content_uri)).status).to.equal(200);

    const [serverName, mediaId] = path_.split('/') as [string, string];
    const record = await hs.homeserver.context.storage.media.getMedia(serverName, mediaId);
    await hs.homeserver.context.storage.media.deleteMedia(serverName, mediaId);
    const { runMediaRetention } = await import('../server/media/retention.js');
    const context = hs.homeserver.context;
    const report = await runMediaRetention(context, Date.now() + 2 * 3_600_000);
    expect(report.deletedBlobs).to.be.at.least(1);
    const files = await storedFiles(hs.config.media.store_path);
    expect(files.some((f) => f.includes(record!.blob!.sha256))).to.equal(false);
  });

  it('stores identical uploads once', async () => {
    const bytes = randomBytes(3000);
    await upload(hs, alice, bytes);
    const before = (await storedFiles(hs.config.media.store_path)).length;
    await upload(hs, alice, bytes);
    expect((await storedFiles(hs.config.media.store_path)).length).to.equal(before);
  });
});

describe('media: encryption at rest', function () {
  this.timeout(30_000);
  let hs: TestHomeserver;
  let alice: TestUser;

  before(async () => {
    hs = await TestHomeserver.start({
      configure: (config) => {
        fastAccounts(config);
        config.media.encryption.enabled = true;
      },
    });
    alice = await createUser(hs, 'alice');
  });
  after(() => hs.stop());

  it('stores ciphertext, serves plaintext (also by range), and refuses a tampered file', async () => {
    const bytes = randomBytes(150_000);
    const up = await upload(hs, alice, bytes);
    const files = (await storedFiles(hs.config.media.store_path)).filter((f) => f.endsWith('.aes'));
    expect(files).to.have.length(1);
    const stored = await readFile(files[0]!);
    expect(stored.equals(bytes)).to.equal(false);
    expect(stored.includes(bytes.subarray(0, 64))).to.equal(false);

    const res = await download(hs, alice, up.json.content_uri);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).to.equal(true);
    const slice = await download(hs, alice, up.json.content_uri, { headers: { Range: 'bytes=65000-70000' } });
    expect(Buffer.from(await slice.arrayBuffer()).equals(bytes.subarray(65000, 70001))).to.equal(true);

    stored[100] = stored[100]! ^ 1;
    await writeFile(files[0]!, stored);
    const tampered = await download(hs, alice, up.json.content_uri);
    expect(tampered.status).to.equal(500);
  });

  it('thumbnails encrypted images and stores the thumbnails encrypted too', async () => {
    const before = new Set(await storedFiles(hs.config.media.store_path));
    const up = await upload(hs, alice, await png(400, 300), 'image/png');
    const res = await thumbnail(hs, alice, up.json.content_uri, 'width=32&height=32&method=crop');
    expect(res.status).to.equal(200);
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).to.deep.equal([32, 32]);
    const added = (await storedFiles(hs.config.media.store_path)).filter((f) => !before.has(f));
    expect(added).to.have.length(2);
    expect(added.every((f) => f.endsWith('.aes'))).to.equal(true);
  });

  it('cuts the answer at a tampered chunk further in, never serving its bytes', async () => {
    const bytes = randomBytes(300_000);
    const up = await upload(hs, alice, bytes);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const file = (await storedFiles(hs.config.media.store_path)).find((f) => f.includes(sha))!;
    const stored = await readFile(file);
    // The third 64 KiB chunk.
    stored[15 + 2 * (65_536 + 16) + 10] = stored[15 + 2 * (65_536 + 16) + 10]! ^ 1;
    await writeFile(file, stored);
    const res = await download(hs, alice, up.json.content_uri);
    expect(res.status).to.equal(200);
    let received = 0;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) received += chunk.length;
      expect.fail('the answer should have been cut');
    } catch (error) {
      expect(String(error)).to.not.contain('the answer should have been cut');
    }
    expect(received).to.be.at.most(2 * 65_536);
  });
});

describe('media: unfrozen legacy endpoints', function () {
  this.timeout(30_000);
  it('serves media on the deprecated unauthenticated endpoints when configured open', async () => {
    const hs = await TestHomeserver.start({
      configure: (config) => {
        fastAccounts(config);
        config.media.unauthenticated_reads = 'open';
      },
    });
    try {
      const alice = await createUser(hs, 'alice');
      const up = await upload(hs, alice, Buffer.from('legacy'));
      const res = await hs.fetch(`/_matrix/media/v3/download/${mediaPath(up.json.content_uri)}/note.txt`);
      expect(res.status).to.equal(200);
      expect(await res.text()).to.equal('legacy');
      expect(res.headers.get('content-disposition')).to.equal('inline; filename="note.txt"');
    } finally {
      await hs.stop();
    }
  });
});

describe('media: clean-up schedule', function () {
  this.timeout(30_000);
  const everySecond = (config: MyelinConfig) => {
    fastAccounts(config);
    config.media.retention.schedule = '* * * * * *';
  };
  const runTimes = (hs: TestHomeserver) =>
    hs
      .logs()
      .filter((line) => line.msg === 'Media clean-up done')
      .map((line) => line.time as number);

  it('runs on its schedule from the first media stored, and from start-up once the server holds media', async () => {
    let hs = await TestHomeserver.start({ configure: everySecond });
    const { dataDir } = hs;
    try {
      // No media: nothing to clean, nothing scheduled.
      const alice = await createUser(hs, 'alice');
      await sleep(1_500);
      expect(runTimes(hs)).to.deep.equal([]);

      await upload(hs, alice, randomBytes(100));
      const [first, second] = await until(async () => (runTimes(hs).length >= 2 ? runTimes(hs) : undefined));
      // One run a second, each at the start of its second.
      expect(second! - first!).to.be.within(500, 1_500);

      hs = await hs.restart({ configure: everySecond });
      await until(async () => (runTimes(hs).length >= 1 ? true : undefined));
    } finally {
      await hs.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
