/**
 * Server-side key backups (client-server "Server-side key backups",
 * key_backup.yaml), black box: versions (create, current, get, update,
 * delete), keys at the three levels, the replacement rules, etag and count,
 * and M_WRONG_ROOM_KEYS_VERSION.
 */
import { expect } from 'chai';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const V3 = '/_matrix/client/v3';
const ALGORITHM = 'm.megolm_backup.v1.curve25519-aes-sha2';
const ROOM = '!backup:localhost';
const OTHER_ROOM = '!other:localhost';

interface KeyData {
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  session_data: Record<string, unknown>;
}

function keyData(fields: Partial<KeyData> = {}): KeyData {
  return {
    first_message_index: 3,
    forwarded_count: 1,
    is_verified: false,
    session_data: { ephemeral: 'base64+ephemeral', ciphertext: 'base64+ciphertext', mac: 'base64+mac' },
    ...fields,
  };
}

const keysPath = (version: string, roomId?: string, sessionId?: string) =>
  `${V3}/room_keys/keys${roomId === undefined ? '' : `/${encodeURIComponent(roomId)}`}${
    sessionId === undefined ? '' : `/${encodeURIComponent(sessionId)}`
  }?version=${encodeURIComponent(version)}`;

describe('server-side key backups', () => {
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    alice = await createUser(hs, 'alice');
    bob = await createUser(hs, 'bob');
  });
  after(() => hs.stop());

  async function createVersion(user: TestUser, authData: Record<string, unknown> = { public_key: 'pk' }) {
    const res = await call(hs, user, 'POST', `${V3}/room_keys/version`, {
      algorithm: ALGORITHM,
      auth_data: authData,
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body.version as string;
  }

  it('creates, reads, updates and deletes versions; the newest is current', async () => {
    const none = await call(hs, alice, 'GET', `${V3}/room_keys/version`);
    expect(none.status).to.equal(404);
    expect(none.body.errcode).to.equal('M_NOT_FOUND');

    const v1 = await createVersion(alice, { public_key: 'one' });
    const v2 = await createVersion(alice, { public_key: 'two' });
    expect(v1).to.not.equal(v2);
    const current = await call(hs, alice, 'GET', `${V3}/room_keys/version`);
    expect(current.status).to.equal(200);
    expect(current.body).to.deep.include({
      algorithm: ALGORITHM,
      auth_data: { public_key: 'two' },
      count: 0,
      version: v2,
    });
    expect(current.body.etag).to.be.a('string');
    expect((await call(hs, alice, 'GET', `${V3}/room_keys/version/${v1}`)).body.auth_data).to.deep.equal({
      public_key: 'one',
    });
    // Backups are per user.
    expect((await call(hs, bob, 'GET', `${V3}/room_keys/version/${v1}`)).status).to.equal(404);

    const update = await call(hs, alice, 'PUT', `${V3}/room_keys/version/${v2}`, {
      algorithm: ALGORITHM,
      auth_data: { public_key: 'two', signatures: {} },
      version: v2,
    });
    expect(update.status, JSON.stringify(update.body)).to.equal(200);
    expect((await call(hs, alice, 'GET', `${V3}/room_keys/version`)).body.auth_data).to.deep.equal({
      public_key: 'two',
      signatures: {},
    });
    const wrongAlgorithm = await call(hs, alice, 'PUT', `${V3}/room_keys/version/${v2}`, {
      algorithm: 'org.example.other',
      auth_data: {},
    });
    expect([wrongAlgorithm.status, wrongAlgorithm.body.errcode]).to.deep.equal([400, 'M_INVALID_PARAM']);
    const wrongVersion = await call(hs, alice, 'PUT', `${V3}/room_keys/version/${v2}`, {
      algorithm: ALGORITHM,
      auth_data: {},
      version: v1,
    });
    expect([wrongVersion.status, wrongVersion.body.errcode]).to.deep.equal([400, 'M_INVALID_PARAM']);

    expect((await call(hs, alice, 'DELETE', `${V3}/room_keys/version/${v2}`)).status).to.equal(200);
    expect(
      (await call(hs, alice, 'DELETE', `${V3}/room_keys/version/${v2}`)).status,
      'deleted before',
    ).to.equal(200);
    expect((await call(hs, alice, 'DELETE', `${V3}/room_keys/version/9999`)).status).to.equal(404);
    expect((await call(hs, alice, 'DELETE', `${V3}/room_keys/version/not-a-version`)).status).to.equal(404);
    expect((await call(hs, alice, 'GET', `${V3}/room_keys/version/${v2}`)).status).to.equal(404);
    expect((await call(hs, alice, 'GET', `${V3}/room_keys/version`)).body.version).to.equal(v1);
    const v3 = await createVersion(alice);
    expect([v1, v2]).to.not.include(v3);
    await call(hs, alice, 'DELETE', `${V3}/room_keys/version/${v3}`);
    await call(hs, alice, 'DELETE', `${V3}/room_keys/version/${v1}`);
  });

  it('round-trips keys at the three levels, with etag and count', async () => {
    const version = await createVersion(alice);
    const put = await call(hs, alice, 'PUT', keysPath(version), {
      rooms: {
        [ROOM]: { sessions: { s1: keyData(), s2: keyData({ is_verified: true }) } },
        [OTHER_ROOM]: { sessions: { s3: keyData() } },
      },
    });
    expect(put.status, JSON.stringify(put.body)).to.equal(200);
    expect(put.body.count).to.equal(3);
    const etagAfterPut = put.body.etag as string;

    const roomPut = await call(hs, alice, 'PUT', keysPath(version, ROOM), { sessions: { s4: keyData() } });
    expect(roomPut.body.count).to.equal(4);
    expect(roomPut.body.etag).to.not.equal(etagAfterPut);
    const sessionPut = await call(hs, alice, 'PUT', keysPath(version, ROOM, 's5'), keyData());
    expect(sessionPut.body.count).to.equal(5);

    const all = await call(hs, alice, 'GET', keysPath(version));
    expect(all.status).to.equal(200);
    expect(Object.keys((all.body.rooms as Record<string, unknown>)[ROOM] as object)).to.deep.equal([
      'sessions',
    ]);
    expect(all.body).to.deep.equal({
      rooms: {
        [ROOM]: {
          sessions: {
            s1: keyData(),
            s2: keyData({ is_verified: true }),
            s4: keyData(),
            s5: keyData(),
          },
        },
        [OTHER_ROOM]: { sessions: { s3: keyData() } },
      },
    });
    expect((await call(hs, alice, 'GET', keysPath(version, OTHER_ROOM))).body).to.deep.equal({
      sessions: { s3: keyData() },
    });
    expect((await call(hs, alice, 'GET', keysPath(version, '!empty:localhost'))).body).to.deep.equal({
      sessions: {},
    });
    expect((await call(hs, alice, 'GET', keysPath(version, ROOM, 's2'))).body).to.deep.equal(
      keyData({ is_verified: true }),
    );
    const missing = await call(hs, alice, 'GET', keysPath(version, ROOM, 'nope'));
    expect([missing.status, missing.body.errcode]).to.deep.equal([404, 'M_NOT_FOUND']);

    const info = await call(hs, alice, 'GET', `${V3}/room_keys/version/${version}`);
    expect(info.body).to.include({ count: 5, etag: sessionPut.body.etag });
    // Megolm session IDs are base64: '/' and '+' travel percent-encoded in the path.
    const base64Id = 'ab/cd+ef';
    expect(
      (await call(hs, alice, 'PUT', keysPath(version, OTHER_ROOM, base64Id), keyData())).body.count,
    ).to.equal(6);
    expect((await call(hs, alice, 'GET', keysPath(version, OTHER_ROOM, base64Id))).body).to.deep.equal(
      keyData(),
    );
    expect((await call(hs, alice, 'DELETE', keysPath(version, OTHER_ROOM, base64Id))).body.count).to.equal(5);

    const deleteSession = await call(hs, alice, 'DELETE', keysPath(version, ROOM, 's5'));
    expect(deleteSession.body.count).to.equal(4);
    expect(deleteSession.body.etag).to.not.equal(sessionPut.body.etag);
    expect((await call(hs, alice, 'DELETE', keysPath(version, ROOM))).body.count).to.equal(1);
    expect((await call(hs, alice, 'DELETE', keysPath(version))).body.count).to.equal(0);
    expect((await call(hs, alice, 'GET', keysPath(version))).body).to.deep.equal({ rooms: {} });
    expect((await call(hs, alice, 'DELETE', keysPath('424242'))).status).to.equal(404);
    expect((await call(hs, alice, 'GET', keysPath('424242'))).status).to.equal(404);
    // Bob reads no keys of Alice's.
    expect((await call(hs, bob, 'GET', keysPath(version))).status).to.equal(404);
  });

  it('keeps the better key: verified, then lower first_message_index, then lower forwarded_count', async () => {
    const version = await createVersion(alice);
    const path = keysPath(version, ROOM, 'ranked');
    const stored = async () => (await call(hs, alice, 'GET', path)).body as unknown as KeyData;
    const put = async (data: KeyData) => {
      const res = await call(hs, alice, 'PUT', path, data);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      return res.body as { etag: string; count: number };
    };

    const first = await put(keyData({ first_message_index: 10, forwarded_count: 2, session_data: { v: 1 } }));
    // A worse key (higher index) changes nothing, not even the etag.
    const worse = await put(keyData({ first_message_index: 11, forwarded_count: 0, session_data: { v: 2 } }));
    expect(worse).to.deep.equal(first);
    expect((await stored()).session_data).to.deep.equal({ v: 1 });
    // Same index, fewer forwards: replaces.
    const fewer = await put(keyData({ first_message_index: 10, forwarded_count: 1, session_data: { v: 3 } }));
    expect(fewer.etag).to.not.equal(first.etag);
    expect((await stored()).session_data).to.deep.equal({ v: 3 });
    // Lower index beats fewer forwards.
    await put(keyData({ first_message_index: 4, forwarded_count: 5, session_data: { v: 4 } }));
    expect((await stored()).session_data).to.deep.equal({ v: 4 });
    // Verified beats everything; an unverified key never replaces it afterwards.
    await put(
      keyData({ is_verified: true, first_message_index: 50, forwarded_count: 9, session_data: { v: 5 } }),
    );
    await put(
      keyData({ is_verified: false, first_message_index: 0, forwarded_count: 0, session_data: { v: 6 } }),
    );
    expect(await stored()).to.deep.equal(
      keyData({ is_verified: true, first_message_index: 50, forwarded_count: 9, session_data: { v: 5 } }),
    );
    // The same rule applies per session within a bulk upload.
    const bulk = await call(hs, alice, 'PUT', keysPath(version), {
      rooms: {
        [ROOM]: {
          sessions: {
            ranked: keyData({ is_verified: true, first_message_index: 1, session_data: { v: 7 } }),
            fresh: keyData(),
          },
        },
      },
    });
    expect(bulk.body.count).to.equal(2);
    expect((await stored()).session_data).to.deep.equal({ v: 7 });
  });

  it('refuses writes to a version that is not the current one with M_WRONG_ROOM_KEYS_VERSION', async () => {
    const old = await createVersion(bob);
    const current = await createVersion(bob);
    for (const [path, body] of [
      [keysPath(old, ROOM, 's'), keyData()],
      [keysPath(old, ROOM), { sessions: { s: keyData() } }],
      [keysPath(old), { rooms: { [ROOM]: { sessions: { s: keyData() } } } }],
      [keysPath('not-a-version'), { rooms: {} }],
    ] as const) {
      const res = await call(hs, bob, 'PUT', path, body);
      expect(res.status, path).to.equal(403);
      expect(res.body).to.include({ errcode: 'M_WRONG_ROOM_KEYS_VERSION', current_version: current });
    }
    // The old version stays readable.
    expect((await call(hs, bob, 'GET', keysPath(old))).status).to.equal(200);
    // With no backup at all, a write is 404.
    await call(hs, bob, 'DELETE', `${V3}/room_keys/version/${current}`);
    await call(hs, bob, 'DELETE', `${V3}/room_keys/version/${old}`);
    const none = await call(hs, bob, 'PUT', keysPath(current, ROOM, 's'), keyData());
    expect([none.status, none.body.errcode]).to.deep.equal([404, 'M_NOT_FOUND']);
  });

  it('validates key data', async () => {
    const version = await createVersion(alice);
    for (const body of [
      { ...keyData(), first_message_index: -1 },
      { ...keyData(), is_verified: 'yes' },
      { forwarded_count: 0, is_verified: false, session_data: {} },
    ]) {
      const res = await call(hs, alice, 'PUT', keysPath(version, ROOM, 'bad'), body);
      expect(res.status, JSON.stringify(body)).to.equal(400);
    }
    const noAuthData = await call(hs, alice, 'POST', `${V3}/room_keys/version`, { algorithm: ALGORITHM });
    expect(noAuthData.status).to.equal(400);
  });
});
