import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { decodeJwt, SignJWT } from 'jose';
import { pino } from 'pino';
import type { MyelinConfig } from '../server/config/index.js';
import { createHomeserver } from '../server/homeserver.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const LOGIN = '/_matrix/client/v3/login';
const WHOAMI = '/_matrix/client/v3/account/whoami';
const REFRESH = '/_matrix/client/v3/refresh';

interface LoginBody {
  user_id: string;
  access_token: string;
  device_id: string;
  refresh_token?: string;
  expires_in_ms?: number;
}

function testConfig(config: MyelinConfig): void {
  config.password_hashing.scrypt_log_n = 10;
  config.rate_limits.enabled = false;
}

async function createUser(
  hs: TestHomeserver,
  localpart: string,
  password: string,
  isAdmin = false,
): Promise<string> {
  const context = hs.homeserver.context;
  const userId = `@${localpart}:${hs.config.server_name}`;
  await context.storage.accounts.createAccount({
    userId,
    passwordHash: await context.passwords.hash(password),
    createdTs: Date.now(),
    isAdmin,
  });
  return userId;
}

function postJson(hs: TestHomeserver, pathAndQuery: string, body: unknown, token?: string) {
  return hs.fetch(pathAndQuery, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
}

async function login(
  hs: TestHomeserver,
  user: string,
  password: string,
  extra: object = {},
): Promise<LoginBody> {
  const res = await postJson(hs, LOGIN, { type: 'm.login.password', user, password, ...extra });
  expect(res.status, await res.clone().text()).to.equal(200);
  return (await res.json()) as LoginBody;
}

function whoami(hs: TestHomeserver, token: string, init: RequestInit = {}): Promise<Response> {
  return hs.fetch(WHOAMI, {
    ...init,
    headers: { Authorization: `Bearer ${token}`, ...(init.headers ?? {}) },
  });
}

async function expectUnknownToken(res: Response, softLogout: boolean): Promise<void> {
  expect(res.status).to.equal(401);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body.errcode).to.equal('M_UNKNOWN_TOKEN');
  expect(body.soft_logout === true).to.equal(softLogout);
}

