import { expect } from 'chai';
import fc from 'fast-check';
import { type AuthStateLookup, type AuthVerdict, checkAuthEventsList, checkAuthRules } from './auth-rules.js';
import { ProtocolError } from './errors.js';
import type { JsonObject, JsonValue, RoomEvent } from './events.js';
import type { RoomVersionId } from './room-versions.js';
import { generateSigningKey, type SigningKey, signJson } from './signing.js';
import { type TestEventSpec, TestRoomBuilder } from './test-room-builder.js';
import type { JsonSignatureVerifier } from './third-party-invite-signature.js';

const ALL_VERSIONS: RoomVersionId[] = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'];
const num = (v: RoomVersionId) => Number(v);

const CREATOR = '@creator:example.org';
const BOB = '@bob:example.org';
const CAROL = '@carol:other.org';
const MOD = '@mod:example.org';
const STRANGER = '@stranger:elsewhere.org';

function allowed(verdict: AuthVerdict): void {
  expect(verdict, JSON.stringify(verdict)).to.deep.equal({ allowed: true });
}
function rejected(verdict: AuthVerdict, rule: string): void {
  expect(verdict.allowed, 'expected a rejection').to.equal(false);
  if (!verdict.allowed) expect(verdict.rule, verdict.reason).to.equal(rule);
}

/** Rule labels differ by version: v1-5 add the aliases rule (4), v12 the room ID rule (2). */
function topRule(version: RoomVersionId, v6Numbering: number): number {
  if (num(version) <= 5 && v6Numbering >= 4) return v6Numbering + 1;
  if (num(version) >= 12 && v6Numbering >= 2) return v6Numbering + 1;
  return v6Numbering;
}
/** Membership sub-rules in v8+ numbering, as the version numbers them. */
function memberRule(version: RoomVersionId, n: number, ...sub: number[]): string {
  let m = n;
  if (num(version) < 8 && n >= 3) m -= 1;
  if (num(version) < 7 && n >= 8) m -= 1;
  return [topRule(version, 4), m, ...sub].join('.');
}

function room(
  version: RoomVersionId,
  options: { joinRule?: string; members?: string[]; powerLevels?: JsonObject } = {},
) {
  return TestRoomBuilder.withMembers({ roomVersion: version, members: [BOB], ...options });
}
function verdict(r: TestRoomBuilder, spec: TestEventSpec, options?: Parameters<typeof checkAuthRules>[3]) {
  return checkAuthRules(r.build(spec), r.lookup, r.rules, options);
}
function memberEvent(
  sender: string,
  target: string,
  membership: string,
  extra: JsonObject = {},
): TestEventSpec {
  return { type: 'm.room.member', sender, state_key: target, content: { membership, ...extra } };
}

