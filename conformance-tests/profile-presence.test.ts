import { expect } from 'chai';
import { pino } from 'pino';
import type { ProfileChange } from '../server/accounts/profile-service.js';
import type { MyelinConfig } from '../server/config/index.js';
import { createHomeserver } from '../server/homeserver.js';
import {
  call,
  createAccount,
  createUser,
  fastAccounts,
  setJoinRuleFixture,
  setMembershipFixture,
  type TestUser,
} from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const profilePath = (userId: string, key?: string) =>
  `/_matrix/client/v3/profile/${encodeURIComponent(userId)}${key === undefined ? '' : `/${encodeURIComponent(key)}`}`;
const presencePath = (userId: string) => `/_matrix/client/v3/presence/${encodeURIComponent(userId)}/status`;
const SEARCH = '/_matrix/client/v3/user_directory/search';
const CAPABILITIES = '/_matrix/client/v3/capabilities';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Profiles (client-server "Profiles")', () => {
  let hs: TestHomeserver;
  const changes: ProfileChange[] = [];
  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    hs.homeserver.context.onProfileChanged.push(async (change) => {
      changes.push(change);
    });
  });
  after(() => hs.stop());

  it('sets, reads and removes displayname, avatar_url, m.tz and custom fields', async () => {
    const alice = await createUser(hs, 'profile-alice');
    const set = (key: string, value: unknown) =>
      call(hs, alice, 'PUT', profilePath(alice.userId, key), { [key]: value });
    expect((await set('displayname', 'Alice 🌻')).status).to.equal(200);
    expect((await set('avatar_url', 'mxc://localhost/abcDEF123_-')).status).to.equal(200);
    expect((await set('m.tz', 'Europe/Paris')).status).to.equal(200);
    const custom = { pronouns: ['she', 'her'], nested: { n: 1, ok: true } };
    expect((await set('org.example.about', custom)).status).to.equal(200);

    const whole = await call(hs, undefined, 'GET', profilePath(alice.userId));
    expect(whole.status).to.equal(200);
    expect(whole.body).to.deep.equal({
      displayname: 'Alice 🌻',
      avatar_url: 'mxc://localhost/abcDEF123_-',
      'm.tz': 'Europe/Paris',
      'org.example.about': custom,
    });
    const field = await call(hs, alice, 'GET', profilePath(alice.userId, 'org.example.about'));
    expect(field).to.deep.equal({ status: 200, body: { 'org.example.about': custom } });

    expect((await call(hs, alice, 'DELETE', profilePath(alice.userId, 'org.example.about'))).status).to.equal(
      200,
    );
    const gone = await call(hs, alice, 'GET', profilePath(alice.userId, 'org.example.about'));
    expect(gone.status).to.equal(404);
    expect(gone.body.errcode).to.equal('M_NOT_FOUND');
    expect((await call(hs, alice, 'DELETE', profilePath(alice.userId, 'displayname'))).status).to.equal(200);
    expect((await call(hs, alice, 'DELETE', profilePath(alice.userId, 'org.example.never'))).status).to.equal(
      200,
    );
    expect((await call(hs, alice, 'GET', profilePath(alice.userId))).body).to.deep.equal({
      avatar_url: 'mxc://localhost/abcDEF123_-',
      'm.tz': 'Europe/Paris',
    });
    // An empty avatar_url removes it, as clients send it.
    expect((await set('avatar_url', '')).status).to.equal(200);
    expect((await call(hs, alice, 'GET', profilePath(alice.userId))).body).to.deep.equal({
      'm.tz': 'Europe/Paris',
    });
  });

  it('tells onProfileChanged listeners (the hook #4 updates membership events from)', async () => {
    const bob = await createUser(hs, 'profile-bob');
    changes.length = 0;
    await call(hs, bob, 'PUT', profilePath(bob.userId, 'avatar_url'), { avatar_url: 'mxc://localhost/bob' });
    await call(hs, bob, 'PUT', profilePath(bob.userId, 'displayname'), { displayname: 'Bob' });
    expect(changes).to.deep.equal([
      {
        userId: bob.userId,
        key: 'avatar_url',
        value: 'mxc://localhost/bob',
        displayName: null,
        avatarUrl: 'mxc://localhost/bob',
      },
      {
        userId: bob.userId,
        key: 'displayname',
        value: 'Bob',
        displayName: 'Bob',
        avatarUrl: 'mxc://localhost/bob',
      },
    ]);
  });

  it("refuses changes to someone else's profile with 403 M_FORBIDDEN", async () => {
    const mallory = await createUser(hs, 'mallory');
    const victim = await createUser(hs, 'victim', { displayName: 'Victim' });
    for (const [method, body] of [
      ['PUT', { displayname: 'pwned' }],
      ['DELETE', undefined],
    ] as const) {
      const res = await call(hs, mallory, method, profilePath(victim.userId, 'displayname'), body);
      expect(res.status, method).to.equal(403);
      expect(res.body.errcode).to.equal('M_FORBIDDEN');
    }
    expect((await call(hs, mallory, 'GET', profilePath(victim.userId))).body).to.deep.equal({
      displayname: 'Victim',
    });
    expect(
      (await call(hs, undefined, 'PUT', profilePath(victim.userId, 'displayname'), { displayname: 'x' }))
        .status,
    ).to.equal(401);
  });

  it('validates values: avatar_url must be an mxc:// URI, displayname a string, no nulls', async () => {
    const carol = await createUser(hs, 'profile-carol');
    const cases: [string, unknown][] = [
      ['avatar_url', 'https://example.org/cat.png'],
      ['avatar_url', 'mxc://'],
      ['avatar_url', 'mxc://localhost/with/slash'],
      ['avatar_url', 42],
      ['displayname', { text: 'x' }],
      ['displayname', 'd'.repeat(257)],
      ['displayname', null],
      ['m.tz', 7],
      ['org.example.field', null],
    ];
    for (const [key, value] of cases) {
      const res = await call(hs, carol, 'PUT', profilePath(carol.userId, key), { [key]: value });
      expect(res.status, `${key}=${JSON.stringify(value)}`).to.equal(400);
      expect(res.body.errcode, `${key}=${JSON.stringify(value)}`).to.equal('M_INVALID_PARAM');
    }
    const missing = await call(hs, carol, 'PUT', profilePath(carol.userId, 'displayname'), {
      avatar_url: 'mxc://a/b',
    });
    expect(missing.status).to.equal(400);
    expect(missing.body.errcode).to.equal('M_MISSING_PARAM');
    expect((await call(hs, carol, 'GET', profilePath(carol.userId))).body).to.deep.equal({});
  });

  it('checks key names: at most 255 bytes (M_KEY_TOO_LARGE), namespaced grammar (M_INVALID_PARAM)', async () => {
    const dan = await createUser(hs, 'profile-dan');
    const longKey = `org.example.${'k'.repeat(244)}`;
    expect(Buffer.byteLength(longKey)).to.equal(256);
    const tooLong = await call(hs, dan, 'PUT', profilePath(dan.userId, longKey), { [longKey]: 1 });
    expect(tooLong.status).to.equal(400);
    expect(tooLong.body.errcode).to.equal('M_KEY_TOO_LARGE');
    const okKey = longKey.slice(0, 255);
    expect((await call(hs, dan, 'PUT', profilePath(dan.userId, okKey), { [okKey]: 1 })).status).to.equal(200);
    for (const key of ['Org.Example', '1abc', 'org.example.ünïcode', 'with space', '_x']) {
      const res = await call(hs, dan, 'PUT', profilePath(dan.userId, key), { [key]: 1 });
      expect(res.status, key).to.equal(400);
      expect(res.body.errcode, key).to.equal('M_INVALID_PARAM');
      expect((await call(hs, dan, 'GET', profilePath(dan.userId, key))).status, key).to.equal(400);
    }
  });

  it('keeps the whole profile within 64 KiB: M_PROFILE_TOO_LARGE and nothing stored', async () => {
    const erin = await createUser(hs, 'profile-erin');
    const huge = await call(hs, erin, 'PUT', profilePath(erin.userId, 'org.example.huge'), {
      'org.example.huge': 'h'.repeat(70_000),
    });
    expect(huge.status).to.equal(400);
    expect(huge.body.errcode).to.equal('M_PROFILE_TOO_LARGE');

    const half = 'a'.repeat(40_000);
    expect(
      (await call(hs, erin, 'PUT', profilePath(erin.userId, 'org.example.one'), { 'org.example.one': half }))
        .status,
    ).to.equal(200);
    const second = await call(hs, erin, 'PUT', profilePath(erin.userId, 'org.example.two'), {
      'org.example.two': half,
    });
    expect(second.status).to.equal(400);
    expect(second.body.errcode).to.equal('M_PROFILE_TOO_LARGE');
    // Replacing a field counts its new size, not old plus new.
    expect(
      (
        await call(hs, erin, 'PUT', profilePath(erin.userId, 'org.example.one'), {
          'org.example.one': `${half}b`,
        })
      ).status,
    ).to.equal(200);
    expect(Object.keys((await call(hs, erin, 'GET', profilePath(erin.userId))).body)).to.deep.equal([
      'org.example.one',
    ]);
  });

  it('answers 404 M_NOT_FOUND for unknown, remote and deactivated users and 400 for a malformed user ID', async () => {
    const frank = await createUser(hs, 'profile-frank');
    const gone = await createAccount(hs, 'profile-gone', { displayName: 'Gone' });
    await hs.homeserver.context.storage.accounts.setDeactivated(gone, true);
    for (const userId of ['@nobody:localhost', '@someone:elsewhere.example', gone]) {
      const res = await call(hs, frank, 'GET', profilePath(userId));
      expect(res.status, userId).to.equal(404);
      expect(res.body.errcode).to.equal('M_NOT_FOUND');
      expect((await call(hs, frank, 'GET', profilePath(userId, 'displayname'))).status, userId).to.equal(404);
    }
    const bad = await call(hs, frank, 'GET', profilePath('not-a-user-id'));
    expect(bad.status).to.equal(400);
    expect(bad.body.errcode).to.equal('M_INVALID_PARAM');
  });

  it('never answers 500 to malformed profile requests', async () => {
    const gina = await createUser(hs, 'profile-gina');
    const bodies = [
      '',
      '{',
      '[]',
      '"displayname"',
      'null',
      '{"displayname":',
      JSON.stringify({ displayname: 'x'.repeat(20_000) }),
    ];
    for (const body of bodies) {
      const res = await call(hs, gina, 'PUT', profilePath(gina.userId, 'displayname'), body);
      expect(res.status, body.slice(0, 30)).to.be.within(400, 499);
    }
    const weird = await call(hs, gina, 'PUT', `${profilePath(gina.userId)}/%E0%A4%A`, { x: 1 });
    expect(weird.status).to.be.within(400, 499);
  });
});

