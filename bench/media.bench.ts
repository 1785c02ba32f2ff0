/**
 * Media figures (issue #5), one in-process server over loopback HTTP:
 * - RSS rise during a streamed 100 MB upload (target <= 30 MB);
 * - download throughput of that file, unencrypted, from the page cache (target >= 500 MB/s);
 * - first (uncached) thumbnail of a 12-megapixel JPEG (target <= 300 ms).
 * Run: node --expose-gc --import tsx bench/media.bench.ts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import sharp from 'sharp';
import { defaultConfig } from '../server/config/index.js';
import { createHomeserver } from '../server/homeserver.js';

const MB = 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

function* chunks(total: number): Generator<Buffer> {
  const chunk = Buffer.alloc(64 * 1024, 7);
  for (let sent = 0; sent < total; sent += chunk.length)
    yield chunk.subarray(0, Math.min(chunk.length, total - sent));
}

const dataDir = await mkdtemp(path.join(tmpdir(), 'myelin-media-bench-'));
const config = defaultConfig({ server_name: 'localhost', data_dir: dataDir, port: 0 });
config.listeners = [{ ...config.listeners[0]!, port: 0, bind_addresses: ['127.0.0.1'] }];
config.rate_limits.enabled = false;
config.password_hashing.scrypt_log_n = 10;
config.media.max_upload_bytes = 200 * MB;
const hs = await createHomeserver(config, { logger: pino({ level: 'warn' }) });
const { ports } = await hs.start();
const base = `http://127.0.0.1:${ports[0]}`;
try {
  const context = hs.context;
  await context.storage.accounts.createAccount({
    userId: '@bench:localhost',
    passwordHash: await context.passwords.hash('bench password'),
    createdTs: Date.now(),
  });
  const login = await fetch(`${base}/_matrix/client/v3/login`, {
    method: 'POST',
    body: JSON.stringify({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: 'bench' },
      password: 'bench password',
    }),
  });
  const token = ((await login.json()) as { access_token: string }).access_token;
  const auth = { Authorization: `Bearer ${token}` };

  // 1. RSS during a 100 MB streamed upload, sampled every 20 ms.
  gc();
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const started = performance.now();
  const up = await fetch(`${base}/_matrix/media/v3/upload`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/octet-stream' },
    body: Readable.toWeb(Readable.from(chunks(100 * MB))) as never,
    duplex: 'half',
  } as RequestInit);
  const uploadMs = performance.now() - started;
  clearInterval(sampler);
  const uri = ((await up.json()) as { content_uri: string }).content_uri.slice('mxc://'.length);
  console.log(
    `upload 100 MB: ${uploadMs.toFixed(0)} ms; RSS rise ${((peak - rssBefore) / MB).toFixed(1)} MB (peak over start, client included)`,
  );

  // 2. Download throughput (warm page cache: one untimed pass first).
  const drain = async () => {
    const res = await fetch(`${base}/_matrix/client/v1/media/download/${uri}`, { headers: auth });
    let bytes = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    return bytes;
  };
  await drain();
  const rounds = 5;
  const t0 = performance.now();
  let total = 0;
  for (let i = 0; i < rounds; i++) total += await drain();
  const seconds = (performance.now() - t0) / 1000;
  console.log(`download: ${(total / MB / seconds).toFixed(0)} MB/s over ${rounds} x 100 MB`);

  // 3. Thumbnail of a 12 MP JPEG (4000 x 3000), first request of each size (uncached).
  const noise = Buffer.alloc(4000 * 3000 * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  const jpeg = await sharp(noise, { raw: { width: 4000, height: 3000, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
  const photo = await fetch(`${base}/_matrix/media/v3/upload`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'image/jpeg' },
    body: jpeg,
  });
  const photoUri = ((await photo.json()) as { content_uri: string }).content_uri.slice('mxc://'.length);
  for (const [w, h, method] of [
    [320, 240, 'scale'],
    [800, 600, 'scale'],
    [96, 96, 'crop'],
  ] as const) {
    const t = performance.now();
    const res = await fetch(
      `${base}/_matrix/client/v1/media/thumbnail/${photoUri}?width=${w}&height=${h}&method=${method}`,
      { headers: auth },
    );
    await res.arrayBuffer();
    console.log(
      `thumbnail ${w}x${h} ${method} of a 12 MP JPEG (${(jpeg.length / MB).toFixed(1)} MB): ${(performance.now() - t).toFixed(0)} ms (status ${res.status})`,
    );
  }
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
} finally {
  await hs.stop();
  await rm(dataDir, { recursive: true, force: true });
}
