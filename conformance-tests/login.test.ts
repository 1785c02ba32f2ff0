import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { exportJWK, SignJWT } from 'jose';
import type { MyelinConfig } from '../server/config/index.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const LOGIN = '/_matrix/client/v3/login';
const WHOAMI = '/_matrix/client/v3/account/whoami';

/** Fast hashing for tests; no rate limits unless a test asks. */
function testConfig(config: MyelinConfig): void {
  config.password_hashing.scrypt_log_n = 10;
  config.rate_limits.enabled = false;
}

async function createUser(
  hs: TestHomeserver,
  localpart: string,
  password: string | null,
  extra: { isAdmin?: boolean } = {},
): Promise<string> {
  const context = hs.homeserver.context;
  const userId = `@${localpart}:${hs.config.server_name}`;
  await context.storage.accounts.createAccount({
    userId,
    passwordHash: password === null ? null : await context.passwords.hash(password),
    createdTs: Date.now(),
    ...(extra.isAdmin ? { isAdmin: true } : {}),
  });
  return userId;
}

function postJson(
  hs: TestHomeserver,
  pathAndQuery: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  return hs.fetch(pathAndQuery, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function passwordLogin(hs: TestHomeserver, user: string, password: string, extra: object = {}) {
  return postJson(hs, LOGIN, {
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user },
    password,
    ...extra,
  });
}

async function whoami(hs: TestHomeserver, token: string): Promise<Response> {
  return hs.fetch(WHOAMI, { headers: { Authorization: `Bearer ${token}` } });
}

describe('login (client-server "Login", login.yaml)', () => {
  let hs: TestHomeserver;
  let alice: string;
  before(async () => {
    hs = await TestHomeserver.start({ configure: testConfig });
    alice = await createUser(hs, 'alice', 'correct horse');
  });
  after(() => hs.stop());

  it('GET /login lists password and token flows, with get_login_token, and no JWT when it is off', async () => {
    const res = await hs.fetch(LOGIN);
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({
      flows: [{ type: 'm.login.password' }, { type: 'm.login.token', get_login_token: true }],
    });
  });

  describe('m.login.password', () => {
    it('logs in by localpart: the token works and names the user and a new device', async () => {
      const res = await passwordLogin(hs, 'alice', 'correct horse', { initial_device_display_name: 'Phone' });
      expect(res.status).to.equal(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body.user_id).to.equal(alice);
      expect(body.device_id).to.be.a('string').and.not.equal('');
      expect(body).to.not.have.property('refresh_token');
      expect(body).to.not.have.property('expires_in_ms');
      const me = await whoami(hs, body.access_token as string);
      expect(await me.json()).to.deep.equal({ user_id: alice, device_id: body.device_id, is_guest: false });
      const device = await hs.homeserver.context.storage.devices.getDevice(alice, body.device_id as string);
      expect(device?.displayName).to.equal('Phone');
    });

    it('logs in by full user ID, by the legacy top-level user field, and ignoring case', async () => {
      for (const attempt of [
        {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: alice },
          password: 'correct horse',
        },
        { type: 'm.login.password', user: 'alice', password: 'correct horse' },
        { type: 'm.login.password', user: '@ALICE:localhost', password: 'correct horse' },
        {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: 'AlIcE' },
          password: 'correct horse',
        },
      ]) {
        const res = await postJson(hs, LOGIN, attempt);
        expect(res.status, JSON.stringify(attempt)).to.equal(200);
        expect(((await res.json()) as { user_id: string }).user_id).to.equal(alice);
      }
    });

    it('when accounts differ only by case, only the exact user ID logs in', async () => {
      const lower = await createUser(hs, 'carol', 'lower pass');
      const upper = await createUser(hs, 'Carol', 'upper pass');
      const exact = await passwordLogin(hs, 'Carol', 'upper pass');
      expect(exact.status).to.equal(200);
      expect(((await exact.json()) as { user_id: string }).user_id).to.equal(upper);
      const other = await passwordLogin(hs, 'carol', 'lower pass');
      expect(((await other.json()) as { user_id: string }).user_id).to.equal(lower);
      const ambiguous = await passwordLogin(hs, 'CAROL', 'lower pass');
      expect(ambiguous.status).to.equal(403);
    });

    it('a wrong password and an unknown user get the same 403 M_FORBIDDEN', async () => {
      const wrong = await passwordLogin(hs, 'alice', 'wrong');
      const unknown = await passwordLogin(hs, 'nobody', 'wrong');
      const otherServer = await passwordLogin(hs, '@alice:elsewhere.example', 'correct horse');
      expect(wrong.status).to.equal(403);
      expect(unknown.status).to.equal(403);
      expect(otherServer.status).to.equal(403);
      const bodies = [await wrong.json(), await unknown.json(), await otherServer.json()];
      expect(bodies[0]).to.include({ errcode: 'M_FORBIDDEN' });
      expect(bodies[1]).to.deep.equal(bodies[0]);
      expect(bodies[2]).to.deep.equal(bodies[0]);
    });

    it('an account without a password cannot log in with one', async () => {
      await createUser(hs, 'sso_only', null);
      const res = await passwordLogin(hs, 'sso_only', '');
      expect(res.status).to.equal(403);
    });

    it('a deactivated account gets 403 M_USER_DEACTIVATED with the right password, M_FORBIDDEN without', async () => {
      const dave = await createUser(hs, 'dave', 'dave pass');
      await hs.homeserver.context.storage.accounts.setDeactivated(dave, true);
      hs.homeserver.context.sessions.accountChanged(dave);
      const right = await passwordLogin(hs, 'dave', 'dave pass');
      expect(right.status).to.equal(403);
      expect(await right.json()).to.include({ errcode: 'M_USER_DEACTIVATED' });
      const wrong = await passwordLogin(hs, 'dave', 'nope');
      expect(await wrong.json()).to.include({ errcode: 'M_FORBIDDEN' });
    });

    it('a third-party identifier names nobody here: 403', async () => {
      const res = await postJson(hs, LOGIN, {
        type: 'm.login.password',
        identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'alice@example.org' },
        password: 'correct horse',
      });
      expect(res.status).to.equal(403);
      expect(await res.json()).to.include({ errcode: 'M_FORBIDDEN' });
    });

    it('refuses a device_id in the application services session space (appservice:...) with M_INVALID_PARAM', async () => {
      const res = await passwordLogin(hs, 'alice', 'correct horse', { device_id: 'appservice:irc' });
      expect(res.status).to.equal(400);
      expect(await res.json()).to.include({ errcode: 'M_INVALID_PARAM' });
      const devices = await hs.homeserver.context.storage.devices.listDevices(alice);
      expect(devices.map((device) => device.deviceId)).to.not.include('appservice:irc');
    });

    it('logging in with a known device_id keeps the device and ends its earlier token', async () => {
      const first = (await (
        await passwordLogin(hs, 'alice', 'correct horse', { device_id: 'KEEPME' })
      ).json()) as {
        access_token: string;
        device_id: string;
      };
      expect(first.device_id).to.equal('KEEPME');
      const second = (await (
        await passwordLogin(hs, 'alice', 'correct horse', { device_id: 'KEEPME' })
      ).json()) as {
        access_token: string;
        device_id: string;
      };
      expect(second.device_id).to.equal('KEEPME');
      expect(second.access_token).to.not.equal(first.access_token);
      const old = await whoami(hs, first.access_token);
      expect(old.status).to.equal(401);
      expect(await old.json()).to.include({ errcode: 'M_UNKNOWN_TOKEN' });
      expect((await whoami(hs, second.access_token)).status).to.equal(200);
    });
  });

  describe('bad input never gives a 500', () => {
    const cases: { name: string; body: unknown; status: number; errcode: string }[] = [
      { name: 'no type', body: { user: 'alice', password: 'x' }, status: 400, errcode: 'M_MISSING_PARAM' },
      { name: 'type not a string', body: { type: 7 }, status: 400, errcode: 'M_BAD_JSON' },
      { name: 'unknown login type', body: { type: 'm.login.magic' }, status: 400, errcode: 'M_UNKNOWN' },
      {
        name: 'JWT type while JWT login is off',
        body: { type: 'org.matrix.login.jwt', token: 'x' },
        status: 400,
        errcode: 'M_UNKNOWN',
      },
      {
        name: 'no password',
        body: { type: 'm.login.password', user: 'alice' },
        status: 400,
        errcode: 'M_MISSING_PARAM',
      },
      {
        name: 'password not a string',
        body: { type: 'm.login.password', user: 'alice', password: 12 },
        status: 400,
        errcode: 'M_BAD_JSON',
      },
      {
        name: 'no identifier',
        body: { type: 'm.login.password', password: 'x' },
        status: 400,
        errcode: 'M_MISSING_PARAM',
      },
      {
        name: 'identifier user not a string',
        body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: ['alice'] }, password: 'x' },
        status: 400,
        errcode: 'M_BAD_JSON',
      },
      {
        name: 'unknown identifier type',
        body: { type: 'm.login.password', identifier: { type: 'm.id.psychic' }, password: 'x' },
        status: 400,
        errcode: 'M_UNKNOWN',
      },
      {
        name: '10 KB username',
        body: {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: 'a'.repeat(10_240) },
          password: 'x',
        },
        status: 403,
        errcode: 'M_FORBIDDEN',
      },
      {
        name: '10 KB full user ID with odd characters',
        body: { type: 'm.login.password', user: `@${'é\u0000%'.repeat(3000)}:localhost`, password: 'x' },
        status: 403,
        errcode: 'M_FORBIDDEN',
      },
      {
        name: 'device_id too long',
        body: {
          type: 'm.login.password',
          user: 'alice',
          password: 'correct horse',
          device_id: 'D'.repeat(1000),
        },
        status: 400,
        errcode: 'M_BAD_JSON',
      },
      {
        name: 'missing login token',
        body: { type: 'm.login.token' },
        status: 400,
        errcode: 'M_MISSING_PARAM',
      },
      { name: 'array body', body: [1, 2], status: 400, errcode: 'M_BAD_JSON' },
      { name: 'not JSON', body: 'type=m.login.password', status: 400, errcode: 'M_NOT_JSON' },
    ];
    for (const { name, body, status, errcode } of cases) {
      it(`${name}: ${status} ${errcode}`, async () => {
        const res = await postJson(hs, LOGIN, body);
        expect(res.status).to.equal(status);
        expect(await res.json()).to.include({ errcode });
      });
    }
  });

  describe('m.login.token and POST /login/get_token', () => {
    const GET_TOKEN = '/_matrix/client/v1/login/get_token';

    it('get_token needs an access token', async () => {
      const res = await postJson(hs, GET_TOKEN, {});
      expect(res.status).to.equal(401);
      expect(await res.json()).to.include({ errcode: 'M_MISSING_TOKEN' });
    });

    it('re-authenticates with the password, then the token logs in exactly once', async () => {
      const session = (await (await passwordLogin(hs, 'alice', 'correct horse')).json()) as {
        access_token: string;
      };
      const auth = { Authorization: `Bearer ${session.access_token}` };
      const challenge = await postJson(hs, GET_TOKEN, {}, auth);
      expect(challenge.status).to.equal(401);
      const flows = (await challenge.json()) as { flows: { stages: string[] }[]; session: string };
      expect(flows.flows).to.deep.equal([{ stages: ['m.login.password'] }]);

      const wrongPassword = await postJson(
        hs,
        GET_TOKEN,
        {
          auth: {
            type: 'm.login.password',
            identifier: { type: 'm.id.user', user: 'alice' },
            password: 'wrong',
            session: flows.session,
          },
        },
        auth,
      );
      expect(wrongPassword.status).to.equal(401);

      const granted = await postJson(
        hs,
        GET_TOKEN,
        {
          auth: {
            type: 'm.login.password',
            identifier: { type: 'm.id.user', user: 'alice' },
            password: 'correct horse',
            session: flows.session,
          },
        },
        auth,
      );
      expect(granted.status).to.equal(200);
      const { login_token: loginToken, expires_in_ms: expiresInMs } = (await granted.json()) as {
        login_token: string;
        expires_in_ms: number;
      };
      expect(expiresInMs).to.equal(hs.config.sessions.login_token_lifetime_ms);

      const first = await postJson(hs, LOGIN, { type: 'm.login.token', token: loginToken });
      expect(first.status).to.equal(200);
      const firstBody = (await first.json()) as { user_id: string; access_token: string };
      expect(firstBody.user_id).to.equal(alice);
      expect((await whoami(hs, firstBody.access_token)).status).to.equal(200);

      const again = await postJson(hs, LOGIN, { type: 'm.login.token', token: loginToken });
      expect(again.status).to.equal(403);
      expect(await again.json()).to.include({ errcode: 'M_FORBIDDEN' });
    });

    it('an invented login token is 403 M_FORBIDDEN', async () => {
      const res = await postJson(hs, LOGIN, { type: 'm.login.token', token: 'not-a-real-token' });
      expect(res.status).to.equal(403);
      expect(await res.json()).to.include({ errcode: 'M_FORBIDDEN' });
    });
  });
});

