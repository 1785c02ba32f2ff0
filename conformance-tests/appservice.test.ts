import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { SignJWT } from 'jose';
import { registerUserCommand } from '../server/accounts/register-user-command.js';
import type { MyelinConfig } from '../server/config/index.js';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { FakeAppservice } from './harness/fake-appservice.js';
import { TestHomeserver } from './harness/test-homeserver.js';
import { until } from './harness/until.js';

const AS_TOKEN = 'as-token-of-the-irc-bridge';
const HS_TOKEN = 'hs-token-of-the-irc-bridge';
const QUIET_AS_TOKEN = 'as-token-of-a-service-without-url';
const DOWN_AS_TOKEN = 'as-token-of-a-service-that-is-down';
const GREEDY_AS_TOKEN = 'as-token-of-a-service-with-a-shared-namespace';
const JWT_SECRET = 'a shared secret that is long enough for HS256!';

/** A client bound to the bridge's as_token, acting as its sender or as `user_id`. */
const bridge = { accessToken: AS_TOKEN };
const asUser = (userId: string, deviceId?: string) =>
  `user_id=${encodeURIComponent(userId)}${deviceId === undefined ? '' : `&device_id=${encodeURIComponent(deviceId)}`}`;

interface RegistrationFields {
  readonly id: string;
  readonly url: string | null;
  readonly asToken: string;
  readonly hsToken: string;
  readonly sender: string;
  /** Users and aliases of the exclusive namespaces begin with it. */
  readonly prefix?: string;
  /** Whether its namespaces are exclusive (default true). */
  readonly exclusive?: boolean;
  /** Default: irc. */
  readonly protocols?: readonly string[];
  readonly rateLimited?: boolean;
}

function registrationYaml(fields: RegistrationFields): string {
  const prefix = fields.prefix ?? 'irc_';
  const exclusive = fields.exclusive ?? true;
  return [
    `id: ${fields.id}`,
    `url: ${fields.url === null ? 'null' : JSON.stringify(fields.url)}`,
    `as_token: ${fields.asToken}`,
    `hs_token: ${fields.hsToken}`,
    `sender_localpart: ${fields.sender}`,
    `rate_limited: ${fields.rateLimited ?? false}`,
    `protocols: [${(fields.protocols ?? ['irc']).join(', ')}]`,
    'namespaces:',
    '  users:',
    `    - exclusive: ${exclusive}`,
    `      regex: "@${prefix}.*:localhost"`,
    '  aliases:',
    `    - exclusive: ${exclusive}`,
    `      regex: "#${prefix}.*"`,
    '  rooms: []',
  ].join('\n');
}