describe('checkAuthRules', () => {
  describe('1. m.room.create', () => {
    for (const version of ALL_VERSIONS) {
      it(`v${version}: the builder's create event is allowed`, () => {
        const r = new TestRoomBuilder({ roomVersion: version });
        allowed(checkAuthRules(r.createEvent, () => undefined, r.rules));
      });
    }

    it('1.1 rejects prev_events', () => {
      const r = new TestRoomBuilder({ roomVersion: '10' });
      const withPrev = { ...r.createEvent, pdu: { ...r.createEvent.pdu, prev_events: ['$x'] } };
      rejected(
        checkAuthRules(withPrev, () => undefined, r.rules),
        '1.1',
      );
    });

    it('1.2 (v1-11) rejects a room ID on another server than the sender', () => {
      const r = new TestRoomBuilder({ roomVersion: '11' });
      const moved = { ...r.createEvent, pdu: { ...r.createEvent.pdu, room_id: '!abc:other.org' } };
      rejected(
        checkAuthRules(moved, () => undefined, r.rules),
        '1.2',
      );
    });

    it('1.2 (v12) rejects any room_id on the create event', () => {
      const r = new TestRoomBuilder({ roomVersion: '12' });
      const withRoomId = { ...r.createEvent, pdu: { ...r.createEvent.pdu, room_id: r.roomId } };
      rejected(
        checkAuthRules(withRoomId, () => undefined, r.rules),
        '1.2',
      );
    });

    it('1.3 rejects an unknown room_version, in content or of the wrong type', () => {
      for (const roomVersion of ['13', 'foo', 5] as JsonValue[]) {
        const r = new TestRoomBuilder({ roomVersion: '6', createContent: { room_version: roomVersion } });
        rejected(
          checkAuthRules(r.createEvent, () => undefined, r.rules),
          '1.3',
        );
      }
    });

    it('1.4 (v1-10) requires content.creator; v11 does not', () => {
      const v10 = new TestRoomBuilder({ roomVersion: '10' });
      delete v10.createEvent.pdu.content.creator;
      rejected(
        checkAuthRules(v10.createEvent, () => undefined, v10.rules),
        '1.4',
      );
      const v11 = new TestRoomBuilder({ roomVersion: '11' });
      expect(v11.createEvent.pdu.content).to.not.have.property('creator');
      allowed(checkAuthRules(v11.createEvent, () => undefined, v11.rules));
    });

    it('1.4 (v12) additional_creators must be an array of valid user IDs', () => {
      const good = new TestRoomBuilder({ roomVersion: '12', additionalCreators: ['@a:x.org', '@b:y.org'] });
      allowed(checkAuthRules(good.createEvent, () => undefined, good.rules));
      for (const bad of ['@a:x.org', ['a:x.org'], ['@a:x.org', 7], ['@nohost'], {}] as JsonValue[]) {
        const r = new TestRoomBuilder({ roomVersion: '12', createContent: { additional_creators: bad } });
        rejected(
          checkAuthRules(r.createEvent, () => undefined, r.rules),
          '1.4',
        );
      }
      // v11 does not look at additional_creators at all.
      const v11 = new TestRoomBuilder({
        roomVersion: '11',
        createContent: { additional_creators: 'nonsense' },
      });
      allowed(checkAuthRules(v11.createEvent, () => undefined, v11.rules));
    });
  });

  describe('2. the create event in the auth state', () => {
    it('v1-11 2.4: rejects when the lookup has no create event', () => {
      const r = room('9');
      const event = r.build({ type: 'm.room.message', sender: BOB, content: {} });
      const withoutCreate: AuthStateLookup = (t, k) => (t === 'm.room.create' ? undefined : r.lookup(t, k));
      rejected(checkAuthRules(event, withoutCreate, r.rules), '2.4');
    });

    it('v1-11 2.5: rejects a create event of another room', () => {
      const r = room('9');
      const other = new TestRoomBuilder({ roomVersion: '9', creator: '@x:other.org' });
      const event = r.build({ type: 'm.room.message', sender: BOB, content: {} });
      const foreign: AuthStateLookup = (t, k) => (t === 'm.room.create' ? other.createEvent : r.lookup(t, k));
      rejected(checkAuthRules(event, foreign, r.rules), '2.5');
    });

    it('v12 2: the room ID must be the create event\u2019s ID', () => {
      const r = room('12');
      const event = r.build({ type: 'm.room.message', sender: BOB, content: {} });
      allowed(checkAuthRules(event, r.lookup, r.rules));
      const misplaced: RoomEvent = { ...event, roomId: '!someotherroom' };
      rejected(checkAuthRules(misplaced, r.lookup, r.rules), '2');
      const withoutCreate: AuthStateLookup = (t, k) => (t === 'm.room.create' ? undefined : r.lookup(t, k));
      rejected(checkAuthRules(event, withoutCreate, r.rules), '2');
    });
  });

  describe('3. m.federate', () => {
    for (const version of ['6', '12'] as RoomVersionId[]) {
      it(`v${version}: only the creator's server may take part when m.federate is false`, () => {
        const r = new TestRoomBuilder({ roomVersion: version, createContent: { 'm.federate': false } });
        r.join(r.creator);
        r.joinRules(r.creator, 'public');
        r.join(BOB);
        rejected(verdict(r, memberEvent(CAROL, CAROL, 'join')), String(topRule(version, 3)));
        const federated = new TestRoomBuilder({
          roomVersion: version,
          createContent: { 'm.federate': true },
        });
        federated.join(federated.creator);
        federated.joinRules(federated.creator, 'public');
        allowed(verdict(federated, memberEvent(CAROL, CAROL, 'join')));
      });
    }
  });

  describe('aliases special case (v1-5 rule 4)', () => {
    for (const version of ['1', '5'] as RoomVersionId[]) {
      it(`v${version}: a non-member may set aliases for its own server only`, () => {
        const r = room(version);
        allowed(
          verdict(r, {
            type: 'm.room.aliases',
            sender: CAROL,
            state_key: 'other.org',
            content: { aliases: [] },
          }),
        );
        rejected(
          verdict(r, {
            type: 'm.room.aliases',
            sender: CAROL,
            state_key: 'example.org',
            content: { aliases: [] },
          }),
          '4.2',
        );
        rejected(verdict(r, { type: 'm.room.aliases', sender: CAROL, content: { aliases: [] } }), '4.1');
      });
    }
    it('v6: m.room.aliases is an ordinary state event', () => {
      const r = room('6');
      rejected(
        verdict(r, { type: 'm.room.aliases', sender: CAROL, state_key: 'other.org', content: {} }),
        '5',
      );
      rejected(
        verdict(r, { type: 'm.room.aliases', sender: BOB, state_key: 'example.org', content: {} }),
        '7',
      );
      allowed(verdict(r, { type: 'm.room.aliases', sender: CREATOR, state_key: 'example.org', content: {} }));
    });
  });

  describe('4. m.room.member', () => {
    for (const version of ALL_VERSIONS) {
      describe(`v${version}`, () => {
        it('4.1 needs a state_key and a membership', () => {
          const r = room(version);
          rejected(
            verdict(r, { type: 'm.room.member', sender: BOB, content: { membership: 'join' } }),
            memberRule(version, 1),
          );
          rejected(
            verdict(r, { type: 'm.room.member', sender: BOB, state_key: BOB, content: {} }),
            memberRule(version, 1),
          );
          rejected(verdict(r, memberEvent(BOB, BOB, 'join', { membership: 7 })), memberRule(version, 1));
        });

        it('join 4.3.1: the creator joins right after the create event; nobody else may', () => {
          const r = new TestRoomBuilder({ roomVersion: version });
          allowed(verdict(r, memberEvent(CREATOR, CREATOR, 'join')));
          // Without a join rules event the room is invite-only.
          rejected(verdict(r, memberEvent(BOB, BOB, 'join')), memberRule(version, 3, 4));
          // Only when the create event is the only prev event.
          const noPrev = r.build({ ...memberEvent(CREATOR, CREATOR, 'join'), prev_events: [] });
          rejected(checkAuthRules(noPrev, r.lookup, r.rules), memberRule(version, 3, 4));
        });

        it('join: public rooms let anyone join themselves, but not others, and not the banned', () => {
          const r = room(version);
          allowed(verdict(r, memberEvent(CAROL, CAROL, 'join')));
          rejected(verdict(r, memberEvent(BOB, CAROL, 'join')), memberRule(version, 3, 2));
          r.ban(CREATOR, CAROL);
          rejected(verdict(r, memberEvent(CAROL, CAROL, 'join')), memberRule(version, 3, 3));
        });

        it('join: invite-only rooms need an invite', () => {
          const r = room(version, { joinRule: 'invite' });
          rejected(verdict(r, memberEvent(CAROL, CAROL, 'join')), memberRule(version, 3, 4));
          r.invite(CREATOR, CAROL);
          allowed(verdict(r, memberEvent(CAROL, CAROL, 'join')));
          // A joined member may update their own membership.
          allowed(verdict(r, memberEvent(BOB, BOB, 'join', { displayname: 'Bob' })));
        });

        it('join: knock rooms behave like invite rooms from v7; before that they cannot be joined', () => {
          const r = room(version, { joinRule: 'knock' });
          r.invite(CREATOR, CAROL);
          const v = verdict(r, memberEvent(CAROL, CAROL, 'join'));
          if (num(version) >= 7) allowed(v);
          else rejected(v, memberRule(version, 3, 6));
        });

        it('invite: needs a joined sender, a target not joined or banned, and the invite level', () => {
          const users: JsonObject = num(version) >= 12 ? { [MOD]: 50 } : { [CREATOR]: 100, [MOD]: 50 };
          const r = room(version, { members: [BOB, MOD], powerLevels: { invite: 50, users } });
          allowed(verdict(r, memberEvent(MOD, CAROL, 'invite')));
          rejected(verdict(r, memberEvent(BOB, CAROL, 'invite')), memberRule(version, 4, 5));
          rejected(verdict(r, memberEvent(STRANGER, CAROL, 'invite')), memberRule(version, 4, 2));
          rejected(verdict(r, memberEvent(MOD, BOB, 'invite')), memberRule(version, 4, 3));
          r.ban(CREATOR, CAROL);
          rejected(verdict(r, memberEvent(MOD, CAROL, 'invite')), memberRule(version, 4, 3));
        });

        it('leave: oneself when joined or invited; not when absent', () => {
          const r = room(version, { joinRule: 'invite' });
          allowed(verdict(r, memberEvent(BOB, BOB, 'leave')));
          r.invite(CREATOR, CAROL);
          allowed(verdict(r, memberEvent(CAROL, CAROL, 'leave')));
          rejected(verdict(r, memberEvent(STRANGER, STRANGER, 'leave')), memberRule(version, 5, 1));
        });

        it('leave (kick): needs a joined sender at the kick level above the target', () => {
          const r = room(version, { members: [BOB, MOD] });
          r.powerLevels(CREATOR, {
            users: r.rules.privilegedCreators ? { [MOD]: 50 } : { [CREATOR]: 100, [MOD]: 50 },
          });
          allowed(verdict(r, memberEvent(MOD, BOB, 'leave')));
          rejected(verdict(r, memberEvent(BOB, MOD, 'leave')), memberRule(version, 5, 5));
          rejected(verdict(r, memberEvent(MOD, CREATOR, 'leave')), memberRule(version, 5, 5));
          // Equal power is not enough.
          r.powerLevels(CREATOR, {
            users: r.rules.privilegedCreators
              ? { [MOD]: 50, [BOB]: 50 }
              : { [CREATOR]: 100, [MOD]: 50, [BOB]: 50 },
          });
          rejected(verdict(r, memberEvent(MOD, BOB, 'leave')), memberRule(version, 5, 5));
          rejected(verdict(r, memberEvent(STRANGER, BOB, 'leave')), memberRule(version, 5, 2));
        });

        it('leave (unban): needs the ban level as well as the kick level', () => {
          const r = room(version, { members: [BOB, MOD] });
          const users: JsonObject = r.rules.privilegedCreators
            ? { [MOD]: 50 }
            : { [CREATOR]: 100, [MOD]: 50 };
          r.powerLevels(CREATOR, { users, ban: 60, kick: 50 });
          r.ban(CREATOR, CAROL);
          rejected(verdict(r, memberEvent(MOD, CAROL, 'leave')), memberRule(version, 5, 3));
          allowed(verdict(r, memberEvent(CREATOR, CAROL, 'leave')));
          // A banned user cannot lift their own ban.
          rejected(verdict(r, memberEvent(CAROL, CAROL, 'leave')), memberRule(version, 5, 1));
        });

        it('ban: needs a joined sender at the ban level above the target', () => {
          const r = room(version, { members: [BOB, MOD] });
          r.powerLevels(CREATOR, {
            users: r.rules.privilegedCreators ? { [MOD]: 50 } : { [CREATOR]: 100, [MOD]: 50 },
          });
          allowed(verdict(r, memberEvent(MOD, BOB, 'ban')));
          allowed(verdict(r, memberEvent(MOD, STRANGER, 'ban')));
          rejected(verdict(r, memberEvent(BOB, STRANGER, 'ban')), memberRule(version, 6, 3));
          rejected(verdict(r, memberEvent(MOD, CREATOR, 'ban')), memberRule(version, 6, 3));
          rejected(verdict(r, memberEvent(STRANGER, BOB, 'ban')), memberRule(version, 6, 1));
        });

        it('knock: only from v7, only in knock rooms, only for oneself, not when already in', () => {
          const r = room(version, { joinRule: 'knock' });
          const v = verdict(r, memberEvent(CAROL, CAROL, 'knock'));
          if (num(version) < 7) {
            rejected(v, memberRule(version, 8));
            return;
          }
          allowed(v);
          rejected(verdict(r, memberEvent(BOB, CAROL, 'knock')), memberRule(version, 7, 2));
          rejected(verdict(r, memberEvent(BOB, BOB, 'knock')), memberRule(version, 7, 4));
          const publicRoom = room(version);
          rejected(verdict(publicRoom, memberEvent(CAROL, CAROL, 'knock')), memberRule(version, 7, 1));
          // Retracting one's knock is a leave.
          r.member(CAROL, CAROL, 'knock');
          allowed(verdict(r, memberEvent(CAROL, CAROL, 'leave')));
        });

        it('an unknown membership is rejected', () => {
          rejected(verdict(room(version), memberEvent(BOB, BOB, 'dance')), memberRule(version, 8));
        });
      });
    }

    describe('restricted joins', () => {
      function restrictedRoom(version: RoomVersionId, joinRule: string) {
        const r = room(version, { joinRule: 'public', members: [BOB, MOD] });
        const users: JsonObject = r.rules.privilegedCreators ? { [MOD]: 50 } : { [CREATOR]: 100, [MOD]: 50 };
        r.powerLevels(CREATOR, { users, invite: 50 });
        r.joinRules(CREATOR, joinRule, {
          allow: [{ type: 'm.room_membership', room_id: '!space:example.org' }],
        });
        return r;
      }
      const via = (user: string) => ({ join_authorised_via_users_server: user });

      it('v7: restricted is an unknown join rule', () => {
        const r = restrictedRoom('7', 'restricted');
        rejected(verdict(r, memberEvent(CAROL, CAROL, 'join', via(MOD))), '4.2.6');
      });

      for (const [version, joinRule] of [
        ['8', 'restricted'],
        ['9', 'restricted'],
        ['10', 'knock_restricted'],
        ['12', 'restricted'],
      ] as [RoomVersionId, string][]) {
        it(`v${version} ${joinRule}: allowed via a joined user able to invite`, () => {
          const r = restrictedRoom(version, joinRule);
          const top = topRule(version, 4);
          allowed(verdict(r, memberEvent(CAROL, CAROL, 'join', via(MOD))));
          rejected(verdict(r, memberEvent(CAROL, CAROL, 'join')), `${top}.3.5.2`);
          rejected(verdict(r, memberEvent(CAROL, CAROL, 'join', via(BOB))), `${top}.3.5.2`);
          rejected(verdict(r, memberEvent(CAROL, CAROL, 'join', via(STRANGER))), `${top}.3.5.2`);
          rejected(verdict(r, memberEvent(CAROL, CAROL, 'join', via('@ghost:example.org'))), `${top}.3.5.2`);
          // Already invited users need no authoriser.
          r.invite(MOD, CAROL);
          allowed(verdict(r, memberEvent(CAROL, CAROL, 'join')));
        });
      }

      it('4.2.1: the authorising server must have signed the join', () => {
        const r = restrictedRoom('8', 'restricted');
        const event = r.build(memberEvent(CAROL, CAROL, 'join', via(MOD)));
        delete event.pdu.signatures['example.org'];
        rejected(checkAuthRules(event, r.lookup, r.rules), '4.2.1');
      });

      it('v9: knock_restricted is not yet a join rule', () => {
        const r = restrictedRoom('9', 'knock_restricted');
        rejected(verdict(r, memberEvent(CAROL, CAROL, 'join', via(MOD))), '4.3.7');
        rejected(verdict(r, memberEvent(CAROL, CAROL, 'knock')), '4.7.1');
      });

      it('v10: knock_restricted rooms take knocks', () => {
        allowed(verdict(restrictedRoom('10', 'knock_restricted'), memberEvent(CAROL, CAROL, 'knock')));
      });
    });

    describe('third-party invites (4.4.1)', () => {
      const verifier: JsonSignatureVerifier = (object, name, keyId, publicKey) =>
        (object.signatures as Record<string, Record<string, string>>)[name]?.[keyId] ===
        `signed-with-${publicKey}`;
      function tpiRoom(version: RoomVersionId) {
        const r = room(version, { joinRule: 'invite' });
        r.add({
          type: 'm.room.third_party_invite',
          sender: BOB,
          state_key: 'tok',
          content: { display_name: 'c...', public_key: 'K1', public_keys: [{ public_key: 'K2' }] },
        });
        return r;
      }
      const tpi = (signed: JsonValue): JsonObject => ({ third_party_invite: { display_name: 'c', signed } });
      const signedBy = (key: string, mxid = CAROL, token = 'tok'): JsonObject => ({
        mxid,
        token,
        signatures: { 'id.example.org': { 'ed25519:0': `signed-with-${key}` } },
      });

      for (const version of ['1', '10', '12'] as RoomVersionId[]) {
        it(`v${version}: allowed when signed by one of the invite's keys`, () => {
          const r = tpiRoom(version);
          const label = (n: number) => `${memberRule(version, 4, 1)}.${n}`;
          const options = { verifyJsonSignature: verifier };
          allowed(verdict(r, memberEvent(BOB, CAROL, 'invite', tpi(signedBy('K1'))), options));
          allowed(verdict(r, memberEvent(BOB, CAROL, 'invite', tpi(signedBy('K2'))), options));
          rejected(verdict(r, memberEvent(BOB, CAROL, 'invite', tpi(signedBy('K3'))), options), label(8));
          // The default verifier is real ed25519; the fake signatures do not pass it.
          rejected(verdict(r, memberEvent(BOB, CAROL, 'invite', tpi(signedBy('K1')))), label(8));
          rejected(
            verdict(r, memberEvent(BOB, CAROL, 'invite', { third_party_invite: {} }), options),
            label(2),
          );
          rejected(verdict(r, memberEvent(BOB, CAROL, 'invite', tpi({ mxid: CAROL })), options), label(3));
          rejected(
            verdict(r, memberEvent(BOB, CAROL, 'invite', tpi(signedBy('K1', STRANGER))), options),
            label(4),
          );
          rejected(
            verdict(r, memberEvent(BOB, CAROL, 'invite', tpi(signedBy('K1', CAROL, 'other'))), options),
            label(5),
          );
          rejected(verdict(r, memberEvent(CREATOR, CAROL, 'invite', tpi(signedBy('K1'))), options), label(6));
          r.ban(CREATOR, CAROL);
          rejected(verdict(r, memberEvent(BOB, CAROL, 'invite', tpi(signedBy('K1'))), options), label(1));
        });
      }
    });

    it('the default verifier checks real ed25519 signatures by the invite\u2019s public keys', () => {
      const identityKey = generateSigningKey('0');
      const otherKey = generateSigningKey('1');
      const r = room('11', { joinRule: 'invite' });
      r.add({
        type: 'm.room.third_party_invite',
        sender: BOB,
        state_key: 'tok',
        content: {
          display_name: 'c...',
          public_key: 'not base64!',
          public_keys: [{ public_key: identityKey.publicKey }],
        },
      });
      const signed = (key: SigningKey) => signJson({ mxid: CAROL, token: 'tok' }, 'id.example.org', key);
      const invite = (key: SigningKey) =>
        memberEvent(BOB, CAROL, 'invite', {
          third_party_invite: { display_name: 'c', signed: signed(key) as JsonObject },
        });
      allowed(verdict(r, invite(identityKey)));
      rejected(verdict(r, invite(otherKey)), '4.4.1.8');
      // Tampering with the signed block breaks the signature.
      const tampered = invite(identityKey);
      (((tampered.content as JsonObject).third_party_invite as JsonObject).signed as JsonObject).token =
        'tok2';
      expect(verdict(r, tampered).allowed).to.equal(false);
    });

    describe('v12 room creators', () => {
      it('creators outrank everyone, additional creators included; they cannot be kicked', () => {
        const r = new TestRoomBuilder({ roomVersion: '12', additionalCreators: [CAROL] });
        r.join(CREATOR);
        r.powerLevels(CREATOR, { users: { [MOD]: 9000 } });
        r.joinRules(CREATOR, 'public');
        r.join(MOD);
        r.join(CAROL);
        allowed(verdict(r, memberEvent(CAROL, MOD, 'ban')));
        rejected(verdict(r, memberEvent(MOD, CAROL, 'ban')), '5.6.3');
        rejected(verdict(r, memberEvent(CAROL, CREATOR, 'leave')), '5.5.5');
        allowed(verdict(r, { type: 'm.room.name', sender: CAROL, state_key: '', content: { name: 'x' } }));
      });

      it('only the create event\u2019s sender gets the first-join exception', () => {
        const r = new TestRoomBuilder({ roomVersion: '12', additionalCreators: [CAROL] });
        rejected(verdict(r, memberEvent(CAROL, CAROL, 'join')), '5.3.4');
        allowed(verdict(r, memberEvent(CREATOR, CREATOR, 'join')));
      });
    });
  });

  describe('5. the sender must be joined', () => {
    for (const version of ALL_VERSIONS) {
      it(`v${version}`, () => {
        const r = room(version);
        allowed(verdict(r, { type: 'm.room.message', sender: BOB, content: { body: 'hi' } }));
        rejected(
          verdict(r, { type: 'm.room.message', sender: CAROL, content: { body: 'hi' } }),
          String(topRule(version, 5)),
        );
        r.leave(BOB);
        rejected(
          verdict(r, { type: 'm.room.message', sender: BOB, content: { body: 'hi' } }),
          String(topRule(version, 5)),
        );
      });
    }
  });

  describe('6. m.room.third_party_invite', () => {
    for (const version of ['3', '12'] as RoomVersionId[]) {
      it(`v${version}: needs the invite level`, () => {
        const r = room(version, { powerLevels: { invite: 10 } });
        const spec = { type: 'm.room.third_party_invite', sender: BOB, state_key: 'tok', content: {} };
        rejected(verdict(r, spec), `${topRule(version, 6)}.1`);
        r.powerLevels(CREATOR, { invite: 0, users: r.rules.privilegedCreators ? {} : { [CREATOR]: 100 } });
        allowed(verdict(r, spec));
      });
    }
  });

  describe('7. required power level', () => {
    for (const version of ['2', '6', '12'] as RoomVersionId[]) {
      it(`v${version}: events_default, state_default and events entries`, () => {
        const r = room(version, {
          powerLevels: { events_default: 10, events: { 'm.reaction': 0, 'm.room.topic': 0 } },
        });
        const rule = String(topRule(version, 7));
        rejected(verdict(r, { type: 'm.room.message', sender: BOB, content: {} }), rule);
        allowed(verdict(r, { type: 'm.reaction', sender: BOB, content: {} }));
        rejected(verdict(r, { type: 'm.room.name', sender: BOB, state_key: '', content: {} }), rule);
        allowed(verdict(r, { type: 'm.room.topic', sender: BOB, state_key: '', content: {} }));
        allowed(verdict(r, { type: 'm.room.name', sender: CREATOR, state_key: '', content: {} }));
      });
    }

    it('without a power levels event state needs 0, and the creator has 100', () => {
      const r = new TestRoomBuilder({ roomVersion: '10' });
      r.join(CREATOR);
      r.joinRules(CREATOR, 'public');
      r.join(BOB);
      allowed(verdict(r, { type: 'm.room.name', sender: BOB, state_key: '', content: {} }));
      allowed(verdict(r, memberEvent(CREATOR, BOB, 'ban')));
      rejected(verdict(r, memberEvent(BOB, CREATOR, 'ban')), '4.6.3');
    });
  });

  describe('8. state keys naming users', () => {
    for (const version of ['4', '12'] as RoomVersionId[]) {
      it(`v${version}: only the named user may send it`, () => {
        const r = room(version, { powerLevels: { state_default: 0 } });
        allowed(verdict(r, { type: 'org.example.status', sender: BOB, state_key: BOB, content: {} }));
        rejected(
          verdict(r, { type: 'org.example.status', sender: BOB, state_key: CREATOR, content: {} }),
          String(topRule(version, 8)),
        );
        allowed(verdict(r, { type: 'org.example.status', sender: BOB, state_key: 'nobody', content: {} }));
      });
    }
  });

  describe('9. m.room.power_levels', () => {
    const plRule = (version: RoomVersionId, v1to9Step: number, ...sub: number[]) => {
      let n = v1to9Step;
      if (num(version) >= 10) n += 2;
      if (num(version) >= 12 && n >= 4) n += 1;
      return [topRule(version, 9), n, ...sub].join('.');
    };
    function plRoom(version: RoomVersionId) {
      const r = room(version, { members: [BOB, MOD, CAROL] });
      const users: JsonObject = { [MOD]: 50, [CAROL]: 50, [BOB]: 10 };
      if (!r.rules.privilegedCreators) users[CREATOR] = 100;
      r.powerLevels(CREATOR, { users, events: { 'm.room.name': 60 }, ban: 40, notifications: { room: 60 } });
      return r;
    }
    const pl = (r: TestRoomBuilder, sender: string, change: (c: JsonObject) => void) => {
      const content = structuredClone(r.lookup('m.room.power_levels', '')!.pdu.content);
      change(content);
      return verdict(r, { type: 'm.room.power_levels', sender, state_key: '', content });
    };
    const users = (c: JsonObject) => c.users as JsonObject;

    for (const version of ALL_VERSIONS) {
      describe(`v${version}`, () => {
        it('a moderator may change levels below their own up to their own', () => {
          const r = plRoom(version);
          allowed(
            pl(r, MOD, (c) => {
              users(c)[BOB] = 50;
            }),
          );
          allowed(
            pl(r, MOD, (c) => {
              delete users(c)[BOB];
            }),
          );
          allowed(
            pl(r, MOD, (c) => {
              c.kick = 50;
            }),
          );
          allowed(
            pl(r, MOD, (c) => {
              users(c)[MOD] = 20;
            }),
          );
        });

        it('no raising anyone above one\u2019s own level', () => {
          const r = plRoom(version);
          rejected(
            pl(r, MOD, (c) => {
              users(c)[MOD] = 51;
            }),
            plRule(version, 7, 1),
          );
          rejected(
            pl(r, MOD, (c) => {
              users(c)[STRANGER] = 51;
            }),
            plRule(version, 7, 1),
          );
        });

        it('no changing users at or above one\u2019s own level', () => {
          const r = plRoom(version);
          rejected(
            pl(r, MOD, (c) => {
              users(c)[CAROL] = 10;
            }),
            plRule(version, 6, 1),
          );
          rejected(
            pl(r, MOD, (c) => {
              delete users(c)[CAROL];
            }),
            plRule(version, 6, 1),
          );
        });

        it('named levels: neither the old nor the new value may exceed the sender', () => {
          const r = plRoom(version);
          rejected(
            pl(r, MOD, (c) => {
              c.ban = 51;
            }),
            plRule(version, 3, 2),
          );
          rejected(
            pl(r, MOD, (c) => {
              c.state_default = 60;
            }),
            plRule(version, 3, 2),
          );
          r.powerLevels(CREATOR, {
            ...structuredClone(r.lookup('m.room.power_levels', '')!.pdu.content),
            kick: 70,
          });
          rejected(
            pl(r, MOD, (c) => {
              c.kick = 10;
            }),
            plRule(version, 3, 1),
          );
          rejected(
            pl(r, MOD, (c) => {
              delete c.kick;
            }),
            plRule(version, 3, 1),
          );
        });

        it('events entries: neither the old nor the new value may exceed the sender', () => {
          const r = plRoom(version);
          rejected(
            pl(r, MOD, (c) => {
              (c.events as JsonObject)['m.room.topic'] = 55;
            }),
            plRule(version, 5, 1),
          );
          rejected(
            pl(r, MOD, (c) => {
              delete (c.events as JsonObject)['m.room.name'];
            }),
            plRule(version, 4, 1),
          );
          allowed(
            pl(r, MOD, (c) => {
              (c.events as JsonObject)['m.room.topic'] = 50;
            }),
          );
        });

        it('notifications are only guarded from v6', () => {
          const r = plRoom(version);
          const raise = pl(r, MOD, (c) => {
            (c.notifications as JsonObject)['org.example.ping'] = 100;
          });
          const lower = pl(r, MOD, (c) => {
            (c.notifications as JsonObject).room = 0;
          });
          if (num(version) >= 6) {
            rejected(raise, plRule(version, 5, 1));
            rejected(lower, plRule(version, 4, 1));
          } else {
            allowed(raise);
            allowed(lower);
          }
        });

        it('users must be valid user IDs', () => {
          const r = plRoom(version);
          rejected(
            pl(r, MOD, (c) => {
              users(c)['not-a-user'] = 0;
            }),
            plRule(version, 1),
          );
          rejected(
            pl(r, MOD, (c) => {
              c.users = [];
            }),
            plRule(version, 1),
          );
        });

        it('string power levels: accepted up to v9, rejected from v10', () => {
          const r = plRoom(version);
          const userString = pl(r, MOD, (c) => {
            users(c)[BOB] = '20';
          });
          const namedString = pl(r, MOD, (c) => {
            c.kick = ' 30 ';
          });
          const eventsString = pl(r, MOD, (c) => {
            (c.events as JsonObject)['m.room.topic'] = '5';
          });
          if (num(version) >= 10) {
            rejected(userString, plRule(version, 1));
            rejected(namedString, `${topRule(version, 9)}.1`);
            rejected(eventsString, `${topRule(version, 9)}.2`);
          } else {
            allowed(userString);
            allowed(namedString);
            allowed(eventsString);
            // Unchanged values written as strings are not changes.
            allowed(
              pl(r, MOD, (c) => {
                users(c)[CAROL] = '50';
              }),
            );
          }
        });

        it('values the version cannot read are rejected', () => {
          const r = plRoom(version);
          rejected(
            pl(r, MOD, (c) => {
              users(c)[BOB] = 'ten';
            }),
            plRule(version, 1),
          );
          const bool = pl(r, MOD, (c) => {
            c.kick = true;
          });
          expect(bool.allowed).to.equal(false);
          const floaty = pl(r, MOD, (c) => {
            users(c)[BOB] = 20.9;
          });
          if (num(version) >= 10) rejected(floaty, plRule(version, 1));
          else allowed(floaty);
        });

        it('the first power levels event is allowed as long as it is well formed', () => {
          const r = new TestRoomBuilder({ roomVersion: version });
          r.join(CREATOR);
          allowed(
            verdict(r, {
              type: 'm.room.power_levels',
              sender: CREATOR,
              state_key: '',
              content: { users_default: 100 },
            }),
          );
          rejected(
            verdict(r, {
              type: 'm.room.power_levels',
              sender: CREATOR,
              state_key: '',
              content: { users: { x: 1 } },
            }),
            plRule(version, 1),
          );
        });
      });
    }

    it('v12 10.4: creators cannot be listed in users', () => {
      const r = new TestRoomBuilder({ roomVersion: '12', additionalCreators: [CAROL] });
      r.join(CREATOR);
      const spec = (users: JsonObject) => ({
        type: 'm.room.power_levels',
        sender: CREATOR,
        state_key: '',
        content: { users },
      });
      rejected(verdict(r, spec({ [CREATOR]: 100 })), '10.4');
      rejected(verdict(r, spec({ [CAROL]: 100 })), '10.4');
      allowed(verdict(r, spec({ [MOD]: 100 })));
    });

    it('v11: the creator may be listed', () => {
      const r = new TestRoomBuilder({ roomVersion: '11' });
      r.join(CREATOR);
      allowed(
        verdict(r, {
          type: 'm.room.power_levels',
          sender: CREATOR,
          state_key: '',
          content: { users: { [CREATOR]: 100 } },
        }),
      );
    });

    it('v10 9.1/9.2: named levels and events values must be integers, null included', () => {
      const r = plRoom('10');
      rejected(
        pl(r, CREATOR, (c) => {
          c.ban = null;
        }),
        '9.1',
      );
      rejected(
        pl(r, CREATOR, (c) => {
          c.notifications = 'x';
        }),
        '9.2',
      );
      rejected(
        pl(r, CREATOR, (c) => {
          c.events = { a: 1.5 };
        }),
        '9.2',
      );
    });
  });

  describe('redactions', () => {
    for (const version of ['1', '2'] as RoomVersionId[]) {
      it(`v${version} 11: the redact level, or an event from the redacting server`, () => {
        const r = room(version, { members: [BOB, CAROL] });
        const bobMessage = r.message(BOB);
        const creatorMessage = r.message(CREATOR);
        const carolMessage = r.message(CAROL);
        // Bob (0) is below redact (50) but Bob's server sent the event being redacted.
        allowed(
          verdict(r, { type: 'm.room.redaction', sender: BOB, redacts: bobMessage.eventId, content: {} }),
        );
        allowed(
          verdict(r, { type: 'm.room.redaction', sender: BOB, redacts: creatorMessage.eventId, content: {} }),
        );
        rejected(
          verdict(r, { type: 'm.room.redaction', sender: BOB, redacts: carolMessage.eventId, content: {} }),
          '11.3',
        );
        allowed(
          verdict(r, {
            type: 'm.room.redaction',
            sender: CREATOR,
            redacts: carolMessage.eventId,
            content: {},
          }),
        );
      });
    }

    for (const version of ['3', '10', '11', '12'] as RoomVersionId[]) {
      it(`v${version}: the auth rules do not look at the redact level`, () => {
        const r = room(version, { members: [BOB, CAROL], powerLevels: { redact: 100 } });
        const carolMessage = r.message(CAROL);
        allowed(
          verdict(r, { type: 'm.room.redaction', sender: BOB, redacts: carolMessage.eventId, content: {} }),
        );
        const guarded = room(version, { powerLevels: { events: { 'm.room.redaction': 20 } } });
        rejected(
          verdict(guarded, { type: 'm.room.redaction', sender: BOB, redacts: '$x', content: {} }),
          String(topRule(version, 7)),
        );
      });
    }

    it('v11: the redaction carries content.redacts and is allowed', () => {
      const r = room('11');
      const event = r.build({ type: 'm.room.redaction', sender: BOB, redacts: '$abc', content: {} });
      expect(event.pdu.content.redacts).to.equal('$abc');
      allowed(checkAuthRules(event, r.lookup, r.rules));
    });
  });

  describe('malformed state and content', () => {
    it('rejects against a power levels event the version cannot read', () => {
      const r = room('10');
      const broken = r.build({
        type: 'm.room.power_levels',
        sender: CREATOR,
        state_key: '',
        content: { ban: 'x' },
      });
      r.apply(broken);
      const v = verdict(r, { type: 'm.room.message', sender: BOB, content: {} });
      rejected(v, '7');
    });

    it('never throws on arbitrary contents, state contents and event shapes (10,000 runs)', () => {
      const rooms = ALL_VERSIONS.map((version) => {
        const r = room(version, { members: [BOB, MOD, CAROL] });
        r.add({
          type: 'm.room.third_party_invite',
          sender: CREATOR,
          state_key: 'tok',
          content: { public_key: 'K' },
        });
        return r;
      });
      const json = fc.jsonValue({ maxDepth: 3 });
      const userIds = fc.constantFrom(CREATOR, BOB, MOD, CAROL, STRANGER, '', 'x', '@', '@a', ':');
      const membershipContent = fc.record(
        {
          membership: fc.oneof(fc.constantFrom('join', 'invite', 'leave', 'ban', 'knock', 'x'), json),
          join_authorised_via_users_server: fc.oneof(userIds, json),
          third_party_invite: fc.oneof(
            json,
            fc.record({
              signed: fc.oneof(
                json,
                fc.record({ mxid: fc.oneof(userIds, json), token: json, signatures: json }),
              ),
            }),
          ),
        },
        { requiredKeys: [] },
      );
      const plContent = fc.record(
        {
          users: fc.oneof(json, fc.dictionary(userIds, fc.oneof(fc.integer(), fc.string(), json))),
          users_default: json,
          events: fc.oneof(json, fc.dictionary(fc.string(), json)),
          notifications: json,
          ban: fc.oneof(fc.integer(), fc.string(), json),
          kick: json,
        },
        { requiredKeys: [] },
      );
      const content = fc.oneof(fc.dictionary(fc.string(), json), membershipContent, plContent, json);
      const type = fc.oneof(
        fc.constantFrom(
          'm.room.create',
          'm.room.member',
          'm.room.power_levels',
          'm.room.join_rules',
          'm.room.third_party_invite',
          'm.room.redaction',
          'm.room.aliases',
          'm.room.message',
        ),
        fc.string(),
      );
      const stateOverride = fc.option(
        fc.record({
          type: fc.constantFrom('m.room.create', 'm.room.power_levels', 'm.room.join_rules', 'm.room.member'),
          content: fc.oneof(content, json),
        }),
      );
      fc.assert(
        fc.property(
          fc.nat(rooms.length - 1),
          type,
          userIds,
          fc.option(fc.oneof(userIds, fc.string(), fc.constant(''))),
          content,
          stateOverride,
          fc.oneof(fc.constant(undefined), json),
          (roomIndex, eventType, sender, stateKey, eventContent, override, prevEvents) => {
            const r = rooms[roomIndex]!;
            const spec: TestEventSpec = { type: eventType, sender, content: {} };
            if (stateKey !== null) spec.state_key = stateKey;
            const event = r.build(spec);
            (event.pdu as { content: unknown }).content = eventContent;
            if (prevEvents !== undefined) (event.pdu as { prev_events: unknown }).prev_events = prevEvents;
            let lookup = r.lookup;
            if (override !== null) {
              lookup = (t, k) => {
                const real = r.lookup(t, k);
                if (t !== override.type || real === undefined) return real;
                return { ...real, pdu: { ...real.pdu, content: override.content as unknown as JsonObject } };
              };
            }
            try {
              const v = checkAuthRules(event, lookup, r.rules);
              expect(v.allowed).to.be.a('boolean');
              if (!v.allowed) {
                expect(v.rule).to.be.a('string');
                expect(v.reason).to.be.a('string');
              }
              checkAuthEventsList(event, [r.createEvent], r.rules);
            } catch (e) {
              if (!(e instanceof ProtocolError)) throw e;
            }
          },
        ),
        { numRuns: 10_000 },
      );
    });
  });
});