describe('org.matrix.login.jwt', () => {
  const SECRET = 'a shared secret that is long enough for HS256!';
  const ISSUER = 'https://idp.example.org';
  const AUDIENCE = 'myelin';
  let keyDir: string;
  let hs: TestHomeserver;
  let bob: string;
  const ecKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const edKeys = generateKeyPairSync('ed25519');
  const strangerKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  async function startWith(adjust: (jwt: MyelinConfig['jwt_login']) => void): Promise<TestHomeserver> {
    return TestHomeserver.start({
      configure: (config) => {
        testConfig(config);
        config.jwt_login.enabled = true;
        config.jwt_login.secret_path = path.join(keyDir, 'secret');
        config.jwt_login.issuer = ISSUER;
        config.jwt_login.audiences = [AUDIENCE];
        adjust(config.jwt_login);
      },
    });
  }

  function jwt(
    claims: Record<string, unknown> = {},
    header: { alg: string; kid?: string } = { alg: 'HS256' },
  ) {
    return new SignJWT({ sub: 'bob', ...claims })
      .setProtectedHeader(header)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('5m');
  }
  const secretKey = new TextEncoder().encode(SECRET);
  const jwtLogin = (server: TestHomeserver, token: string) =>
    postJson(server, LOGIN, { type: 'org.matrix.login.jwt', token });

  before(async () => {
    keyDir = await mkdtemp(path.join(tmpdir(), 'myelin-jwt-'));
    await writeFile(path.join(keyDir, 'secret'), `${SECRET}\n`);
    await writeFile(path.join(keyDir, 'ec.pem'), ecKeys.publicKey.export({ type: 'spki', format: 'pem' }));
    const jwk = { ...(await exportJWK(edKeys.publicKey)), kid: 'ed-1', alg: 'EdDSA' };
    await writeFile(path.join(keyDir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
    hs = await startWith(() => {});
    bob = await createUser(hs, 'bob', null);
  });
  after(async () => {
    await hs.stop();
    await rm(keyDir, { recursive: true, force: true });
  });

  it('GET /login offers org.matrix.login.jwt', async () => {
    const { flows } = (await (await hs.fetch(LOGIN)).json()) as { flows: { type: string }[] };
    expect(flows.map((flow) => flow.type)).to.include('org.matrix.login.jwt');
  });

  it('a valid HS256 JWT logs the user in, by localpart or full user ID', async () => {
    for (const sub of ['bob', bob]) {
      const res = await jwtLogin(hs, await jwt({ sub }).sign(secretKey));
      expect(res.status, sub).to.equal(200);
      const body = (await res.json()) as { user_id: string; access_token: string };
      expect(body.user_id).to.equal(bob);
      expect((await whoami(hs, body.access_token)).status).to.equal(200);
    }
  });

  const rejected: { name: string; token: () => Promise<string> }[] = [
    {
      name: 'expired',
      token: () =>
        jwt()
          .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
          .sign(secretKey),
    },
    { name: 'not yet valid', token: () => jwt().setNotBefore('10m').sign(secretKey) },
    { name: 'wrong signature', token: () => jwt().sign(new TextEncoder().encode(`${SECRET}?`)) },
    { name: 'wrong audience', token: () => jwt().setAudience('someone-else').sign(secretKey) },
    { name: 'wrong issuer', token: () => jwt().setIssuer('https://evil.example').sign(secretKey) },
    { name: 'no subject', token: () => jwt({ sub: undefined }).sign(secretKey) },
    {
      name: 'subject of another server',
      token: () => jwt({ sub: '@bob:elsewhere.example' }).sign(secretKey),
    },
    {
      name: 'algorithm not accepted (HS512)',
      token: () => jwt({}, { alg: 'HS512' }).sign(new TextEncoder().encode(SECRET.repeat(2))),
    },
    {
      name: 'unsigned (alg none)',
      token: async () => `${(await jwt().sign(secretKey)).split('.').slice(0, 2).join('.')}.`,
    },
    { name: 'not a JWT', token: async () => 'garbage' },
    { name: 'unknown user without create_account', token: () => jwt({ sub: 'newcomer' }).sign(secretKey) },
  ];
  for (const { name, token } of rejected) {
    it(`${name}: 403 M_FORBIDDEN`, async () => {
      const res = await jwtLogin(hs, await token());
      expect(res.status).to.equal(403);
      expect(await res.json()).to.include({ errcode: 'M_FORBIDDEN' });
    });
  }

  it('a missing token is 403 M_FORBIDDEN', async () => {
    const res = await postJson(hs, LOGIN, { type: 'org.matrix.login.jwt' });
    expect(res.status).to.equal(403);
  });

  it('with create_account, the first login creates the account (no password) and later ones reuse it', async () => {
    const server = await startWith((jwtConfig) => {
      jwtConfig.create_account = true;
    });
    try {
      const first = await jwtLogin(server, await jwt({ sub: 'newcomer' }).sign(secretKey));
      expect(first.status).to.equal(200);
      const body = (await first.json()) as { user_id: string };
      expect(body.user_id).to.equal('@newcomer:localhost');
      const account = await server.homeserver.context.storage.accounts.getAccount('@newcomer:localhost');
      expect(account?.passwordHash).to.equal(null);
      const second = await jwtLogin(server, await jwt({ sub: 'newcomer' }).sign(secretKey));
      expect(second.status).to.equal(200);
      const invalid = await jwtLogin(server, await jwt({ sub: 'Not Valid!' }).sign(secretKey));
      expect(invalid.status).to.equal(400);
      expect(await invalid.json()).to.include({ errcode: 'M_INVALID_USERNAME' });
    } finally {
      await server.stop();
    }
  });

  it('an ES256 JWT verifies against a PEM public key; another key pair is refused', async () => {
    const server = await startWith((jwtConfig) => {
      jwtConfig.public_key_path = path.join(keyDir, 'ec.pem');
      jwtConfig.algorithms = ['ES256'];
      jwtConfig.subject_claim = 'preferred_username';
    });
    try {
      await createUser(server, 'bob', null);
      const sign = (key: typeof ecKeys.privateKey) =>
        jwt({ sub: 'ignored', preferred_username: 'bob' }, { alg: 'ES256' }).sign(key);
      const good = await jwtLogin(server, await sign(ecKeys.privateKey));
      expect(good.status).to.equal(200);
      expect(((await good.json()) as { user_id: string }).user_id).to.equal('@bob:localhost');
      const stranger = await jwtLogin(server, await sign(strangerKeys.privateKey));
      expect(stranger.status).to.equal(403);
      // HS256 is not among the configured algorithms any more, even with the right secret.
      const symmetric = await jwtLogin(server, await jwt({ preferred_username: 'bob' }).sign(secretKey));
      expect(symmetric.status).to.equal(403);
    } finally {
      await server.stop();
    }
  });

  it('an EdDSA JWT verifies against a JWKS file', async () => {
    const server = await startWith((jwtConfig) => {
      jwtConfig.jwks_path = path.join(keyDir, 'jwks.json');
      jwtConfig.algorithms = ['EdDSA'];
    });
    try {
      await createUser(server, 'bob', null);
      const good = await jwtLogin(
        server,
        await jwt({}, { alg: 'EdDSA', kid: 'ed-1' }).sign(edKeys.privateKey),
      );
      expect(good.status).to.equal(200);
      const otherEd = generateKeyPairSync('ed25519');
      const bad = await jwtLogin(
        server,
        await jwt({}, { alg: 'EdDSA', kid: 'ed-1' }).sign(otherEd.privateKey),
      );
      expect(bad.status).to.equal(403);
    } finally {
      await server.stop();
    }
  });
});

describe('login rate limits (client-server "Rate limiting")', () => {
  let hs: TestHomeserver;
  before(async () => {
    hs = await TestHomeserver.start({
      configure: (config) => {
        config.password_hashing.scrypt_log_n = 10;
        // Slow enough refill that a loaded machine cannot refill a token between two requests.
        config.rate_limits.login = { per_second: 1, burst: 2 };
        config.listeners[0]!.x_forwarded = true;
      },
    });
    await createUser(hs, 'erin', 'erin pass');
    await createUser(hs, 'frank', 'frank pass');
  });
  after(() => hs.stop());

  const loginFrom = (ip: string, user: string, password: string) =>
    postJson(hs, LOGIN, { type: 'm.login.password', user, password }, { 'X-Forwarded-For': ip });

  it('too many attempts from one address: 429 M_LIMIT_EXCEEDED with retry_after_ms and Retry-After, then it recovers', async () => {
    expect((await loginFrom('10.0.0.1', 'erin', 'wrong')).status).to.equal(403);
    expect((await loginFrom('10.0.0.1', 'frank', 'wrong')).status).to.equal(403);
    const limited = await loginFrom('10.0.0.1', 'erin', 'erin pass');
    expect(limited.status).to.equal(429);
    const body = (await limited.json()) as { errcode: string; retry_after_ms: number };
    expect(body.errcode).to.equal('M_LIMIT_EXCEEDED');
    expect(body.retry_after_ms).to.be.greaterThan(0).and.at.most(1000);
    expect(limited.headers.get('retry-after')).to.equal('1');
    await new Promise((resolve) => setTimeout(resolve, body.retry_after_ms + 20));
    expect((await loginFrom('10.0.0.1', 'erin', 'erin pass')).status).to.equal(200);
  });

  it('too many attempts on one account from many addresses: 429 for that account only', async () => {
    // Let frank's account bucket (drawn on by the previous test) fill up again.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    expect((await loginFrom('10.0.1.1', 'frank', 'wrong')).status).to.equal(403);
    expect((await loginFrom('10.0.1.2', 'FRANK', 'wrong')).status).to.equal(403);
    const limited = await loginFrom('10.0.1.3', 'frank', 'frank pass');
    expect(limited.status).to.equal(429);
    expect(await limited.json()).to.include({ errcode: 'M_LIMIT_EXCEEDED' });
    expect((await loginFrom('10.0.1.4', 'erin', 'erin pass')).status).to.equal(200);
  });
});