describe('Application services (application-service API)', function () {
  this.timeout(30_000);
  let folder: string;
  let service: FakeAppservice;
  /** A second service with a URL, whose answers can be held back. */
  let slowService: FakeAppservice;
  let hs: TestHomeserver;
  let alice: TestUser;

  const configure = (config: MyelinConfig) => {
    fastAccounts(config);
    config.registration.mode = 'open';
    config.app_service_config_files = ['irc.yaml', 'quiet.yaml', 'down.yaml', 'greedy.yaml', 'slow.yaml'].map(
      (file) => path.join(folder, file),
    );
    config.appservice.initial_retry_delay_ms = 50;
    config.appservice.max_retry_delay_ms = 200;
    config.appservice.request_timeout_ms = 1000;
    config.jwt_login.enabled = true;
    config.jwt_login.secret_path = path.join(folder, 'jwt-secret');
    config.jwt_login.create_account = true;
  };

  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'myelin-appservice-'));
    service = await FakeAppservice.start();
    slowService = await FakeAppservice.start();
    const registrations: Record<string, RegistrationFields> = {
      'irc.yaml': { id: 'irc', url: service.url, asToken: AS_TOKEN, hsToken: HS_TOKEN, sender: 'ircbot' },
      'quiet.yaml': {
        id: 'quiet',
        url: null,
        asToken: QUIET_AS_TOKEN,
        hsToken: 'hs-quiet',
        sender: 'quietbot',
        prefix: 'quiet_',
      },
      // Nothing listens on port 1 of the loopback address.
      'down.yaml': {
        id: 'down',
        url: 'http://127.0.0.1:1',
        asToken: DOWN_AS_TOKEN,
        hsToken: 'hs-down',
        sender: 'downbot',
        prefix: 'down_',
      },
      // Shares every name, exclusively none: it must still keep out of the others' exclusive namespaces.
      'greedy.yaml': {
        id: 'greedy',
        url: null,
        asToken: GREEDY_AS_TOKEN,
        hsToken: 'hs-greedy',
        sender: 'greedybot',
        prefix: '',
        exclusive: false,
      },
      'slow.yaml': {
        id: 'slow',
        url: slowService.url,
        asToken: 'as-token-of-a-slow-service',
        hsToken: 'hs-slow',
        sender: 'slowbot',
        prefix: 'slow_',
        protocols: [],
      },
    };
    for (const [file, fields] of Object.entries(registrations)) {
      await writeFile(path.join(folder, file), registrationYaml(fields));
    }
    await writeFile(path.join(folder, 'jwt-secret'), JWT_SECRET);
    hs = await TestHomeserver.start({ configure });
    alice = await createUser(hs, 'alice');
  });

  /** The event ID of the user's current membership of the room. */
  const latestMemberEvent = async (roomId: string, userId: string) => {
    const state = await hs.homeserver.context.storage.state.currentStateEventId(
      roomId,
      'm.room.member',
      userId,
    );
    return state ?? undefined;
  };

  after(async () => {
    await hs?.stop();
    await service?.stop();
    await slowService?.stop();
    await rm(folder, { recursive: true, force: true });
  });

  describe('registration and identity assertion', () => {
    it('registers users of its namespace, without UIA, and refuses others with M_EXCLUSIVE', async () => {
      const made = await call(hs, bridge, 'POST', '/_matrix/client/v3/register', {
        type: 'm.login.application_service',
        username: 'irc_bob',
        inhibit_login: true,
      });
      expect(made.status, JSON.stringify(made.body)).to.equal(200);
      expect(made.body).to.deep.equal({ user_id: '@irc_bob:localhost' });

      const outside = await call(hs, bridge, 'POST', '/_matrix/client/v3/register', {
        type: 'm.login.application_service',
        username: 'carol',
      });
      expect(outside.status).to.equal(400);
      expect(outside.body.errcode).to.equal('M_EXCLUSIVE');

      const again = await call(hs, bridge, 'POST', '/_matrix/client/v3/register', {
        type: 'm.login.application_service',
        username: 'irc_bob',
      });
      expect(again.body.errcode).to.equal('M_USER_IN_USE');
    });

    it('registers puppets when bridge libraries also send user_id (ignored by /register)', async () => {
      const made = await call(
        hs,
        bridge,
        'POST',
        `/_matrix/client/v3/register?${asUser('@irc_new:localhost')}`,
        { type: 'm.login.application_service', username: 'irc_new' },
      );
      expect(made.status, JSON.stringify(made.body)).to.equal(200);
      expect(made.body.user_id).to.equal('@irc_new:localhost');
      expect(made.body.access_token).to.be.a('string');
    });

    it("ignores a client's stale token on /register", async () => {
      const stale = { accessToken: 'a-token-from-a-logged-out-session' };
      const started = await call(hs, stale, 'POST', '/_matrix/client/v3/register', {
        username: 'fresh_start',
        password: 'a long password',
      });
      // The user-interactive auth challenge, not M_UNKNOWN_TOKEN.
      expect(started.status).to.equal(401);
      expect(started.body.errcode).to.equal(undefined);
      expect(started.body.flows).to.be.an('array');
      const finished = await call(hs, stale, 'POST', '/_matrix/client/v3/register', {
        auth: { type: 'm.login.dummy', session: started.body.session },
        username: 'fresh_start',
        password: 'a long password',
      });
      expect(finished.status, JSON.stringify(finished.body)).to.equal(200);
      expect(finished.body.user_id).to.equal('@fresh_start:localhost');
    });

    it("keeps a service out of another service's exclusive namespace", async () => {
      const greedy = { accessToken: GREEDY_AS_TOKEN };
      const intrude = await call(hs, greedy, 'POST', '/_matrix/client/v3/register', {
        type: 'm.login.application_service',
        username: 'irc_stolen',
      });
      expect([intrude.status, intrude.body.errcode]).to.deep.equal([400, 'M_EXCLUSIVE']);
      const own = await call(hs, greedy, 'POST', '/_matrix/client/v3/register', {
        type: 'm.login.application_service',
        username: 'greedy_one',
        inhibit_login: true,
      });
      expect(own.status, JSON.stringify(own.body)).to.equal(200);

      const room = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' });
      const roomId = room.body.room_id as string;
      for (const token of [bridge, greedy]) {
        await call(hs, token, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {});
      }
      const aliasPath = '/_matrix/client/v3/directory/room/%23irc_taken:localhost';
      const byGreedy = await call(hs, greedy, 'PUT', aliasPath, { room_id: roomId });
      expect([byGreedy.status, byGreedy.body.errcode]).to.deep.equal([400, 'M_EXCLUSIVE']);
      const byOwner = await call(hs, bridge, 'PUT', aliasPath, { room_id: roomId });
      expect(byOwner.status, JSON.stringify(byOwner.body)).to.equal(200);
      const deleted = await call(hs, greedy, 'DELETE', aliasPath);
      expect([deleted.status, deleted.body.errcode]).to.deep.equal([400, 'M_EXCLUSIVE']);
      const named = await call(hs, greedy, 'POST', '/_matrix/client/v3/createRoom', {
        room_alias_name: 'irc_named',
      });
      expect(named.body.errcode).to.equal('M_EXCLUSIVE');
      const shared = await call(hs, greedy, 'PUT', '/_matrix/client/v3/directory/room/%23greedy:localhost', {
        room_id: roomId,
      });
      expect(shared.status, JSON.stringify(shared.body)).to.equal(200);
    });

    it('keeps other users out of an exclusive namespace', async () => {
      const available = await call(
        hs,
        undefined,
        'GET',
        '/_matrix/client/v3/register/available?username=irc_eve',
      );
      expect(available.status).to.equal(400);
      expect(available.body.errcode).to.equal('M_EXCLUSIVE');
      const registered = await call(hs, undefined, 'POST', '/_matrix/client/v3/register', {
        username: 'irc_eve',
        password: 'a long password',
      });
      expect(registered.body.errcode).to.equal('M_EXCLUSIVE');
    });

    it('keeps shared-secret registration, register-user and JWT logins out of an exclusive namespace', async () => {
      const secret = (await readFile(path.join(hs.dataDir, 'registration_shared_secret'), 'utf8')).trim();
      const nonce = (await call(hs, undefined, 'GET', '/_synapse/admin/v1/register')).body.nonce as string;
      const fields = { nonce, username: 'irc_admin', password: 'op pass', admin: true };
      const mac = createHmac('sha1', secret)
        .update(`${nonce}\0${fields.username}\0${fields.password}\0admin`)
        .digest('hex');
      const shared = await call(hs, undefined, 'POST', '/_synapse/admin/v1/register', { ...fields, mac });
      expect([shared.status, shared.body.errcode], JSON.stringify(shared.body)).to.deep.equal([
        400,
        'M_EXCLUSIVE',
      ]);

      const config = hs.homeserver.context.config;
      let refused: unknown;
      try {
        await registerUserCommand({ config, user: 'irc_operator', password: 'x', admin: false });
      } catch (error) {
        refused = error;
      }
      expect((refused as { errcode?: string } | undefined)?.errcode).to.equal('M_EXCLUSIVE');

      const token = await new SignJWT({ sub: 'irc_jwt' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(JWT_SECRET));
      const jwt = await call(hs, undefined, 'POST', '/_matrix/client/v3/login', {
        type: 'org.matrix.login.jwt',
        token,
      });
      expect([jwt.status, jwt.body.errcode], JSON.stringify(jwt.body)).to.deep.equal([400, 'M_EXCLUSIVE']);
      for (const userId of ['@irc_admin:localhost', '@irc_operator:localhost', '@irc_jwt:localhost']) {
        expect(await hs.homeserver.context.storage.accounts.getAccount(userId), userId).to.equal(null);
      }
    });

    it('needs a valid as_token for m.login.application_service', async () => {
      const body = { type: 'm.login.application_service', username: 'irc_zed' };
      const none = await call(hs, undefined, 'POST', '/_matrix/client/v3/register', body);
      expect([none.status, none.body.errcode]).to.deep.equal([401, 'M_MISSING_TOKEN']);
      const userToken = await call(hs, alice, 'POST', '/_matrix/client/v3/register', body);
      expect([userToken.status, userToken.body.errcode]).to.deep.equal([401, 'M_UNKNOWN_TOKEN']);
      const login = await call(hs, alice, 'POST', '/_matrix/client/v3/login', {
        type: 'm.login.application_service',
        identifier: { type: 'm.id.user', user: 'irc_bob' },
      });
      expect([login.status, login.body.errcode]).to.deep.equal([401, 'M_UNKNOWN_TOKEN']);
    });

    it('acts as its sender, or as a registered user of its namespace named by user_id', async () => {
      const sender = await call(hs, bridge, 'GET', '/_matrix/client/v3/account/whoami');
      expect(sender.body).to.include({ user_id: '@ircbot:localhost' });
      expect(sender.body).to.not.have.property('device_id');

      const bob = await call(
        hs,
        bridge,
        'GET',
        `/_matrix/client/v3/account/whoami?${asUser('@irc_bob:localhost')}`,
      );
      expect(bob.body).to.include({ user_id: '@irc_bob:localhost' });

      for (const userId of ['@alice:localhost', '@irc_nobody:localhost', '@irc_bob:elsewhere.example']) {
        const refused = await call(hs, bridge, 'GET', `/_matrix/client/v3/account/whoami?${asUser(userId)}`);
        expect([refused.status, refused.body.errcode], userId).to.deep.equal([403, 'M_FORBIDDEN']);
      }
      const sync = await call(
        hs,
        bridge,
        'GET',
        `/_matrix/client/v3/sync?timeout=0&${asUser('@irc_bob:localhost')}`,
      );
      expect(sync.status, JSON.stringify(sync.body)).to.equal(200);
      // A user's token never masquerades: user_id is ignored.
      const own = await call(
        hs,
        alice,
        'GET',
        `/_matrix/client/v3/account/whoami?${asUser('@irc_bob:localhost')}`,
      );
      expect(own.body.user_id).to.equal('@alice:localhost');
    });

    it('logs its users in with m.login.application_service and acts as one of their devices', async () => {
      const login = await call(hs, bridge, 'POST', '/_matrix/client/v3/login', {
        type: 'm.login.application_service',
        identifier: { type: 'm.id.user', user: 'irc_bob' },
        device_id: 'BRIDGEDEV',
      });
      expect(login.status, JSON.stringify(login.body)).to.equal(200);
      expect(login.body).to.include({ user_id: '@irc_bob:localhost', device_id: 'BRIDGEDEV' });

      const outside = await call(hs, bridge, 'POST', '/_matrix/client/v3/login', {
        type: 'm.login.application_service',
        identifier: { type: 'm.id.user', user: 'alice' },
      });
      expect(outside.body.errcode).to.equal('M_EXCLUSIVE');

      const withDevice = await call(
        hs,
        bridge,
        'GET',
        `/_matrix/client/v3/account/whoami?${asUser('@irc_bob:localhost', 'BRIDGEDEV')}`,
      );
      expect(withDevice.body).to.include({ user_id: '@irc_bob:localhost', device_id: 'BRIDGEDEV' });
      const unknown = await call(
        hs,
        bridge,
        'GET',
        `/_matrix/client/v3/account/whoami?${asUser('@irc_bob:localhost', 'NOSUCHDEVICE')}`,
      );
      expect([unknown.status, unknown.body.errcode]).to.deep.equal([400, 'M_UNKNOWN_DEVICE']);
    });

    it('creates and deletes devices of its users without a login or UIA', async () => {
      const asBob = asUser('@irc_bob:localhost');
      const created = await call(hs, bridge, 'PUT', `/_matrix/client/v3/devices/BRIDGED?${asBob}`, {
        display_name: 'Bridge device',
      });
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      const again = await call(hs, bridge, 'PUT', `/_matrix/client/v3/devices/BRIDGED?${asBob}`, {});
      expect(again.status).to.equal(200);
      const listed = await call(hs, bridge, 'GET', `/_matrix/client/v3/devices?${asBob}`);
      expect((listed.body.devices as { device_id: string }[]).map((d) => d.device_id)).to.include('BRIDGED');
      const keys = await call(
        hs,
        bridge,
        'POST',
        `/_matrix/client/v3/keys/upload?${asUser('@irc_bob:localhost', 'BRIDGED')}`,
        {
          one_time_keys: { 'signed_curve25519:AAAA': { key: 'a', signatures: {} } },
        },
      );
      expect(keys.status, JSON.stringify(keys.body)).to.equal(200);

      // Cross-signing keys replaced without UIA (a user replacing existing keys needs it).
      for (const key of [
        'firstmasterkeyAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        'secondmasterkeyAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      ]) {
        const upload = await call(
          hs,
          bridge,
          'POST',
          `/_matrix/client/v3/keys/device_signing/upload?${asBob}`,
          {
            master_key: {
              user_id: '@irc_bob:localhost',
              usage: ['master'],
              keys: { [`ed25519:${key}`]: key },
            },
          },
        );
        expect(upload.status, JSON.stringify(upload.body)).to.equal(200);
      }

      // A user's own token creates nothing.
      const byAlice = await call(hs, alice, 'PUT', '/_matrix/client/v3/devices/NEWONE', {});
      expect(byAlice.status).to.equal(404);

      const deleted = await call(hs, bridge, 'DELETE', `/_matrix/client/v3/devices/BRIDGED?${asBob}`, {});
      expect(deleted.status, JSON.stringify(deleted.body)).to.equal(200);
      const gone = await call(hs, bridge, 'GET', `/_matrix/client/v3/devices/BRIDGED?${asBob}`);
      expect(gone.status).to.equal(404);
      const aliceDelete = await call(hs, alice, 'DELETE', `/_matrix/client/v3/devices/${alice.deviceId}`, {});
      expect(aliceDelete.status).to.equal(401); // still user-interactive auth for users
    });

    it('sets origin_server_ts with ts on /send and /state (timestamp massaging)', async () => {
      const room = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' });
      const roomId = encodeURIComponent(room.body.room_id as string);
      const asBob = asUser('@irc_bob:localhost');
      await call(hs, bridge, 'POST', `/_matrix/client/v3/join/${roomId}?${asBob}`, {});
      const tsOf = async (eventId: unknown) =>
        (
          await call(
            hs,
            alice,
            'GET',
            `/_matrix/client/v3/rooms/${roomId}/event/${encodeURIComponent(String(eventId))}`,
          )
        ).body.origin_server_ts;
      const sent = await call(
        hs,
        bridge,
        'PUT',
        `/_matrix/client/v3/rooms/${roomId}/send/m.room.message/ts1?${asBob}&ts=1500000000000`,
        {
          msgtype: 'm.text',
          body: 'from the past',
        },
      );
      expect(await tsOf(sent.body.event_id)).to.equal(1_500_000_000_000);
      const state = await call(
        hs,
        alice,
        'PUT',
        `/_matrix/client/v3/rooms/${roomId}/state/m.room.topic?ts=1500000000000`,
        {
          topic: 'a user cannot',
        },
      );
      expect(await tsOf(state.body.event_id)).to.be.greaterThan(1_700_000_000_000);
      const bad = await call(
        hs,
        bridge,
        'PUT',
        `/_matrix/client/v3/rooms/${roomId}/send/m.room.message/ts2?${asBob}&ts=yesterday`,
        {
          msgtype: 'm.text',
          body: 'x',
        },
      );
      expect([bad.status, bad.body.errcode]).to.deep.equal([400, 'M_INVALID_PARAM']);
    });

    it('sends and redacts once per transaction ID, without a device', async () => {
      const room = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' });
      const roomId = encodeURIComponent(room.body.room_id as string);
      const asBob = asUser('@irc_bob:localhost');
      await call(hs, bridge, 'POST', `/_matrix/client/v3/join/${roomId}?${asBob}`, {});
      const send = () =>
        call(hs, bridge, 'PUT', `/_matrix/client/v3/rooms/${roomId}/send/m.room.message/retried?${asBob}`, {
          msgtype: 'm.text',
          body: 'bridged once',
        });
      const first = await send();
      expect(first.status, JSON.stringify(first.body)).to.equal(200);
      expect((await send()).body.event_id).to.equal(first.body.event_id);
      // The sender acting as itself keeps transactions of its own (the key has the user).
      const bySender = await call(
        hs,
        bridge,
        'PUT',
        `/_matrix/client/v3/rooms/${roomId}/send/m.room.message/retried`,
        { msgtype: 'm.text', body: 'x' },
      );
      expect(bySender.body.event_id).to.not.equal(first.body.event_id);
      const messages = await call(
        hs,
        alice,
        'GET',
        `/_matrix/client/v3/rooms/${roomId}/messages?dir=b&limit=20`,
      );
      const bridged = (messages.body.chunk as { content: { body?: string } }[]).filter(
        (event) => event.content.body === 'bridged once',
      );
      expect(bridged).to.have.length(1);

      const target = encodeURIComponent(first.body.event_id as string);
      const redact = () =>
        call(hs, bridge, 'PUT', `/_matrix/client/v3/rooms/${roomId}/redact/${target}/undo?${asBob}`, {});
      const redacted = await redact();
      expect(redacted.status, JSON.stringify(redacted.body)).to.equal(200);
      expect((await redact()).body.event_id).to.equal(redacted.body.event_id);
    });

    it('reserves its exclusive alias namespace', async () => {
      const room = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', {});
      const roomId = room.body.room_id as string;
      const byAlice = await call(
        hs,
        alice,
        'PUT',
        '/_matrix/client/v3/directory/room/%23irc_chat:localhost',
        {
          room_id: roomId,
        },
      );
      expect([byAlice.status, byAlice.body.errcode]).to.deep.equal([400, 'M_EXCLUSIVE']);
      const named = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', {
        room_alias_name: 'irc_room',
      });
      expect(named.body.errcode).to.equal('M_EXCLUSIVE');
      const outsideByBridge = await call(
        hs,
        bridge,
        'PUT',
        '/_matrix/client/v3/directory/room/%23chat:localhost',
        {
          room_id: roomId,
        },
      );
      expect(outsideByBridge.body.errcode).to.equal('M_EXCLUSIVE');
    });
  });

  describe('transactions', () => {
    it('pushes an event of a room with one of its users exactly once, retrying under the same txnId', async () => {
      const room = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' });
      const roomId = room.body.room_id as string;
      const before = await call(
        hs,
        alice,
        'PUT',
        `/_matrix/client/v3/rooms/${roomId}/send/m.room.message/t0`,
        {
          msgtype: 'm.text',
          body: 'before the bridge joined',
        },
      );
      const joined = await call(
        hs,
        bridge,
        'POST',
        `/_matrix/client/v3/join/${roomId}?${asUser('@irc_bob:localhost')}`,
        {},
      );
      expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
      await hs.homeserver.context.appservices.settled();

      service.transactionAnswers.push(500, 503);
      const sent = await call(hs, alice, 'PUT', `/_matrix/client/v3/rooms/${roomId}/send/m.room.message/t1`, {
        msgtype: 'm.text',
        body: 'hello bridge',
      });
      const eventId = sent.body.event_id as string;
      const carrying = await until(async () => {
        const found = service
          .transactions()
          .filter((txn) => txn.events.some((event) => event.event_id === eventId));
        return found.length >= 3 ? found : undefined;
      });
      // Two refusals, then the same transaction accepted: same ID, same events, hs_token each time.
      expect(new Set(carrying.map((txn) => txn.txnId)).size).to.equal(1);
      expect(carrying[1]!.events).to.deep.equal(carrying[0]!.events);
      expect(carrying[2]!.events).to.deep.equal(carrying[0]!.events);
      for (const txn of carrying) expect(txn.authorization).to.equal(`Bearer ${HS_TOKEN}`);
      const message = carrying[0]!.events.find((event) => event.event_id === eventId)!;
      expect(message).to.include({ room_id: roomId, sender: '@alice:localhost', type: 'm.room.message' });
      expect(message.content).to.deep.equal({ msgtype: 'm.text', body: 'hello bridge' });
      expect(message).to.not.have.property('signatures');

      await hs.homeserver.context.appservices.settled();
      const accepted = service.transactions();
      const deliveries = accepted.filter((txn) => txn.events.some((event) => event.event_id === eventId));
      expect(deliveries).to.have.length(3); // no fourth send once accepted
      // The join of its user was pushed; the message sent before anyone of it was in the room was not.
      const all = accepted.flatMap((txn) => txn.events);
      expect(
        all.some((event) => event.type === 'm.room.member' && event.state_key === '@irc_bob:localhost'),
      ).to.equal(true);
      expect(all.some((event) => event.event_id === before.body.event_id)).to.equal(false);
      // Transaction IDs are never reused for other events.
      const idsToEvents = new Map<string, string>();
      for (const txn of accepted) {
        const key = JSON.stringify(txn.events.map((event) => event.event_id));
        expect(idsToEvents.get(txn.txnId) ?? key).to.equal(key);
        idsToEvents.set(txn.txnId, key);
      }
    });

    it('asks about an invited user of its namespace who has no account, before pushing the invite', async () => {
      const ghost = '@irc_ghost:localhost';
      const queryPath = `/_matrix/app/v1/users/${encodeURIComponent(ghost)}`;
      service.handlers.set(queryPath, async () => {
        const made = await call(hs, bridge, 'POST', '/_matrix/client/v3/register', {
          type: 'm.login.application_service',
          username: 'irc_ghost',
          inhibit_login: true,
        });
        return made.status;
      });
      const room = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', {});
      const roomId = room.body.room_id as string;
      const invited = await call(
        hs,
        alice,
        'POST',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`,
        {
          user_id: ghost,
        },
      );
      expect(invited.status, JSON.stringify(invited.body)).to.equal(200);
      const isInvite = (request: { path: string; body: Record<string, unknown> }) =>
        ((request.body.events as Record<string, unknown>[] | undefined) ?? []).some(
          (event) => event.state_key === ghost && event.room_id === roomId,
        );
      await until(async () => (service.requests.some(isInvite) ? true : undefined));
      const queried = service.requests.findIndex((request) => request.path === queryPath);
      expect(queried).to.be.greaterThan(-1);
      expect(queried).to.be.lessThan(service.requests.findIndex(isInvite));
      const asGhost = await call(hs, bridge, 'GET', `/_matrix/client/v3/account/whoami?${asUser(ghost)}`);
      expect(asGhost.body.user_id).to.equal(ghost);
      // An invite of a user who exists asks nothing.
      await call(hs, alice, 'POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, {
        user_id: '@irc_bob:localhost',
      });
      await hs.homeserver.context.appservices.settled();
      expect(
        service.requests.filter((request) => request.path.startsWith('/_matrix/app/v1/users/')),
      ).to.have.length(1);
    });

    it('asks a slow service about its invitee without holding back the other services', async () => {
      const ghost = '@slow_ghost:localhost';
      const queryPath = `/_matrix/app/v1/users/${encodeURIComponent(ghost)}`;
      let release: (status: number) => void = () => {};
      slowService.handlers.set(queryPath, () => new Promise<number>((resolve) => (release = resolve)));
      try {
        const room = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', {
          preset: 'public_chat',
        });
        const roomId = room.body.room_id as string;
        await call(
          hs,
          bridge,
          'POST',
          `/_matrix/client/v3/join/${roomId}?${asUser('@irc_bob:localhost')}`,
          {},
        );
        const invited = await call(hs, alice, 'POST', `/_matrix/client/v3/rooms/${roomId}/invite`, {
          user_id: ghost,
        });
        const inviteId = invited.status === 200 ? await latestMemberEvent(roomId, ghost) : undefined;
        expect(inviteId).to.be.a('string');
        // The slow service's query takes up to request_timeout_ms (1 s); the bridge hears at once.
        await until(
          async () =>
            service.transactions().some((txn) => txn.events.some((event) => event.event_id === inviteId))
              ? true
              : undefined,
          700,
        );
        expect(slowService.requests.some((request) => request.path === queryPath)).to.equal(true);
      } finally {
        release(404);
        slowService.handlers.delete(queryPath);
      }
      await hs.homeserver.context.appservices.settled();
    });

    it('hands out an event again after a failed hand-out, without waiting for another event', async () => {
      const room = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' });
      const roomId = room.body.room_id as string;
      await call(hs, bridge, 'POST', `/_matrix/client/v3/join/${roomId}?${asUser('@irc_bob:localhost')}`, {});
      await hs.homeserver.context.appservices.settled();
      const store = hs.homeserver.context.storage.appservices;
      const eventIdsAfter = store.eventIdsAfter;
      store.eventIdsAfter = async () => {
        store.eventIdsAfter = eventIdsAfter;
        throw new Error('the disk hiccuped');
      };
      try {
        const sent = await call(
          hs,
          alice,
          'PUT',
          `/_matrix/client/v3/rooms/${roomId}/send/m.room.message/f1`,
          {
            msgtype: 'm.text',
            body: 'after a hiccup',
          },
        );
        await until(
          async () =>
            service
              .transactions()
              .some((txn) => txn.events.some((event) => event.event_id === sent.body.event_id))
              ? true
              : undefined,
          3000,
        );
      } finally {
        store.eventIdsAfter = eventIdsAfter;
      }
    });

    it('writes the hand-out position only with queued events', async () => {
      const room = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', {});
      const roomId = room.body.room_id as string;
      await hs.homeserver.context.appservices.settled();
      const store = hs.homeserver.context.storage.appservices;
      const enqueue = store.enqueue;
      let writesWithoutEvents = 0;
      store.enqueue = (items, position) => {
        if (items.length === 0) writesWithoutEvents++;
        return enqueue.call(store, items, position);
      };
      try {
        for (let i = 0; i < 5; i++) {
          await call(hs, alice, 'PUT', `/_matrix/client/v3/rooms/${roomId}/send/m.room.message/p${i}`, {
            msgtype: 'm.text',
            body: 'no service is interested',
          });
          await hs.homeserver.context.appservices.settled();
        }
      } finally {
        store.enqueue = enqueue;
      }
      expect(writesWithoutEvents).to.equal(0);
    });

    it('sends nothing about rooms it has no interest in', async () => {
      const room = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', {});
      const roomId = room.body.room_id as string;
      await call(hs, alice, 'PUT', `/_matrix/client/v3/rooms/${roomId}/send/m.room.message/private`, {
        msgtype: 'm.text',
        body: 'not for the bridge',
      });
      await hs.homeserver.context.appservices.settled();
      const all = service.transactions().flatMap((txn) => txn.events);
      expect(all.some((event) => event.room_id === roomId)).to.equal(false);
    });

    it('keeps an unaccepted transaction and its ID across a restart', async () => {
      const room = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' });
      const roomId = room.body.room_id as string;
      await call(hs, bridge, 'POST', `/_matrix/client/v3/join/${roomId}?${asUser('@irc_bob:localhost')}`, {});
      await hs.homeserver.context.appservices.settled();
      service.failTransactions = true;
      const sent = await call(hs, alice, 'PUT', `/_matrix/client/v3/rooms/${roomId}/send/m.room.message/r1`, {
        msgtype: 'm.text',
        body: 'survives a restart',
      });
      const eventId = sent.body.event_id as string;
      const carrying = () =>
        service.transactions().filter((txn) => txn.events.some((e) => e.event_id === eventId));
      await until(async () => (carrying().length > 0 ? true : undefined));
      hs = await hs.restart({ configure });
      const triedBefore = carrying().length;
      service.failTransactions = false;
      await until(async () => (carrying().length > triedBefore ? true : undefined));
      await hs.homeserver.context.appservices.settled();
      // Resent after the restart under the ID it had, with the same events; accepted once.
      const tries = carrying();
      expect(new Set(tries.map((txn) => txn.txnId)).size).to.equal(1);
      for (const txn of tries) expect(txn.events).to.deep.equal(tries[0]!.events);
      expect(tries.length).to.equal(triedBefore + 1);
    });
  });

  describe('ping', () => {
    const ping = (token: { accessToken: string }, id: string, body: object = { transaction_id: 'meow' }) =>
      call(hs, token, 'POST', `/_matrix/client/v1/appservice/${id}/ping`, body);

    it('calls the service with its hs_token and says how long it took', async () => {
      const answer = await ping(bridge, 'irc');
      expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
      expect(answer.body.duration_ms).to.be.a('number');
      const request = service.requests.filter((r) => r.path === '/_matrix/app/v1/ping').at(-1)!;
      expect(request.method).to.equal('POST');
      expect(request.authorization).to.equal(`Bearer ${HS_TOKEN}`);
      expect(request.body).to.deep.equal({ transaction_id: 'meow' });
    });

    it('reports the status and body of a refusal with 502 M_BAD_STATUS', async () => {
      service.pingAnswers.push(403);
      const answer = await ping(bridge, 'irc');
      expect([answer.status, answer.body.errcode, answer.body.status]).to.deep.equal([
        502,
        'M_BAD_STATUS',
        403,
      ]);
      expect(JSON.parse(answer.body.body as string)).to.include({ errcode: 'M_FORBIDDEN' });
    });

    it('says 504 M_CONNECTION_TIMEOUT when the service does not answer in time', async () => {
      service.pingAnswers.push('hang');
      const answer = await ping(bridge, 'irc');
      expect([answer.status, answer.body.errcode]).to.deep.equal([504, 'M_CONNECTION_TIMEOUT']);
    });

    it('says 502 M_CONNECTION_FAILED when the service cannot be reached', async () => {
      const answer = await ping({ accessToken: DOWN_AS_TOKEN }, 'down');
      expect([answer.status, answer.body.errcode]).to.deep.equal([502, 'M_CONNECTION_FAILED']);
    });

    it('says 400 M_URL_NOT_SET for a service without a URL', async () => {
      const answer = await ping({ accessToken: QUIET_AS_TOKEN }, 'quiet');
      expect([answer.status, answer.body.errcode]).to.deep.equal([400, 'M_URL_NOT_SET']);
    });

    it('is only for the service itself', async () => {
      const other = await ping(bridge, 'quiet');
      expect([other.status, other.body.errcode]).to.deep.equal([403, 'M_FORBIDDEN']);
      const user = await ping(alice, 'irc');
      expect([user.status, user.body.errcode]).to.deep.equal([403, 'M_FORBIDDEN']);
    });
  });

  describe('third-party lookups', () => {
    it('asks the services that declare a protocol, and merges their answers', async () => {
      const protocol = {
        user_fields: ['nickname'],
        location_fields: ['channel'],
        field_types: {},
        icon: 'mxc://localhost/irc',
        instances: [{ network_id: 'libera', desc: 'Libera Chat', fields: { network: 'libera' } }],
      };
      service.thirdPartyAnswers.set('/_matrix/app/v1/thirdparty/protocol/irc', protocol);
      const users = [{ userid: '@irc_bob:localhost', protocol: 'irc', fields: { nickname: 'bob' } }];
      service.thirdPartyAnswers.set('/_matrix/app/v1/thirdparty/user/irc?nickname=bob', users);
      const locations = [{ alias: '#irc_chan:localhost', protocol: 'irc', fields: { channel: '#chan' } }];
      service.thirdPartyAnswers.set(
        '/_matrix/app/v1/thirdparty/location?alias=%23irc_chan%3Alocalhost',
        locations,
      );

      const all = await call(hs, alice, 'GET', '/_matrix/client/v3/thirdparty/protocols');
      expect(all.status, JSON.stringify(all.body)).to.equal(200);
      expect(all.body).to.have.keys(['irc']);
      expect(all.body.irc).to.deep.equal({
        ...protocol,
        instances: [{ ...protocol.instances[0], instance_id: 'irc|libera' }],
      });
      const one = await call(hs, alice, 'GET', '/_matrix/client/v3/thirdparty/protocol/irc');
      expect(one.body).to.deep.equal(all.body.irc);
      const unknown = await call(hs, alice, 'GET', '/_matrix/client/v3/thirdparty/protocol/gitter');
      expect([unknown.status, unknown.body.errcode]).to.deep.equal([404, 'M_NOT_FOUND']);

      const found = await call(hs, alice, 'GET', '/_matrix/client/v3/thirdparty/user/irc?nickname=bob');
      expect([found.status, found.body]).to.deep.equal([200, users]);
      const request = service.requests.find((r) => r.path.startsWith('/_matrix/app/v1/thirdparty/user/irc'))!;
      expect(request.authorization).to.equal(`Bearer ${HS_TOKEN}`);
      const none = await call(hs, alice, 'GET', '/_matrix/client/v3/thirdparty/user/irc?nickname=nobody');
      expect([none.status, none.body]).to.deep.equal([200, []]);
      const reverse = await call(
        hs,
        alice,
        'GET',
        '/_matrix/client/v3/thirdparty/location?alias=%23irc_chan%3Alocalhost',
      );
      expect([reverse.status, reverse.body]).to.deep.equal([200, locations]);
    });
  });

  describe('room alias queries', () => {
    it('asks the service about an unknown alias of its namespace, and uses the room it makes', async () => {
      const alias = '#irc_lazy:localhost';
      const queryPath = `/_matrix/app/v1/rooms/${encodeURIComponent(alias)}`;
      let made: string | undefined;
      service.handlers.set(queryPath, async () => {
        // The bridge makes the room while the homeserver waits, as the spec describes.
        const room = await call(hs, bridge, 'POST', '/_matrix/client/v3/createRoom', {
          room_alias_name: 'irc_lazy',
          preset: 'public_chat',
        });
        made = room.body.room_id as string;
        return room.status;
      });
      const resolved = await call(
        hs,
        alice,
        'GET',
        `/_matrix/client/v3/directory/room/${encodeURIComponent(alias)}`,
      );
      expect(resolved.status, JSON.stringify(resolved.body)).to.equal(200);
      expect(resolved.body.room_id).to.equal(made);
      const joined = await call(
        hs,
        alice,
        'POST',
        `/_matrix/client/v3/join/${encodeURIComponent(alias)}`,
        {},
      );
      expect([joined.status, joined.body.room_id]).to.deep.equal([200, made]);
      const queries = () => service.requests.filter((r) => r.path === queryPath);
      expect(queries()).to.have.length(1);
      expect(queries()[0]!.authorization).to.equal(`Bearer ${HS_TOKEN}`);

      // Outside every alias namespace, or refused by the service: not found, as before.
      const outside = await call(hs, alice, 'GET', '/_matrix/client/v3/directory/room/%23nothing:localhost');
      expect(outside.status).to.equal(404);
      const refused = await call(hs, alice, 'GET', '/_matrix/client/v3/directory/room/%23irc_none:localhost');
      expect(refused.status).to.equal(404);
      expect(
        service.requests.some((r) => r.path === '/_matrix/app/v1/rooms/%23irc_none%3Alocalhost'),
      ).to.equal(true);
    });
  });

  describe('third-party network directories', () => {
    it('lists a room under its network only, and with include_all_networks', async () => {
      const room = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', {
        name: 'Bridged channel',
      });
      const roomId = room.body.room_id as string;
      const listPath = `/_matrix/client/v3/directory/list/appservice/irc/${encodeURIComponent(roomId)}`;
      const byUser = await call(hs, alice, 'PUT', listPath, { visibility: 'public' });
      expect([byUser.status, byUser.body.errcode]).to.deep.equal([403, 'M_FORBIDDEN']);
      const listed = await call(hs, bridge, 'PUT', listPath, { visibility: 'public' });
      expect(listed.status, JSON.stringify(listed.body)).to.equal(200);

      const roomsOf = async (body: object) => {
        const page = await call(hs, alice, 'POST', '/_matrix/client/v3/publicRooms', body);
        expect(page.status, JSON.stringify(page.body)).to.equal(200);
        return (page.body.chunk as { room_id: string }[]).map((chunk) => chunk.room_id);
      };
      expect(await roomsOf({ third_party_instance_id: 'irc|irc' })).to.deep.equal([roomId]);
      expect(await roomsOf({ third_party_instance_id: 'irc|other' })).to.deep.equal([]);
      expect(await roomsOf({})).to.not.include(roomId);
      expect(await roomsOf({ include_all_networks: true })).to.include(roomId);

      await call(hs, bridge, 'PUT', listPath, { visibility: 'private' });
      expect(await roomsOf({ third_party_instance_id: 'irc|irc' })).to.deep.equal([]);
      const missing = await call(
        hs,
        bridge,
        'PUT',
        '/_matrix/client/v3/directory/list/appservice/irc/!nowhere:localhost',
        { visibility: 'public' },
      );
      expect(missing.status).to.equal(404);
    });
  });
});

describe('Application service registrations at start-up', () => {
  it('refuses to start with a bad regex or a duplicated as_token, naming the file', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'myelin-appservice-bad-'));
    try {
      const good = registrationYaml({
        id: 'one',
        url: null,
        asToken: 'token-one',
        hsToken: 'hs-one',
        sender: 'onebot',
      });
      await writeFile(path.join(folder, 'one.yaml'), good);
      await writeFile(
        path.join(folder, 'bad-regex.yaml'),
        good.replace('"#irc_.*"', '"#irc_(("').replace('id: one', 'id: two'),
      );
      await writeFile(
        path.join(folder, 'same-token.yaml'),
        good.replace('id: one', 'id: three').replace('onebot', 'threebot'),
      );
      const startWith = async (files: string[]) => {
        try {
          const hs = await TestHomeserver.start({
            configure: (config) => {
              config.app_service_config_files = files.map((file) => path.join(folder, file));
            },
          });
          await hs.stop();
        } catch (error) {
          return (error as Error).message;
        }
        throw new Error('the server started');
      };
      expect(await startWith(['bad-regex.yaml'])).to.match(
        /bad-regex\.yaml: 'namespaces\.aliases\[0\]\.regex' is not a valid regular expression/,
      );
      expect(await startWith(['one.yaml', 'same-token.yaml'])).to.match(
        /same-token\.yaml: 'as_token' is the same as in .*one\.yaml/,
      );
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('Application service rate limits', function () {
  this.timeout(30_000);
  let folder: string;
  let hs: TestHomeserver;

  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'myelin-appservice-limits-'));
    const common = { url: null, rateLimited: true };
    await writeFile(
      path.join(folder, 'free.yaml'),
      registrationYaml({
        ...common,
        id: 'free',
        asToken: 'free-as',
        hsToken: 'free-hs',
        sender: 'freebot',
        rateLimited: false,
      }),
    );
    await writeFile(
      path.join(folder, 'strict.yaml'),
      registrationYaml({
        ...common,
        id: 'strict',
        asToken: 'strict-as',
        hsToken: 'strict-hs',
        sender: 'strictbot',
        prefix: 'strict_',
      }),
    );
    hs = await TestHomeserver.start({
      configure: (config) => {
        fastAccounts(config);
        config.rate_limits.enabled = true;
        config.rate_limits.client = { per_second: 0.01, burst: 3 };
        config.app_service_config_files = [path.join(folder, 'free.yaml'), path.join(folder, 'strict.yaml')];
      },
    });
    for (const [token, username] of [
      ['free-as', 'irc_user'],
      ['strict-as', 'strict_user'],
    ] as const) {
      const made = await call(hs, { accessToken: token }, 'POST', '/_matrix/client/v3/register', {
        type: 'm.login.application_service',
        username,
        inhibit_login: true,
      });
      expect(made.status, JSON.stringify(made.body)).to.equal(200);
    }
  });

  after(async () => {
    await hs?.stop();
    await rm(folder, { recursive: true, force: true });
  });

  const statuses = async (token: string, query = '') => {
    const seen: number[] = [];
    for (let i = 0; i < 6; i++)
      seen.push(
        (await call(hs, { accessToken: token }, 'GET', `/_matrix/client/v3/account/whoami${query}`)).status,
      );
    return seen;
  };

  it('spares the users of a service with rate_limited: false, and every sender', async () => {
    expect(await statuses('free-as', `?${asUser('@irc_user:localhost')}`)).to.deep.equal([
      200, 200, 200, 200, 200, 200,
    ]);
    expect(await statuses('strict-as')).to.deep.equal([200, 200, 200, 200, 200, 200]);
    expect(await statuses('strict-as', `?${asUser('@strict_user:localhost')}`)).to.include(429);
  });
});
