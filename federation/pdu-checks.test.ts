import { expect } from 'chai';
import type { Pdu, RoomEvent } from '../protocol/events.js';
import { hashAndSignEvent, toRoomEvent } from '../protocol/hashing.js';
import { roomVersionRules } from '../protocol/room-versions.js';
import { generateSigningKey } from '../protocol/signing.js';
import { TestRoomBuilder } from '../protocol/test-room-builder.js';
import { orderByAuth } from './inbound-pdus.js';
import {
  checkAgainstAuthEvents,
  checkAgainstState,
  checkPduIntegrity,
  parseReceivedPdu,
  signingKeysNeeded,
} from './pdu-checks.js';

const ALICE = '@alice:a.test';
const BOB = '@bob:b.test';

function byId(room: TestRoomBuilder): Map<string, RoomEvent> {
  return room.events;
}

describe('PDU checks (server-server "Checks performed on receipt of a PDU")', () => {
  describe('step 1: format', () => {
    const rules = roomVersionRules('10');
    const key = generateSigningKey();
    const valid = () =>
      hashAndSignEvent(
        {
          type: 'm.room.message',
          room_id: '!room:a.test',
          sender: ALICE,
          content: { body: 'hi' },
          depth: 3,
          prev_events: [`$${'p'.repeat(43)}`],
          auth_events: [`$${'a'.repeat(43)}`],
          origin_server_ts: 1,
        },
        'a.test',
        key,
        rules,
      );

    it('accepts a well-formed event and computes its ID', () => {
      const parsed = parseReceivedPdu(valid(), rules);
      expect(parsed.ok, JSON.stringify(parsed)).to.equal(true);
      if (parsed.ok) expect(parsed.event.eventId).to.match(/^\$[A-Za-z0-9_-]{43}$/);
    });

    it('refuses an event over 65,536 bytes, a missing key and a float in v6+', () => {
      const big = { ...valid(), content: { body: 'x'.repeat(70_000) } };
      const missing = { ...valid() } as Partial<Pdu>;
      delete missing.sender;
      const float = { ...valid(), content: { n: 1.5 } };
      for (const bad of [big, missing, float, 'not an object', null]) {
        const parsed = parseReceivedPdu(bad, rules);
        expect(parsed.ok, JSON.stringify(bad).slice(0, 40)).to.equal(false);
      }
    });
  });

  describe('steps 2-3: signatures and content hash', () => {
    const rules = roomVersionRules('11');
    const key = generateSigningKey();
    const lookup = (server: string, keyId: string) =>
      server === 'a.test' && keyId === key.keyId ? { publicKey: key.publicKey } : undefined;
    const signed = () =>
      toRoomEvent(
        hashAndSignEvent(
          {
            type: 'm.room.message',
            room_id: '!room:a.test',
            sender: ALICE,
            content: { body: 'signed 🙂' },
            depth: 3,
            prev_events: ['$prev'],
            auth_events: ['$auth'],
            origin_server_ts: 1,
          },
          'a.test',
          key,
          rules,
        ),
        rules,
      );

    it('accepts an event signed by its sender’s server with a matching hash', () => {
      const event = signed();
      expect(signingKeysNeeded(event.pdu, rules)).to.deep.equal([['a.test', key.keyId]]);
      const verdict = checkPduIntegrity(event, rules, lookup);
      expect(verdict).to.deep.include({ ok: true, redacted: false });
    });

    it('keeps the redacted event, under the same ID, when only the content changed', () => {
      const event = signed();
      const tampered = { ...event, pdu: { ...event.pdu, content: { body: 'changed' } } };
      const verdict = checkPduIntegrity(tampered, rules, lookup);
      expect(verdict.ok).to.equal(true);
      if (verdict.ok) {
        expect(verdict.redacted).to.equal(true);
        expect(verdict.event.pdu.content).to.deep.equal({});
        expect(verdict.event.eventId).to.equal(event.eventId);
      }
    });

    it('drops an event with a bad signature, an unknown key or no signature of the sender’s server', () => {
      const event = signed();
      const badSig = structuredClone(event.pdu);
      badSig.signatures['a.test']![key.keyId] = 'AAAA';
      const otherServer = structuredClone(event.pdu);
      otherServer.signatures = { 'evil.test': otherServer.signatures['a.test']! };
      for (const [pdu, lookupKey] of [
        [badSig, lookup],
        [event.pdu, () => undefined],
        [otherServer, lookup],
      ] as const) {
        const verdict = checkPduIntegrity({ ...event, pdu }, rules, lookupKey);
        expect(verdict.ok).to.equal(false);
      }
    });
  });

  for (const version of ['1', '10', '12'] as const) {
    describe(`steps 4-6: authorisation (room version ${version})`, () => {
      let room: TestRoomBuilder;
      beforeEach(() => {
        room = TestRoomBuilder.withMembers({ roomVersion: version, creator: ALICE, members: [BOB] });
      });

      it('allows an event by its auth events and the state before it', () => {
        const message = room.build({ type: 'm.room.message', sender: BOB, content: { body: 'hi' } });
        const verdict = checkAgainstAuthEvents(
          message,
          byId(room),
          room.createEvent,
          room.rules,
          () => false,
        );
        expect(verdict).to.deep.equal({ allowed: true });
        expect(checkAgainstState(message, room.lookup, room.rules)).to.deep.equal({ allowed: true });
      });

      it('rejects an event citing an unknown or a rejected auth event, or two of the same kind', () => {
        const message = room.build({ type: 'm.room.message', sender: BOB, content: { body: 'hi' } });
        const without = new Map(byId(room));
        const cited = message.pdu.auth_events.map((ref) => (typeof ref === 'string' ? ref : ref[0]));
        without.delete(cited[0]!);
        expect(
          checkAgainstAuthEvents(message, without, room.createEvent, room.rules, () => false).allowed,
        ).to.equal(false);
        const rejected = checkAgainstAuthEvents(
          message,
          byId(room),
          room.createEvent,
          room.rules,
          (id) => id === cited[0],
        );
        expect(rejected.allowed).to.equal(false);
        const duplicate = room.build({
          type: 'm.room.message',
          sender: BOB,
          content: { body: 'hi' },
          auth_events: [...cited, cited.at(-1)!],
        });
        expect(
          checkAgainstAuthEvents(duplicate, byId(room), room.createEvent, room.rules, () => false).allowed,
        ).to.equal(false);
      });

      it('rejects an event whose sender is not in the room by its own auth events', () => {
        const intruder = room.build({
          type: 'm.room.message',
          sender: '@mallory:c.test',
          content: { body: 'hi' },
        });
        const verdict = checkAgainstAuthEvents(
          intruder,
          byId(room),
          room.createEvent,
          room.rules,
          () => false,
        );
        expect(verdict.allowed).to.equal(false);
      });

      it('soft-fail: allowed by the state before it, refused by the current state after a ban', () => {
        const before = room.snapshot();
        const message = room.build({ type: 'm.room.message', sender: BOB, content: { body: 'late' } });
        const stateBefore = room.lookup;
        expect(checkAgainstState(message, stateBefore, room.rules).allowed).to.equal(true);
        room.restore(before);
        room.ban(ALICE, BOB);
        const verdict = checkAgainstState(message, room.lookup, room.rules);
        expect(verdict.allowed).to.equal(false);
        expect(
          checkAgainstAuthEvents(message, byId(room), room.createEvent, room.rules, () => false).allowed,
        ).to.equal(true);
      });
    });
  }

  it('orders fetched events so that auth events come first', () => {
    const room = TestRoomBuilder.withMembers({ roomVersion: '10', creator: ALICE, members: [BOB] });
    const events = [...room.events.values()].reverse();
    const ordered = orderByAuth(events).map((e) => e.eventId);
    for (const event of events) {
      for (const ref of event.pdu.auth_events) {
        const id = typeof ref === 'string' ? ref : ref[0];
        expect(ordered.indexOf(id)).to.be.lessThan(ordered.indexOf(event.eventId));
      }
    }
  });
});
