import { createHmac } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import type { MyelinConfig } from '../server/config/index.js';
import { createHomeserver } from '../server/homeserver.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const REGISTER = '/_matrix/client/v3/register';
const AVAILABLE = '/_matrix/client/v3/register/available';
const VALIDITY = '/_matrix/client/v1/register/m.login.registration_token/validity';
const LOGIN = '/_matrix/client/v3/login';
const WHOAMI = '/_matrix/client/v3/account/whoami';
const ADMIN_REGISTER = '/_synapse/admin/v1/register';
const ADMIN_TOKENS = '/_synapse/admin/v1/registration_tokens';

/** Fast hashing, open registration, no rate limits unless a test asks otherwise. */
function testConfig(adjust: (config: MyelinConfig) => void = () => {}) {
  return (config: MyelinConfig) => {
    config.password_hashing.scrypt_log_n = 10;
    config.rate_limits.enabled = false;
    config.registration.mode = 'open';
    adjust(config);
  };
}

function send(hs: TestHomeserver, method: string, pathAndQuery: string, body?: unknown, token?: string) {
  return hs.fetch(pathAndQuery, {
    method,
    headers: {
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
}

const post = (hs: TestHomeserver, pathAndQuery: string, body: unknown, token?: string) =>
  send(hs, 'POST', pathAndQuery, body, token);

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

/** Starts a registration flow and returns the UIA session ID of the 401. */
async function startFlow(hs: TestHomeserver, body: object = {}): Promise<string> {
  const res = await post(hs, REGISTER, body);
  expect(res.status).to.equal(401);
  const challenge = await json(res);
  expect(challenge.session).to.be.a('string');
  return challenge.session as string;
}

/** A complete open registration (dummy stage); resolves to the success body. */
async function registerUser(
  hs: TestHomeserver,
  username: string,
  password = 'correct horse',
  extra: object = {},
) {
  const session = await startFlow(hs, { username, password, ...extra });
  const res = await post(hs, REGISTER, {
    username,
    password,
    ...extra,
    auth: { type: 'm.login.dummy', session },
  });
  expect(res.status, JSON.stringify(await res.clone().json())).to.equal(200);
  return json(res);
}

async function loginStatus(hs: TestHomeserver, user: string, password: string): Promise<Response> {
  return post(hs, LOGIN, { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password });
}

/** Every request must be answered without an internal error. */
function expectNoInternalErrors(hs: TestHomeserver): void {
  const crashes = hs.logs().filter((line) => line.msg === 'Unhandled error while serving a request');
  expect(crashes, JSON.stringify(crashes[0])).to.have.length(0);
}

async function createToken(
  hs: TestHomeserver,
  token: string,
  usesAllowed: number | null,
  expiryTs: number | null,
) {
  await hs.homeserver.context.storage.registrationTokens.createRegistrationToken({
    token,
    usesAllowed,
    expiryTs,
  });
}

describe('registration (client-server "Account registration", registration.yaml)', () => {
  describe('open registration', () => {
    let hs: TestHomeserver;
    before(async () => {
      hs = await TestHomeserver.start({ configure: testConfig() });
    });
    after(async () => {
      expectNoInternalErrors(hs);
      await hs.stop();
    });

    it('without auth is a 401 carrying the flows, params and a session, and no errcode', async () => {
      const res = await post(hs, REGISTER, { username: 'nobody', password: 'correct horse' });
      expect(res.status).to.equal(401);
      const body = await json(res);
      expect(body.flows).to.deep.equal([
        { stages: ['m.login.dummy'] },
        { stages: ['m.login.registration_token'] },
      ]);
      expect(body.params).to.deep.equal({});
      expect(body.session).to.be.a('string').with.length.greaterThan(10);
      expect(body).to.not.have.property('errcode');
      expect(body).to.not.have.property('completed');
      expect(await hs.homeserver.context.storage.accounts.getAccount('@nobody:localhost')).to.equal(null);
    });

    it('the dummy stage completes the flow: the account exists and its access token works', async () => {
      const body = await registerUser(hs, 'alice');
      expect(body.user_id).to.equal('@alice:localhost');
      expect(body.access_token).to.be.a('string');
      expect(body.device_id).to.be.a('string');
      const me = await send(hs, 'GET', WHOAMI, undefined, body.access_token as string);
      expect(me.status).to.equal(200);
      expect(await json(me)).to.include({ user_id: '@alice:localhost', device_id: body.device_id });
      expect((await loginStatus(hs, 'alice', 'correct horse')).status).to.equal(200);
    });

    it('a dummy stage without a session starts and completes one at once', async () => {
      const res = await post(hs, REGISTER, {
        username: 'nosession',
        password: 'correct horse',
        auth: { type: 'm.login.dummy' },
      });
      expect(res.status).to.equal(200);
      expect(await json(res)).to.include({ user_id: '@nosession:localhost' });
    });

    it('a spent session cannot register a second account', async () => {
      const session = await startFlow(hs, { username: 'spent1', password: 'correct horse' });
      const first = await post(hs, REGISTER, {
        username: 'spent1',
        password: 'correct horse',
        auth: { type: 'm.login.dummy', session },
      });
      expect(first.status).to.equal(200);
      const again = await post(hs, REGISTER, {
        username: 'spent2',
        password: 'correct horse',
        auth: { type: 'm.login.dummy', session },
      });
      expect(again.status).to.equal(400);
      expect(await json(again)).to.include({ errcode: 'M_UNKNOWN' });
      expect(await hs.homeserver.context.storage.accounts.getAccount('@spent2:localhost')).to.equal(null);
    });

    it('an unknown session is 400 M_UNKNOWN', async () => {
      const res = await post(hs, REGISTER, {
        username: 'ghost',
        password: 'correct horse',
        auth: { type: 'm.login.dummy', session: 'no-such-session' },
      });
      expect(res.status).to.equal(400);
      expect(await json(res)).to.include({ errcode: 'M_UNKNOWN' });
    });

    it('a session started on another endpoint is refused with 403', async () => {
      const other = await post(hs, '/_matrix/client/v3/account/deactivate', {});
      expect(other.status).to.equal(401);
      const { session } = await json(other);
      const res = await post(hs, REGISTER, {
        username: 'hijack',
        password: 'correct horse',
        auth: { type: 'm.login.dummy', session },
      });
      expect(res.status).to.equal(403);
      expect(await json(res)).to.include({ errcode: 'M_FORBIDDEN' });
    });

    it('a stage that is not offered is a 401 with the challenge and an errcode', async () => {
      const session = await startFlow(hs, { username: 'pwstage', password: 'correct horse' });
      const res = await post(hs, REGISTER, {
        username: 'pwstage',
        password: 'correct horse',
        auth: {
          type: 'm.login.password',
          session,
          identifier: { type: 'm.id.user', user: 'alice' },
          password: 'x',
        },
      });
      expect(res.status).to.equal(401);
      const body = await json(res);
      expect(body).to.include({ errcode: 'M_UNRECOGNIZED', session });
      expect(body.flows).to.have.length(2);
      expect(body.completed).to.deep.equal([]);
    });

    it('the password of the first request is kept with the session (hashed) so later stages need not resend it', async () => {
      const session = await startFlow(hs, { username: 'keeper', password: 'kept password' });
      const stored = await hs.homeserver.context.storage.uiaSessions.getUiaSession(session);
      expect(JSON.stringify(stored)).to.not.include('kept password');
      const res = await post(hs, REGISTER, { auth: { type: 'm.login.dummy', session } });
      expect(res.status).to.equal(200);
      expect(await json(res)).to.include({ user_id: '@keeper:localhost' });
      expect((await loginStatus(hs, 'keeper', 'kept password')).status).to.equal(200);
    });

    it('a user account needs a password: 400 M_MISSING_PARAM after authentication', async () => {
      const res = await post(hs, REGISTER, { username: 'nopass', auth: { type: 'm.login.dummy' } });
      expect(res.status).to.equal(400);
      expect(await json(res)).to.include({ errcode: 'M_MISSING_PARAM' });
    });

    it('inhibit_login creates the account without a device or token', async () => {
      const body = await registerUser(hs, 'quiet', 'correct horse', { inhibit_login: true });
      expect(body).to.deep.equal({ user_id: '@quiet:localhost' });
      expect(await hs.homeserver.context.storage.devices.listDevices('@quiet:localhost')).to.deep.equal([]);
      expect((await loginStatus(hs, 'quiet', 'correct horse')).status).to.equal(200);
    });

    it('refresh_token: true gives a refresh token and an expiring access token', async () => {
      const body = await registerUser(hs, 'fresh', 'correct horse', { refresh_token: true });
      expect(body.refresh_token).to.be.a('string');
      expect(body.expires_in_ms).to.be.a('number').greaterThan(0);
      const plain = await registerUser(hs, 'stale', 'correct horse');
      expect(plain).to.not.have.property('refresh_token');
    });

    it('device_id and initial_device_display_name name the new device', async () => {
      const body = await registerUser(hs, 'devicer', 'correct horse', {
        device_id: 'MYPHONE',
        initial_device_display_name: 'My phone',
      });
      expect(body.device_id).to.equal('MYPHONE');
      const device = await hs.homeserver.context.storage.devices.getDevice('@devicer:localhost', 'MYPHONE');
      expect(device?.displayName).to.equal('My phone');
    });

    describe('usernames', () => {
      const refused = async (username: unknown, errcode: string) => {
        const res = await post(hs, REGISTER, {
          username,
          password: 'correct horse',
          auth: { type: 'm.login.dummy' },
        });
        expect(res.status, JSON.stringify(username).slice(0, 40)).to.equal(400);
        expect(await json(res)).to.include({ errcode });
      };

      it('upper case is mapped to lower case (as Synapse does)', async () => {
        const body = await registerUser(hs, 'MixedCase');
        expect(body.user_id).to.equal('@mixedcase:localhost');
        expect((await loginStatus(hs, 'MIXEDCASE', 'correct horse')).status).to.equal(200);
      });

      it('characters outside the grammar are M_INVALID_USERNAME, before any authentication', async () => {
        for (const username of ['al ice', 'al:ice', 'ålice', 'a@b', 'tab\t', 'x#y', '\u0000']) {
          await refused(username, 'M_INVALID_USERNAME');
        }
        const res = await post(hs, REGISTER, { username: 'bad name', password: 'correct horse' });
        expect(res.status, 'checked before the 401').to.equal(400);
      });

      it('a 10 KB username is M_INVALID_USERNAME, and so is a user ID over 255 bytes', async () => {
        await refused('a'.repeat(10_240), 'M_INVALID_USERNAME');
        await refused('b'.repeat(250), 'M_INVALID_USERNAME');
      });

      it("numeric usernames (kept for guests) and a leading '_' are M_INVALID_USERNAME", async () => {
        await refused('12345', 'M_INVALID_USERNAME');
        await refused('_bridge', 'M_INVALID_USERNAME');
      });

      it('reserved localparts are M_EXCLUSIVE, in any case', async () => {
        await refused('admin', 'M_EXCLUSIVE');
        await refused('PostMaster', 'M_EXCLUSIVE');
      });

      it('a taken user ID is M_USER_IN_USE, whatever the case', async () => {
        await registerUser(hs, 'taken');
        await refused('taken', 'M_USER_IN_USE');
        await refused('TAKEN', 'M_USER_IN_USE');
      });

      it('an empty or absent username gets a generated user ID', async () => {
        const empty = await registerUser(hs, '');
        const absent = await post(hs, REGISTER, {
          password: 'correct horse',
          auth: { type: 'm.login.dummy' },
        });
        expect(absent.status).to.equal(200);
        const ids = [empty.user_id, (await json(absent)).user_id] as string[];
        for (const id of ids) expect(id).to.match(/^@[a-z][a-z0-9]{11}:localhost$/);
        expect(ids[0]).to.not.equal(ids[1]);
      });

      it('a username that is not a string is M_BAD_JSON', async () => {
        await refused(42, 'M_BAD_JSON');
        await refused({ name: 'x' }, 'M_BAD_JSON');
      });
    });

    describe('GET /register/available', () => {
      const available = (username: string) =>
        send(hs, 'GET', `${AVAILABLE}?username=${encodeURIComponent(username)}`);

      it('a free, valid username is available', async () => {
        const res = await available('free_name');
        expect(res.status).to.equal(200);
        expect(await json(res)).to.deep.equal({ available: true });
      });

      it('taken, invalid, reserved and missing usernames give their errcodes', async () => {
        await registerUser(hs, 'occupied');
        for (const [username, errcode] of [
          ['occupied', 'M_USER_IN_USE'],
          ['Occupied', 'M_USER_IN_USE'],
          ['no way', 'M_INVALID_USERNAME'],
          ['x'.repeat(10_000), 'M_INVALID_USERNAME'],
          ['root', 'M_EXCLUSIVE'],
        ] as const) {
          const res = await available(username);
          expect(res.status, username.slice(0, 20)).to.equal(400);
          expect(await json(res)).to.include({ errcode });
        }
        const missing = await send(hs, 'GET', AVAILABLE);
        expect(missing.status).to.equal(400);
        expect(await json(missing)).to.include({ errcode: 'M_MISSING_PARAM' });
      });
    });

    describe('bad input is refused with an errcode, never a 500', () => {
      it('non-JSON, non-object, wrong-typed auth and an unknown kind', async () => {
        const cases: [unknown, string, string?][] = [
          ['{"username":', 'M_NOT_JSON'],
          ['[1,2]', 'M_BAD_JSON'],
          [{ auth: 'dummy' }, 'M_BAD_JSON'],
          [{ auth: { type: 'm.login.dummy', session: 12 } }, 'M_BAD_JSON'],
          [{ auth: { type: 7 } }, 'M_BAD_JSON'],
          [{ password: 12 }, 'M_BAD_JSON'],
          [{ inhibit_login: 'yes' }, 'M_BAD_JSON'],
          [{ auth: { type: 'm.login.registration_token', token: 5 } }, 'M_INVALID_PARAM'],
          [{}, 'M_INVALID_PARAM', '?kind=robot'],
        ];
        for (const [body, errcode, query] of cases) {
          const res = await post(hs, `${REGISTER}${query ?? ''}`, body);
          expect(res.status, JSON.stringify(body)).to.equal(400);
          expect(await json(res), JSON.stringify(body)).to.include({ errcode });
        }
      });
    });

    it('the email and phone validation requests are refused with 403 M_THREEPID_DENIED, not 404', async () => {
      const email = { client_secret: 'secret', email: 'a@example.org', send_attempt: 1 };
      const msisdn = { client_secret: 'secret', country: 'GB', phone_number: '07700900001', send_attempt: 1 };
      for (const prefix of [
        '/_matrix/client/v3/register',
        '/_matrix/client/v3/account/password',
        '/_matrix/client/v3/account/3pid',
      ]) {
        for (const [medium, body] of [
          ['email', email],
          ['msisdn', msisdn],
        ] as const) {
          const res = await post(hs, `${prefix}/${medium}/requestToken`, body);
          expect(res.status, `${prefix}/${medium}`).to.equal(403);
          const error = await json(res);
          expect(error.errcode).to.equal('M_THREEPID_DENIED');
          expect(error.error).to.match(medium === 'email' ? /email/ : /SMS/);
        }
      }
    });

    it('the registration token flow also works while registration is open', async () => {
      await createToken(hs, 'openToken', 1, null);
      const session = await startFlow(hs);
      const res = await post(hs, REGISTER, {
        username: 'tokened',
        password: 'correct horse',
        auth: { type: 'm.login.registration_token', token: 'openToken', session },
      });
      expect(res.status).to.equal(200);
      const token = await hs.homeserver.context.storage.registrationTokens.getRegistrationToken('openToken');
      expect(token).to.include({ pending: 0, completed: 1 });
    });
  });

  describe('token-only registration (m.login.registration_token)', () => {
    let hs: TestHomeserver;
    before(async () => {
      hs = await TestHomeserver.start({ configure: testConfig((c) => (c.registration.mode = 'token')) });
    });
    after(async () => {
      expectNoInternalErrors(hs);
      await hs.stop();
    });

    const withToken = (session: string, token: string, username: string) =>
      post(hs, REGISTER, {
        username,
        password: 'correct horse',
        auth: { type: 'm.login.registration_token', token, session },
      });

    it('offers only the token flow; the dummy stage is refused', async () => {
      const res = await post(hs, REGISTER, { username: 'dummyuser', password: 'correct horse' });
      expect(res.status).to.equal(401);
      const body = await json(res);
      expect(body.flows).to.deep.equal([{ stages: ['m.login.registration_token'] }]);
      const dummy = await post(hs, REGISTER, {
        username: 'dummyuser',
        password: 'correct horse',
        auth: { type: 'm.login.dummy', session: body.session },
      });
      expect(dummy.status).to.equal(401);
      expect(await json(dummy)).to.include({ errcode: 'M_UNRECOGNIZED' });
    });

    it('a valid token registers and its use is counted as completed', async () => {
      await createToken(hs, 'valid-token', 3, Date.now() + 3_600_000);
      const res = await withToken(await startFlow(hs), 'valid-token', 'tokenuser');
      expect(res.status).to.equal(200);
      expect(await json(res)).to.include({ user_id: '@tokenuser:localhost' });
      const token =
        await hs.homeserver.context.storage.registrationTokens.getRegistrationToken('valid-token');
      expect(token).to.include({ pending: 0, completed: 1 });
    });

    it('expired, exhausted and unknown tokens are a 401 M_UNAUTHORIZED and the session stays usable', async () => {
      await createToken(hs, 'expired', null, Date.now() - 1000);
      await createToken(hs, 'exhausted', 1, null);
      await createToken(hs, 'spare', 1, null);
      expect((await withToken(await startFlow(hs), 'exhausted', 'first')).status).to.equal(200);
      const session = await startFlow(hs);
      for (const token of ['expired', 'exhausted', 'unknown-token', 'not a valid token!', 'x'.repeat(65)]) {
        const res = await withToken(session, token, 'second');
        expect(res.status, token).to.equal(401);
        const body = await json(res);
        expect(body, token).to.include({ errcode: 'M_UNAUTHORIZED', session });
        expect(body.flows).to.deep.equal([{ stages: ['m.login.registration_token'] }]);
      }
      const retry = await withToken(session, 'spare', 'second');
      expect(retry.status).to.equal(200);
    });

    it('concurrent registrations with a one-use token: exactly one succeeds', async () => {
      await createToken(hs, 'only-once', 1, null);
      const sessions = await Promise.all(Array.from({ length: 8 }, () => startFlow(hs)));
      const results = await Promise.all(
        sessions.map((session, i) => withToken(session, 'only-once', `racer${i}`)),
      );
      const statuses = results.map((res) => res.status).sort();
      expect(statuses).to.deep.equal([200, 401, 401, 401, 401, 401, 401, 401]);
      const token = await hs.homeserver.context.storage.registrationTokens.getRegistrationToken('only-once');
      expect(token).to.include({ pending: 0, completed: 1 });
    });

    it("an abandoned flow's pending token use is released when its session expires", async () => {
      await createToken(hs, 'abandoned', 1, null);
      // The token stage completes, then the registration fails (no password): the use stays pending.
      const session = await startFlow(hs, { username: 'walkaway' });
      const res = await post(hs, REGISTER, {
        username: 'walkaway',
        auth: { type: 'm.login.registration_token', token: 'abandoned', session },
      });
      expect(res.status).to.equal(400);
      const store = hs.homeserver.context.storage.registrationTokens;
      expect(await store.getRegistrationToken('abandoned')).to.include({ pending: 1, completed: 0 });
      expect((await send(hs, 'GET', `${VALIDITY}?token=abandoned`).then(json)).valid).to.equal(false);

      const uia = hs.homeserver.context.userInteractiveAuth as { now: () => number };
      const realNow = uia.now;
      uia.now = () => realNow() + 31 * 60 * 1000;
      try {
        const late = await post(hs, REGISTER, {
          username: 'walkaway',
          password: 'correct horse',
          auth: { type: 'm.login.registration_token', token: 'abandoned', session },
        });
        expect(late.status, 'the expired session is gone').to.equal(400);
        expect(await store.getRegistrationToken('abandoned')).to.include({ pending: 0, completed: 0 });
      } finally {
        uia.now = realNow;
      }
      const fresh = await withToken(await startFlow(hs), 'abandoned', 'cameback');
      expect(fresh.status).to.equal(200);
    });

    describe('GET /register/m.login.registration_token/validity', () => {
      it('is true for a usable token and false for expired, exhausted, unknown and oversized ones', async () => {
        await createToken(hs, 'v-ok', 2, null);
        await createToken(hs, 'v-expired', 2, Date.now() - 1);
        await createToken(hs, 'v-used', 0, null);
        for (const [token, valid] of [
          ['v-ok', true],
          ['v-expired', false],
          ['v-used', false],
          ['v-unknown', false],
          ['y'.repeat(5000), false],
        ] as const) {
          const res = await send(hs, 'GET', `${VALIDITY}?token=${token}`);
          expect(res.status).to.equal(200);
          expect(await json(res), token.slice(0, 20)).to.deep.equal({ valid });
        }
        const missing = await send(hs, 'GET', VALIDITY);
        expect(missing.status).to.equal(400);
        expect(await json(missing)).to.include({ errcode: 'M_MISSING_PARAM' });
      });

      it('is rate limited', async () => {
        const limited = await TestHomeserver.start({
          configure: testConfig((c) => {
            c.rate_limits.enabled = true;
            c.rate_limits.registration = { per_second: 0.01, burst: 2 };
          }),
        });
        try {
          const statuses: number[] = [];
          for (let i = 0; i < 4; i++)
            statuses.push((await send(limited, 'GET', `${VALIDITY}?token=guess${i}`)).status);
          expect(statuses).to.deep.equal([200, 200, 429, 429]);
        } finally {
          await limited.stop();
        }
      });
    });
  });

  describe('closed registration', () => {
    let hs: TestHomeserver;
    before(async () => {
      hs = await TestHomeserver.start({ configure: testConfig((c) => (c.registration.mode = 'closed')) });
    });
    after(async () => {
      expectNoInternalErrors(hs);
      await hs.stop();
    });

    it('/register, /register/available and token validity are 403 M_FORBIDDEN', async () => {
      const res = await post(hs, REGISTER, {
        username: 'x',
        password: 'correct horse',
        auth: { type: 'm.login.dummy' },
      });
      expect(res.status).to.equal(403);
      expect(await json(res)).to.deep.equal({ errcode: 'M_FORBIDDEN', error: 'Registration is disabled' });
      for (const url of [`${AVAILABLE}?username=x`, `${VALIDITY}?token=abc`]) {
        const refused = await send(hs, 'GET', url);
        expect(refused.status, url).to.equal(403);
        expect(await json(refused)).to.include({ errcode: 'M_FORBIDDEN' });
      }
    });

    it('guests are refused unless allowed', async () => {
      const res = await post(hs, `${REGISTER}?kind=guest`, {});
      expect(res.status).to.equal(403);
      expect(await json(res)).to.include({ errcode: 'M_GUEST_ACCESS_FORBIDDEN' });
    });
  });

  describe('guests', () => {
    let hs: TestHomeserver;
    before(async () => {
      hs = await TestHomeserver.start({ configure: testConfig((c) => (c.registration.allow_guests = true)) });
    });
    after(async () => {
      expectNoInternalErrors(hs);
      await hs.stop();
    });

    it('kind=guest registers without authentication; the account has no password and is a guest', async () => {
      const res = await post(hs, `${REGISTER}?kind=guest`, {
        username: 'ignored',
        initial_device_display_name: 'Guest browser',
      });
      expect(res.status).to.equal(200);
      const body = await json(res);
      expect(body.user_id).to.match(/^@[0-9]+:localhost$/);
      const me = await json(await send(hs, 'GET', WHOAMI, undefined, body.access_token as string));
      expect(me).to.include({ user_id: body.user_id, is_guest: true });
      const account = await hs.homeserver.context.storage.accounts.getAccount(body.user_id as string);
      expect(account).to.include({ isGuest: true, passwordHash: null });
      const device = await hs.homeserver.context.storage.devices.getDevice(
        body.user_id as string,
        body.device_id as string,
      );
      expect(device?.displayName).to.equal('Guest browser');
    });

    it('an empty body is fine for a guest', async () => {
      const res = await hs.fetch(`${REGISTER}?kind=guest`, { method: 'POST' });
      expect(res.status).to.equal(200);
    });
  });

  describe('password policy', () => {
    let hs: TestHomeserver;
    before(async () => {
      hs = await TestHomeserver.start({
        configure: testConfig((c) => {
          c.registration.password_min_length = 10;
          c.registration.password_require_digit = true;
          c.registration.password_require_uppercase = true;
          c.registration.password_require_symbol = true;
        }),
      });
    });
    after(async () => {
      expectNoInternalErrors(hs);
      await hs.stop();
    });

    it('each rule refuses with M_WEAK_PASSWORD naming it, before authentication', async () => {
      for (const [password, rule] of [
        ['Short1!', /at least 10 characters/],
        ['Longenough!pass', /digit/],
        ['longenough1!pass', /uppercase/],
        ['Longenough1pass', /symbol/],
      ] as const) {
        const res = await post(hs, REGISTER, { username: 'weakling', password });
        expect(res.status, password).to.equal(400);
        const body = await json(res);
        expect(body.errcode).to.equal('M_WEAK_PASSWORD');
        expect(body.error).to.match(rule);
      }
      const tooLong = await post(hs, REGISTER, { username: 'weakling', password: `A1!${'x'.repeat(600)}` });
      expect(tooLong.status).to.equal(400);
      expect(await json(tooLong)).to.include({ errcode: 'M_INVALID_PARAM' });
      await registerUser(hs, 'strong', 'Strong-enough-1');
    });
  });

  describe('shared-secret registration (/_synapse/admin/v1/register)', () => {
    let hs: TestHomeserver;
    let secret: string;
    before(async () => {
      hs = await TestHomeserver.start({ configure: testConfig((c) => (c.registration.mode = 'closed')) });
      secret = (await readFile(path.join(hs.dataDir, 'registration_shared_secret'), 'utf8')).trim();
    });
    after(async () => {
      expectNoInternalErrors(hs);
      await hs.stop();
    });

    const nonce = async () => {
      const res = await send(hs, 'GET', ADMIN_REGISTER);
      expect(res.status).to.equal(200);
      return (await json(res)).nonce as string;
    };
    const mac = (
      fields: { nonce: string; username: string; password: string; admin: boolean },
      key = secret,
    ) =>
      createHmac('sha1', key)
        .update(
          `${fields.nonce}\0${fields.username}\0${fields.password}\0${fields.admin ? 'admin' : 'notadmin'}`,
        )
        .digest('hex');

    it('the secret file is generated with mode 0600', async () => {
      const info = await stat(path.join(hs.dataDir, 'registration_shared_secret'));
      expect(info.mode & 0o777).to.equal(0o600);
      expect(secret.length).to.be.greaterThan(30);
    });

    it("computes the MAC the way Synapse's documentation does", async () => {
      const { sharedSecretMac } = await import('../server/accounts/shared-secret-registration.js');
      // From admin_api/register_api.md's example values, computed with Python's hmac.
      expect(
        sharedSecretMac('shared_secret', {
          nonce: 'thisisanonce',
          username: 'pepper_roni',
          password: 'pizza',
          admin: true,
        }),
      ).to.equal('48715842ad67d5dc9a9ee938a3bda4fcfae8d7c7');
    });

    it('a correct MAC creates an admin account even while registration is closed, and logs it in', async () => {
      const fields = { nonce: await nonce(), username: 'Operator', password: 'op pass', admin: true };
      const res = await post(hs, ADMIN_REGISTER, {
        ...fields,
        displayname: 'The Operator',
        mac: mac(fields),
      });
      expect(res.status).to.equal(200);
      const body = await json(res);
      expect(body).to.include({ user_id: '@operator:localhost', home_server: 'localhost' });
      const account = await hs.homeserver.context.storage.accounts.getAccount('@operator:localhost');
      expect(account).to.include({ isAdmin: true, displayName: 'The Operator' });
      expect((await send(hs, 'GET', WHOAMI, undefined, body.access_token as string)).status).to.equal(200);
    });

    it('a wrong MAC is 403 and a nonce works only once', async () => {
      const fields = { nonce: await nonce(), username: 'mallory', password: 'pw', admin: true };
      const wrongKey = await post(hs, ADMIN_REGISTER, { ...fields, mac: mac(fields, 'not the secret') });
      expect(wrongKey.status).to.equal(403);
      const tampered = { nonce: await nonce(), username: 'mallory', password: 'pw', admin: false };
      const flipped = await post(hs, ADMIN_REGISTER, { ...tampered, admin: true, mac: mac(tampered) });
      expect(flipped.status, 'the admin flag is covered by the MAC').to.equal(403);

      const good = { nonce: await nonce(), username: 'bob', password: 'pw', admin: false };
      expect((await post(hs, ADMIN_REGISTER, { ...good, mac: mac(good) })).status).to.equal(200);
      const again = { ...good, username: 'bob2' };
      const reused = await post(hs, ADMIN_REGISTER, { ...again, mac: mac(again) });
      expect(reused.status).to.equal(400);
      expect(await hs.homeserver.context.storage.accounts.getAccount('@mallory:localhost')).to.equal(null);
      expect(await hs.homeserver.context.storage.accounts.getAccount('@bob2:localhost')).to.equal(null);
      const bob = await hs.homeserver.context.storage.accounts.getAccount('@bob:localhost');
      expect(bob?.isAdmin).to.equal(false);
    });

    it('reserved names are allowed; taken and invalid names are refused; missing fields are 400', async () => {
      const reserved = { nonce: await nonce(), username: 'admin', password: 'pw', admin: true };
      expect((await post(hs, ADMIN_REGISTER, { ...reserved, mac: mac(reserved) })).status).to.equal(200);
      const taken = { nonce: await nonce(), username: 'admin', password: 'pw', admin: true };
      const res = await post(hs, ADMIN_REGISTER, { ...taken, mac: mac(taken) });
      expect(await json(res)).to.include({ errcode: 'M_USER_IN_USE' });
      const invalid = { nonce: await nonce(), username: 'no spaces', password: 'pw', admin: false };
      const bad = await post(hs, ADMIN_REGISTER, { ...invalid, mac: mac(invalid) });
      expect(await json(bad)).to.include({ errcode: 'M_INVALID_USERNAME' });
      const missing = await post(hs, ADMIN_REGISTER, { nonce: await nonce(), username: 'x' });
      expect(missing.status).to.equal(400);
      expect(await json(missing)).to.include({ errcode: 'M_MISSING_PARAM' });
    });
  });

  describe('registration token admin API (/_synapse/admin/v1/registration_tokens)', () => {
    let hs: TestHomeserver;
    let adminToken: string;
    let userToken: string;
    before(async () => {
      hs = await TestHomeserver.start({ configure: testConfig() });
      const admin = await registerUser(hs, 'boss', 'boss password');
      await hs.homeserver.context.storage.accounts.setAdmin('@boss:localhost', true);
      hs.homeserver.context.sessions.accountChanged('@boss:localhost');
      adminToken = admin.access_token as string;
      userToken = (await registerUser(hs, 'pleb')).access_token as string;
    });
    after(async () => {
      expectNoInternalErrors(hs);
      await hs.stop();
    });

    it('creates tokens: random by default, or as asked', async () => {
      const random = await post(hs, `${ADMIN_TOKENS}/new`, {}, adminToken);
      expect(random.status).to.equal(200);
      const body = await json(random);
      expect(body.token).to.match(/^[A-Za-z0-9._~-]{16}$/);
      expect(body).to.include({ uses_allowed: null, pending: 0, completed: 0, expiry_time: null });
      const short = await json(await post(hs, `${ADMIN_TOKENS}/new`, { length: 5 }, adminToken));
      expect(short.token).to.have.length(5);
      const expiry = Date.now() + 86_400_000;
      const named = await post(
        hs,
        `${ADMIN_TOKENS}/new`,
        { token: 'defg', uses_allowed: 1, expiry_time: expiry },
        adminToken,
      );
      expect(await json(named)).to.deep.equal({
        token: 'defg',
        uses_allowed: 1,
        pending: 0,
        completed: 0,
        expiry_time: expiry,
      });
    });

    it('refuses duplicates, bad tokens, negative uses and past expiry', async () => {
      await post(hs, `${ADMIN_TOKENS}/new`, { token: 'dup' }, adminToken);
      const dup = await post(hs, `${ADMIN_TOKENS}/new`, { token: 'dup' }, adminToken);
      expect(dup.status).to.equal(400);
      expect(await json(dup)).to.include({ errcode: 'M_INVALID_PARAM' });
      for (const body of [
        { token: 'has space' },
        { token: 'z'.repeat(65) },
        { uses_allowed: -1 },
        { uses_allowed: 1.5 },
        { length: 0 },
        { length: 65 },
        { expiry_time: 'tomorrow' },
      ]) {
        const res = await post(hs, `${ADMIN_TOKENS}/new`, body, adminToken);
        expect(res.status, JSON.stringify(body)).to.equal(400);
      }
      const past = await post(hs, `${ADMIN_TOKENS}/new`, { expiry_time: Date.now() - 1000 }, adminToken);
      expect(past.status).to.equal(400);
      expect(await json(past)).to.include({ errcode: 'M_INVALID_PARAM' });
    });

    it('lists (all, valid, invalid), gets, updates and deletes', async () => {
      await post(hs, `${ADMIN_TOKENS}/new`, { token: 'crud-live', uses_allowed: 5 }, adminToken);
      await post(hs, `${ADMIN_TOKENS}/new`, { token: 'crud-dead', uses_allowed: 0 }, adminToken);
      const names = async (query: string) =>
        (
          (await json(await send(hs, 'GET', `${ADMIN_TOKENS}${query}`, undefined, adminToken)))
            .registration_tokens as {
            token: string;
          }[]
        ).map((t) => t.token);
      expect(await names('')).to.include.members(['crud-live', 'crud-dead']);
      expect(await names('?valid=true'))
        .to.include('crud-live')
        .and.not.include('crud-dead');
      expect(await names('?valid=false'))
        .to.include('crud-dead')
        .and.not.include('crud-live');

      const one = await send(hs, 'GET', `${ADMIN_TOKENS}/crud-live`, undefined, adminToken);
      expect(await json(one)).to.include({ token: 'crud-live', uses_allowed: 5 });
      const expiry = Date.now() + 3_600_000;
      const updated = await send(hs, 'PUT', `${ADMIN_TOKENS}/crud-live`, { expiry_time: expiry }, adminToken);
      expect(await json(updated)).to.include({ uses_allowed: 5, expiry_time: expiry });
      const unlimited = await send(
        hs,
        'PUT',
        `${ADMIN_TOKENS}/crud-live`,
        { uses_allowed: null },
        adminToken,
      );
      expect(await json(unlimited)).to.include({ uses_allowed: null, expiry_time: expiry });

      const deleted = await send(hs, 'DELETE', `${ADMIN_TOKENS}/crud-live`, undefined, adminToken);
      expect(deleted.status).to.equal(200);
      expect(await json(deleted)).to.deep.equal({});
      for (const [method, body] of [
        ['GET', undefined],
        ['PUT', { uses_allowed: 1 }],
        ['DELETE', undefined],
      ] as const) {
        const gone = await send(hs, method, `${ADMIN_TOKENS}/crud-live`, body, adminToken);
        expect(gone.status, method).to.equal(404);
        expect(await json(gone)).to.include({ errcode: 'M_NOT_FOUND' });
      }
    });

    it('a token named "new" can still be read', async () => {
      await createToken(hs, 'new', null, null);
      const res = await send(hs, 'GET', `${ADMIN_TOKENS}/new`, undefined, adminToken);
      expect(await json(res)).to.include({ token: 'new' });
    });

    it('non-admins get 403 M_FORBIDDEN and anonymous callers 401 on every endpoint', async () => {
      await createToken(hs, 'secret-tok', null, null);
      const calls: [string, string, unknown][] = [
        ['GET', ADMIN_TOKENS, undefined],
        ['POST', `${ADMIN_TOKENS}/new`, {}],
        ['GET', `${ADMIN_TOKENS}/secret-tok`, undefined],
        ['PUT', `${ADMIN_TOKENS}/secret-tok`, { uses_allowed: 0 }],
        ['DELETE', `${ADMIN_TOKENS}/secret-tok`, undefined],
      ];
      for (const [method, url, body] of calls) {
        const res = await send(hs, method, url, body, userToken);
        expect(res.status, `${method} ${url}`).to.equal(403);
        expect(await json(res)).to.include({ errcode: 'M_FORBIDDEN' });
        const anonymous = await send(hs, method, url, body);
        expect(anonymous.status, `${method} ${url}`).to.equal(401);
      }
      const token = await hs.homeserver.context.storage.registrationTokens.getRegistrationToken('secret-tok');
      expect(token).to.include({ usesAllowed: null });
    });
  });

  describe('accounts survive a restart', () => {
    it('a registered account logs in after the server restarts on the same data folder', async () => {
      const hs = await TestHomeserver.start({ configure: testConfig() });
      try {
        await registerUser(hs, 'durable', 'durable pass');
        await hs.homeserver.stop();
        const again = await createHomeserver(hs.config, { logger: pino({ level: 'silent' }) });
        try {
          const { ports } = await again.start();
          const res = await fetch(`http://127.0.0.1:${ports[0]}${LOGIN}`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({
              type: 'm.login.password',
              identifier: { type: 'm.id.user', user: 'durable' },
              password: 'durable pass',
            }),
          });
          expect(res.status).to.equal(200);
          expect(await json(res)).to.include({ user_id: '@durable:localhost' });
          const taken = await fetch(`http://127.0.0.1:${ports[0]}${AVAILABLE}?username=durable`);
          expect(await json(taken)).to.include({ errcode: 'M_USER_IN_USE' });
        } finally {
          await again.stop();
        }
      } finally {
        await hs.stop();
      }
    });
  });
});
