/**
 * client-server "Account moderation": admins suspend and lock local accounts
 * (v1.18 /admin/suspend and /admin/lock); a locked account gets 401
 * M_USER_LOCKED (soft logout) everywhere but logout, a suspended one 403
 * M_USER_SUSPENDED for acting in rooms and on its profile, while reading goes on.
 */
import { expect } from 'chai';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';
import { WsClient } from './harness/ws-client.js';

const V3 = '/_matrix/client/v3';
const ADMIN = '/_matrix/client/v1/admin';
const enc = encodeURIComponent;

describe('Account moderation (suspend and lock)', () => {
  let hs: TestHomeserver;
  let admin: TestUser;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    admin = await createUser(hs, 'mod-admin');
    await hs.homeserver.context.storage.accounts.setAdmin(admin.userId, true);
    hs.homeserver.context.sessions.accountChanged(admin.userId);
    alice = await createUser(hs, 'mod-alice');
    bob = await createUser(hs, 'mod-bob');
    const created = await call(hs, bob, 'POST', `${V3}/createRoom`, { preset: 'public_chat' });
    roomId = created.body.room_id as string;
    await call(hs, alice, 'POST', `${V3}/join/${enc(roomId)}`, {});
  });
  after(() => hs.stop());

  const setFlag = (kind: 'suspend' | 'lock', who: TestUser, userId: string, value: boolean) =>
    call(hs, who, 'PUT', `${ADMIN}/${kind}/${enc(userId)}`, {
      [kind === 'suspend' ? 'suspended' : 'locked']: value,
    });

  it('only admins may read or change the flags; remote, unknown and admin targets are refused', async () => {
    const byUser = await call(hs, alice, 'GET', `${ADMIN}/suspend/${enc(bob.userId)}`);
    expect(byUser.status).to.equal(403);
    expect(byUser.body.errcode).to.equal('M_FORBIDDEN');
    // Authorisation first: a non-admin cannot tell whether an account exists.
    expect((await call(hs, alice, 'GET', `${ADMIN}/lock/${enc('@nobody:localhost')}`)).status).to.equal(403);
    const remote = await call(hs, admin, 'GET', `${ADMIN}/lock/${enc('@x:elsewhere.example')}`);
    expect(remote.status).to.equal(400);
    expect(remote.body.errcode).to.equal('M_INVALID_PARAM');
    const unknown = await call(hs, admin, 'GET', `${ADMIN}/lock/${enc('@nobody:localhost')}`);
    expect(unknown.status).to.equal(404);
    expect(unknown.body.errcode).to.equal('M_NOT_FOUND');
    expect((await setFlag('lock', admin, admin.userId, true)).status).to.equal(403);
    expect((await call(hs, admin, 'GET', `${ADMIN}/suspend/${enc(bob.userId)}`)).body).to.deep.equal({
      suspended: false,
    });
  });

  it('a suspended user reads and leaves, but cannot send, join, invite or change the profile', async () => {
    const sent = await call(hs, alice, 'PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/t1`, {
      msgtype: 'm.text',
      body: 'before',
    });
    expect(sent.status).to.equal(200);
    const bobs = await call(hs, bob, 'PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/t1`, {
      msgtype: 'm.text',
      body: 'from bob',
    });
    expect((await setFlag('suspend', admin, alice.userId, true)).body).to.deep.equal({ suspended: true });
    expect((await call(hs, admin, 'GET', `${ADMIN}/suspend/${enc(alice.userId)}`)).body.suspended).to.equal(
      true,
    );

    const refusals = [
      await call(hs, alice, 'PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/t2`, {
        msgtype: 'm.text',
        body: 'x',
      }),
      await call(hs, alice, 'PUT', `${V3}/rooms/${enc(roomId)}/state/m.room.topic`, { topic: 'x' }),
      await call(hs, alice, 'POST', `${V3}/createRoom`, {}),
      await call(hs, alice, 'POST', `${V3}/rooms/${enc(roomId)}/invite`, { user_id: admin.userId }),
      await call(hs, alice, 'PUT', `${V3}/profile/${enc(alice.userId)}/displayname`, { displayname: 'Z' }),
      await call(
        hs,
        alice,
        'PUT',
        `${V3}/rooms/${enc(roomId)}/redact/${enc(bobs.body.event_id as string)}/r1`,
        {},
      ),
    ];
    for (const res of refusals) {
      expect(res.status, JSON.stringify(res.body)).to.equal(403);
      expect(res.body.errcode).to.equal('M_USER_SUSPENDED');
    }
    // Reading, redacting one's own event and leaving go on.
    expect((await call(hs, alice, 'GET', `${V3}/sync?timeout=0`)).status).to.equal(200);
    expect((await call(hs, alice, 'GET', `${V3}/rooms/${enc(roomId)}/messages?dir=b`)).status).to.equal(200);
    const ownRedaction = await call(
      hs,
      alice,
      'PUT',
      `${V3}/rooms/${enc(roomId)}/redact/${enc(sent.body.event_id as string)}/r2`,
      {},
    );
    expect(ownRedaction.status, JSON.stringify(ownRedaction.body)).to.equal(200);
    expect((await call(hs, alice, 'POST', `${V3}/rooms/${enc(roomId)}/leave`, {})).status).to.equal(200);

    await setFlag('suspend', admin, alice.userId, false);
    expect((await call(hs, alice, 'POST', `${V3}/join/${enc(roomId)}`, {})).status).to.equal(200);
  });

  it('a locked user gets M_USER_LOCKED with soft_logout everywhere but logout, and nothing on the WebSocket', async () => {
    expect((await setFlag('lock', admin, bob.userId, true)).body).to.deep.equal({ locked: true });
    for (const [method, path] of [
      ['GET', `${V3}/sync?timeout=0`],
      ['GET', `${V3}/account/whoami`],
      ['GET', `${V3}/joined_rooms`],
    ] as const) {
      const res = await call(hs, bob, method, path);
      expect(res.status, path).to.equal(401);
      expect(res.body).to.include({ errcode: 'M_USER_LOCKED', soft_logout: true });
    }
    const socket = await WsClient.authenticated(hs, bob.accessToken).then(
      (client) => ({ opened: client }),
      (error: unknown) => ({ refused: error }),
    );
    expect(socket, 'the WebSocket must not open for a locked account').to.have.property('refused');

    const login = await call(hs, undefined, 'POST', `${V3}/login`, {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: bob.userId },
      password: bob.password,
    });
    expect(login.status).to.equal(401);
    expect(login.body.errcode).to.equal('M_USER_LOCKED');

    // The session survives the lock: unlocked, the same token works again.
    await setFlag('lock', admin, bob.userId, false);
    expect((await call(hs, bob, 'GET', `${V3}/account/whoami`)).status).to.equal(200);
    await setFlag('lock', admin, bob.userId, true);
    expect((await call(hs, bob, 'POST', `${V3}/logout`, {})).status).to.equal(200);
    await setFlag('lock', admin, bob.userId, false);
    expect((await call(hs, bob, 'GET', `${V3}/account/whoami`)).status).to.equal(401);
  });
});
