/**
 * The small client-server modules: mutual rooms, TURN credentials, the support
 * well-known, third-party networks (no bridges), OpenID tokens and whois.
 */
import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

describe('Small client-server modules', () => {
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;

  before(async () => {
    hs = await TestHomeserver.start({
      configure(config) {
        fastAccounts(config);
        config.voip.turn_uris = ['turn:turn.example.org:3478?transport=udp'];
        config.voip.turn_shared_secret = 'coturn secret';
        config.voip.turn_user_lifetime_seconds = 600;
        config.well_known.support_contacts = [{ role: 'm.role.admin', email_address: 'admin@example.org' }];
        config.well_known.support_page = 'https://example.org/help';
      },
    });
    alice = await createUser(hs, 'sm-alice');
    bob = await createUser(hs, 'sm-bob');
    carol = await createUser(hs, 'sm-carol');
  });
  after(() => hs.stop());

  describe('GET /mutual_rooms', () => {
    it('lists exactly the rooms both users are joined to, in batches', async () => {
      const shared: string[] = [];
      for (let i = 0; i < 3; i++) {
        const created = await call(hs, alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat' });
        const roomId = created.body.room_id as string;
        if (i < 2) {
          await call(hs, bob, 'POST', `${V3}/join/${enc(roomId)}`, {});
          shared.push(roomId);
        }
      }
      // A room Bob left is not shared any more.
      const left = await call(hs, alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat' });
      await call(hs, bob, 'POST', `${V3}/join/${enc(left.body.room_id as string)}`, {});
      await call(hs, bob, 'POST', `${V3}/rooms/${enc(left.body.room_id as string)}/leave`, {});

      const res = await call(hs, alice, 'GET', `/_matrix/client/v1/mutual_rooms?user_id=${enc(bob.userId)}`);
      expect(res.status).to.equal(200);
      expect((res.body.joined as string[]).slice().sort()).to.deep.equal(shared.slice().sort());
      expect(res.body.count).to.equal(2);
      expect(res.body).not.to.have.property('next_batch');
      const none = await call(
        hs,
        alice,
        'GET',
        `/_matrix/client/v1/mutual_rooms?user_id=${enc(carol.userId)}`,
      );
      expect(none.body).to.deep.equal({ joined: [], count: 0 });
    });

    it('refuses a missing, malformed or own user ID with M_INVALID_PARAM', async () => {
      for (const query of ['', '?user_id=alice', `?user_id=${enc(alice.userId)}`]) {
        const res = await call(hs, alice, 'GET', `/_matrix/client/v1/mutual_rooms${query}`);
        expect(res.status, query).to.equal(400);
        expect(res.body.errcode, query).to.be.oneOf(['M_INVALID_PARAM', 'M_MISSING_PARAM']);
      }
    });
  });

  it('GET /voip/turnServer gives time-limited coturn REST credentials', async () => {
    const before = Math.floor(Date.now() / 1000);
    const res = await call(hs, alice, 'GET', `${V3}/voip/turnServer`);
    expect(res.status).to.equal(200);
    const { username, password, uris, ttl } = res.body as {
      username: string;
      password: string;
      uris: string[];
      ttl: number;
    };
    expect(uris).to.deep.equal(['turn:turn.example.org:3478?transport=udp']);
    expect(ttl).to.equal(600);
    const [expiry, user] = username.split(/:(.*)/s);
    expect(user).to.equal(alice.userId);
    expect(Number(expiry)).to.be.within(before + 600, before + 602);
    expect(password).to.equal(createHmac('sha1', 'coturn secret').update(username).digest('base64'));
    expect((await call(hs, undefined, 'GET', `${V3}/voip/turnServer`)).status).to.equal(401);
  });

  it('GET /.well-known/matrix/support lists the configured contacts and page', async () => {
    const res = await call(hs, undefined, 'GET', '/.well-known/matrix/support');
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({
      contacts: [{ role: 'm.role.admin', email_address: 'admin@example.org' }],
      support_page: 'https://example.org/help',
    });
  });

  it('third-party networks: no protocols, unknown protocol 404, reverse lookups empty', async () => {
    expect((await call(hs, alice, 'GET', `${V3}/thirdparty/protocols`)).body).to.deep.equal({});
    const unknown = await call(hs, alice, 'GET', `${V3}/thirdparty/protocol/irc`);
    expect(unknown.status).to.equal(404);
    expect(unknown.body.errcode).to.equal('M_NOT_FOUND');
    expect((await call(hs, alice, 'GET', `${V3}/thirdparty/location/irc`)).status).to.equal(404);
    const byAlias = await call(hs, alice, 'GET', `${V3}/thirdparty/location?alias=${enc('#a:localhost')}`);
    expect(byAlias.status).to.equal(200);
    expect(byAlias.body).to.deep.equal([]);
  });

  describe('OpenID', () => {
    it('a token requested by a user is exchanged by a third party for that user ID', async () => {
      const issued = await call(
        hs,
        alice,
        'POST',
        `${V3}/user/${enc(alice.userId)}/openid/request_token`,
        {},
      );
      expect(issued.status).to.equal(200);
      expect(issued.body).to.include({
        token_type: 'Bearer',
        matrix_server_name: 'localhost',
        expires_in: 3600,
      });
      const token = issued.body.access_token as string;
      const info = await call(
        hs,
        undefined,
        'GET',
        `/_matrix/federation/v1/openid/userinfo?access_token=${enc(token)}`,
      );
      expect(info.status).to.equal(200);
      expect(info.body).to.deep.equal({ sub: alice.userId });
      // It is not an access token.
      const asAccess = await hs.fetch(`${V3}/account/whoami`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(asAccess.status).to.equal(401);
    });

    it('refuses tokens for someone else, forged tokens and an access token', async () => {
      const other = await call(hs, alice, 'POST', `${V3}/user/${enc(bob.userId)}/openid/request_token`, {});
      expect(other.status).to.equal(403);
      for (const token of ['nonsense', alice.accessToken]) {
        const res = await call(
          hs,
          undefined,
          'GET',
          `/_matrix/federation/v1/openid/userinfo?access_token=${enc(token)}`,
        );
        expect(res.status).to.equal(401);
        expect(res.body.errcode).to.equal('M_UNKNOWN_TOKEN');
      }
    });
  });

  it('GET /admin/whois: a user sees their own devices; others may not look', async () => {
    const own = await call(hs, alice, 'GET', `${V3}/admin/whois/${enc(alice.userId)}`);
    expect(own.status).to.equal(200);
    expect(own.body.user_id).to.equal(alice.userId);
    expect(Object.keys(own.body.devices as object)).to.deep.equal([alice.deviceId]);
    const other = await call(hs, alice, 'GET', `${V3}/admin/whois/${enc(bob.userId)}`);
    expect(other.status).to.equal(403);
    expect(other.body.errcode).to.equal('M_FORBIDDEN');
  });
});
