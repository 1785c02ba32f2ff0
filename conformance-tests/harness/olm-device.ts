/**
 * A client device with real libolm, for the end-to-end encryption scenarios
 * (conformance-tests/e2e-olm.test.ts on one server, federation-e2e.test.ts across two):
 * publishes keys, opens Olm sessions from /keys/query and /keys/claim, wraps an
 * m.room_key for send-to-device, and decrypts Megolm room events.
 */
import Olm from '@matrix-org/olm';
import { expect } from 'chai';
import { encodeCanonicalJson } from '../../protocol/canonical-json.js';
import { call, type TestUser } from './accounts.js';
import type { TestHomeserver } from './test-homeserver.js';

export const V3 = '/_matrix/client/v3';
export const OLM = 'm.olm.v1.curve25519-aes-sha2';
export const MEGOLM = 'm.megolm.v1.aes-sha2';

export type Json = Record<string, unknown>;

/** One client device: its Olm account, its Olm sessions and the Megolm sessions it was given. */
export class OlmDevice {
  readonly account = new Olm.Account();
  private readonly inboundGroupSessions = new Map<string, Olm.InboundGroupSession>();

  constructor(readonly user: TestUser) {
    this.account.create();
  }

  get identityKeys(): { curve25519: string; ed25519: string } {
    return JSON.parse(this.account.identity_keys()) as { curve25519: string; ed25519: string };
  }

  /** Signs per the spec's "Signing JSON": canonical JSON without `signatures` and `unsigned`. */
  signed<T extends Json>(object: T): T & { signatures: Json } {
    const { signatures: _s, unsigned: _u, ...rest } = object;
    const signature = this.account.sign(encodeCanonicalJson(rest));
    return {
      ...object,
      signatures: { [this.user.userId]: { [`ed25519:${this.user.deviceId}`]: signature } },
    };
  }

