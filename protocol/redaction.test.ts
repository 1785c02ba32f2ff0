import { expect } from 'chai';
import fc from 'fast-check';
import { ProtocolError } from './errors.js';
import type { Pdu } from './events.js';
import { redactEvent, redactedEventIdOf } from './redaction.js';
import { type RoomVersionRules, roomVersionRules } from './room-versions.js';
import vectors from './vectors/client-server-api-redactions.json' with { type: 'json' };

const v = (id: string): RoomVersionRules => roomVersionRules(id);
const ALL_VERSIONS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'];

function event(fields: Record<string, unknown>): Pdu {
  return {
    room_id: '!r:x',
    sender: '@a:x',
    origin_server_ts: 1,
    depth: 1,
    prev_events: [],
    auth_events: [],
    hashes: { sha256: 'h' },
    signatures: { x: { 'ed25519:1': 's' } },
    content: {},
    type: 'm.room.message',
    ...fields,
  } as Pdu;
}

describe('redaction (client-server "Redactions", rooms/fragments/*-redactions)', () => {
  describe('vectors, every room version', () => {
    for (const [i, c] of vectors.cases.entries()) {
      it(`case ${i}: ${String((c.event as { type: unknown }).type)}`, () => {
        for (const id of ALL_VERSIONS) {
          const expected = (c.redacted as Record<string, unknown>)[id];
          expect(redactEvent(c.event as unknown as Pdu, v(id)), `room version ${id}`).to.deep.equal(expected);
        }
      });
    }
  });

  it('v1-5 keep m.room.aliases content.aliases; v6 drops it', () => {
    const aliases = event({
      type: 'm.room.aliases',
      state_key: 'x',
      content: { aliases: ['#a:x'], other: 1 },
    });
    expect(redactEvent(aliases, v('1')).content).to.deep.equal({ aliases: ['#a:x'] });
    expect(redactEvent(aliases, v('5')).content).to.deep.equal({ aliases: ['#a:x'] });
    expect(redactEvent(aliases, v('6')).content).to.deep.equal({});
  });

  it('v8 keeps m.room.join_rules content.allow; v7 does not', () => {
    const rules = event({
      type: 'm.room.join_rules',
      state_key: '',
      content: { join_rule: 'restricted', allow: [] },
    });
    expect(redactEvent(rules, v('7')).content).to.deep.equal({ join_rule: 'restricted' });
    expect(redactEvent(rules, v('8')).content).to.deep.equal({ join_rule: 'restricted', allow: [] });
  });

  it('v9 keeps join_authorised_via_users_server on members; v8 does not', () => {
    const join = event({
      type: 'm.room.member',
      state_key: '@a:x',
      content: { membership: 'join', join_authorised_via_users_server: '@b:y', displayname: 'A' },
    });
    expect(redactEvent(join, v('8')).content).to.deep.equal({ membership: 'join' });
    expect(redactEvent(join, v('9')).content).to.deep.equal({
      membership: 'join',
      join_authorised_via_users_server: '@b:y',
    });
  });

  it('v11 keeps all create content, power levels invite, redaction redacts, third_party_invite.signed', () => {
    const create = event({
      type: 'm.room.create',
      state_key: '',
      content: { creator: '@a:x', room_version: '10', x: 1 },
    });
    expect(redactEvent(create, v('10')).content).to.deep.equal({ creator: '@a:x' });
    expect(redactEvent(create, v('11')).content).to.deep.equal({ creator: '@a:x', room_version: '10', x: 1 });

    const levels = event({
      type: 'm.room.power_levels',
      state_key: '',
      content: { invite: 0, ban: 50, notifications: {} },
    });
    expect(redactEvent(levels, v('10')).content).to.deep.equal({ ban: 50 });
    expect(redactEvent(levels, v('11')).content).to.deep.equal({ ban: 50, invite: 0 });

    const redaction = event({
      type: 'm.room.redaction',
      redacts: '$t',
      content: { redacts: '$t', reason: 'r' },
    });
    expect(redactEvent(redaction, v('10')).content).to.deep.equal({});
    expect(redactEvent(redaction, v('11')).content).to.deep.equal({ redacts: '$t' });
    // Top-level `redacts` is not on any version's list.
    expect(redactEvent(redaction, v('10'))).not.to.have.property('redacts');

    const invite = event({
      type: 'm.room.member',
      state_key: '@c:x',
      content: { membership: 'invite', third_party_invite: { display_name: 'c', signed: { token: 't' } } },
    });
    expect(redactEvent(invite, v('10')).content).to.deep.equal({ membership: 'invite' });
    expect(redactEvent(invite, v('11')).content).to.deep.equal({
      membership: 'invite',
      third_party_invite: { signed: { token: 't' } },
    });
  });

  it('v11 drops top-level origin, membership and prev_state; v10 keeps them', () => {
    const old = event({ origin: 'x', membership: 'join', prev_state: [], age_ts: 5, unsigned: { age: 1 } });
    expect(redactEvent(old, v('10'))).to.include.keys('origin', 'membership', 'prev_state');
    const redacted = redactEvent(old, v('11'));
    expect(redacted).not.to.have.any.keys('origin', 'membership', 'prev_state');
    for (const id of ALL_VERSIONS) expect(redactEvent(old, v(id))).not.to.have.any.keys('unsigned', 'age_ts');
  });

  it('v12 redacts exactly like v11 (a create event without room_id keeps all its content)', () => {
    const create = event({
      type: 'm.room.create',
      state_key: '',
      content: { room_version: '12', additional_creators: ['@b:y'] },
    });
    delete (create as { room_id?: string }).room_id;
    const redacted = redactEvent(create, v('12'));
    expect(redacted).to.deep.equal(redactEvent(create, v('11')));
    expect(redacted).not.to.have.property('room_id');
    expect(redacted.content).to.deep.equal({ room_version: '12', additional_creators: ['@b:y'] });
  });

  it('keeps the essential fields and does not modify its input', () => {
    const message = event({ content: { body: 'secret' }, event_id: '$e:x', unsigned: { a: 1 } });
    const before = structuredClone(message);
    const redacted = redactEvent(message, v('1'));
    expect(message).to.deep.equal(before);
    const { unsigned: _dropped, ...essential } = before;
    expect(redacted).to.deep.equal({ ...essential, content: {} });
  });

  it('tolerates odd shapes below the top level and rejects a non-object event', () => {
    expect(redactEvent(event({ content: 'text' }), v('11')).content).to.deep.equal({});
    expect(redactEvent(event({ content: [1, 2], type: 'm.room.member' }), v('11')).content).to.deep.equal({});
    expect(redactEvent(event({ content: null, type: 7 }), v('11')).content).to.deep.equal({});
    expect(redactEvent({ type: 'm.room.member' } as unknown as Pdu, v('1'))).to.deep.equal({
      type: 'm.room.member',
      content: {},
    });
    for (const bad of [null, 'x', 3, [], undefined]) {
      expect(() => redactEvent(bad as unknown as Pdu, v('11')))
        .to.throw(ProtocolError)
        .with.property('code', 'BAD_EVENT');
    }
  });

  it('does not let a "__proto__" content key change prototypes', () => {
    const create = JSON.parse(
      '{"type":"m.room.create","content":{"__proto__":{"polluted":1},"creator":"@a:x"}}',
    );
    const redacted = redactEvent(create, v('11'));
    expect(Object.getPrototypeOf(redacted.content)).to.equal(Object.prototype);
    expect(Object.keys(redacted.content)).to.deep.equal(['__proto__', 'creator']);
  });

  it('is idempotent for any event in any room version', () => {
    const eventLike = fc.record(
      {
        type: fc.constantFrom(
          'm.room.member',
          'm.room.create',
          'm.room.join_rules',
          'm.room.power_levels',
          'm.room.aliases',
          'm.room.history_visibility',
          'm.room.redaction',
          'm.room.message',
        ),
        content: fc.oneof(
          fc.dictionary(
            fc.constantFrom(
              'membership',
              'creator',
              'allow',
              'invite',
              'redacts',
              'aliases',
              'third_party_invite',
              'x',
            ),
            fc.jsonValue({ maxDepth: 2 }),
          ),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        origin: fc.string(),
        unsigned: fc.jsonValue({ maxDepth: 2 }),
        other: fc.jsonValue({ maxDepth: 2 }),
      },
      { requiredKeys: ['type'] },
    );
    fc.assert(
      fc.property(eventLike, fc.constantFrom(...ALL_VERSIONS), (e, id) => {
        const once = redactEvent(e as unknown as Pdu, v(id));
        expect(redactEvent(once, v(id))).to.deep.equal(once);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('redactedEventIdOf', () => {
  const redaction = (fields: Record<string, unknown>): Pdu =>
    event({ type: 'm.room.redaction', content: {}, ...fields });

  it('reads the top-level redacts before room version 11', () => {
    expect(redactedEventIdOf(redaction({ redacts: '$a' }), v('10'))).to.equal('$a');
    expect(redactedEventIdOf(redaction({ content: { redacts: '$b' } }), v('10'))).to.equal(undefined);
  });

  it('reads content.redacts from room version 11, the top level standing in when it is missing', () => {
    expect(redactedEventIdOf(redaction({ redacts: '$a', content: { redacts: '$b' } }), v('11'))).to.equal(
      '$b',
    );
    expect(redactedEventIdOf(redaction({ redacts: '$a' }), v('11'))).to.equal('$a');
    expect(redactedEventIdOf(redaction({ content: { redacts: 7 } }), v('12'))).to.equal(undefined);
  });
});
