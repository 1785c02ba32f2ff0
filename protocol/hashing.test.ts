import { expect } from 'chai';
import fc from 'fast-check';
import { decodeBase64 } from './base64.js';
import { encodeCanonicalJson } from './canonical-json.js';
import { ProtocolError } from './errors.js';
import type { Pdu } from './events.js';
import {
  checkContentHash,
  checkReceivedEvent,
  computeContentHash,
  computeEventId,
  computeReferenceHash,
  hashAndSignEvent,
  hashSignAndIdentifyEvent,
  requiredSignatories,
  roomIdFromCreateEvent,
  toRoomEvent,
  type UnsignedPdu,
  type VerifyKey,
  type VerifyKeyLookup,
  verifyEventSignatures,
} from './hashing.js';
import { redactEvent } from './redaction.js';
import { ROOM_VERSIONS, roomVersionRules } from './room-versions.js';
import { generateSigningKey, type SigningKey, signingKeyFromSeed } from './signing.js';
import appendixVectors from './vectors/appendices-cryptographic-test-vectors.json' with { type: 'json' };
import roomIdVectors from './vectors/rooms-v12-room-ids.json' with { type: 'json' };
import eventVectors from './vectors/server-server-api-signing-events.json' with { type: 'json' };

const v = roomVersionRules;
const specKey = signingKeyFromSeed(appendixVectors.key_id, decodeBase64(appendixVectors.signing_key_seed));

function keyRing(entries: Array<[server: string, key: SigningKey, validUntilTs?: number]>): VerifyKeyLookup {
  const keys = new Map<string, VerifyKey>();
  for (const [server, key, validUntilTs] of entries) {
    keys.set(`${server} ${key.keyId}`, { publicKey: key.publicKey, validUntilTs });
  }
  return (server, keyId) => keys.get(`${server} ${keyId}`);
}

function message(fields: Partial<Pdu> = {}): UnsignedPdu {
  return {
    type: 'm.room.message',
    room_id: '!room:hs1',
    sender: '@alice:hs1',
    origin_server_ts: 1_700_000_000_000,
    content: { msgtype: 'm.text', body: 'hello' },
    depth: 4,
    prev_events: ['$prev'],
    auth_events: ['$a1', '$a2'],
    ...fields,
  };
}

const hs1 = generateSigningKey('hs1');
const hs2 = generateSigningKey('hs2');