  /** POST /keys/upload: signed device keys and `count` signed one-time keys. */
  async uploadKeys(hs: TestHomeserver, count: number): Promise<void> {
    const { curve25519, ed25519 } = this.identityKeys;
    const deviceKeys = this.signed({
      user_id: this.user.userId,
      device_id: this.user.deviceId,
      algorithms: [OLM, MEGOLM],
      keys: { [`curve25519:${this.user.deviceId}`]: curve25519, [`ed25519:${this.user.deviceId}`]: ed25519 },
    });
    this.account.generate_one_time_keys(count);
    const generated = JSON.parse(this.account.one_time_keys()) as { curve25519: Record<string, string> };
    const oneTimeKeys: Json = {};
    for (const [id, key] of Object.entries(generated.curve25519)) {
      oneTimeKeys[`signed_curve25519:${id}`] = this.signed({ key });
    }
    const res = await call(hs, this.user, 'POST', `${V3}/keys/upload`, {
      device_keys: deviceKeys,
      one_time_keys: oneTimeKeys,
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body.one_time_key_counts).to.deep.include({ signed_curve25519: count });
    this.account.mark_keys_as_published();
  }

  /**
   * Looks up `target`'s device keys (/keys/query) and claims one of its one-time keys (/keys/claim),
   * checking both signatures, then opens an outbound Olm session to it.
   */
  async openOlmSession(
    hs: TestHomeserver,
    target: TestUser,
  ): Promise<{ session: Olm.Session; curve25519: string; ed25519: string }> {
    const query = await call(hs, this.user, 'POST', `${V3}/keys/query`, {
      device_keys: { [target.userId]: [target.deviceId] },
    });
    expect(query.status, JSON.stringify(query.body)).to.equal(200);
    const deviceKeys = (query.body.device_keys as Record<string, Record<string, Json>>)[target.userId]![
      target.deviceId
    ]!;
    const keys = deviceKeys.keys as Record<string, string>;
    const ed25519 = keys[`ed25519:${target.deviceId}`]!;
    const curve25519 = keys[`curve25519:${target.deviceId}`]!;
    verifySignature(deviceKeys, target, ed25519);

    const claim = await call(hs, this.user, 'POST', `${V3}/keys/claim`, {
      one_time_keys: { [target.userId]: { [target.deviceId]: 'signed_curve25519' } },
    });
    expect(claim.status, JSON.stringify(claim.body)).to.equal(200);
    const claimed = (claim.body.one_time_keys as Record<string, Record<string, Record<string, Json>>>)[
      target.userId
    ]![target.deviceId]!;
    const [keyId, oneTimeKey] = Object.entries(claimed)[0]!;
    expect(keyId).to.match(/^signed_curve25519:/);
    verifySignature(oneTimeKey, target, ed25519);

    const session = new Olm.Session();
    session.create_outbound(this.account, curve25519, oneTimeKey.key as string);
    return { session, curve25519, ed25519 };
  }

  /** The m.room.encrypted to-device content carrying an m.room_key for `groupSession`, Olm-encrypted to `target`. */
  roomKeyFor(
    target: TestUser,
    olm: { session: Olm.Session; curve25519: string; ed25519: string },
    roomId: string,
    groupSession: Olm.OutboundGroupSession,
  ): Json {
    const payload = {
      type: 'm.room_key',
      content: {
        algorithm: MEGOLM,
        room_id: roomId,
        session_id: groupSession.session_id(),
        session_key: groupSession.session_key(),
      },
      sender: this.user.userId,
      sender_device: this.user.deviceId,
      keys: { ed25519: this.identityKeys.ed25519 },
      recipient: target.userId,
      recipient_keys: { ed25519: olm.ed25519 },
    };
    const encrypted = olm.session.encrypt(JSON.stringify(payload));
    return {
      algorithm: OLM,
      sender_key: this.identityKeys.curve25519,
      ciphertext: { [olm.curve25519]: { type: encrypted.type, body: encrypted.body } },
    };
  }

  /** Handles an Olm-encrypted to-device event: a pre-key message opens the inbound session; an m.room_key is kept. */
  receiveToDevice(event: { type: string; sender: string; content: Json }): Json {
    expect(event.type).to.equal('m.room.encrypted');
    const content = event.content as {
      algorithm: string;
      sender_key: string;
      ciphertext: Record<string, Json>;
    };
    expect(content.algorithm).to.equal(OLM);
    const mine = content.ciphertext[this.identityKeys.curve25519] as { type: number; body: string };
    expect(mine.type, 'the first message of a session is a pre-key message').to.equal(0);
    const session = new Olm.Session();
    session.create_inbound_from(this.account, content.sender_key, mine.body);
    this.account.remove_one_time_keys(session);
    const payload = JSON.parse(session.decrypt(mine.type, mine.body)) as Json & {
      content: { session_id: string; session_key: string };
    };
    expect(payload).to.include({ type: 'm.room_key', sender: event.sender, recipient: this.user.userId });
    expect(payload.recipient_keys).to.deep.equal({ ed25519: this.identityKeys.ed25519 });
    const inbound = new Olm.InboundGroupSession();
    inbound.create(payload.content.session_key);
    this.inboundGroupSessions.set(payload.content.session_id, inbound);
    return payload;
  }

  /** The Megolm sessions this device holds, for a key backup. */
  groupSessions(): ReadonlyMap<string, Olm.InboundGroupSession> {
    return this.inboundGroupSessions;
  }

  /** Takes a Megolm session from a key backup (an exported session key). */
  importGroupSession(sessionId: string, exportedKey: string): void {
    const inbound = new Olm.InboundGroupSession();
    inbound.import_session(exportedKey);
    expect(inbound.session_id()).to.equal(sessionId);
    this.inboundGroupSessions.set(sessionId, inbound);
  }

  /** Decrypts a Megolm m.room.encrypted room event with a session key received before. */
  decryptRoomEvent(event: Json): Json {
    const content = event.content as { algorithm: string; session_id: string; ciphertext: string };
    expect(content.algorithm).to.equal(MEGOLM);
    const inbound = this.inboundGroupSessions.get(content.session_id);
    if (inbound === undefined) throw new Error(`no Megolm session ${content.session_id}`);
    return JSON.parse(inbound.decrypt(content.ciphertext).plaintext) as Json;
  }
}

export function verifySignature(object: Json, owner: TestUser, ed25519: string): void {
  const { signatures, unsigned: _u, ...rest } = object;
  const signature = (signatures as Record<string, Record<string, string>>)[owner.userId]![
    `ed25519:${owner.deviceId}`
  ]!;
  const utility = new Olm.Utility();
  try {
    utility.ed25519_verify(ed25519, encodeCanonicalJson(rest), signature); // throws when it does not verify
  } finally {
    utility.free();
  }
}

/** The Megolm-encrypted m.room.encrypted content of a room message. */
export function megolmMessage(
  sender: OlmDevice,
  groupSession: Olm.OutboundGroupSession,
  roomId: string,
  body: string,
): Json {
  const plaintext = { type: 'm.room.message', content: { msgtype: 'm.text', body }, room_id: roomId };
  return {
    algorithm: MEGOLM,
    sender_key: sender.identityKeys.curve25519,
    ciphertext: groupSession.encrypt(JSON.stringify(plaintext)),
    session_id: groupSession.session_id(),
    device_id: sender.user.deviceId,
  };
}
export type SyncBody = {
  next_batch: string;
  to_device?: { events: { type: string; sender: string; content: Json }[] };
  rooms?: { join?: Record<string, { timeline?: { events: Json[] } }> };
};

/** Bob's side: keys for `target`, an m.room_key by send-to-device, then an encrypted message into the room. */
export async function bobSends(
  hs: TestHomeserver,
  bob: OlmDevice,
  target: TestUser,
  roomId: string,
  body: string,
  txn: string,
): Promise<string> {
  const olm = await bob.openOlmSession(hs, target);
  const groupSession = new Olm.OutboundGroupSession();
  groupSession.create();
  const toDevice = await call(hs, bob.user, 'PUT', `${V3}/sendToDevice/m.room.encrypted/${txn}`, {
    messages: { [target.userId]: { [target.deviceId]: bob.roomKeyFor(target, olm, roomId, groupSession) } },
  });
  expect(toDevice.status, JSON.stringify(toDevice.body)).to.equal(200);
  const sent = await call(
    hs,
    bob.user,
    'PUT',
    `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.encrypted/${txn}`,
    megolmMessage(bob, groupSession, roomId, body),
  );
  expect(sent.status, JSON.stringify(sent.body)).to.equal(200);
  return sent.body.event_id as string;
}

/** Alice's side: takes the room key from `to_device`, then decrypts the room event when it comes. */
export function aliceReceives(alice: OlmDevice, roomId: string, eventId: string) {
  let haveKey = false;
  let plaintext: Json | undefined;
  return {
    consume(body: SyncBody): boolean {
      for (const event of body.to_device?.events ?? []) {
        alice.receiveToDevice(event);
        haveKey = true;
      }
      const timeline = body.rooms?.join?.[roomId]?.timeline?.events ?? [];
      const encrypted = timeline.find((event) => event.event_id === eventId);
      if (encrypted !== undefined) {
        expect(encrypted.type).to.equal('m.room.encrypted');
        expect(haveKey, 'the room key arrives by to-device no later than the message').to.equal(true);
        plaintext = alice.decryptRoomEvent(encrypted);
      }
      return plaintext !== undefined;
    },
    get plaintext() {
      return plaintext;
    },
  };
}