function presenceConfig(config: MyelinConfig): void {
  fastAccounts(config);
  config.presence.idle_after_ms = 1000;
  config.presence.offline_after_ms = 2000;
}

describe('Presence (client-server "Presence")', () => {
  let hs: TestHomeserver;
  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
  });
  after(() => hs.stop());

  it('lets a user set and read their own presence with a status message', async () => {
    const alice = await createUser(hs, 'presence-alice');
    const set = await call(hs, alice, 'PUT', presencePath(alice.userId), {
      presence: 'online',
      status_msg: 'Working',
    });
    expect(set).to.deep.equal({ status: 200, body: {} });
    const got = await call(hs, alice, 'GET', presencePath(alice.userId));
    expect(got.status).to.equal(200);
    expect(got.body).to.include({ presence: 'online', status_msg: 'Working', currently_active: true });
    expect(got.body.last_active_ago).to.be.a('number').within(0, 5000);

    await call(hs, alice, 'PUT', presencePath(alice.userId), { presence: 'unavailable' });
    const away = await call(hs, alice, 'GET', presencePath(alice.userId));
    // A status message left out is cleared; a chosen `unavailable` holds while the user keeps making requests.
    expect(away.body.presence).to.equal('unavailable');
    expect(away.body).to.not.have.property('status_msg');
    expect(away.body).to.not.have.property('currently_active');
  });

  it('a user who never set presence reads as offline', async () => {
    const quiet = await createUser(hs, 'presence-quiet');
    const observer = await createUser(hs, 'presence-observer');
    await setMembershipFixture(hs, '!quiet-room:localhost', quiet.userId, 'join');
    await setMembershipFixture(hs, '!quiet-room:localhost', observer.userId, 'join');
    // The quiet user's own requests count as activity, so ask about a user who made none.
    const other = await createAccount(hs, 'presence-never');
    await setMembershipFixture(hs, '!quiet-room:localhost', other, 'join');
    const res = await call(hs, observer, 'GET', presencePath(other));
    expect(res).to.deep.equal({ status: 200, body: { presence: 'offline' } });
  });

  it("refuses to set someone else's presence and bad states", async () => {
    const bob = await createUser(hs, 'presence-bob');
    const carol = await createUser(hs, 'presence-carol');
    const res = await call(hs, bob, 'PUT', presencePath(carol.userId), { presence: 'online' });
    expect(res.status).to.equal(403);
    expect(res.body.errcode).to.equal('M_FORBIDDEN');
    for (const body of [{ presence: 'busy' }, {}, { presence: 'online', status_msg: 5 }, { presence: 1 }]) {
      const bad = await call(hs, bob, 'PUT', presencePath(bob.userId), body);
      expect(bad.status, JSON.stringify(body)).to.equal(400);
      expect(bad.body.errcode).to.be.oneOf(['M_BAD_JSON', 'M_MISSING_PARAM']);
    }
  });

  it('is visible to a user who shares a room, and 403 M_FORBIDDEN to a stranger', async () => {
    const dora = await createUser(hs, 'presence-dora');
    const friend = await createUser(hs, 'presence-friend');
    const stranger = await createUser(hs, 'presence-stranger');
    await call(hs, dora, 'PUT', presencePath(dora.userId), { presence: 'online', status_msg: 'hi friends' });

    const refused = await call(hs, friend, 'GET', presencePath(dora.userId));
    expect(refused.status).to.equal(403);
    expect(refused.body.errcode).to.equal('M_FORBIDDEN');

    const room = '!shared:localhost';
    await setMembershipFixture(hs, room, dora.userId, 'join');
    await setMembershipFixture(hs, room, friend.userId, 'join');
    await setMembershipFixture(hs, room, stranger.userId, 'invite');
    const seen = await call(hs, friend, 'GET', presencePath(dora.userId));
    expect(seen.status).to.equal(200);
    expect(seen.body).to.include({ presence: 'online', status_msg: 'hi friends' });
    const invited = await call(hs, stranger, 'GET', presencePath(dora.userId));
    expect(invited.status, 'an invite is not a shared room').to.equal(403);

    await setMembershipFixture(hs, room, friend.userId, 'leave');
    expect((await call(hs, friend, 'GET', presencePath(dora.userId))).status).to.equal(403);
  });

  it('answers 404 for an unknown user and 400 for a malformed user ID', async () => {
    const eve = await createUser(hs, 'presence-eve');
    const unknown = await call(hs, eve, 'GET', presencePath('@nobody:localhost'));
    expect(unknown.status).to.equal(404);
    expect(unknown.body.errcode).to.equal('M_NOT_FOUND');
    const bad = await call(hs, eve, 'GET', presencePath('nobody'));
    expect(bad.status).to.equal(400);
  });

  it('delivers changes on the presence stream to users who share a room, not to strangers', async () => {
    const presence = hs.homeserver.context.presence;
    const fred = await createUser(hs, 'stream-fred');
    const mate = await createUser(hs, 'stream-mate');
    const loner = await createUser(hs, 'stream-loner');
    await setMembershipFixture(hs, '!stream:localhost', fred.userId, 'join');
    await setMembershipFixture(hs, '!stream:localhost', mate.userId, 'join');
    const heard: string[] = [];
    const unsubscribe = presence.onPresenceChanged((record) =>
      heard.push(`${record.userId}:${record.state}`),
    );
    const start = (await presence.presenceChangesFor(mate.userId, 0)).position;

    await call(hs, fred, 'PUT', presencePath(fred.userId), { presence: 'unavailable', status_msg: 'lunch' });
    unsubscribe();
    expect(heard).to.include(`${fred.userId}:unavailable`);
    const forMate = await presence.presenceChangesFor(mate.userId, start);
    expect(forMate.changes.map((c) => [c.userId, c.state, c.statusMsg])).to.deep.include([
      fred.userId,
      'unavailable',
      'lunch',
    ]);
    expect(forMate.position).to.be.greaterThan(start);
    const forLoner = await presence.presenceChangesFor(loner.userId, start);
    expect(forLoner.changes.map((c) => c.userId)).to.not.include(fred.userId);
    expect((await presence.presenceChangesFor(mate.userId, forMate.position)).changes).to.deep.equal([]);
  });
});

