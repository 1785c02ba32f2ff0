import { expect } from 'chai';
import type { MyelinConfig } from '../server/config/index.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const REGISTER = '/_matrix/client/v3/register';
const LOGIN = '/_matrix/client/v3/login';
const WHOAMI = '/_matrix/client/v3/account/whoami';
const PASSWORD = '/_matrix/client/v3/account/password';
const DEACTIVATE = '/_matrix/client/v3/account/deactivate';
const AVAILABLE = '/_matrix/client/v3/register/available';

function testConfig(config: MyelinConfig): void {
  config.password_hashing.scrypt_log_n = 10;
  config.rate_limits.enabled = false;
  config.registration.mode = 'open';
  config.registration.allow_guests = true;
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

interface LoggedIn {
  user_id: string;
  access_token: string;
  device_id: string;
}

async function register(hs: TestHomeserver, username: string, password: string): Promise<LoggedIn> {
  const res = await post(hs, REGISTER, { username, password, auth: { type: 'm.login.dummy' } });
  expect(res.status).to.equal(200);
  return (await res.json()) as LoggedIn;
}

function loginRequest(hs: TestHomeserver, user: string, password: string) {
  return post(hs, LOGIN, { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password });
}

async function login(hs: TestHomeserver, user: string, password: string): Promise<LoggedIn> {
  const res = await loginRequest(hs, user, password);
  expect(res.status).to.equal(200);
  return (await res.json()) as LoggedIn;
}

async function tokenWorks(hs: TestHomeserver, token: string): Promise<boolean> {
  const res = await send(hs, 'GET', WHOAMI, undefined, token);
  if (res.status === 401) {
    expect(await json(res)).to.include({ errcode: 'M_UNKNOWN_TOKEN' });
    return false;
  }
  expect(res.status).to.equal(200);
  return true;
}

const passwordAuth = (user: string, password: string, session?: string) => ({
  type: 'm.login.password',
  identifier: { type: 'm.id.user', user },
  password,
  ...(session ? { session } : {}),
});

/** Every request in these tests must be answered without an internal error. */
function expectNoInternalErrors(hs: TestHomeserver): void {
  const crashes = hs.logs().filter((line) => line.msg === 'Unhandled error while serving a request');
  expect(crashes, JSON.stringify(crashes[0])).to.have.length(0);
}

describe('account management (client-server "Account management", "Adding Account Administrative Contact Information")', () => {
  let hs: TestHomeserver;
  before(async () => {
    hs = await TestHomeserver.start({ configure: testConfig });
  });
  after(async () => {
    expectNoInternalErrors(hs);
    await hs.stop();
  });

  describe('POST /account/password', () => {
    it('without auth: 401 offering m.login.password', async () => {
      const alice = await register(hs, 'pw-alice', 'old password');
      const res = await post(hs, PASSWORD, { new_password: 'new password' }, alice.access_token);
      expect(res.status).to.equal(401);
      const body = await json(res);
      expect(body.flows).to.deep.equal([{ stages: ['m.login.password'] }]);
      expect(body.session).to.be.a('string');
      expect(body).to.not.have.property('errcode');
    });

    it('a wrong password is 401 M_FORBIDDEN with the challenge; the same session then succeeds', async () => {
      const bob = await register(hs, 'pw-bob', 'old password');
      const first = await json(await post(hs, PASSWORD, { new_password: 'new password' }, bob.access_token));
      const session = first.session as string;
      const wrong = await post(
        hs,
        PASSWORD,
        { new_password: 'new password', auth: passwordAuth('pw-bob', 'not it', session) },
        bob.access_token,
      );
      expect(wrong.status).to.equal(401);
      const body = await json(wrong);
      expect(body).to.include({ errcode: 'M_FORBIDDEN', session });
      expect(body.flows).to.deep.equal([{ stages: ['m.login.password'] }]);
      expect(body.completed).to.deep.equal([]);

      const right = await post(
        hs,
        PASSWORD,
        { new_password: 'new password', auth: passwordAuth('@pw-bob:localhost', 'old password', session) },
        bob.access_token,
      );
      expect(right.status).to.equal(200);
      expect(await json(right)).to.deep.equal({});
      expect((await loginRequest(hs, 'pw-bob', 'old password')).status).to.equal(403);
      expect((await loginRequest(hs, 'pw-bob', 'new password')).status).to.equal(200);
    });

    it("another user's password does not authorise the change", async () => {
      await register(hs, 'pw-victim', 'victim password');
      const carol = await register(hs, 'pw-carol', 'carol password');
      const res = await post(
        hs,
        PASSWORD,
        { new_password: 'hijacked!', auth: passwordAuth('pw-victim', 'victim password') },
        carol.access_token,
      );
      expect(res.status).to.equal(401);
      expect(await json(res)).to.include({ errcode: 'M_FORBIDDEN' });
      expect((await loginRequest(hs, 'pw-victim', 'victim password')).status).to.equal(200);
      expect((await loginRequest(hs, 'pw-carol', 'carol password')).status).to.equal(200);
    });

    it('logs out every other device by default, but not the one making the change', async () => {
      const current = await register(hs, 'pw-dave', 'old password');
      const other1 = await login(hs, 'pw-dave', 'old password');
      const other2 = await login(hs, 'pw-dave', 'old password');
      const res = await post(
        hs,
        PASSWORD,
        { new_password: 'new password', auth: passwordAuth('pw-dave', 'old password') },
        current.access_token,
      );
      expect(res.status).to.equal(200);
      expect(await tokenWorks(hs, current.access_token)).to.equal(true);
      expect(await tokenWorks(hs, other1.access_token)).to.equal(false);
      expect(await tokenWorks(hs, other2.access_token)).to.equal(false);
      const devices = await hs.homeserver.context.storage.devices.listDevices('@pw-dave:localhost');
      expect(devices.map((d) => d.deviceId)).to.deep.equal([current.device_id]);
    });

    it('logout_devices: false keeps the other sessions', async () => {
      const current = await register(hs, 'pw-erin', 'old password');
      const other = await login(hs, 'pw-erin', 'old password');
      const res = await post(
        hs,
        PASSWORD,
        {
          new_password: 'new password',
          logout_devices: false,
          auth: passwordAuth('pw-erin', 'old password'),
        },
        current.access_token,
      );
      expect(res.status).to.equal(200);
      expect(await tokenWorks(hs, other.access_token)).to.equal(true);
    });

    it("a session completed by someone else's password cannot be reused with a stolen access token", async () => {
      const victim = await register(hs, 'pw-victim2', 'victim password');
      await register(hs, 'pw-mallory', 'mallory password');
      // Anonymous: the password stage authenticates mallory, but the flow is reused with the victim's token.
      const started = await json(await post(hs, PASSWORD, { new_password: 'owned password' }));
      const session = started.session as string;
      const stage = await post(hs, PASSWORD, {
        new_password: 'owned password',
        logout_devices: false,
        auth: passwordAuth('pw-mallory', 'mallory password', session),
      });
      expect(stage.status, 'completes for mallory herself').to.equal(200);
      const started2 = await json(await post(hs, PASSWORD, { new_password: 'owned password' }));
      const reuse = await post(
        hs,
        PASSWORD,
        { new_password: 'owned password', auth: { session: started2.session } },
        victim.access_token,
      );
      expect(reuse.status).to.equal(403);
      expect((await loginRequest(hs, 'pw-victim2', 'victim password')).status).to.equal(200);
    });

    it('accepts the legacy `user` field in the auth dict', async () => {
      const frank = await register(hs, 'pw-frank', 'old password');
      const res = await post(
        hs,
        PASSWORD,
        {
          new_password: 'new password',
          auth: { type: 'm.login.password', user: 'pw-frank', password: 'old password' },
        },
        frank.access_token,
      );
      expect(res.status).to.equal(200);
    });

    it('without an access token the password stage says who the user is; every session ends', async () => {
      const gina = await register(hs, 'pw-gina', 'old password');
      const res = await post(hs, PASSWORD, {
        new_password: 'new password',
        auth: passwordAuth('pw-gina', 'old password'),
      });
      expect(res.status).to.equal(200);
      expect(await tokenWorks(hs, gina.access_token)).to.equal(false);
      expect((await loginRequest(hs, 'pw-gina', 'new password')).status).to.equal(200);
    });

    it('the password policy applies (M_WEAK_PASSWORD) before authentication', async () => {
      const hank = await register(hs, 'pw-hank', 'old password');
      const res = await post(hs, PASSWORD, { new_password: 'short' }, hank.access_token);
      expect(res.status).to.equal(400);
      const body = await json(res);
      expect(body.errcode).to.equal('M_WEAK_PASSWORD');
      expect(body.error).to.match(/at least 8/);
    });

    it('a passwordless account proves itself with its access token alone (m.login.dummy)', async () => {
      const context = hs.homeserver.context;
      await context.storage.accounts.createAccount({
        userId: '@pw-jwt:localhost',
        passwordHash: null,
        createdTs: Date.now(),
      });
      const session = await context.sessions.createLoginSession({
        userId: '@pw-jwt:localhost',
        withRefreshToken: false,
      });
      const challenge = await json(
        await post(hs, PASSWORD, { new_password: 'first password' }, session.access_token),
      );
      expect(challenge.flows).to.deep.equal([{ stages: ['m.login.dummy'] }]);
      const res = await post(
        hs,
        PASSWORD,
        { new_password: 'first password', auth: { type: 'm.login.dummy', session: challenge.session } },
        session.access_token,
      );
      expect(res.status).to.equal(200);
      expect((await loginRequest(hs, 'pw-jwt', 'first password')).status).to.equal(200);
    });

    it('guests may not change a password', async () => {
      const guest = await json(await post(hs, `${REGISTER}?kind=guest`, {}));
      const res = await post(hs, PASSWORD, { new_password: 'guest password' }, guest.access_token as string);
      expect(res.status).to.equal(403);
      expect(await json(res)).to.include({ errcode: 'M_GUEST_ACCESS_FORBIDDEN' });
    });

    it('bad input: missing new_password, wrong types, non-JSON, malformed password stage', async () => {
      const ivy = await register(hs, 'pw-ivy', 'old password');
      const cases: [unknown, string][] = [
        [{}, 'M_MISSING_PARAM'],
        [{ new_password: 12 }, 'M_BAD_JSON'],
        ['not json', 'M_NOT_JSON'],
        [{ new_password: 'new password', logout_devices: 'yes' }, 'M_BAD_JSON'],
        [{ new_password: 'new password', auth: [] }, 'M_BAD_JSON'],
        [
          { new_password: 'new password', auth: { type: 'm.login.password', password: 'old password' } },
          'M_BAD_JSON',
        ],
        [
          {
            new_password: 'new password',
            auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 5 }, password: 'x' },
          },
          'M_BAD_JSON',
        ],
      ];
      for (const [body, errcode] of cases) {
        const res = await post(hs, PASSWORD, body, ivy.access_token);
        expect(res.status, JSON.stringify(body)).to.equal(400);
        expect(await json(res), JSON.stringify(body)).to.include({ errcode });
      }
      const thirdParty = await post(
        hs,
        PASSWORD,
        {
          new_password: 'new password',
          auth: {
            type: 'm.login.password',
            identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'a@b.c' },
            password: 'x',
          },
        },
        ivy.access_token,
      );
      expect(thirdParty.status, 'unknown 3PID: 403').to.equal(403);
      expect((await loginRequest(hs, 'pw-ivy', 'old password')).status).to.equal(200);
    });
  });

  describe('POST /account/deactivate', () => {
    it('without auth: 401 offering m.login.password; a wrong password keeps the session usable', async () => {
      const kim = await register(hs, 'de-kim', 'kim password');
      const first = await post(hs, DEACTIVATE, {}, kim.access_token);
      expect(first.status).to.equal(401);
      const { session, flows } = await json(first);
      expect(flows).to.deep.equal([{ stages: ['m.login.password'] }]);
      const wrong = await post(
        hs,
        DEACTIVATE,
        { auth: passwordAuth('de-kim', 'nope', session as string) },
        kim.access_token,
      );
      expect(wrong.status).to.equal(401);
      expect(await json(wrong)).to.include({ errcode: 'M_FORBIDDEN', session });
      expect(await tokenWorks(hs, kim.access_token)).to.equal(true);
      const right = await post(
        hs,
        DEACTIVATE,
        { auth: passwordAuth('de-kim', 'kim password', session as string) },
        kim.access_token,
      );
      expect(right.status).to.equal(200);
    });

    it('kills every token and device at once, records erase, runs the hooks, and login then fails with M_USER_DEACTIVATED', async () => {
      const context = hs.homeserver.context;
      const seen: { userId: string; erase: boolean }[] = [];
      context.onAccountDeactivated.push(async (event) => {
        seen.push(event);
      });
      const lee = await register(hs, 'de-lee', 'lee password');
      const other = await login(hs, 'de-lee', 'lee password');
      const res = await post(
        hs,
        DEACTIVATE,
        { erase: true, auth: passwordAuth('de-lee', 'lee password') },
        lee.access_token,
      );
      expect(res.status).to.equal(200);
      expect(await json(res)).to.deep.equal({ id_server_unbind_result: 'no-support' });

      expect(await tokenWorks(hs, lee.access_token)).to.equal(false);
      expect(await tokenWorks(hs, other.access_token)).to.equal(false);
      expect(await context.storage.devices.listDevices('@de-lee:localhost')).to.deep.equal([]);
      const account = await context.storage.accounts.getAccount('@de-lee:localhost');
      expect(account).to.include({ deactivated: true, erased: true });
      expect(seen).to.deep.include({ userId: '@de-lee:localhost', erase: true });

      const again = await loginRequest(hs, 'de-lee', 'lee password');
      expect(again.status).to.equal(403);
      expect(await json(again)).to.include({ errcode: 'M_USER_DEACTIVATED' });
      const taken = await send(hs, 'GET', `${AVAILABLE}?username=de-lee`);
      expect(await json(taken), 'a deactivated user ID is never reused').to.include({
        errcode: 'M_USER_IN_USE',
      });
    });

    it('erase defaults to false; without an access token the password stage names the account', async () => {
      const mo = await register(hs, 'de-mo', 'mo password');
      const res = await post(hs, DEACTIVATE, { auth: passwordAuth('de-mo', 'mo password') });
      expect(res.status).to.equal(200);
      expect(await tokenWorks(hs, mo.access_token)).to.equal(false);
      const account = await hs.homeserver.context.storage.accounts.getAccount('@de-mo:localhost');
      expect(account).to.include({ deactivated: true, erased: false });
      const twice = await post(hs, DEACTIVATE, { auth: passwordAuth('de-mo', 'mo password') });
      expect(twice.status, 'a deactivated account cannot authenticate').to.equal(401);
      expect(await json(twice)).to.include({ errcode: 'M_FORBIDDEN' });
    });

    it('a session started for a password change cannot authorise a deactivation', async () => {
      const ned = await register(hs, 'de-ned', 'ned password');
      const started = await json(
        await post(hs, PASSWORD, { new_password: 'new password' }, ned.access_token),
      );
      const res = await post(
        hs,
        DEACTIVATE,
        { auth: passwordAuth('de-ned', 'ned password', started.session as string) },
        ned.access_token,
      );
      expect(res.status).to.equal(403);
      expect(await tokenWorks(hs, ned.access_token)).to.equal(true);
    });

    it('bad input never deactivates and never crashes', async () => {
      const oz = await register(hs, 'de-oz', 'oz password');
      for (const body of [
        '{',
        '[]',
        JSON.stringify({ erase: 'yes' }),
        JSON.stringify({ auth: 'password' }),
      ]) {
        const res = await post(hs, DEACTIVATE, body, oz.access_token);
        expect(res.status, body).to.equal(400);
      }
      expect(await tokenWorks(hs, oz.access_token)).to.equal(true);
    });
  });

  describe('third-party identifiers', () => {
    let token: string;
    before(async () => {
      token = (await register(hs, 'tp-pat', 'pat password')).access_token;
    });

    it('GET /account/3pid is an empty list', async () => {
      const res = await send(hs, 'GET', '/_matrix/client/v3/account/3pid', undefined, token);
      expect(res.status).to.equal(200);
      expect(await json(res)).to.deep.equal({ threepids: [] });
    });

    it("adding and binding are refused with the spec's errors, not 404", async () => {
      const creds = {
        client_secret: 'secret',
        sid: 'sid',
        id_server: 'id.example.org',
        id_access_token: 'tok',
      };
      const cases: [string, unknown, number, string][] = [
        ['/_matrix/client/v3/account/3pid', { three_pid_creds: creds }, 403, 'M_THREEPID_AUTH_FAILED'],
        [
          '/_matrix/client/v3/account/3pid/add',
          { client_secret: 'secret', sid: 'sid' },
          400,
          'M_THREEPID_AUTH_FAILED',
        ],
        ['/_matrix/client/v3/account/3pid/bind', creds, 400, 'M_SERVER_NOT_TRUSTED'],
      ];
      for (const [url, body, status, errcode] of cases) {
        const res = await post(hs, url, body, token);
        expect(res.status, url).to.equal(status);
        expect(await json(res), url).to.include({ errcode });
      }
    });

    it('deleting and unbinding answer no-support', async () => {
      for (const url of [
        '/_matrix/client/v3/account/3pid/delete',
        '/_matrix/client/v3/account/3pid/unbind',
      ]) {
        const res = await post(hs, url, { medium: 'email', address: 'pat@example.org' }, token);
        expect(res.status, url).to.equal(200);
        expect(await json(res)).to.deep.equal({ id_server_unbind_result: 'no-support' });
        const bad = await post(hs, url, { medium: 'carrier-pigeon', address: 'x' }, token);
        expect(bad.status).to.equal(400);
        expect(await json(bad)).to.include({ errcode: 'M_BAD_JSON' });
      }
    });

    it('need an access token', async () => {
      const res = await send(hs, 'GET', '/_matrix/client/v3/account/3pid');
      expect(res.status).to.equal(401);
      expect(await json(res)).to.include({ errcode: 'M_MISSING_TOKEN' });
    });
  });
});
