/**
 * The end-to-end encryption headline scenario (issue #6) with real libolm
 * clients: Alice and Bob publish device and one-time keys; Bob claims Alice's
 * one-time key, opens an Olm session, shares a Megolm session key with an
 * m.room_key by send-to-device, then sends a Megolm-encrypted message into
 * their room; Alice decrypts it from sync, once over long-poll and once over
 * the WebSocket. The server only carries ciphertext.
 */
import Olm from '@matrix-org/olm';
import { expect } from 'chai';
import { call, createUser, fastAccounts, login } from './harness/accounts.js';
import {
  aliceReceives,
  bobSends,
  type Json,
  MEGOLM,
  OlmDevice,
  type SyncBody,
  V3,
} from './harness/olm-device.js';
import { TestHomeserver } from './harness/test-homeserver.js';
import { WsClient } from './harness/ws-client.js';

describe('end-to-end encryption with real Olm clients', function () {
  this.timeout(20_000);
  let hs: TestHomeserver;
  let alice: OlmDevice;
  let bob: OlmDevice;
  let roomId: string;

  before(async () => {
    await Olm.init();
    hs = await TestHomeserver.start({ configure: fastAccounts });
    alice = new OlmDevice(await createUser(hs, 'alice'));
    bob = new OlmDevice(await createUser(hs, 'bob'));
    const created = await call(hs, alice.user, 'POST', `${V3}/createRoom`, {
      preset: 'private_chat',
      invite: [bob.user.userId],
      initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: MEGOLM } }],
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    roomId = created.body.room_id as string;
    const joined = await call(hs, bob.user, 'POST', `${V3}/join/${encodeURIComponent(roomId)}`, {});
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
    await alice.uploadKeys(hs, 5);
    await bob.uploadKeys(hs, 5);
  });
  after(() => hs?.stop());

  it('Alice decrypts a Megolm message from Bob over long-poll /sync', async () => {
    const initial = await call(hs, alice.user, 'GET', `${V3}/sync?timeout=0`);
    let since = initial.body.next_batch as string;
    // Alice is already waiting when Bob sends.
    const poll = call(hs, alice.user, 'GET', `${V3}/sync?timeout=10000&since=${encodeURIComponent(since)}`);
    const eventId = await bobSends(hs, bob, alice.user, roomId, 'Hello Alice, over long-poll 🔐', 'lp-1');
    const received = aliceReceives(alice, roomId, eventId);
    let response = await poll;
    for (let round = 0; round < 10; round++) {
      expect(response.status).to.equal(200);
      if (received.consume(response.body as unknown as SyncBody)) break;
      since = response.body.next_batch as string;
      response = await call(
        hs,
        alice.user,
        'GET',
        `${V3}/sync?timeout=5000&since=${encodeURIComponent(since)}`,
      );
    }
    expect(received.plaintext).to.deep.equal({
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'Hello Alice, over long-poll 🔐' },
      room_id: roomId,
    });
    // The message in the room is ciphertext to anyone without the key (the server included).
    const stored = await call(
      hs,
      bob.user,
      'GET',
      `${V3}/rooms/${encodeURIComponent(roomId)}/event/${eventId}`,
    );
    expect(JSON.stringify(stored.body)).to.not.include('Hello Alice');
  });

  it("Alice's second device decrypts a Megolm message from Bob over the WebSocket", async () => {
    const tablet = new OlmDevice(await login(hs, alice.user.userId, alice.user.password));
    await tablet.uploadKeys(hs, 3);
    const client = await WsClient.authenticated(hs, tablet.user.accessToken);
    try {
      client.send({ type: 'sync' });
      await client.next((frame) => frame.type === 'sync');
      const from = client.frames.length;
      const eventId = await bobSends(
        hs,
        bob,
        tablet.user,
        roomId,
        'Hello tablet, over the WebSocket',
        'ws-1',
      );
      const received = aliceReceives(tablet, roomId, eventId);
      let seen = from;
      while (received.plaintext === undefined) {
        const frame = await client.next((f) => f.type === 'sync', 5000, seen);
        seen = client.frames.indexOf(frame) + 1;
        received.consume(frame.body as SyncBody);
      }
      expect(received.plaintext).to.deep.equal({
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: 'Hello tablet, over the WebSocket' },
        room_id: roomId,
      });
    } finally {
      await client.close();
    }
  });

  it('a new device restores the Megolm key from the server-side key backup and decrypts the history', async () => {
    // Alice's first device backs up the session keys it holds (m.megolm_backup.v1.curve25519-aes-sha2).
    const backupKey = new Olm.PkDecryption();
    const publicKey = backupKey.generate_key();
    const created = await call(hs, alice.user, 'POST', `${V3}/room_keys/version`, {
      algorithm: 'm.megolm_backup.v1.curve25519-aes-sha2',
      auth_data: alice.signed({ public_key: publicKey }),
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    const version = created.body.version as string;
    const encryption = new Olm.PkEncryption();
    encryption.set_recipient_key(publicKey);
    const sessions: Json = {};
    for (const [sessionId, inbound] of alice.groupSessions()) {
      const sessionData = encryption.encrypt(
        JSON.stringify({
          algorithm: MEGOLM,
          sender_key: bob.identityKeys.curve25519,
          sender_claimed_keys: { ed25519: bob.identityKeys.ed25519 },
          forwarding_curve25519_key_chain: [],
          session_key: inbound.export_session(inbound.first_known_index()),
        }),
      );
      sessions[sessionId] = {
        first_message_index: inbound.first_known_index(),
        forwarded_count: 0,
        is_verified: true,
        session_data: sessionData,
      };
    }
    const put = await call(
      hs,
      alice.user,
      'PUT',
      `${V3}/room_keys/keys/${encodeURIComponent(roomId)}?version=${version}`,
      {
        sessions,
      },
    );
    expect(put.status, JSON.stringify(put.body)).to.equal(200);
    expect(put.body.count).to.equal(alice.groupSessions().size);

    // A new device of Alice's, knowing the backup key, reads the room's history and the backup.
    const laptop = new OlmDevice(await login(hs, alice.user.userId, alice.user.password));
    const current = await call(hs, laptop.user, 'GET', `${V3}/room_keys/version`);
    expect(current.body).to.include({ version, count: alice.groupSessions().size });
    expect((current.body.auth_data as Json).public_key).to.equal(publicKey);
    const backedUp = await call(hs, laptop.user, 'GET', `${V3}/room_keys/keys?version=${version}`);
    const roomSessions = (backedUp.body.rooms as Record<string, { sessions: Record<string, Json> }>)[roomId]!
      .sessions;
    for (const [sessionId, data] of Object.entries(roomSessions)) {
      const { ephemeral, mac, ciphertext } = data.session_data as {
        ephemeral: string;
        mac: string;
        ciphertext: string;
      };
      const restored = JSON.parse(backupKey.decrypt(ephemeral, mac, ciphertext)) as { session_key: string };
      laptop.importGroupSession(sessionId, restored.session_key);
    }
    const messages = await call(
      hs,
      laptop.user,
      'GET',
      `${V3}/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`,
    );
    const encrypted = (messages.body.chunk as Json[]).filter((event) => event.type === 'm.room.encrypted');
    expect(encrypted.length).to.be.greaterThan(0);
    const bodies = encrypted
      .filter((event) => laptop.groupSessions().has((event.content as { session_id: string }).session_id))
      .map((event) => (laptop.decryptRoomEvent(event).content as { body: string }).body);
    expect(bodies).to.include('Hello Alice, over long-poll 🔐');
    encryption.free();
    backupKey.free();
  });
});