describe('event hashing and signing (server-server "Signing Events")', () => {
  describe('spec test vectors (appendices "Event Signing")', () => {
    const rules = v(appendixVectors.event_signing.room_version);
    for (const [i, c] of appendixVectors.event_signing.cases.entries()) {
      it(`hashes and signs example ${i + 1} exactly`, () => {
        const signed = hashAndSignEvent(c.input as unknown as UnsignedPdu, 'domain', specKey, rules);
        expect(signed).to.deep.equal(c.signed);
        expect(computeContentHash(c.input as unknown as UnsignedPdu)).to.equal(c.signed.hashes.sha256);
        expect(checkContentHash(c.signed as unknown as Pdu)).to.equal(true);
      });
    }
    it('verifies the signed examples', () => {
      const lookup = keyRing([['domain', specKey]]);
      const [first, second] = appendixVectors.event_signing.cases;
      // The first has no event_id, so check it under v3 (same redaction, no event_id needed).
      expect(verifyEventSignatures(first!.signed as unknown as Pdu, v('3'), lookup)).to.deep.equal({
        ok: true,
        servers: ['domain'],
      });
      expect(verifyEventSignatures(second!.signed as unknown as Pdu, v('1'), lookup)).to.deep.equal({
        ok: true,
        servers: ['domain'],
      });
    });
  });

  describe('derived vectors: content hash, signature, reference hash, event ID per room version', () => {
    for (const c of eventVectors.cases) {
      it(`room version ${c.room_version}${c.note ? ` (${c.note})` : ''}`, () => {
        const rules = v(c.room_version);
        const unsigned = c.unsigned_event as unknown as UnsignedPdu;
        expect(computeContentHash(unsigned, rules)).to.equal(c.content_hash);
        const signed = hashAndSignEvent(unsigned, 'domain', specKey, rules);
        expect(signed).to.deep.equal(c.signed_event);
        expect(computeReferenceHash(signed, rules).toString('hex')).to.equal(c.reference_hash_hex);
        expect(computeEventId(signed, rules)).to.equal(c.event_id);
        expect(toRoomEvent(signed, rules)).to.deep.equal({
          eventId: c.event_id,
          roomId: signed.room_id,
          pdu: signed,
        });
        expect(verifyEventSignatures(signed, rules, keyRing([['domain', specKey]])).ok).to.equal(true);
      });
    }

    it('v3 IDs use the standard alphabet and v4+ the URL-safe one, over the same hash', () => {
      const byVersion = new Map(eventVectors.cases.map((c) => [`${c.room_version}${c.note ?? ''}`, c]));
      const v3 = eventVectors.cases.find((c) => c.room_version === '3' && c.note)!;
      const v4 = eventVectors.cases.find((c) => c.room_version === '4' && c.note)!;
      expect(v3.event_id).to.match(/[+/]/);
      expect(v4.event_id).to.match(/[-_]/);
      expect(v3.reference_hash_hex).to.equal(v4.reference_hash_hex);
      expect(byVersion.size).to.be.greaterThan(5);
    });
  });

  describe('event IDs and room IDs', () => {
    it('room versions 1-2 read event_id and reject an event without one', () => {
      const signed = hashAndSignEvent(message({ event_id: '$x:hs1' }), 'hs1', hs1, v('2'));
      expect(computeEventId(signed, v('1'))).to.equal('$x:hs1');
      const withoutId = hashAndSignEvent(message(), 'hs1', hs1, v('2'));
      expect(() => computeEventId(withoutId, v('2')))
        .to.throw(ProtocolError)
        .with.property('code', 'BAD_EVENT');
    });

    it('the event ID does not change when the event is redacted or unsigned data changes', () => {
      for (const rules of ROOM_VERSIONS.values()) {
        if (rules.eventIdFormat === 'server-generated') continue;
        const signed = hashAndSignEvent(message({ unsigned: { age: 1 } }), 'hs1', hs1, rules);
        const id = computeEventId(signed, rules);
        expect(id).to.match(/^\$[A-Za-z0-9+/_-]{43}$/);
        expect(computeEventId(redactEvent(signed, rules), rules)).to.equal(id);
        expect(computeEventId({ ...signed, unsigned: { age: 2 } }, rules)).to.equal(id);
        expect(computeEventId({ ...signed, signatures: {} }, rules)).to.equal(id);
        expect(computeEventId({ ...signed, depth: 5 }, rules)).not.to.equal(id);
      }
    });

    it('v12 derives the room ID from the create event (derived vector)', () => {
      const create = roomIdVectors.create_event as unknown as Pdu;
      expect(roomIdFromCreateEvent(create, v('12'))).to.equal(roomIdVectors.room_id);
      expect(computeEventId(create, v('12'))).to.equal(roomIdVectors.event_id);
      expect(roomIdVectors.room_id.slice(1)).to.equal(roomIdVectors.event_id.slice(1));
      expect(toRoomEvent(create, v('12'))).to.deep.equal({
        eventId: roomIdVectors.event_id,
        roomId: roomIdVectors.room_id,
        pdu: create,
      });
      // Other v12 events carry the room ID.
      const inRoom = hashAndSignEvent(message({ room_id: roomIdVectors.room_id }), 'hs1', hs1, v('12'));
      expect(toRoomEvent(inRoom, v('12')).roomId).to.equal(roomIdVectors.room_id);
    });

    it('before v12 the create event carries its room ID; a v12 non-create event without one is rejected', () => {
      const create = hashAndSignEvent(
        message({ type: 'm.room.create', state_key: '', content: { creator: '@alice:hs1' } }),
        'hs1',
        hs1,
        v('11'),
      );
      expect(roomIdFromCreateEvent(create, v('11'))).to.equal('!room:hs1');
      expect(toRoomEvent(create, v('11')).roomId).to.equal('!room:hs1');
      const withoutRoomId = message();
      delete withoutRoomId.room_id;
      const noRoom = hashAndSignEvent(withoutRoomId, 'hs1', hs1, v('12'));
      expect(() => toRoomEvent(noRoom, v('12')))
        .to.throw(ProtocolError)
        .with.property('field', 'room_id');
    });
  });

  describe('hashAndSignEvent', () => {
    it('keeps unsigned and other servers’ signatures and does not modify its input', () => {
      const input = message({ unsigned: { age: 3 }, signatures: { hs2: { 'ed25519:hs2': 'abc' } } });
      const before = structuredClone(input);
      const signed = hashAndSignEvent(input, 'hs1', hs1, v('11'));
      expect(input).to.deep.equal(before);
      expect(signed.unsigned).to.deep.equal({ age: 3 });
      expect(signed.signatures.hs2).to.deep.equal({ 'ed25519:hs2': 'abc' });
      expect(Object.keys(signed.signatures.hs1!)).to.deep.equal(['ed25519:hs1']);
      expect(checkContentHash(signed, v('11'))).to.equal(true);
    });

    it('replaces a stale hash', () => {
      const signed = hashAndSignEvent(message({ hashes: { sha256: 'stale' } }), 'hs1', hs1, v('11'));
      expect(signed.hashes.sha256).to.equal(computeContentHash(message(), v('11')));
    });

    it('applies the room version’s canonical JSON strictness', () => {
      const floaty = message({ content: { body: 'x', n: 1.5 } });
      expect(() => hashAndSignEvent(floaty, 'hs1', hs1, v('6')))
        .to.throw(ProtocolError)
        .with.property('code', 'BAD_JSON');
      expect(hashAndSignEvent(floaty, 'hs1', hs1, v('5')).hashes.sha256).to.be.a('string');
    });
  });

  describe('hashSignAndIdentifyEvent', () => {
    it('gives exactly what hashAndSignEvent then toRoomEvent give, in every room version', () => {
      for (const rules of ROOM_VERSIONS.values()) {
        const inputs: UnsignedPdu[] = [
          message({
            content: { body: 'emoji 🧑‍🤝‍🧑 and "quotes"', n: 3, nested: { z: 1, a: [true, null] } },
            unsigned: { age: 3 },
            signatures: { hs2: { 'ed25519:hs2': 'abc' } },
            ...(rules.eventIdFormat === 'server-generated' ? { event_id: '$opaque:hs1' } : {}),
          }),
          {
            type: 'm.room.create',
            sender: '@alice:hs1',
            state_key: '',
            origin_server_ts: 1_700_000_000_000,
            content: { room_version: rules.id, creator: '@alice:hs1' },
            depth: 1,
            prev_events: [],
            auth_events: [],
            ...(rules.roomIdIsCreateEventHash ? {} : { room_id: '!room:hs1' }),
            ...(rules.eventIdFormat === 'server-generated' ? { event_id: '$create:hs1' } : {}),
          },
        ];
        for (const input of inputs) {
          const expected = toRoomEvent(hashAndSignEvent(input, 'hs1', hs1, rules), rules);
          expect(
            hashSignAndIdentifyEvent(input, 'hs1', hs1, rules),
            `v${rules.id} ${input.type}`,
          ).to.deep.equal(expected);
        }
      }
    });
  });

  describe('checkContentHash', () => {
    it('detects a changed, missing or malformed content hash', () => {
      const signed = hashAndSignEvent(message(), 'hs1', hs1, v('11'));
      expect(checkContentHash(signed)).to.equal(true);
      expect(checkContentHash({ ...signed, content: { body: 'changed' } })).to.equal(false);
      expect(checkContentHash({ ...signed, unsigned: { new: 1 }, signatures: {} })).to.equal(true);
      expect(checkContentHash({ ...signed, hashes: {} as Pdu['hashes'] })).to.equal(false);
      expect(checkContentHash({ ...signed, hashes: { sha256: '!!' } })).to.equal(false);
      expect(checkContentHash({ ...signed, hashes: undefined as unknown as Pdu['hashes'] })).to.equal(false);
      expect(checkContentHash({ ...signed, content: { n: 1.5 } }, v('6'))).to.equal(false);
    });
  });

  describe('verifyEventSignatures (server-server "Validating hashes and signatures")', () => {
    const ring = keyRing([
      ['hs1', hs1],
      ['hs2', hs2],
    ]);

    it('accepts the full event and its redacted copy', () => {
      const signed = hashAndSignEvent(message(), 'hs1', hs1, v('11'));
      expect(verifyEventSignatures(signed, v('11'), ring)).to.deep.equal({ ok: true, servers: ['hs1'] });
      expect(verifyEventSignatures(redactEvent(signed, v('11')), v('11'), ring).ok).to.equal(true);
    });

    it('rejects a change to an essential field', () => {
      const signed = hashAndSignEvent(message(), 'hs1', hs1, v('11'));
      expect(verifyEventSignatures({ ...signed, depth: 99 }, v('11'), ring)).to.include({
        ok: false,
        reason: 'bad_signature',
        serverName: 'hs1',
        keyId: 'ed25519:hs1',
      });
      expect(verifyEventSignatures({ ...signed, hashes: { sha256: 'x' } }, v('11'), ring)).to.include({
        reason: 'bad_signature',
      });
    });

    it('reports missing signatures and unknown keys; ignores algorithms it does not understand', () => {
      const signed = hashAndSignEvent(message(), 'hs1', hs1, v('11'));
      expect(verifyEventSignatures({ ...signed, signatures: {} }, v('11'), ring)).to.include({
        reason: 'missing_signature',
        serverName: 'hs1',
      });
      const onlyOther = { ...signed, signatures: { hs1: { 'curve25519:x': 'abc' } } };
      expect(verifyEventSignatures(onlyOther, v('11'), ring)).to.include({ reason: 'missing_signature' });
      expect(verifyEventSignatures(signed, v('11'), keyRing([['hs2', hs2]]))).to.include({
        reason: 'no_known_key',
      });
      const withExtra = { ...signed, signatures: { hs1: { ...signed.signatures.hs1, 'foo:1': '???' } } };
      expect(verifyEventSignatures(withExtra, v('11'), ring).ok).to.equal(true);
    });

    it('skips an unknown second key but fails a bad signature from a known one', () => {
      const signed = hashAndSignEvent(message(), 'hs1', hs1, v('11'));
      const unknownSecond = {
        ...signed,
        signatures: { hs1: { ...signed.signatures.hs1, 'ed25519:old': 'AAAA' } },
      };
      expect(verifyEventSignatures(unknownSecond, v('11'), ring).ok).to.equal(true);
      const other = generateSigningKey('old');
      const knownBad = keyRing([
        ['hs1', hs1],
        ['hs1', other],
      ]);
      expect(verifyEventSignatures(unknownSecond, v('11'), knownBad)).to.include({
        reason: 'bad_signature',
        keyId: 'ed25519:old',
      });
    });

    it('from v5, skips keys that expired before origin_server_ts', () => {
      const ts = 1_700_000_000_000;
      for (const [id, expect5] of [
        ['4', true],
        ['5', false],
        ['12', false],
      ] as const) {
        const signed = hashAndSignEvent(message({ origin_server_ts: ts }), 'hs1', hs1, v(id));
        const expired = keyRing([['hs1', hs1, ts - 1]]);
        const valid = keyRing([['hs1', hs1, ts]]);
        expect(verifyEventSignatures(signed, v(id), expired).ok, `room version ${id}`).to.equal(expect5);
        expect(verifyEventSignatures(signed, v(id), valid).ok).to.equal(true);
      }
    });

    it('v1-2 also need the signature of the event ID’s server', () => {
      const byHs1 = hashAndSignEvent(message({ event_id: '$e:hs2' }), 'hs1', hs1, v('1'));
      expect(requiredSignatories(byHs1, v('1'))).to.deep.equal(['hs1', 'hs2']);
      expect(verifyEventSignatures(byHs1, v('1'), ring)).to.include({
        reason: 'missing_signature',
        serverName: 'hs2',
      });
      const both = hashAndSignEvent(byHs1, 'hs2', hs2, v('1'));
      expect(verifyEventSignatures(both, v('1'), ring)).to.deep.equal({ ok: true, servers: ['hs1', 'hs2'] });
      expect(requiredSignatories(message({ event_id: '$e:hs2' }) as Pdu, v('3'))).to.deep.equal(['hs1']);
    });

    it('v8+ restricted joins also need the authorising server’s signature; v7 does not', () => {
      const join = message({
        type: 'm.room.member',
        state_key: '@alice:hs1',
        content: { membership: 'join', join_authorised_via_users_server: '@bob:hs2' },
      });
      expect(requiredSignatories(join as Pdu, v('7'))).to.deep.equal(['hs1']);
      expect(requiredSignatories(join as Pdu, v('8'))).to.deep.equal(['hs1', 'hs2']);
      const byHs1 = hashAndSignEvent(join, 'hs1', hs1, v('9'));
      expect(verifyEventSignatures(byHs1, v('9'), ring)).to.include({
        reason: 'missing_signature',
        serverName: 'hs2',
      });
      expect(verifyEventSignatures(hashAndSignEvent(byHs1, 'hs2', hs2, v('9')), v('9'), ring).ok).to.equal(
        true,
      );
    });

    it('an invite from a third-party invite does not need the sender’s server (as Synapse)', () => {
      const invite = message({
        type: 'm.room.member',
        state_key: '@carol:hs2',
        content: { membership: 'invite', third_party_invite: { signed: {} } },
      });
      expect(requiredSignatories(invite as Pdu, v('11'))).to.deep.equal([]);
    });

    it('reports an unusable sender as a malformed event', () => {
      const signed = hashAndSignEvent(message({ sender: 'nocolon' }), 'hs1', hs1, v('11'));
      expect(verifyEventSignatures(signed, v('11'), ring)).to.include({
        ok: false,
        reason: 'malformed_event',
      });
      const floaty = hashAndSignEvent(message({ content: { n: 1.5 } }), 'hs1', hs1, v('5'));
      expect(verifyEventSignatures(floaty, v('5'), ring).ok).to.equal(true);
    });

    it('checkReceivedEvent: reject on bad signatures, redact on a content hash mismatch, else accept', () => {
      const signed = hashAndSignEvent(message(), 'hs1', hs1, v('11'));
      expect(checkReceivedEvent(signed, v('11'), ring)).to.deep.equal({ outcome: 'accept', pdu: signed });
      const edited = { ...signed, content: { body: 'forged' } };
      expect(checkReceivedEvent(edited, v('11'), ring)).to.deep.equal({
        outcome: 'redact',
        pdu: redactEvent(signed, v('11')),
      });
      const result = checkReceivedEvent({ ...signed, sender: '@mallory:hs2' }, v('11'), ring);
      expect(result.outcome).to.equal('reject');
    });
  });

  describe('fuzz: arbitrary JSON through the pipeline yields results or ProtocolError only', () => {
    const anyField = fc.oneof(
      fc.jsonValue({ stringUnit: 'binary', maxDepth: 3 }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 2 ** 60, 0.5, '\uD800', { x: '\uDC00' }),
    );
    const eventLike = fc.oneof(
      fc.record(
        {
          type: fc.oneof(
            fc.constantFrom('m.room.member', 'm.room.create', 'm.room.power_levels', 'm.room.message'),
            anyField,
          ),
          room_id: fc.oneof(fc.constant('!r:hs1'), anyField),
          sender: fc.oneof(fc.constant('@a:hs1'), anyField),
          event_id: fc.oneof(fc.constant('$e:hs1'), anyField),
          state_key: fc.oneof(fc.constant(''), anyField),
          content: fc.oneof(
            fc.dictionary(
              fc.constantFrom('membership', 'third_party_invite', 'join_authorised_via_users_server', 'x'),
              anyField,
            ),
            anyField,
          ),
          hashes: anyField,
          signatures: fc.oneof(
            fc.dictionary(fc.constantFrom('hs1', 'x'), fc.dictionary(fc.string(), anyField)),
            anyField,
          ),
          unsigned: anyField,
          origin_server_ts: anyField,
          depth: anyField,
        },
        { requiredKeys: [] },
      ),
      anyField,
    );
    const lookup = keyRing([['hs1', hs1]]);
    const versions = [...ROOM_VERSIONS.values()];

    it('10,000 runs', () => {
      fc.assert(
        fc.property(eventLike, fc.constantFrom(...versions), (value, rules) => {
          const pdu = value as unknown as Pdu;
          const steps: Array<() => unknown> = [
            () => encodeCanonicalJson(value, { strict: rules.strictCanonicalJson }),
            () => redactEvent(pdu, rules),
            () => computeContentHash(pdu, rules),
            () => checkContentHash(pdu, rules),
            () => computeEventId(pdu, rules),
            () => toRoomEvent(pdu, rules),
            () => roomIdFromCreateEvent(pdu, rules),
            () => hashAndSignEvent(pdu, 'hs1', hs1, rules),
            () => verifyEventSignatures(pdu, rules, lookup),
            () => checkReceivedEvent(pdu, rules, lookup),
          ];
          for (const step of steps) {
            try {
              step();
            } catch (e) {
              if (!(e instanceof ProtocolError)) throw e;
            }
          }
        }),
        { numRuns: 10_000 },
      );
    });
  });
});
