/**
 * End-to-end encryption across two real Myelin servers federating over TLS (issue #7 with
 * #5/#6): the peer reads /user/devices, /user/keys/query and /user/keys/claim; /keys/query and
 * /keys/claim of a remote user through one's own server; send-to-device across servers
 * (m.direct_to_device, once per message_id); device-list changes announced
 * (m.device_list_update) so the other server's syncs list the user in device_lists.changed;
 * and the headline: Bob on B claims Alice's one-time key on A, sends her an m.room_key by
 * to-device and a Megolm message that Alice decrypts (real libolm).
 */
import Olm from '@matrix-org/olm';
import { expect } from 'chai';
import { FederationRequestError } from '../federation/federation.js';
import { call, createUser } from './harness/accounts.js';
import { aliceReceives, bobSends, MEGOLM, OlmDevice, type SyncBody, V3 } from './harness/olm-device.js';
import { type FederatedServer, TestFederation } from './harness/test-federation.js';
import { until } from './harness/until.js';

describe('federation: end-to-end encryption across servers (TLS, test CA)', function () {
  this.timeout(90_000);
  let federation: TestFederation;
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: OlmDevice;
  let bob: OlmDevice;
  let roomId: string;

  before(async () => {
    await Olm.init();
    federation = await TestFederation.start(2);
    [a, b] = federation.servers as [FederatedServer, FederatedServer];
    alice = new OlmDevice(await createUser(a.server, 'alice'));
    bob = new OlmDevice(await createUser(b.server, 'bob'));
    const created = await call(a.server, alice.user, 'POST', `${V3}/createRoom`, {
      preset: 'private_chat',
      initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: MEGOLM } }],
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    roomId = created.body.room_id as string;
    const invited = await call(
      a.server,
      alice.user,
      'POST',
      `${V3}/rooms/${encodeURIComponent(roomId)}/invite`,
      {
        user_id: bob.user.userId,
      },
    );
    expect(invited.status, JSON.stringify(invited.body)).to.equal(200);
    await until(async () => {
      const sync = await call(b.server, bob.user, 'GET', `${V3}/sync?timeout=0`);
      return (sync.body.rooms as { invite?: Record<string, unknown> }).invite?.[roomId];
    });
    const joined = await call(
      b.server,
      bob.user,
      'POST',
      `${V3}/join/${encodeURIComponent(roomId)}?server_name=${encodeURIComponent(a.serverName)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
    await alice.uploadKeys(a.server, 5);
    await bob.uploadKeys(b.server, 5);
  });
  after(async () => {
    await federation?.stop();
  });

  it('answers a peer for its own users: /user/devices, /user/keys/query, /user/keys/claim', async () => {
    const devices = await b.context.federation.client.request<Record<string, unknown>>({
      destination: a.serverName,
      method: 'GET',
      path: `/_matrix/federation/v1/user/devices/${encodeURIComponent(alice.user.userId)}`,
    });
    expect(devices.user_id).to.equal(alice.user.userId);
    expect(devices.stream_id).to.be.a('number');
    const list = devices.devices as { device_id: string; keys?: { keys: Record<string, string> } }[];
    expect(list.map((d) => d.device_id)).to.deep.equal([alice.user.deviceId]);
    expect(list[0]!.keys!.keys[`ed25519:${alice.user.deviceId}`]).to.equal(alice.identityKeys.ed25519);

    const query = await b.context.federation.client.request<Record<string, Record<string, unknown>>>({
      destination: a.serverName,
      method: 'POST',
      path: '/_matrix/federation/v1/user/keys/query',
      // A user of another server is not answered for (never asked onwards).
      body: { device_keys: { [alice.user.userId]: [], [bob.user.userId]: [] } },
    });
    expect(Object.keys(query.device_keys!)).to.deep.equal([alice.user.userId]);

    // A user of another server cannot be asked for through this server.
    const refused = await b.context.federation.client
      .request({
        destination: a.serverName,
        method: 'GET',
        path: `/_matrix/federation/v1/user/devices/${encodeURIComponent(bob.user.userId)}`,
      })
      .catch((error: unknown) => error);
    expect(refused).to.be.instanceOf(FederationRequestError);
    expect((refused as FederationRequestError).status).to.equal(400);

    // Unsigned requests are refused.
    const unsigned = await b.context.federation.client
      .request({
        destination: a.serverName,
        method: 'POST',
        path: '/_matrix/federation/v1/user/keys/claim',
        body: { one_time_keys: {} },
        signed: false,
      })
      .catch((error: unknown) => error);
    expect((unsigned as FederationRequestError).status).to.equal(401);
  });

  it('reports an unreachable server in failures of /keys/query and /keys/claim', async () => {
    const nowhere = '@ghost:127.0.0.1:1';
    const query = await call(b.server, bob.user, 'POST', `${V3}/keys/query`, {
      device_keys: { [nowhere]: [], [alice.user.userId]: [] },
      timeout: 3000,
    });
    expect(query.status).to.equal(200);
    expect(Object.keys(query.body.failures as object)).to.deep.equal(['127.0.0.1:1']);
    expect(Object.keys((query.body.device_keys as Record<string, object>)[alice.user.userId]!)).to.deep.equal(
      [alice.user.deviceId],
    );
    const claim = await call(b.server, bob.user, 'POST', `${V3}/keys/claim`, {
      one_time_keys: { [nowhere]: { DEV: 'signed_curve25519' } },
      timeout: 3000,
    });
    expect(claim.status).to.equal(200);
    expect(Object.keys(claim.body.failures as object)).to.deep.equal(['127.0.0.1:1']);
  });

  it('headline: Bob on B sends Alice on A a room key by to-device and a Megolm message she decrypts', async () => {
    const initial = await call(a.server, alice.user, 'GET', `${V3}/sync?timeout=0`);
    let since = initial.body.next_batch as string;
    // Bob queries and claims Alice's keys through his server (over federation), sends the room key
    // to her device by to-device (an m.direct_to_device EDU) and the Megolm message into the room.
    const eventId = await bobSends(
      b.server,
      bob,
      alice.user,
      roomId,
      'Hello Alice, across servers 🔐',
      'fed-1',
    );
    const received = aliceReceives(alice, roomId, eventId);
    for (let round = 0; round < 40 && received.plaintext === undefined; round++) {
      const response = await call(
        a.server,
        alice.user,
        'GET',
        `${V3}/sync?timeout=2000&since=${encodeURIComponent(since)}`,
      );
      expect(response.status).to.equal(200);
      received.consume(response.body as unknown as SyncBody);
      since = response.body.next_batch as string;
    }
    expect(received.plaintext).to.deep.equal({
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'Hello Alice, across servers 🔐' },
      room_id: roomId,
    });
    // Alice's one-time key was used up on A by the claim over federation.
    const counts = await call(a.server, alice.user, 'POST', `${V3}/keys/upload`, {});
    expect(counts.body.one_time_key_counts).to.deep.include({ signed_curve25519: 4 });
  });

  it('delivers a to-device message across servers once, whatever the retries', async () => {
    const initial = await call(a.server, alice.user, 'GET', `${V3}/sync?timeout=0`);
    const since = initial.body.next_batch as string;
    for (let i = 0; i < 2; i++) {
      const sent = await call(b.server, bob.user, 'PUT', `${V3}/sendToDevice/org.example.ping/same-txn`, {
        messages: { [alice.user.userId]: { '*': { n: 1 } } },
      });
      expect(sent.status).to.equal(200);
    }
    const events = await until(async () => {
      const sync = await call(
        a.server,
        alice.user,
        'GET',
        `${V3}/sync?timeout=0&since=${encodeURIComponent(since)}`,
      );
      const got = (sync.body as SyncBody).to_device?.events ?? [];
      return got.length > 0 ? got : undefined;
    });
    // Give a duplicate the time to arrive, then look again from the same point.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const again = await call(
      a.server,
      alice.user,
      'GET',
      `${V3}/sync?timeout=0&since=${encodeURIComponent(since)}`,
    );
    const all = (again.body as SyncBody).to_device?.events ?? events;
    expect(all.filter((e) => e.type === 'org.example.ping')).to.deep.equal([
      { type: 'org.example.ping', sender: bob.user.userId, content: { n: 1 } },
    ]);
  });

  it('lists a remote user in device_lists.changed when their server announces a device change', async () => {
    const initial = await call(b.server, bob.user, 'GET', `${V3}/sync?timeout=0`);
    const since = initial.body.next_batch as string;
    // Alice renames her device on A: A sends m.device_list_update to B.
    const renamed = await call(a.server, alice.user, 'PUT', `${V3}/devices/${alice.user.deviceId}`, {
      display_name: 'Alice laptop',
    });
    expect(renamed.status).to.equal(200);
    const changed = await until(async () => {
      const sync = await call(
        b.server,
        bob.user,
        'GET',
        `${V3}/sync?timeout=0&since=${encodeURIComponent(since)}`,
      );
      const list = (sync.body.device_lists as { changed?: string[] } | undefined)?.changed ?? [];
      return list.includes(alice.user.userId) ? list : undefined;
    });
    expect(changed).to.include(alice.user.userId);
    // Bob's client then asks again, over federation, and sees the new name.
    const query = await call(b.server, bob.user, 'POST', `${V3}/keys/query`, {
      device_keys: { [alice.user.userId]: [] },
    });
    const device = (query.body.device_keys as Record<string, Record<string, { unsigned?: object }>>)[
      alice.user.userId
    ]![alice.user.deviceId]!;
    expect(device.unsigned).to.deep.equal({ device_display_name: 'Alice laptop' });
  });

  it('announces new cross-signing keys (m.signing_key_update): the peer lists the user as changed and serves the master key', async () => {
    const initial = await call(b.server, bob.user, 'GET', `${V3}/sync?timeout=0`);
    const since = initial.body.next_batch as string;
    const signing = new Olm.PkSigning();
    const publicKey = signing.init_with_seed(signing.generate_seed());
    const master = {
      user_id: alice.user.userId,
      usage: ['master'],
      keys: { [`ed25519:${publicKey}`]: publicKey },
    };
    const uploaded = await call(a.server, alice.user, 'POST', `${V3}/keys/device_signing/upload`, {
      master_key: master,
    });
    expect(uploaded.status, JSON.stringify(uploaded.body)).to.equal(200);
    await until(async () => {
      const sync = await call(
        b.server,
        bob.user,
        'GET',
        `${V3}/sync?timeout=0&since=${encodeURIComponent(since)}`,
      );
      const list = (sync.body.device_lists as { changed?: string[] } | undefined)?.changed ?? [];
      return list.includes(alice.user.userId) ? true : undefined;
    });
    const query = await call(b.server, bob.user, 'POST', `${V3}/keys/query`, {
      device_keys: { [alice.user.userId]: [] },
    });
    expect((query.body.master_keys as Record<string, unknown>)[alice.user.userId]).to.deep.equal(master);
    signing.free();
  });

  it('drops to-device EDUs whose sender is not a user of the sending server', async () => {
    const initial = await call(a.server, alice.user, 'GET', `${V3}/sync?timeout=0`);
    const since = initial.body.next_batch as string;
    const edu = (sender: string, messageId: string) => ({
      edu_type: 'm.direct_to_device',
      content: {
        sender,
        type: 'org.example.spoof',
        message_id: messageId,
        messages: { [alice.user.userId]: { [alice.user.deviceId]: { from: sender } } },
      },
    });
    await b.context.federation.client.request({
      destination: a.serverName,
      method: 'PUT',
      path: `/_matrix/federation/v1/send/spoof-${Date.now()}`,
      body: {
        origin: b.serverName,
        origin_server_ts: Date.now(),
        pdus: [],
        // A user of A, claimed by B: dropped. Bob (of B): delivered.
        edus: [edu(`@mallory:${a.serverName}`, 'm1'), edu(bob.user.userId, 'm2')],
      },
    });
    const events = await until(async () => {
      const sync = await call(
        a.server,
        alice.user,
        'GET',
        `${V3}/sync?timeout=0&since=${encodeURIComponent(since)}`,
      );
      const got = ((sync.body as SyncBody).to_device?.events ?? []).filter(
        (e) => e.type === 'org.example.spoof',
      );
      return got.length > 0 ? got : undefined;
    });
    expect(events.map((e) => e.sender)).to.deep.equal([bob.user.userId]);
  });
});