describe('sessions (client-server "Client Authentication")', () => {
  let hs: TestHomeserver;
  let alice: string;
  before(async () => {
    hs = await TestHomeserver.start({ configure: testConfig });
    alice = await createUser(hs, 'alice', 'alice pass');
  });
  after(() => hs.stop());

  describe('access tokens', () => {
    it('whoami answers user_id, device_id and is_guest, from the header or the access_token query parameter', async () => {
      const session = await login(hs, 'alice', 'alice pass');
      const viaHeader = await whoami(hs, session.access_token);
      expect(await viaHeader.json()).to.deep.equal({
        user_id: alice,
        device_id: session.device_id,
        is_guest: false,
      });
      const viaQuery = await hs.fetch(`${WHOAMI}?access_token=${encodeURIComponent(session.access_token)}`);
      expect(viaQuery.status).to.equal(200);
      expect(await viaQuery.json()).to.include({ user_id: alice });
    });

    it('an access token is a JWT naming the user, device and session; it does not expire without a refresh token', async () => {
      const session = await login(hs, 'alice', 'alice pass');
      const claims = decodeJwt(session.access_token);
      expect(claims.sub).to.equal(alice);
      expect(claims.device_id).to.equal(session.device_id);
      expect(claims.sid).to.be.a('string');
      expect(claims.iat).to.be.a('number');
      expect(claims).to.not.have.property('exp');
    });

    it('a forged or tampered token is 401 M_UNKNOWN_TOKEN', async () => {
      const session = await login(hs, 'alice', 'alice pass');
      const [header, payload] = session.access_token.split('.');
      const forged = await new SignJWT(decodeJwt(session.access_token))
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new Uint8Array(32));
      for (const token of [forged, `${header}.${payload}.AAAA`, 'nonsense', 'x'.repeat(10_000)]) {
        await expectUnknownToken(await whoami(hs, token), false);
      }
    });

    it('a token whose session was revoked is refused on the very next request', async () => {
      const session = await login(hs, 'alice', 'alice pass');
      expect((await whoami(hs, session.access_token)).status).to.equal(200);
      const sid = decodeJwt(session.access_token).sid as string;
      await hs.homeserver.context.sessions.revokeSession(sid);
      await expectUnknownToken(await whoami(hs, session.access_token), false);
    });

    it('revoking all sessions of a user (deactivation) kills every token at once', async () => {
      const grace = await createUser(hs, 'grace', 'grace pass');
      const one = await login(hs, 'grace', 'grace pass');
      const two = await login(hs, 'grace', 'grace pass');
      expect((await whoami(hs, one.access_token)).status).to.equal(200);
      await hs.homeserver.context.sessions.revokeAllSessions(grace);
      await expectUnknownToken(await whoami(hs, one.access_token), false);
      await expectUnknownToken(await whoami(hs, two.access_token), false);
    });

    it('records the device last seen IP, user agent and time, in a batch', async () => {
      const session = await login(hs, 'alice', 'alice pass');
      const before = Date.now();
      await whoami(hs, session.access_token, { headers: { 'User-Agent': 'TestClient/1.0' } });
      const context = hs.homeserver.context;
      expect(context.lastSeen.pending(alice, session.device_id)).to.include({ userAgent: 'TestClient/1.0' });
      await context.lastSeen.flush();
      const device = await context.storage.devices.getDevice(alice, session.device_id);
      expect(device?.lastSeenUserAgent).to.equal('TestClient/1.0');
      expect(device?.lastSeenIp).to.match(/127\.0\.0\.1/);
      expect(device?.lastSeenTs).to.be.at.least(before);
    });

    it('tells activity listeners (presence) about each authenticated request', async () => {
      const session = await login(hs, 'alice', 'alice pass');
      const seen: string[] = [];
      const unsubscribe = hs.homeserver.context.lastSeen.onActivity((userId) => seen.push(userId));
      await whoami(hs, session.access_token);
      unsubscribe();
      await whoami(hs, session.access_token);
      expect(seen).to.deep.equal([alice]);
    });
  });

  describe('logout', () => {
    it('POST /logout ends the token and deletes its device; other sessions live on', async () => {
      const phone = await login(hs, 'alice', 'alice pass');
      const laptop = await login(hs, 'alice', 'alice pass');
      const res = await postJson(hs, '/_matrix/client/v3/logout', {}, phone.access_token);
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({});
      await expectUnknownToken(await whoami(hs, phone.access_token), false);
      expect(await hs.homeserver.context.storage.devices.getDevice(alice, phone.device_id)).to.equal(null);
      expect((await whoami(hs, laptop.access_token)).status).to.equal(200);
      const again = await postJson(hs, '/_matrix/client/v3/logout', {}, phone.access_token);
      await expectUnknownToken(again, false);
    });

    it('POST /logout/all ends every token of the user and deletes every device', async () => {
      const henry = await createUser(hs, 'henry', 'henry pass');
      const sessions = [
        await login(hs, 'henry', 'henry pass'),
        await login(hs, 'henry', 'henry pass', { refresh_token: true }),
        await login(hs, 'henry', 'henry pass'),
      ];
      const bystander = await login(hs, 'alice', 'alice pass');
      const res = await postJson(hs, '/_matrix/client/v3/logout/all', {}, sessions[1]!.access_token);
      expect(res.status).to.equal(200);
      for (const session of sessions) await expectUnknownToken(await whoami(hs, session.access_token), false);
      expect(await hs.homeserver.context.storage.devices.listDevices(henry)).to.deep.equal([]);
      const refreshAfter = await postJson(hs, REFRESH, { refresh_token: sessions[1]!.refresh_token });
      await expectUnknownToken(refreshAfter, false);
      expect((await whoami(hs, bystander.access_token)).status).to.equal(200);
    });

    it('logout without a token is 401 M_MISSING_TOKEN', async () => {
      const res = await postJson(hs, '/_matrix/client/v3/logout', {});
      expect(res.status).to.equal(401);
      expect(await res.json()).to.include({ errcode: 'M_MISSING_TOKEN' });
    });
  });

  describe('refresh tokens (client-server "Refreshing access tokens")', () => {
    it('login with refresh_token: true gives an expiring access token and a refresh token', async () => {
      const session = await login(hs, 'alice', 'alice pass', { refresh_token: true });
      expect(session.refresh_token).to.be.a('string');
      expect(session.expires_in_ms).to.equal(hs.config.sessions.access_token_lifetime_ms);
      const { exp, iat } = decodeJwt(session.access_token);
      expect(exp! - iat!).to.be.closeTo(hs.config.sessions.access_token_lifetime_ms / 1000, 1);
    });

    it('/refresh rotates: new tokens work on the same device; a replaced token used after its successor ends the session', async () => {
      const session = await login(hs, 'alice', 'alice pass', { refresh_token: true });
      const res = await postJson(hs, REFRESH, { refresh_token: session.refresh_token });
      expect(res.status).to.equal(200);
      const rotated = (await res.json()) as {
        access_token: string;
        refresh_token: string;
        expires_in_ms: number;
      };
      expect(rotated.refresh_token).to.not.equal(session.refresh_token);
      expect(rotated.access_token).to.not.equal(session.access_token);
      expect(rotated.expires_in_ms).to.equal(hs.config.sessions.access_token_lifetime_ms);
      const me = await whoami(hs, rotated.access_token);
      expect(await me.json()).to.include({ user_id: alice, device_id: session.device_id });

      // The successor has been used: the old refresh token coming back means it was stolen.
      const replay = await postJson(hs, REFRESH, { refresh_token: session.refresh_token });
      await expectUnknownToken(replay, false);
      await expectUnknownToken(await whoami(hs, rotated.access_token), false);
      await expectUnknownToken(await postJson(hs, REFRESH, { refresh_token: rotated.refresh_token }), false);
    });

    it('a client that lost the answer may repeat its refresh until it uses the new tokens', async () => {
      const session = await login(hs, 'alice', 'alice pass', { refresh_token: true });
      const lost = await postJson(hs, REFRESH, { refresh_token: session.refresh_token });
      expect(lost.status).to.equal(200);
      const lostBody = (await lost.json()) as { access_token: string; refresh_token: string };
      const retry = await postJson(hs, REFRESH, { refresh_token: session.refresh_token });
      expect(retry.status).to.equal(200);
      const kept = (await retry.json()) as { access_token: string; refresh_token: string };
      expect(kept.refresh_token, 'the same answer again').to.equal(lostBody.refresh_token);
      expect((await whoami(hs, kept.access_token)).status).to.equal(200);
      const next = await postJson(hs, REFRESH, { refresh_token: kept.refresh_token });
      expect(next.status).to.equal(200);
    });

    it('concurrent refreshes with one token rotate it once and all get the same answer', async () => {
      const session = await login(hs, 'alice', 'alice pass', { refresh_token: true });
      const answers = await Promise.all(
        [1, 2, 3].map(() => postJson(hs, REFRESH, { refresh_token: session.refresh_token })),
      );
      expect(answers.map((res) => res.status)).to.deep.equal([200, 200, 200]);
      const bodies = (await Promise.all(answers.map((res) => res.json()))) as { refresh_token: string }[];
      expect(new Set(bodies.map((body) => body.refresh_token)).size).to.equal(1);
      const next = await postJson(hs, REFRESH, { refresh_token: bodies[0]!.refresh_token });
      expect(next.status).to.equal(200);
    });

    it('an unknown refresh token is 401 M_UNKNOWN_TOKEN without soft_logout; bad bodies are 400', async () => {
      await expectUnknownToken(await postJson(hs, REFRESH, { refresh_token: 'myr_invented' }), false);
      const missing = await postJson(hs, REFRESH, {});
      expect(missing.status).to.equal(400);
      expect(await missing.json()).to.include({ errcode: 'M_MISSING_PARAM' });
      const wrongType = await postJson(hs, REFRESH, { refresh_token: 42 });
      expect(wrongType.status).to.equal(400);
      expect(await wrongType.json()).to.include({ errcode: 'M_BAD_JSON' });
    });

    it('an expired access token of a live session is 401 M_UNKNOWN_TOKEN with soft_logout: true, and refresh revives it', async () => {
      const session = await login(hs, 'alice', 'alice pass', { refresh_token: true });
      const expired = await signWithServerKey(hs, {
        ...decodeJwt(session.access_token),
        exp: Math.floor(Date.now() / 1000) - 10,
      });
      await expectUnknownToken(await whoami(hs, expired), true);
      const res = await postJson(hs, REFRESH, { refresh_token: session.refresh_token });
      expect(res.status).to.equal(200);
      const { access_token: fresh } = (await res.json()) as { access_token: string };
      expect((await whoami(hs, fresh)).status).to.equal(200);

      // Once the session is gone, the expired token is a plain logout.
      await postJson(hs, '/_matrix/client/v3/logout', {}, fresh);
      await expectUnknownToken(await whoami(hs, expired), false);
    });
  });

  describe('admins and rate limits', () => {
    let limited: TestHomeserver;
    before(async () => {
      limited = await TestHomeserver.start({
        configure: (config) => {
          config.password_hashing.scrypt_log_n = 10;
          config.rate_limits.client = { per_second: 0.01, burst: 3 };
          config.rate_limits.login = { per_second: 100, burst: 100 };
        },
      });
      await createUser(limited, 'root', 'root pass', true);
      await createUser(limited, 'user', 'user pass');
    });
    after(() => limited.stop());

    it('a user is limited; an admin is exempt (rate_limits.exempt_admins)', async () => {
      const admin = await login(limited, 'root', 'root pass');
      const user = await login(limited, 'user', 'user pass');
      const statuses = async (token: string) => {
        const out: number[] = [];
        for (let i = 0; i < 5; i++) out.push((await whoami(limited, token)).status);
        return out;
      };
      expect(await statuses(user.access_token)).to.deep.equal([200, 200, 200, 429, 429]);
      expect(await statuses(admin.access_token)).to.deep.equal([200, 200, 200, 200, 200]);
    });
  });
});

