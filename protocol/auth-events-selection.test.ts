import { expect } from 'chai';
import { selectAuthEventKeys } from './auth-events-selection.js';
import type { JsonObject } from './events.js';
import { roomVersionRules } from './room-versions.js';

const v7 = roomVersionRules('7');
const v8 = roomVersionRules('8');
const v12 = roomVersionRules('12');
const A = '@alice:a.org';
const B = '@bob:b.org';

function member(sender: string, target: string, content: JsonObject) {
  return { type: 'm.room.member', sender, state_key: target, content };
}

describe('selectAuthEventKeys (server-server "Auth events selection")', () => {
  it('selects nothing for the create event', () => {
    expect(
      selectAuthEventKeys({ type: 'm.room.create', sender: A, state_key: '', content: {} }, v8),
    ).to.deep.equal([]);
  });

  it('selects create, power levels and the sender\u2019s membership for a message (v1-11)', () => {
    expect(
      selectAuthEventKeys({ type: 'm.room.message', sender: A, content: { body: 'x' } }, v8),
    ).to.deep.equal([
      ['m.room.create', ''],
      ['m.room.power_levels', ''],
      ['m.room.member', A],
    ]);
  });

  it('v12 never selects the create event', () => {
    expect(selectAuthEventKeys({ type: 'm.room.message', sender: A, content: {} }, v12)).to.deep.equal([
      ['m.room.power_levels', ''],
      ['m.room.member', A],
    ]);
  });

  it('adds the target and the join rules for invites, joins and knocks, not for leaves', () => {
    expect(selectAuthEventKeys(member(A, B, { membership: 'invite' }), v8)).to.deep.include.members([
      ['m.room.member', B],
      ['m.room.join_rules', ''],
    ]);
    expect(selectAuthEventKeys(member(B, B, { membership: 'knock' }), v7)).to.deep.include([
      'm.room.join_rules',
      '',
    ]);
    const leave = selectAuthEventKeys(member(A, B, { membership: 'leave' }), v8);
    expect(leave).to.deep.include(['m.room.member', B]);
    expect(leave).to.not.deep.include(['m.room.join_rules', '']);
  });

  it('does not list the sender\u2019s membership twice when sender is the target', () => {
    const keys = selectAuthEventKeys(member(B, B, { membership: 'join' }), v8);
    expect(keys.filter(([t, k]) => t === 'm.room.member' && k === B)).to.have.length(1);
  });

  it('adds the third-party invite named by the signed token', () => {
    const content = { membership: 'invite', third_party_invite: { signed: { mxid: B, token: 'tok' } } };
    expect(selectAuthEventKeys(member(A, B, content), v8)).to.deep.include([
      'm.room.third_party_invite',
      'tok',
    ]);
    const malformed = { membership: 'invite', third_party_invite: { signed: 'nope' } };
    expect(selectAuthEventKeys(member(A, B, malformed), v8).map(([t]) => t)).to.not.include(
      'm.room.third_party_invite',
    );
  });

  it('adds the authorising user\u2019s membership for restricted joins from v8 on', () => {
    const content = { membership: 'join', join_authorised_via_users_server: A };
    expect(selectAuthEventKeys(member(B, B, content), v8)).to.deep.include(['m.room.member', A]);
    expect(selectAuthEventKeys(member(B, B, content), v7)).to.not.deep.include(['m.room.member', A]);
  });
});
