/**
 * Media figures (issue #5), one in-process server over loopback HTTP:
 * - the server's RSS rise during a streamed 100 MB upload (target <= 30 MB);
 * - download throughput of that file, unencrypted, from the page cache (target >= 500 MB/s);
 * - first (uncached) thumbnail of a 12-megapixel JPEG (target <= 300 ms).
 * Run: node --expose-gc --import tsx bench/media.bench.ts
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import sharp from 'sharp';
import { defaultConfig } from '../server/config/index.js';
import { createHomeserver } from '../server/homeserver.js';

const MB = 1024 * 1024;

/**
 * The HTTP client runs in its own process so that the server's RSS and event
 * loop are the server's alone. It prints one JSON line of results.
 */
const CLIENT = `
const http = require('node:http');
const [mode, base, token, uri, amount] = process.argv.slice(1);
const auth = { Authorization: 'Bearer ' + token };
const start = performance.now();
if (mode === 'upload') {
  const req = http.request(base + '/_matrix/media/v3/upload', { method: 'POST', headers: { ...auth, 'Content-Type': 'application/octet-stream', 'Content-Length': amount } });
  const chunk = Buffer.alloc(65536, 7);
  let sent = 0;
  const pump = () => {
    while (sent < Number(amount)) {
      const piece = chunk.subarray(0, Math.min(chunk.length, Number(amount) - sent));
      sent += piece.length;
      if (!req.write(piece)) return req.once('drain', pump);
    }
    req.end();
  };
  pump();
  req.on('response', (res) => { let body = ''; res.on('data', (d) => (body += d)); res.on('end', () => console.log(JSON.stringify({ ms: performance.now() - start, contentUri: JSON.parse(body).content_uri }))); });
} else {
  let bytes = 0;
  const agent = new http.Agent({ keepAlive: true });
  const once = (left) => {
    if (left === 0) return console.log(JSON.stringify({ ms: performance.now() - start, bytes }));
    http.get(base + '/_matrix/client/v1/media/download/' + uri, { headers: auth, agent }, (res) => {
      res.on('data', (d) => (bytes += d.length));
      res.on('end', () => once(left - 1));
    });
  };
  once(Number(amount));
}
`;

function client(
  mode: string,
  base: string,
  token: string,
  uri: string,
  amount: number,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CLIENT, mode, base, token, uri, String(amount)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as Record<string, unknown>)
        : reject(new Error(`client exited ${code}`)),
    );
  });
}
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

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

  // 1. RSS of the server during a 100 MB upload streamed by another process, sampled every 20 ms,
  //    after a 10 MB warm-up upload (a running server has its code compiled and its heap grown).
  await client('upload', base, token, '', 10 * MB);
  gc();
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const up = await client('upload', base, token, '', 100 * MB);
  clearInterval(sampler);
  const uri = String(up.contentUri).slice('mxc://'.length);
  console.log(
    `upload 100 MB: ${Number(up.ms).toFixed(0)} ms; server RSS rise ${((peak - rssBefore) / MB).toFixed(1)} MB (peak over start)`,
  );

  // 2. Download throughput, measured by another process (one untimed pass first warms the page cache).
  await client('download', base, token, uri, 1);
  const down = await client('download', base, token, uri, 5);
  console.log(
    `download: ${(Number(down.bytes) / MB / (Number(down.ms) / 1000)).toFixed(0)} MB/s over 5 x 100 MB`,
  );

  // 3. Thumbnails of 12 MP JPEGs (4000 x 3000), first request of each size (uncached):
  //    a photo-like picture (smooth shapes, light grain) and pure noise (the worst case for a decoder).
  const width = 4000;
  const height = 3000;
  const photoLike = Buffer.alloc(width * height * 3);
  const noise = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const shade = (Math.sin(x / 180) + Math.cos(y / 140)) * 60;
      const grain = ((x * 7 + y * 13) % 9) - 4;
      photoLike[i] = 120 + shade + grain;
      photoLike[i + 1] = 110 + shade / 2 + grain;
      photoLike[i + 2] = 90 - shade / 3 + grain;
    }
  }
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  for (const [name, pixels] of [
    ['photo-like', photoLike],
    ['noise', noise],
  ] as const) {
    const jpeg = await sharp(pixels, { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer();
    const photo = await fetch(`${base}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'image/jpeg' },
      body: jpeg,
    });
    const photoUri = ((await photo.json()) as { content_uri: string }).content_uri.slice('mxc://'.length);
    const times: string[] = [];
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
      if (res.status !== 200) throw new Error(`thumbnail answered ${res.status}`);
      times.push(`${w}x${h} ${method} ${(performance.now() - t).toFixed(0)} ms`);
    }
    console.log(
      `thumbnails of a 12 MP ${name} JPEG (${(jpeg.length / MB).toFixed(1)} MB): ${times.join(', ')}`,
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