describe('refresh token lifetime (sessions.refresh_token_lifetime_ms)', () => {
  it('an expired refresh token is 401 M_UNKNOWN_TOKEN with soft_logout false, and the session ends', async () => {
    const hs = await TestHomeserver.start({
      configure: (config) => {
        testConfig(config);
        config.sessions.refresh_token_lifetime_ms = 50;
      },
    });
    try {
      await createUser(hs, 'judy', 'judy pass');
      const session = await login(hs, 'judy', 'judy pass', { refresh_token: true });
      await new Promise((resolve) => setTimeout(resolve, 80));
      const res = await postJson(hs, REFRESH, { refresh_token: session.refresh_token });
      expect(res.status).to.equal(401);
      expect(await res.json()).to.deep.include({ errcode: 'M_UNKNOWN_TOKEN', soft_logout: false });
      await expectUnknownToken(await whoami(hs, session.access_token), false);
    } finally {
      await hs.stop();
    }
  });
});

describe('sessions survive a restart', () => {
  it('a token issued before a restart on the same data folder still works; a revoked one still fails', async () => {
    const hs = await TestHomeserver.start({ configure: testConfig });
    try {
      await createUser(hs, 'ivan', 'ivan pass');
      const kept = await login(hs, 'ivan', 'ivan pass', { refresh_token: true });
      const dropped = await login(hs, 'ivan', 'ivan pass');
      await postJson(hs, '/_matrix/client/v3/logout', {}, dropped.access_token);
      await whoami(hs, kept.access_token, { headers: { 'User-Agent': 'BeforeRestart' } });
      await hs.homeserver.stop();

      const again = await createHomeserver(hs.config, { logger: pino({ level: 'silent' }) });
      try {
        const { ports } = await again.start();
        const base = `http://127.0.0.1:${ports[0]}`;
        const me = await fetch(`${base}${WHOAMI}`, {
          headers: { Authorization: `Bearer ${kept.access_token}` },
        });
        expect(me.status).to.equal(200);
        expect(await me.json()).to.include({ user_id: '@ivan:localhost', device_id: kept.device_id });
        const gone = await fetch(`${base}${WHOAMI}`, {
          headers: { Authorization: `Bearer ${dropped.access_token}` },
        });
        expect(gone.status).to.equal(401);
        const device = await again.context.storage.devices.getDevice('@ivan:localhost', kept.device_id);
        expect(device?.lastSeenUserAgent, 'last seen flushed at shutdown').to.equal('BeforeRestart');
        const refreshed = await fetch(`${base}${REFRESH}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ refresh_token: kept.refresh_token }),
        });
        expect(refreshed.status).to.equal(200);
      } finally {
        await again.stop();
      }
    } finally {
      await hs.stop();
    }
  });
});

/** Mints a token with the server's own key (DATA_DIR/session.key), as only the server could. */
async function signWithServerKey(hs: TestHomeserver, claims: Record<string, unknown>): Promise<string> {
  const file = hs.config.sessions.secret_path || path.join(hs.config.data_dir, 'session.key');
  const secret = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secret);
}