describe('checkAuthEventsList', () => {
  function authEventsOf(r: TestRoomBuilder, event: RoomEvent): RoomEvent[] {
    return event.pdu.auth_events.map((ref) => r.events.get(typeof ref === 'string' ? ref : ref[0])!);
  }

  for (const version of ['1', '9', '12'] as RoomVersionId[]) {
    describe(`v${version}`, () => {
      const top = num(version) >= 12 ? '3' : '2';

      it('accepts the selected auth events', () => {
        const r = room(version);
        const event = r.build(memberEvent(CAROL, CAROL, 'join'));
        const authEvents = authEventsOf(r, event);
        expect(authEvents.map((e) => e.pdu.type)).to.include('m.room.join_rules');
        allowed(checkAuthEventsList(event, authEvents, r.rules));
      });

      it('2.1 rejects duplicates for one (type, state_key)', () => {
        const r = room(version);
        const oldPl = r.lookup('m.room.power_levels', '')!;
        r.powerLevels(CREATOR, { ...oldPl.pdu.content, kick: 40 });
        const event = r.build({ type: 'm.room.message', sender: BOB, content: {} });
        rejected(checkAuthEventsList(event, [...authEventsOf(r, event), oldPl], r.rules), `${top}.1`);
      });

      it('2.2 rejects entries the selection does not pick', () => {
        const r = room(version);
        const event = r.build({ type: 'm.room.message', sender: BOB, content: {} });
        const joinRules = r.lookup('m.room.join_rules', '')!;
        rejected(checkAuthEventsList(event, [...authEventsOf(r, event), joinRules], r.rules), `${top}.2`);
        const creatorMember = r.lookup('m.room.member', CREATOR)!;
        rejected(checkAuthEventsList(event, [...authEventsOf(r, event), creatorMember], r.rules), `${top}.2`);
        const message = r.message(BOB);
        rejected(checkAuthEventsList(event, [...authEventsOf(r, event), message], r.rules), `${top}.2`);
      });

      it('2.3 rejects rejected entries', () => {
        const r = room(version);
        const event = r.build({ type: 'm.room.message', sender: BOB, content: {} });
        const pl = r.lookup('m.room.power_levels', '')!;
        rejected(
          checkAuthEventsList(event, authEventsOf(r, event), r.rules, (id) => id === pl.eventId),
          `${top}.3`,
        );
      });

      it('2.5 rejects entries from another room', () => {
        const r = room(version);
        const event = r.build({ type: 'm.room.message', sender: BOB, content: {} });
        const authEvents = authEventsOf(r, event).map((e) =>
          e.pdu.type === 'm.room.power_levels' ? { ...e, roomId: '!elsewhere:example.org' } : e,
        );
        rejected(checkAuthEventsList(event, authEvents, r.rules), `${top}.5`);
      });

      it('the create event: required among auth events before v12, forbidden in v12', () => {
        const r = room(version);
        const event = r.build({ type: 'm.room.message', sender: BOB, content: {} });
        const withoutCreate = authEventsOf(r, event).filter((e) => e.pdu.type !== 'm.room.create');
        if (num(version) >= 12) {
          allowed(checkAuthEventsList(event, withoutCreate, r.rules));
          rejected(checkAuthEventsList(event, [...withoutCreate, r.createEvent], r.rules), '3.2');
        } else {
          rejected(checkAuthEventsList(event, withoutCreate, r.rules), '2.4');
        }
      });
    });
  }
});
