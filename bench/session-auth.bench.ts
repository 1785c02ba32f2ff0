/**
 * Per-request authentication cost (JWT access token verify + session liveness
 * check + account flags + last-seen record), as the request pipeline pays it,
 * in microseconds: steady state (token and session cached), a token seen for
 * the first time on a cached session (HS256 verify), and fully cold (session
 * and account read from SQLite too). Run: node --import tsx bench/session-auth.bench.ts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { createAccessTokenCodec } from '../server/accounts/access-tokens.js';
import { createAccountsAuthenticator } from '../server/accounts/authenticator.js';
import { createLastSeenRecorder } from '../server/accounts/last-seen-recorder.js';
import { createSessionService, type SessionService } from '../server/accounts/session-service.js';
import { defaultConfig } from '../server/config/index.js';
import { authenticatorWithoutAccounts } from '../server/http/auth.js';
import { openSqliteStorage } from '../storage/sqlite/sqlite-storage.js';
import type { Storage } from '../storage/storage.js';

const STEADY_ITERATIONS = 200_000;
const FRESH_TOKENS = 5_000;
const COLD_SESSIONS = 2_000;
const ORIGIN = { ip: '203.0.113.7', userAgent: 'bench/1.0' };

function percentiles(samplesUs: number[]): { p50: number; p99: number } {
  const sorted = [...samplesUs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

function report(name: string, samplesUs: number[]): void {
  const { p50, p99 } = percentiles(samplesUs);
  console.log(
    `${name.padEnd(58)} p50 ${p50.toFixed(2).padStart(8)} µs   p99 ${p99.toFixed(2).padStart(8)} µs`,
  );
}

function services(storage: Storage, secret: Uint8Array, config: ReturnType<typeof defaultConfig>) {
  const log = pino({ level: 'silent' });
  const sessions = createSessionService({
    config,
    storage,
    tokens: createAccessTokenCodec(secret, config.server_name),
    lastSeen: createLastSeenRecorder({ devices: storage.devices, log, flushIntervalMs: 1000 }),
    log,
  });
  return {
    sessions,
    authenticator: createAccountsAuthenticator(sessions, authenticatorWithoutAccounts.authenticateServer),
  };
}

async function timeEach(
  tokens: readonly string[],
  authenticate: (token: string) => Promise<unknown>,
): Promise<number[]> {
  const samples: number[] = [];
  for (const token of tokens) {
    const start = performance.now();
    await authenticate(token);
    samples.push((performance.now() - start) * 1000);
  }
  return samples;
}

export async function runSessionAuthBench(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'myelin-bench-auth-'));
  const storage = await openSqliteStorage({ path: path.join(dir, 'bench.db') });
  const config = defaultConfig({ server_name: 'bench.example', data_dir: dir });
  const secret = new Uint8Array(32).fill(7);
  try {
    const users = Array.from({ length: 100 }, (_, i) => `@user${i}:bench.example`);
    for (const userId of users) await storage.accounts.createAccount({ userId, createdTs: Date.now() });

    const warm = services(storage, secret, config);
    const logins = await createSessions(warm.sessions, users, COLD_SESSIONS);
    const steadyToken = logins[0]!;
    const authenticate = (token: string) => warm.authenticator.authenticateAccessToken(token, ORIGIN);

    // Steady state: the same token again and again (a client's every request).
    await timeEach(Array(10_000).fill(steadyToken), authenticate);
    report(
      'steady state (token + session cached)',
      await timeEach(Array(STEADY_ITERATIONS).fill(steadyToken), authenticate),
    );

    // Many clients, each token cached: the LRU lookups across a working set.
    await timeEach(logins, authenticate);
    report(
      `steady state, ${COLD_SESSIONS} clients round-robin`,
      await timeEach([...logins, ...logins, ...logins], authenticate),
    );

    // A token seen for the first time on a cached session: one HS256 verification.
    const fresh: string[] = [];
    const sid = (await warm.sessions.tokens.verify(steadyToken)) as {
      claims: { sessionId: string; deviceId: string; userId: string };
    };
    for (let i = 0; i < FRESH_TOKENS; i++) {
      const { token } = await warm.sessions.tokens.issue({
        userId: sid.claims.userId,
        deviceId: sid.claims.deviceId,
        sessionId: sid.claims.sessionId,
        expiresAtMs: undefined,
      });
      fresh.push(token);
    }
    report('cold token cache (JWT verify, session cached)', await timeEach(fresh, authenticate));

    // Fully cold: a new process's caches; session and account read from SQLite.
    const cold = services(storage, secret, config);
    report(
      'cold caches (JWT verify + session and account from SQLite)',
      await timeEach(logins, (token) => cold.authenticator.authenticateAccessToken(token, ORIGIN)),
    );
    await warm.sessions.close();
    await cold.sessions.close();
  } finally {
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function createSessions(
  sessions: SessionService,
  users: readonly string[],
  count: number,
): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const login = await sessions.createLoginSession({
      userId: users[i % users.length]!,
      withRefreshToken: false,
    });
    tokens.push(login.access_token);
  }
  return tokens;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(
    `Myelin session auth bench — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}`,
  );
  await runSessionAuthBench();
}
