/**
 * Remote device lists cached (server-server "Device Management"), on two real Myelins over TLS:
 * /keys/query of a user of the other server is answered from the cache once filled; their
 * m.device_list_update EDUs keep it current (applied in order, or a resync through
 * /user/devices when a prev_id is unknown), their clients still see the change in
 * device_lists.changed; the entry is dropped when no room is shared any more.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Olm from '@matrix-org/olm';
import { expect } from 'chai';
import type { RemoteDeviceLists } from '../federation/remote-device-lists.js';
import { encodeCanonicalJson } from '../protocol/canonical-json.js';
import { call, createUser, login, type TestUser } from './harness/accounts.js';
import { OlmDevice, V3 } from './harness/olm-device.js';
import { type FederatedServer, TestFederation } from './harness/test-federation.js';
import { until } from './harness/until.js';

type DeviceKeys = Record<string, Record<string, { unsigned?: { device_display_name?: string } }>>;

describe('federation: remote device lists cached and kept current', function () {
  this.timeout(90_000);
  let federation: TestFederation;
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: TestUser;
  let bob: OlmDevice;
  let roomId: string;
  let lists: RemoteDeviceLists;

  async function aliceQueriesBob(): Promise<DeviceKeys[string]> {
    const res = await call(a.server, alice, 'POST', `${V3}/keys/query`, {
      device_keys: { [bob.user.userId]: [] },
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body.failures).to.deep.equal({});
    return (res.body.device_keys as DeviceKeys)[bob.user.userId] ?? {};
  }

  /** Waits until Alice's sync (from `since`) lists Bob in device_lists.changed. */
  async function aliceSeesBobChanged(since: string): Promise<void> {
    await until(async () => {
      const sync = await call(
        a.server,
        alice,
        'GET',
        `${V3}/sync?timeout=0&since=${encodeURIComponent(since)}`,
      );
      const changed = (sync.body.device_lists as { changed?: string[] } | undefined)?.changed ?? [];
      return changed.includes(bob.user.userId) ? true : undefined;
    });
  }

  async function aliceSince(): Promise<string> {
    return (await call(a.server, alice, 'GET', `${V3}/sync?timeout=0`)).body.next_batch as string;
  }

  before(async () => {
    await Olm.init();
    federation = await TestFederation.start(2);
    [a, b] = federation.servers as [FederatedServer, FederatedServer];
    lists = a.context.remoteDeviceLists!;
    alice = await createUser(a.server, 'alice');
    bob = new OlmDevice(await createUser(b.server, 'bob'));
    const created = await call(a.server, alice, 'POST', `${V3}/createRoom`, {
      preset: 'public_chat',
    });
    roomId = created.body.room_id as string;
    const joined = await call(
      b.server,
      bob.user,
      'POST',
      `${V3}/join/${encodeURIComponent(roomId)}?server_name=${encodeURIComponent(a.serverName)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
    // Bob's first keys reach A as an update while nothing is cached yet (then ignored).
    const since = await aliceSince();
    await bob.uploadKeys(b.server, 2);
    await aliceSeesBobChanged(since);
  });
  after(async () => {
    await federation?.stop();
  });

  it('fills the cache on the first /keys/query and answers the next ones without asking the server', async () => {
    expect(lists.isCached(bob.user.userId)).to.equal(false);
    expect(lists.stats.resyncs).to.equal(0);
    const first = await aliceQueriesBob();
    expect(Object.keys(first)).to.deep.equal([bob.user.deviceId]);
    expect(lists.isCached(bob.user.userId)).to.equal(true);
    const upstream = lists.stats.upstreamUsers;
    const hits = lists.stats.cacheHits;
    const second = await aliceQueriesBob();
    expect(second).to.deep.equal(first);
    expect(lists.stats.upstreamUsers).to.equal(upstream);
    expect(lists.stats.cacheHits).to.equal(hits + 1);
  });

  it('a new device: the update with no known prev_id resyncs, the next one applies in order without a request', async () => {
    let since = await aliceSince();
    const resyncs = lists.stats.resyncs;
    const laptop = new OlmDevice(await login(b.server, bob.user.userId, bob.user.password));
    await laptop.uploadKeys(b.server, 1);
    await aliceSeesBobChanged(since);
    await until(async () => (Object.keys(await aliceQueriesBob()).length === 2 ? true : undefined));
    await lists.settled();
    expect(lists.stats.resyncs).to.be.greaterThan(resyncs);
    expect(lists.isCached(bob.user.userId)).to.equal(true);

    // A rename follows the update the resync covered: applied in order, no resync, no query.
    since = await aliceSince();
    const resyncsBefore = lists.stats.resyncs;
    const upstream = lists.stats.upstreamUsers;
    const renamed = await call(b.server, laptop.user, 'PUT', `${V3}/devices/${laptop.user.deviceId}`, {
      display_name: 'Bob laptop',
    });
    expect(renamed.status).to.equal(200);
    await aliceSeesBobChanged(since);
    const devices = await aliceQueriesBob();
    expect(devices[laptop.user.deviceId]?.unsigned?.device_display_name).to.equal('Bob laptop');
    expect(Object.keys(devices)).to.have.members([bob.user.deviceId, laptop.user.deviceId]);
    expect(lists.stats.resyncs).to.equal(resyncsBefore);
    expect(lists.stats.upstreamUsers).to.equal(upstream);
  });

  it('an update whose prev_id is unknown (a gap) makes the server fetch the whole list again', async () => {
    const since = await aliceSince();
    const resyncs = lists.stats.resyncs;
    // B's server says (signed, as itself) that a device appeared after an update A never saw.
    await b.context.federation.client.request({
      destination: a.serverName,
      method: 'PUT',
      path: `/_matrix/federation/v1/send/gap-${Date.now()}`,
      body: {
        origin: b.serverName,
        origin_server_ts: Date.now(),
        pdus: [],
        edus: [
          {
            edu_type: 'm.device_list_update',
            content: {
              user_id: bob.user.userId,
              device_id: 'PHANTOM',
              stream_id: 9_999_999,
              prev_id: [9_999_998],
              keys: { user_id: bob.user.userId, device_id: 'PHANTOM', algorithms: [], keys: {} },
            },
          },
        ],
      },
    });
    await aliceSeesBobChanged(since);
    await lists.settled();
    // One resync, then one more for the update newer than its answer, and no more than that.
    expect(lists.stats.resyncs).to.equal(resyncs + 2);
    // The resync took B's real list: the device of the update that did not apply is not there.
    const devices = await aliceQueriesBob();
    expect(Object.keys(devices)).to.have.lengthOf(2);
    expect(devices).to.not.have.property('PHANTOM');
    expect(lists.isCached(bob.user.userId)).to.equal(true);
  });

  it('a new device appears and a deleted one disappears through updates applied in order', async () => {
    await lists.settled();
    let since = await aliceSince();
    const resyncs = lists.stats.resyncs;
    const upstream = lists.stats.upstreamUsers;
    const before = Object.keys(await aliceQueriesBob());
    const tablet = new OlmDevice(await login(b.server, bob.user.userId, bob.user.password));
    await tablet.uploadKeys(b.server, 1);
    await aliceSeesBobChanged(since);
    const withTablet = await until(async () => {
      const devices = await aliceQueriesBob();
      return devices[tablet.user.deviceId] !== undefined ? devices : undefined;
    });
    expect(Object.keys(withTablet)).to.have.members([...before, tablet.user.deviceId]);

    // Bob deletes the tablet (user-interactive auth with his password) on B.
    since = await aliceSince();
    const path = `${V3}/devices/${tablet.user.deviceId}`;
    const challenge = await call(b.server, bob.user, 'DELETE', path, {});
    expect(challenge.status).to.equal(401);
    const deleted = await call(b.server, bob.user, 'DELETE', path, {
      auth: {
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: bob.user.userId },
        password: bob.user.password,
        session: challenge.body.session,
      },
    });
    expect(deleted.status, JSON.stringify(deleted.body)).to.equal(200);
    await aliceSeesBobChanged(since);
    const afterDeletion = await until(async () => {
      const devices = await aliceQueriesBob();
      return devices[tablet.user.deviceId] === undefined ? devices : undefined;
    });
    expect(Object.keys(afterDeletion)).to.have.members(before);
    // Each update named the one before it: none made A fetch the list or ask B's keys.
    expect(lists.stats.resyncs).to.equal(resyncs);
    expect(lists.stats.upstreamUsers).to.equal(upstream);
    expect(lists.isCached(bob.user.userId)).to.equal(true);
  });

  it('a device deleted by logging out disappears too', async () => {
    await lists.settled();
    const phone = new OlmDevice(await login(b.server, bob.user.userId, bob.user.password));
    await phone.uploadKeys(b.server, 1);
    await until(async () =>
      (await aliceQueriesBob())[phone.user.deviceId] !== undefined ? true : undefined,
    );
    const since = await aliceSince();
    const resyncs = lists.stats.resyncs;
    const out = await call(b.server, phone.user, 'POST', `${V3}/logout`, {});
    expect(out.status).to.equal(200);
    await aliceSeesBobChanged(since);
    await until(async () =>
      (await aliceQueriesBob())[phone.user.deviceId] === undefined ? true : undefined,
    );
    expect(lists.stats.resyncs).to.equal(resyncs);
  });

  it("a device newly signed by its owner's self-signing key reaches the cache with the signature", async () => {
    await lists.settled();
    const sign = (signing: Olm.PkSigning, publicKey: string, object: Record<string, unknown>) => {
      const {
        signatures,
        unsigned: _unsigned,
        ...rest
      } = object as { signatures?: Record<string, object>; unsigned?: unknown };
      const own = signatures?.[bob.user.userId] ?? {};
      return {
        ...object,
        signatures: {
          ...signatures,
          [bob.user.userId]: { ...own, [`ed25519:${publicKey}`]: signing.sign(encodeCanonicalJson(rest)) },
        },
      };
    };
    const master = new Olm.PkSigning();
    const masterPublic = master.init_with_seed(master.generate_seed());
    const selfSigning = new Olm.PkSigning();
    const selfSigningPublic = selfSigning.init_with_seed(selfSigning.generate_seed());
    const keyObject = (publicKey: string, usage: string) => ({
      user_id: bob.user.userId,
      usage: [usage],
      keys: { [`ed25519:${publicKey}`]: publicKey },
    });
    const uploaded = await call(b.server, bob.user, 'POST', `${V3}/keys/device_signing/upload`, {
      master_key: keyObject(masterPublic, 'master'),
      self_signing_key: sign(master, masterPublic, keyObject(selfSigningPublic, 'self_signing')),
    });
    expect(uploaded.status, JSON.stringify(uploaded.body)).to.equal(200);
    await until(async () => {
      const res = await call(a.server, alice, 'POST', `${V3}/keys/query`, {
        device_keys: { [bob.user.userId]: [] },
      });
      return (res.body.self_signing_keys as Record<string, unknown>)[bob.user.userId] ? true : undefined;
    });
    await lists.settled();

    const since = await aliceSince();
    const resyncs = lists.stats.resyncs;
    const own = await call(b.server, bob.user, 'POST', `${V3}/keys/query`, {
      device_keys: { [bob.user.userId]: [bob.user.deviceId] },
    });
    const device = (own.body.device_keys as Record<string, Record<string, Record<string, unknown>>>)[
      bob.user.userId
    ]?.[bob.user.deviceId];
    expect(device).to.be.an('object');
    const signed = await call(b.server, bob.user, 'POST', `${V3}/keys/signatures/upload`, {
      [bob.user.userId]: { [bob.user.deviceId]: sign(selfSigning, selfSigningPublic, device!) },
    });
    expect(signed.status, JSON.stringify(signed.body)).to.equal(200);
    expect(signed.body.failures).to.deep.equal({});
    await aliceSeesBobChanged(since);
    const seen = await until(async () => {
      const devices = (await aliceQueriesBob()) as Record<string, { signatures?: Record<string, object> }>;
      const signatures = devices[bob.user.deviceId]?.signatures?.[bob.user.userId] ?? {};
      return `ed25519:${selfSigningPublic}` in signatures ? signatures : undefined;
    });
    expect(seen).to.have.property(`ed25519:${bob.user.deviceId}`);
    expect(lists.stats.resyncs).to.equal(resyncs);
    master.free();
    selfSigning.free();
  });

  it('drops the entry when no room is shared any more, and asks the server again', async () => {
    const left = await call(
      b.server,
      bob.user,
      'POST',
      `${V3}/rooms/${encodeURIComponent(roomId)}/leave`,
      {},
    );
    expect(left.status, JSON.stringify(left.body)).to.equal(200);
    await until(async () => (lists.isCached(bob.user.userId) ? undefined : true));
    const upstream = lists.stats.upstreamUsers;
    const devices = await aliceQueriesBob();
    expect(Object.keys(devices)).to.have.lengthOf(2);
    expect(lists.stats.upstreamUsers).to.equal(upstream + 1);
    // Not cached again: nothing would keep it current.
    expect(lists.isCached(bob.user.userId)).to.equal(false);
  });
});

describe('federation: device-list updates keep their chain across a restart of the sender', function () {
  this.timeout(120_000);
  let federation: TestFederation;
  let dirB: string;

  before(async () => {
    await Olm.init();
    federation = await TestFederation.start(0);
    dirB = await mkdtemp(path.join(tmpdir(), 'myelin-device-lists-b-'));
  });
  after(async () => {
    await federation?.stop();
    await rm(dirB, { recursive: true, force: true });
  });

  it("after B restarts, B's next update follows the last one: A deletes the device without a resync", async () => {
    const a = await federation.startServer();
    let b = await federation.startServer({ dataDir: dirB });
    const portB = b.federationPort;
    const lists = a.context.remoteDeviceLists!;
    const alice = await createUser(a.server, 'alice');
    const bob = new OlmDevice(await createUser(b.server, 'bob'));
    await bob.uploadKeys(b.server, 1);
    const roomId = (await call(a.server, alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat' })).body
      .room_id as string;
    const joined = await call(
      b.server,
      bob.user,
      'POST',
      `${V3}/join/${encodeURIComponent(roomId)}?server_name=${encodeURIComponent(a.serverName)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
    const query = async () => {
      const res = await call(a.server, alice, 'POST', `${V3}/keys/query`, {
        device_keys: { [bob.user.userId]: [] },
      });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      return Object.keys((res.body.device_keys as Record<string, object>)[bob.user.userId] ?? {});
    };
    expect(await query()).to.deep.equal([bob.user.deviceId]);
    // A second device: the first update A sees for Bob anchors its chain (one resync).
    const laptop = new OlmDevice(await login(b.server, bob.user.userId, bob.user.password));
    await laptop.uploadKeys(b.server, 1);
    await until(async () =>
      (await query()).length === 2 && lists.isCached(bob.user.userId) ? true : undefined,
    );
    await lists.settled();

    await b.server.stop();
    b = await federation.startServer({ dataDir: dirB, federationPort: portB });
    const resyncs = lists.stats.resyncs;
    const out = await call(b.server, laptop.user, 'POST', `${V3}/logout`, {});
    expect(out.status).to.equal(200);
    await until(async () => ((await query()).length === 1 ? true : undefined), 20_000);
    expect(await query()).to.deep.equal([bob.user.deviceId]);
    expect(lists.stats.resyncs, 'the update after the restart named the last one before it').to.equal(
      resyncs,
    );
  });
});
