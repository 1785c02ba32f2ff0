/**
 * Key management and cross-signing (issue #6) with real libolm accounts:
 * device keys and signed one-time keys, refused bad signatures, claims (one
 * key to one claimer, even among 20 concurrent ones), fallback keys,
 * cross-signing keys and signatures as /keys/query shows them to each user,
 * and device_lists in /sync and /keys/changes.
 */
import Olm from '@matrix-org/olm';
import { expect } from 'chai';
import { encodeCanonicalJson } from '../protocol/canonical-json.js';
import { call, createUser, fastAccounts, login, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';
import { WsClient } from './harness/ws-client.js';

const V3 = '/_matrix/client/v3';
const OLM = 'm.olm.v1.curve25519-aes-sha2';
const MEGOLM = 'm.megolm.v1.aes-sha2';

type Json = Record<string, unknown>;

function unsignedCopy(object: Json): Json {
  const { signatures: _s, unsigned: _u, ...rest } = object;
  return rest;
}

/** A client device: a real Olm account that signs its keys. */
class Device {
  readonly account = new Olm.Account();

  constructor(readonly user: TestUser) {
    this.account.create();
  }

  get ed25519(): string {
    return (JSON.parse(this.account.identity_keys()) as { ed25519: string }).ed25519;
  }

  get curve25519(): string {
    return (JSON.parse(this.account.identity_keys()) as { curve25519: string }).curve25519;
  }

  signed(object: Json): Json {
    const signature = this.account.sign(encodeCanonicalJson(unsignedCopy(object)));
    return {
      ...object,
      signatures: { [this.user.userId]: { [`ed25519:${this.user.deviceId}`]: signature } },
    };
  }

  deviceKeys(): Json {
    const { userId, deviceId } = this.user;
    return this.signed({
      user_id: userId,
      device_id: deviceId,
      algorithms: [OLM, MEGOLM],
      keys: { [`curve25519:${deviceId}`]: this.curve25519, [`ed25519:${deviceId}`]: this.ed25519 },
    });
  }

  oneTimeKeys(count: number): Json {
    this.account.generate_one_time_keys(count);
    const generated = JSON.parse(this.account.one_time_keys()) as { curve25519: Record<string, string> };
    this.account.mark_keys_as_published();
    const keys: Json = {};
    for (const [id, key] of Object.entries(generated.curve25519))
      keys[`signed_curve25519:${id}`] = this.signed({ key });
    return keys;
  }

  fallbackKey(): Json {
    this.account.generate_fallback_key();
    const generated = JSON.parse(this.account.unpublished_fallback_key()) as {
      curve25519: Record<string, string>;
    };
    const [[id, key]] = Object.entries(generated.curve25519) as [[string, string]];
    return { [`signed_curve25519:${id}`]: this.signed({ key, fallback: true }) };
  }

  upload(hs: TestHomeserver, body: Json) {
    return call(hs, this.user, 'POST', `${V3}/keys/upload`, body);
  }
}

/** A cross-signing key pair (Olm's PkSigning), as clients make them. */
class SigningKey {
  private readonly signing = new Olm.PkSigning();
  readonly publicKey: string;

  constructor() {
    this.publicKey = this.signing.init_with_seed(this.signing.generate_seed());
  }

  sign(object: Json, userId: string): Json {
    const signature = this.signing.sign(encodeCanonicalJson(unsignedCopy(object)));
    const signatures = (object.signatures ?? {}) as Record<string, Json>;
    return {
      ...object,
      signatures: {
        ...signatures,
        [userId]: { ...signatures[userId], [`ed25519:${this.publicKey}`]: signature },
      },
    };
  }

  keyObject(userId: string, usage: string): Json {
    return { user_id: userId, usage: [usage], keys: { [`ed25519:${this.publicKey}`]: this.publicKey } };
  }
}

function verifyEd25519(key: string, object: Json, signature: string): void {
  const utility = new Olm.Utility();
  try {
    utility.ed25519_verify(key, encodeCanonicalJson(unsignedCopy(object)), signature);
  } finally {
    utility.free();
  }
}

describe('E2E key management (keys.yaml, cross_signing.yaml)', function () {
  this.timeout(30_000);
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    await Olm.init();
  });
  beforeEach(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    alice = await createUser(hs, 'alice');
    bob = await createUser(hs, 'bob');
  });
  afterEach(async () => {
    await hs.stop();
  });

  it('stores self-signed device keys and signed one-time keys, and /keys/query returns them with the display name', async () => {
    const phone = await login(hs, alice.userId, alice.password, {
      initial_device_display_name: 'Alice phone',
    });
    const device = new Device(phone);
    const uploaded = await device.upload(hs, {
      device_keys: device.deviceKeys(),
      one_time_keys: device.oneTimeKeys(5),
    });
    expect(uploaded.status, JSON.stringify(uploaded.body)).to.equal(200);
    expect(uploaded.body.one_time_key_counts).to.deep.equal({ signed_curve25519: 5 });

    const query = await call(hs, bob, 'POST', `${V3}/keys/query`, {
      device_keys: { [alice.userId]: [] },
      timeout: 5000,
    });
    expect(query.status).to.equal(200);
    const aliceDevices = (query.body.device_keys as Record<string, Record<string, Json>>)[alice.userId]!;
    expect(Object.keys(aliceDevices)).to.deep.equal([phone.deviceId]);
    const keys = aliceDevices[phone.deviceId]!;
    expect(keys.unsigned).to.deep.equal({ device_display_name: 'Alice phone' });
    expect(unsignedCopy(keys)).to.deep.equal(unsignedCopy(device.deviceKeys()));
    const signature = (keys.signatures as Record<string, Record<string, string>>)[alice.userId]![
      `ed25519:${phone.deviceId}`
    ]!;
    verifyEd25519(device.ed25519, keys, signature);
    expect(query.body.failures).to.deep.equal({});
  });

  it('refuses device keys with a bad signature, for another device or user, and one-time keys with a bad signature', async () => {
    const device = new Device(alice);
    const forged = { ...device.deviceKeys(), algorithms: [OLM] };
    const bad = await device.upload(hs, { device_keys: forged });
    expect(bad.status).to.equal(400);
    expect(bad.body.errcode).to.equal('M_INVALID_SIGNATURE');

    const otherDevice = new Device({ ...alice, deviceId: 'SOMEONEELSE' });
    const wrongDevice = await device.upload(hs, { device_keys: otherDevice.deviceKeys() });
    expect(wrongDevice.status).to.equal(400);
    const wrongUser = await device.upload(hs, {
      device_keys: new Device({ ...bob, deviceId: alice.deviceId }).deviceKeys(),
    });
    expect(wrongUser.status).to.equal(400);

    const good = await device.upload(hs, { device_keys: device.deviceKeys() });
    expect(good.status).to.equal(200);
    const otks = device.oneTimeKeys(1);
    const [name] = Object.keys(otks) as [string];
    const tampered = { [name]: { ...(otks[name] as Json), key: 'AAAA' } };
    const badOtk = await device.upload(hs, { one_time_keys: tampered });
    expect(badOtk.status).to.equal(400);
    expect(badOtk.body.errcode).to.equal('M_INVALID_SIGNATURE');
    const query = await call(hs, bob, 'POST', `${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    expect(Object.keys((query.body.device_keys as Json)[alice.userId] as Json)).to.deep.equal([
      alice.deviceId,
    ]);
  });

  it('hands out each one-time key once, then the fallback key, and reports counts and unused fallback types in sync', async () => {
    const device = new Device(alice);
    const otks = device.oneTimeKeys(2);
    const fallback = device.fallbackKey();
    const uploaded = await device.upload(hs, {
      device_keys: device.deviceKeys(),
      one_time_keys: otks,
      fallback_keys: fallback,
    });
    expect(uploaded.status, JSON.stringify(uploaded.body)).to.equal(200);

    let sync = await call(hs, alice, 'GET', `${V3}/sync?timeout=0`);
    expect(sync.body.device_one_time_keys_count).to.deep.equal({ signed_curve25519: 2 });
    expect(sync.body.device_unused_fallback_key_types).to.deep.equal(['signed_curve25519']);

    const claim = () =>
      call(hs, bob, 'POST', `${V3}/keys/claim`, {
        one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } },
      });
    const claimed: Json[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await claim();
      expect(res.status).to.equal(200);
      claimed.push(((res.body.one_time_keys as Json)[alice.userId] as Json)[alice.deviceId] as Json);
    }
    const names = claimed.map((entry) => Object.keys(entry)[0]);
    expect(names.slice(0, 2).sort()).to.deep.equal(Object.keys(otks).sort());
    expect(names[2]).to.equal(Object.keys(fallback)[0]);
    const fallbackKey = Object.values(claimed[2]!)[0] as Json;
    expect(fallbackKey.fallback).to.equal(true);
    for (const entry of claimed) {
      const key = Object.values(entry)[0] as Json;
      const signature = (key.signatures as Record<string, Record<string, string>>)[alice.userId]![
        `ed25519:${alice.deviceId}`
      ]!;
      verifyEd25519(device.ed25519, key, signature);
    }

    sync = await call(hs, alice, 'GET', `${V3}/sync?timeout=0`);
    expect(sync.body.device_one_time_keys_count).to.deep.equal({ signed_curve25519: 0 });
    expect(sync.body.device_unused_fallback_key_types).to.deep.equal([]);
    // The fallback key keeps being handed out until replaced.
    const again = await claim();
    expect(
      Object.keys(((again.body.one_time_keys as Json)[alice.userId] as Json)[alice.deviceId] as Json),
    ).to.deep.equal(Object.keys(fallback));
    // Claims of unknown users and devices give nothing.
    const unknown = await call(hs, bob, 'POST', `${V3}/keys/claim`, {
      one_time_keys: {
        '@nobody:localhost': { X: 'signed_curve25519' },
        [alice.userId]: { NOPE: 'signed_curve25519' },
      },
    });
    expect(unknown.body).to.deep.equal({ one_time_keys: {}, failures: {} });
  });

  it('gives a single one-time key to exactly one of 20 concurrent claimers', async () => {
    const device = new Device(alice);
    await device.upload(hs, { device_keys: device.deviceKeys(), one_time_keys: device.oneTimeKeys(1) });
    const claimers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => login(hs, bob.userId, bob.password, { device_id: `CLAIMER${i}` })),
    );
    const results = await Promise.all(
      claimers.map((claimer) =>
        call(hs, claimer, 'POST', `${V3}/keys/claim`, {
          one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } },
        }),
      ),
    );
    expect(results.every((res) => res.status === 200)).to.equal(true);
    const winners = results.filter((res) => Object.keys(res.body.one_time_keys as Json).length > 0);
    expect(winners).to.have.length(1);
  });

  it('cross-signing: uploads keys (UIA only to replace them), verifies signatures, and shows each user what they may see', async () => {
    const aliceDevice = new Device(alice);
    await aliceDevice.upload(hs, { device_keys: aliceDevice.deviceKeys() });
    const master = new SigningKey();
    const selfSigning = new SigningKey();
    const userSigning = new SigningKey();
    const masterKey = master.keyObject(alice.userId, 'master');
    const upload = {
      master_key: masterKey,
      self_signing_key: master.sign(selfSigning.keyObject(alice.userId, 'self_signing'), alice.userId),
      user_signing_key: master.sign(userSigning.keyObject(alice.userId, 'user_signing'), alice.userId),
    };
    // A self-signing key not signed by the master key is refused.
    const unsigned = await call(hs, alice, 'POST', `${V3}/keys/device_signing/upload`, {
      ...upload,
      self_signing_key: selfSigning.keyObject(alice.userId, 'self_signing'),
    });
    expect(unsigned.status).to.equal(400);
    expect(unsigned.body.errcode).to.equal('M_INVALID_SIGNATURE');
    // The first upload needs no UIA, nor does repeating it.
    expect((await call(hs, alice, 'POST', `${V3}/keys/device_signing/upload`, upload)).status).to.equal(200);
    expect((await call(hs, alice, 'POST', `${V3}/keys/device_signing/upload`, upload)).status).to.equal(200);

    // Bob's master key, for Alice's user-signing key to sign.
    const bobMaster = new SigningKey();
    const bobMasterKey = bobMaster.keyObject(bob.userId, 'master');
    expect(
      (await call(hs, bob, 'POST', `${V3}/keys/device_signing/upload`, { master_key: bobMasterKey })).status,
    ).to.equal(200);

    const signatures = await call(hs, alice, 'POST', `${V3}/keys/signatures/upload`, {
      [alice.userId]: {
        [alice.deviceId]: selfSigning.sign(aliceDevice.deviceKeys(), alice.userId),
        [master.publicKey]: aliceDevice.signed(masterKey),
      },
      [bob.userId]: { [bobMaster.publicKey]: userSigning.sign(bobMasterKey, alice.userId) },
    });
    expect(signatures.status).to.equal(200);
    expect(signatures.body.failures).to.deep.equal({});

    // A forged signature and an unknown key are reported per key; the good one in the same request is kept.
    const forged = selfSigning.sign(aliceDevice.deviceKeys(), alice.userId);
    const forgedSignatures = (forged.signatures as Record<string, Json>)[alice.userId] as Record<
      string,
      string
    >;
    forgedSignatures[`ed25519:${selfSigning.publicKey}`] = aliceDevice.account.sign('something else');
    const mixed = await call(hs, alice, 'POST', `${V3}/keys/signatures/upload`, {
      [alice.userId]: { [alice.deviceId]: forged, UNKNOWNDEVICE: { user_id: alice.userId } },
    });
    expect(mixed.status).to.equal(200);
    const failures = (mixed.body.failures as Record<string, Record<string, Json>>)[alice.userId]!;
    expect(failures[alice.deviceId]!.errcode).to.equal('M_INVALID_SIGNATURE');
    expect(failures.UNKNOWNDEVICE).to.have.property('errcode');

    const query = async (requester: TestUser) => {
      const res = await call(hs, requester, 'POST', `${V3}/keys/query`, {
        device_keys: { [alice.userId]: [], [bob.userId]: [] },
      });
      expect(res.status).to.equal(200);
      return res.body as Record<string, Record<string, Json>>;
    };
    const seenByAlice = await query(alice);
    const aliceDeviceSignatures = (seenByAlice.device_keys![alice.userId] as Record<string, Json>)[
      alice.deviceId
    ]!.signatures as Record<string, Record<string, string>>;
    expect(aliceDeviceSignatures[alice.userId]).to.have.keys(
      `ed25519:${alice.deviceId}`,
      `ed25519:${selfSigning.publicKey}`,
    );
    verifyEd25519(
      selfSigning.publicKey,
      aliceDevice.deviceKeys(),
      aliceDeviceSignatures[alice.userId]![`ed25519:${selfSigning.publicKey}`]!,
    );
    expect((seenByAlice.master_keys![alice.userId]!.signatures as Json)[alice.userId]).to.have.keys(
      `ed25519:${alice.deviceId}`,
    );
    expect(seenByAlice.user_signing_keys).to.have.keys(alice.userId);
    expect((seenByAlice.master_keys![bob.userId]!.signatures as Json)[alice.userId]).to.have.keys(
      `ed25519:${userSigning.publicKey}`,
    );

    // Bob sees Alice's self-signing chain but neither her user-signing key nor its signature on his master key.
    const seenByBob = await query(bob);
    expect(seenByBob.self_signing_keys).to.have.keys(alice.userId);
    expect(seenByBob.user_signing_keys).to.deep.equal({});
    expect(seenByBob.master_keys![bob.userId]!.signatures ?? {}).to.not.have.property(alice.userId);
    expect(
      ((seenByBob.device_keys![alice.userId] as Record<string, Json>)[alice.deviceId]!.signatures as Json)[
        alice.userId
      ],
    ).to.have.keys(`ed25519:${alice.deviceId}`, `ed25519:${selfSigning.publicKey}`);

    // Replacing the keys needs the password.
    const newMaster = new SigningKey();
    const replace = { master_key: newMaster.keyObject(alice.userId, 'master') };
    const challenge = await call(hs, alice, 'POST', `${V3}/keys/device_signing/upload`, replace);
    expect(challenge.status).to.equal(401);
    expect(challenge.body.flows).to.deep.equal([{ stages: ['m.login.password'] }]);
    const authorised = await call(hs, alice, 'POST', `${V3}/keys/device_signing/upload`, {
      ...replace,
      auth: {
        type: 'm.login.password',
        session: challenge.body.session,
        identifier: { type: 'm.id.user', user: alice.userId },
        password: alice.password,
      },
    });
    expect(authorised.status, JSON.stringify(authorised.body)).to.equal(200);
    const afterReplace = await query(bob);
    expect(afterReplace.master_keys![alice.userId]!.keys).to.deep.equal({
      [`ed25519:${newMaster.publicKey}`]: newMaster.publicKey,
    });
  });

  it('reports device-list changes in sync (long-poll woken) and /keys/changes, and drops a deleted device', async () => {
    const created = await call(hs, alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat' });
    const roomId = created.body.room_id as string;
    expect(
      (await call(hs, bob, 'POST', `${V3}/rooms/${encodeURIComponent(roomId)}/join`, {})).status,
    ).to.equal(200);
    const first = await call(hs, bob, 'GET', `${V3}/sync?timeout=0`);
    const since = first.body.next_batch as string;
    expect(first.body.device_lists).to.deep.equal({ changed: [], left: [] });

    // Bob waits; Alice publishes keys; Bob's sync wakes with Alice in `changed`.
    const waiting = call(hs, bob, 'GET', `${V3}/sync?timeout=10000&since=${since}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const device = new Device(alice);
    const started = Date.now();
    await device.upload(hs, { device_keys: device.deviceKeys() });
    const woken = await waiting;
    expect(Date.now() - started).to.be.lessThan(5000);
    expect((woken.body.device_lists as Json).changed).to.deep.equal([alice.userId]);
    const afterKeys = woken.body.next_batch as string;

    const changes = await call(hs, bob, 'GET', `${V3}/keys/changes?from=${since}&to=${afterKeys}`);
    expect(changes.status).to.equal(200);
    expect(changes.body).to.deep.equal({ changed: [alice.userId], left: [] });

    // Carol joins (she now shares a room with Bob), then leaves (she no longer does).
    const carol = await createUser(hs, 'carol');
    await call(hs, carol, 'POST', `${V3}/rooms/${encodeURIComponent(roomId)}/join`, {});
    const joined = await call(hs, bob, 'GET', `${V3}/sync?timeout=0&since=${afterKeys}`);
    expect((joined.body.device_lists as Json).changed).to.deep.equal([carol.userId]);
    await call(hs, carol, 'POST', `${V3}/rooms/${encodeURIComponent(roomId)}/leave`, {});
    const left = await call(hs, bob, 'GET', `${V3}/sync?timeout=0&since=${joined.body.next_batch as string}`);
    expect(left.body.device_lists).to.deep.equal({ changed: [], left: [carol.userId] });

    // Deleting Alice's device removes its keys and tells Bob.
    const deleted = await call(hs, alice, 'POST', `${V3}/delete_devices`, {
      devices: [alice.deviceId],
      auth: {
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: alice.userId },
        password: alice.password,
      },
    });
    expect([200, 401]).to.include(deleted.status);
    if (deleted.status === 401) {
      const second = await call(hs, alice, 'POST', `${V3}/delete_devices`, {
        devices: [alice.deviceId],
        auth: {
          type: 'm.login.password',
          session: deleted.body.session,
          identifier: { type: 'm.id.user', user: alice.userId },
          password: alice.password,
        },
      });
      expect(second.status, JSON.stringify(second.body)).to.equal(200);
    }
    const afterDelete = await call(
      hs,
      bob,
      'GET',
      `${V3}/sync?timeout=0&since=${left.body.next_batch as string}`,
    );
    expect((afterDelete.body.device_lists as Json).changed).to.deep.equal([alice.userId]);
    const query = await call(hs, bob, 'POST', `${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    expect((query.body.device_keys as Json)[alice.userId]).to.deep.equal({});
  });
  it('pushes device-list changes and one-time key counts over the WebSocket', async () => {
    const created = await call(hs, alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat' });
    const roomId = created.body.room_id as string;
    await call(hs, bob, 'POST', `${V3}/rooms/${encodeURIComponent(roomId)}/join`, {});
    const client = await WsClient.authenticated(hs, bob.accessToken);
    try {
      client.send({ type: 'sync' });
      await client.next((frame) => frame.type === 'sync');
      const from = client.frames.length;
      const device = new Device(alice);
      await device.upload(hs, { device_keys: device.deviceKeys() });
      const pushed = await client.next(
        (frame) =>
          frame.type === 'sync' &&
          ((frame.body as Json).device_lists as { changed: string[] }).changed.includes(alice.userId),
        5000,
        from,
      );
      expect((pushed.body as Json).device_one_time_keys_count).to.deep.equal({ signed_curve25519: 0 });

      // Bob's own keys: the count of his device comes with the next push.
      const bobDevice = new Device(bob);
      const at = client.frames.length;
      await bobDevice.upload(hs, {
        device_keys: bobDevice.deviceKeys(),
        one_time_keys: bobDevice.oneTimeKeys(3),
      });
      const own = await client.next(
        (frame) =>
          frame.type === 'sync' &&
          ((frame.body as Json).device_one_time_keys_count as Record<string, number>).signed_curve25519 === 3,
        5000,
        at,
      );
      expect(((own.body as Json).device_lists as { changed: string[] }).changed).to.include(bob.userId);
    } finally {
      await client.close();
    }
  });
  it('keeps a one-time key ID to one key, one fallback key per algorithm, and refuses bad /keys/changes tokens', async () => {
    const device = new Device(alice);
    await device.upload(hs, { device_keys: device.deviceKeys() });
    const otks = device.oneTimeKeys(1);
    expect((await device.upload(hs, { one_time_keys: otks })).status).to.equal(200);
    // The same key again is accepted (a retried upload); another key under the same ID is not.
    const again = await device.upload(hs, { one_time_keys: otks });
    expect(again.status).to.equal(200);
    expect(again.body.one_time_key_counts).to.deep.equal({ signed_curve25519: 1 });
    const [name] = Object.keys(otks) as [string];
    const other = device.signed({ key: 'c29tZSBvdGhlciBrZXk' });
    const clash = await device.upload(hs, { one_time_keys: { [name]: other } });
    expect(clash.status).to.equal(400);
    expect(clash.body.errcode).to.equal('M_INVALID_PARAM');

    const twoFallbacks = {
      ...device.fallbackKey(),
      'signed_curve25519:second': device.signed({ key: 'a2V5', fallback: true }),
    };
    expect((await device.upload(hs, { fallback_keys: twoFallbacks })).status).to.equal(400);

    const badToken = await call(hs, alice, 'GET', `${V3}/keys/changes?from=nonsense&to=s0_0_0_0_0_0_0`);
    expect(badToken.status).to.equal(400);
    expect(badToken.body.errcode).to.equal('M_INVALID_PARAM');
  });
});
