/**
 * POST /keys/claim for 100 devices in one request (issue #6 target: <= 50 ms),
 * over HTTP against a real Myelin (SQLite file, in this process), each device
 * holding 40 signed one-time keys and a fallback key: 40 rounds take one-time
 * keys, the rest fall back. Also /keys/query for the same 100 users, and the
 * claim through the service alone (no HTTP). Prints p50/p99 with the load
 * average. Run: node --import tsx bench/keys-claim.bench.ts
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import type { JsonObject } from '../protocol/events.js';
import { signingKeyFromSeed, signJson } from '../protocol/signing.js';
import { defaultConfig } from '../server/config/index.js';
import { createHomeserver } from '../server/homeserver.js';

const DEVICES = 100;
const KEYS_PER_DEVICE = 40;
const ROUNDS = 60;
const QUERY_ROUNDS = 40;

function percentiles(samplesMs: number[]): string {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `p50 ${at(0.5).toFixed(2).padStart(7)} ms   p99 ${at(0.99).toFixed(2).padStart(7)} ms   (n=${sorted.length})`;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'myelin-bench-keys-'));
  const config = defaultConfig({ server_name: 'bench.example', data_dir: dir, port: 0 });
  config.listeners = [{ ...config.listeners[0]!, port: 0, bind_addresses: ['127.0.0.1'] }];
  config.rate_limits.enabled = false;
  const homeserver = await createHomeserver(config, { logger: pino({ level: 'warn' }) });
  const { ports } = await homeserver.start();
  const base = `http://127.0.0.1:${ports[0]}`;
  const hs = homeserver.context;
  try {
    // Set-up through the services: 100 users with one device each, signed keys.
    const claims: Record<string, Record<string, string>> = {};
    const query: Record<string, string[]> = {};
    let claimer = '';

    for (let i = 0; i < DEVICES; i++) {
      const userId = `@user${i}:bench.example`;
      await hs.storage.accounts.createAccount({ userId, createdTs: Date.now() });
      const login = await hs.sessions.createLoginSession({ userId, withRefreshToken: false });
      if (i === 0) {
        claimer = login.access_token;
      }
      const deviceId = login.device_id;
      const key = signingKeyFromSeed(`ed25519:${deviceId}`, randomBytes(32));
      const deviceKeys = signJson(
        {
          user_id: userId,
          device_id: deviceId,
          algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
          keys: {
            [`ed25519:${deviceId}`]: key.publicKey,
            [`curve25519:${deviceId}`]: randomBytes(32).toString('base64'),
          },
        },
        userId,
        key,
      );
      const oneTimeKeys: Record<string, JsonObject> = {};
      for (let k = 0; k < KEYS_PER_DEVICE; k++) {
        oneTimeKeys[`signed_curve25519:K${k}`] = signJson(
          { key: randomBytes(32).toString('base64') },
          userId,
          key,
        );
      }
      const fallback = signJson({ key: randomBytes(32).toString('base64'), fallback: true }, userId, key);
      await hs.deviceKeys.uploadKeys(userId, deviceId, {
        device_keys: deviceKeys,
        one_time_keys: oneTimeKeys,
        fallback_keys: { 'signed_curve25519:F': fallback },
      });
      claims[userId] = { [deviceId]: 'signed_curve25519' };
      query[userId] = [];
    }

    const post = async (route: string, body: unknown): Promise<JsonObject> => {
      const res = await fetch(`${base}/_matrix/client/v3/keys/${route}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${claimer}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (res.status !== 200) throw new Error(`${route}: ${res.status} ${await res.text()}`);
      return (await res.json()) as JsonObject;
    };

    // Warm-up: JIT, statement caches, the connection.
    for (let i = 0; i < 3; i++) await post('query', { device_keys: query });

    const oneTime: number[] = [];
    const fallback: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const start = performance.now();
      const answer = await post('claim', { one_time_keys: claims });
      const elapsed = performance.now() - start;
      const devices = Object.keys(answer.one_time_keys as JsonObject).length;
      if (devices !== DEVICES) throw new Error(`round ${round}: ${devices} devices answered`);
      (round < KEYS_PER_DEVICE ? oneTime : fallback).push(elapsed);
    }
    const queries: number[] = [];
    for (let round = 0; round < QUERY_ROUNDS; round++) {
      const start = performance.now();
      await post('query', { device_keys: query });
      queries.push(performance.now() - start);
    }
    // The service alone (fallback keys by now), without HTTP and JSON.
    const service: number[] = [];
    for (let round = 0; round < QUERY_ROUNDS; round++) {
      const start = performance.now();
      await hs.deviceKeys.claimKeys('@user0:bench.example', claims, 10_000);
      service.push(performance.now() - start);
    }

    const load = os
      .loadavg()
      .map((value) => value.toFixed(2))
      .join(' ');
    console.log(`keys bench: ${DEVICES} devices, ${os.cpus().length} CPUs, load average ${load}`);
    console.log(`POST /keys/claim, 100 devices, one-time keys   ${percentiles(oneTime)}`);
    console.log(`POST /keys/claim, 100 devices, fallback keys   ${percentiles(fallback)}`);
    console.log(`POST /keys/query, 100 users                    ${percentiles(queries)}`);
    console.log(`claimKeys service only, 100 devices            ${percentiles(service)}`);
  } finally {
    await homeserver.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