describe('Presence timers and restarts', () => {
  it('goes unavailable after idle_after_ms and offline after offline_after_ms; activity brings the user back', async function () {
    this.timeout(20_000);
    const hs = await TestHomeserver.start({ configure: presenceConfig });
    try {
      const idle = await createUser(hs, 'idler');
      const watcher = await createUser(hs, 'watcher');
      await setMembershipFixture(hs, '!timers:localhost', idle.userId, 'join');
      await setMembershipFixture(hs, '!timers:localhost', watcher.userId, 'join');
      await call(hs, idle, 'PUT', presencePath(idle.userId), { presence: 'online' });
      const seen = async () => (await call(hs, watcher, 'GET', presencePath(idle.userId))).body;

      expect((await seen()).presence).to.equal('online');
      await waitFor(async () => (await seen()).presence === 'unavailable', 3000);
      const idleView = await seen();
      expect(idleView).to.not.have.property('currently_active');
      expect(idleView.last_active_ago).to.be.at.least(1000);
      await waitFor(async () => (await seen()).presence === 'offline', 4000);

      // Any authenticated request of the user counts as activity.
      expect((await call(hs, idle, 'GET', '/_matrix/client/v3/account/whoami')).status).to.equal(200);
      await waitFor(async () => (await seen()).presence === 'online', 2000);
      expect((await seen()).currently_active).to.equal(true);
    } finally {
      await hs.stop();
    }
  });

  it('keeps presence across a restart', async function () {
    this.timeout(20_000);
    const hs = await TestHomeserver.start({ configure: fastAccounts });
    try {
      const ivy = await createUser(hs, 'restart-ivy');
      await call(hs, ivy, 'PUT', presencePath(ivy.userId), {
        presence: 'unavailable',
        status_msg: 'on holiday',
      });
      await hs.homeserver.stop();

      const again = await createHomeserver(hs.config, { logger: pino({ level: 'silent' }) });
      try {
        const { ports } = await again.start();
        const res = await fetch(`http://127.0.0.1:${ports[0]}${presencePath(ivy.userId)}`, {
          headers: { Authorization: `Bearer ${ivy.accessToken}` },
        });
        expect(res.status).to.equal(200);
        expect(await res.json()).to.include({ presence: 'unavailable', status_msg: 'on holiday' });
      } finally {
        await again.stop();
      }
    } finally {
      await hs.stop();
    }
  });

  it('with presence disabled accepts PUT, tracks nothing and reads everyone as offline', async () => {
    const hs = await TestHomeserver.start({
      configure: (config) => {
        fastAccounts(config);
        config.presence.enabled = false;
      },
    });
    try {
      const jo = await createUser(hs, 'disabled-jo');
      expect(
        (await call(hs, jo, 'PUT', presencePath(jo.userId), { presence: 'online', status_msg: 'x' })).status,
      ).to.equal(200);
      expect(await call(hs, jo, 'GET', presencePath(jo.userId))).to.deep.equal({
        status: 200,
        body: { presence: 'offline' },
      });
      expect(await hs.homeserver.context.storage.presence.getPresence(jo.userId)).to.equal(null);
    } finally {
      await hs.stop();
    }
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(100);
  }
}

describe('User directory (client-server "User Directory")', () => {
  async function search(hs: TestHomeserver, user: TestUser, body: unknown) {
    return call(hs, user, 'POST', SEARCH, body);
  }
  const ids = (body: Record<string, unknown>) =>
    (body.results as { user_id: string }[]).map((r) => r.user_id);

  describe('over users who share a room or are in public rooms', () => {
    let hs: TestHomeserver;
    let searcher: TestUser;
    before(async () => {
      hs = await TestHomeserver.start({ configure: fastAccounts });
      searcher = await createUser(hs, 'dir-searcher');
      await createAccount(hs, 'dir-private-mate', { displayName: 'Zebra Mate' });
      await createAccount(hs, 'dir-public', { displayName: 'Zebra Public' });
      await createAccount(hs, 'dir-hidden', { displayName: 'Zebra Hidden' });
      const gone = await createAccount(hs, 'dir-deactivated', { displayName: 'Zebra Gone' });
      const guest = await createAccount(hs, 'dir-guest', { displayName: 'Zebra Guest', isGuest: true });
      await hs.homeserver.context.storage.accounts.setDeactivated(gone, true);

      await setMembershipFixture(hs, '!private:localhost', searcher.userId, 'join');
      await setMembershipFixture(hs, '!private:localhost', '@dir-private-mate:localhost', 'join');
      await setJoinRuleFixture(hs, '!private:localhost', 'invite');
      await setJoinRuleFixture(hs, '!public:localhost', 'public');
      for (const member of ['@dir-public:localhost', gone, guest]) {
        await setMembershipFixture(hs, '!public:localhost', member, 'join');
      }
    });
    after(() => hs.stop());

    it('finds room-mates and public-room members by display name, case-insensitively, never deactivated or guest accounts', async () => {
      const res = await search(hs, searcher, { search_term: 'zEbRa' });
      expect(res.status).to.equal(200);
      expect(ids(res.body)).to.deep.equal(['@dir-private-mate:localhost', '@dir-public:localhost']);
      expect(res.body.limited).to.equal(false);
      expect((res.body.results as Record<string, unknown>[])[0]).to.deep.equal({
        user_id: '@dir-private-mate:localhost',
        display_name: 'Zebra Mate',
      });
    });

    it('matches user IDs and honours the limit', async () => {
      const byId = await search(hs, searcher, { search_term: 'DIR-PUB' });
      expect(ids(byId.body)).to.deep.equal(['@dir-public:localhost']);
      const limited = await search(hs, searcher, { search_term: 'zebra', limit: 1 });
      expect(ids(limited.body)).to.deep.equal(['@dir-private-mate:localhost']);
      expect(limited.body.limited).to.equal(true);
    });

    it('finds a user once they join a public room', async () => {
      expect(ids((await search(hs, searcher, { search_term: 'hidden' })).body)).to.deep.equal([]);
      await setMembershipFixture(hs, '!public:localhost', '@dir-hidden:localhost', 'join');
      expect(ids((await search(hs, searcher, { search_term: 'hidden' })).body)).to.deep.equal([
        '@dir-hidden:localhost',
      ]);
    });

    it('rejects malformed searches with 400, never 500', async () => {
      for (const body of [
        {},
        { search_term: 5 },
        { search_term: 'a', limit: -1 },
        { search_term: 'a', limit: 'ten' },
        '[]',
      ]) {
        const res = await search(hs, searcher, body);
        expect(res.status, JSON.stringify(body)).to.equal(400);
      }
      expect((await call(hs, undefined, 'POST', SEARCH, { search_term: 'a' })).status).to.equal(401);
    });
  });

  it('searches every local user with search_all_users, up to 50 results', async () => {
    const hs = await TestHomeserver.start({
      configure: (config) => {
        fastAccounts(config);
        config.user_directory.search_all_users = true;
      },
    });
    try {
      const searcher = await createUser(hs, 'all-searcher');
      for (let i = 0; i < 55; i++) await createAccount(hs, `all-user-${String(i).padStart(2, '0')}`);
      const some = await search(hs, searcher, { search_term: 'all-user-0' });
      expect(ids(some.body)).to.have.length(10);
      expect(some.body.limited).to.equal(false);
      const capped = await search(hs, searcher, { search_term: 'all-user', limit: 500 });
      expect(ids(capped.body)).to.have.length(50);
      expect(capped.body.limited).to.equal(true);
    } finally {
      await hs.stop();
    }
  });
});

describe('Capabilities (client-server "Capabilities negotiation")', () => {
  it('advertises what the server allows and every room version, 12 by default', async () => {
    const hs = await TestHomeserver.start({ configure: fastAccounts });
    try {
      const user = await createUser(hs, 'caps');
      expect((await call(hs, undefined, 'GET', CAPABILITIES)).status).to.equal(401);
      const res = await call(hs, user, 'GET', CAPABILITIES);
      expect(res.status).to.equal(200);
      const capabilities = res.body.capabilities as Record<string, unknown>;
      expect(capabilities).to.deep.include({
        'm.change_password': { enabled: true },
        'm.set_displayname': { enabled: true },
        'm.set_avatar_url': { enabled: true },
        'm.3pid_changes': { enabled: false },
        'm.get_login_token': { enabled: true },
        'm.profile_fields': { enabled: true },
      });
      const versions = capabilities['m.room_versions'] as {
        default: string;
        available: Record<string, string>;
      };
      expect(versions.default).to.equal('12');
      expect(versions.available).to.deep.equal(
        Object.fromEntries(Array.from({ length: 12 }, (_, i) => [String(i + 1), 'stable'])),
      );
    } finally {
      await hs.stop();
    }
  });
});
