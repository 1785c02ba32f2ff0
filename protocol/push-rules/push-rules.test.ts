import { expect } from 'chai';
import fc from 'fast-check';
import type { JsonObject } from '../events.js';
import {
  CompiledPushRules,
  changeRule,
  compileCondition,
  compileGlob,
  compileWordGlob,
  deleteUserRule,
  EMPTY_USER_PUSH_RULES,
  effectivePushRules,
  escapePropertyName,
  PushEventView,
  putUserRule,
  splitPropertyPath,
  tweaksOf,
  type UserPushRules,
} from './index.js';

const ME = '@me:example.org';
const OTHER = '@other:example.org';
const ROOM = '!room:example.org';

function view(event: JsonObject, members = 3, senderPower = 0): PushEventView {
  return new PushEventView({
    event: { room_id: ROOM, sender: OTHER, ...event },
    roomMemberCount: members,
    senderMayNotify: (key) => senderPower >= (key === 'room' ? 50 : 50),
  });
}

function evaluate(
  user: UserPushRules,
  event: JsonObject,
  members = 3,
  senderPower = 0,
  displayName?: string,
) {
  return new CompiledPushRules(effectivePushRules(ME, user)).evaluate(view(event, members, senderPower), {
    displayName,
  });
}

const message = (body: string, extra: JsonObject = {}): JsonObject => ({
  type: 'm.room.message',
  content: { msgtype: 'm.text', body, ...extra },
});

describe('push rules: server defaults (spec v1.19 "Predefined Rules")', () => {
  it('lists the default rules in the exact order of the spec', () => {
    const rules = effectivePushRules(ME, EMPTY_USER_PUSH_RULES);
    expect(rules.override.map((rule) => rule.rule_id)).to.deep.equal([
      '.m.rule.master',
      '.m.rule.suppress_notices',
      '.m.rule.invite_for_me',
      '.m.rule.member_event',
      '.m.rule.is_user_mention',
      '.m.rule.is_room_mention',
      '.m.rule.tombstone',
      '.m.rule.reaction',
      '.m.rule.room.server_acl',
      '.m.rule.suppress_edits',
    ]);
    expect(rules.content).to.deep.equal([]);
    expect(rules.underride.map((rule) => rule.rule_id)).to.deep.equal([
      '.m.rule.call',
      '.m.rule.encrypted_room_one_to_one',
      '.m.rule.room_one_to_one',
      '.m.rule.message',
      '.m.rule.encrypted',
    ]);
    expect(rules.override[0]!.enabled).to.equal(false);
    expect(rules.override[2]!.conditions).to.deep.include({
      kind: 'event_match',
      key: 'state_key',
      pattern: ME,
    });
  });

  it('notifies with sound in a 1:1 room, plainly in a group, and not for notices', () => {
    expect(evaluate(EMPTY_USER_PUSH_RULES, message('hi'), 2)?.ruleId).to.equal('.m.rule.room_one_to_one');
    const group = evaluate(EMPTY_USER_PUSH_RULES, message('hi'), 5);
    expect(group).to.include({ ruleId: '.m.rule.message', notify: true, highlight: false });
    expect(
      evaluate(EMPTY_USER_PUSH_RULES, {
        type: 'm.room.message',
        content: { msgtype: 'm.notice', body: 'x' },
      }),
    ).to.include({ ruleId: '.m.rule.suppress_notices', notify: false });
  });

  it('highlights user mentions and room mentions only from senders with the power to', () => {
    const mention = evaluate(EMPTY_USER_PUSH_RULES, message('hey', { 'm.mentions': { user_ids: [ME] } }));
    expect(mention).to.include({ ruleId: '.m.rule.is_user_mention', highlight: true });
    const room = message('all', { 'm.mentions': { room: true } });
    expect(evaluate(EMPTY_USER_PUSH_RULES, room, 5, 50)).to.include({ ruleId: '.m.rule.is_room_mention' });
    expect(evaluate(EMPTY_USER_PUSH_RULES, room, 5, 0)?.ruleId).to.equal('.m.rule.message');
  });

  it('suppresses reactions, edits and member events, and notifies invites for me', () => {
    expect(evaluate(EMPTY_USER_PUSH_RULES, { type: 'm.reaction', content: {} })?.notify).to.equal(false);
    const edit = message('* x', { 'm.relates_to': { rel_type: 'm.replace', event_id: '$e' } });
    expect(evaluate(EMPTY_USER_PUSH_RULES, edit)?.ruleId).to.equal('.m.rule.suppress_edits');
    const invite = { type: 'm.room.member', state_key: ME, content: { membership: 'invite' } };
    expect(evaluate(EMPTY_USER_PUSH_RULES, invite)).to.include({
      ruleId: '.m.rule.invite_for_me',
      notify: true,
    });
    const join = { type: 'm.room.member', state_key: OTHER, content: { membership: 'join' } };
    expect(evaluate(EMPTY_USER_PUSH_RULES, join)?.ruleId).to.equal('.m.rule.member_event');
    expect(
      evaluate(EMPTY_USER_PUSH_RULES, { type: 'm.room.tombstone', state_key: '', content: {} })?.highlight,
    ).to.equal(true);
    expect(evaluate(EMPTY_USER_PUSH_RULES, { type: 'm.room.topic', state_key: '', content: {} })).to.equal(
      null,
    );
  });

  it('knows which event types could notify a user at all', () => {
    const compiled = new CompiledPushRules(effectivePushRules(ME, EMPTY_USER_PUSH_RULES));
    // A reaction mentioning the user would notify: .m.rule.is_user_mention precedes .m.rule.reaction.
    expect(compiled.couldNotify('m.reaction')).to.equal(true);
    expect(compiled.couldNotify('m.room.message')).to.equal(true);
    expect(compiled.couldNotify('m.room.member')).to.equal(true);
    expect(compiled.couldNotify('org.example.custom')).to.equal(true);
    const muted = changeRule(ME, EMPTY_USER_PUSH_RULES, 'override', '.m.rule.master', { enabled: true });
    if (!muted.ok) throw new Error(muted.message);
    expect(new CompiledPushRules(effectivePushRules(ME, muted.value)).couldNotify('m.room.message')).to.equal(
      false,
    );
    const noReactions = putUserRule(EMPTY_USER_PUSH_RULES, 'override', 'mute-reactions', {
      actions: [],
      conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.reaction' }],
    });
    if (!noReactions.ok) throw new Error(noReactions.message);
    const withoutReactions = new CompiledPushRules(effectivePushRules(ME, noReactions.value));
    expect(withoutReactions.couldNotify('m.reaction')).to.equal(false);
    expect(withoutReactions.couldNotify('m.room.message')).to.equal(true);
  });

  it('the master rule, once enabled, silences everything ahead of user rules', () => {
    const keyword = putUserRule(EMPTY_USER_PUSH_RULES, 'override', 'all', { actions: ['notify'] });
    if (!keyword.ok) throw new Error(keyword.message);
    const muted = changeRule(ME, keyword.value, 'override', '.m.rule.master', { enabled: true });
    if (!muted.ok) throw new Error(muted.message);
    expect(evaluate(muted.value, message('hi'))).to.include({ ruleId: '.m.rule.master', notify: false });
  });
});

describe('push rules: conditions (push.md "Conditions")', () => {
  it('event_match is a whole-value, case-insensitive glob; content.body matches words', () => {
    const topic = compileCondition({ kind: 'event_match', key: 'content.topic', pattern: 'lunc?*' });
    for (const value of ['Lunch plans', 'LUNCH'])
      expect(topic(view({ content: { topic: value } }), {})).to.equal(true);
    for (const value of [' lunch', 'lunc', null])
      expect(topic(view({ content: { topic: value } }), {})).to.equal(false);
    const body = compileCondition({ kind: 'event_match', key: 'content.body', pattern: 'ex*ple' });
    for (const value of ['An example event.', 'exple', 'An exciting triple-whammy'])
      expect(body(view({ content: { body: value } }), {}), value).to.equal(true);
    expect(body(view({ content: { body: 'examples' } }), {})).to.equal(false);
    const star = compileCondition({ kind: 'event_match', key: 'content.missing', pattern: '*' });
    expect(star(view({ content: {} }), {})).to.equal(false);
  });

  it('event_property_is and _contains compare exact scalars at escaped paths', () => {
    const federate = compileCondition({
      kind: 'event_property_is',
      key: 'content.m\\.federate',
      value: true,
    });
    expect(federate(view({ content: { 'm.federate': true } }), {})).to.equal(true);
    expect(federate(view({ content: { 'm.federate': 'true' } }), {})).to.equal(false);
    expect(federate(view({ content: { 'm.federate': 1 } }), {})).to.equal(false);
    const aliases = compileCondition({
      kind: 'event_property_contains',
      key: 'content.alt_aliases',
      value: '#r:example.com',
    });
    expect(aliases(view({ content: { alt_aliases: ['#a:b', '#r:example.com'] } }), {})).to.equal(true);
    expect(aliases(view({ content: { alt_aliases: [':example.com'] } }), {})).to.equal(false);
    expect(aliases(view({ content: { alt_aliases: '#r:example.com' } }), {})).to.equal(false);
  });

  it('room_member_count accepts ==, <, >, <=, >= and no prefix; unknown kinds never match', () => {
    const cases: [string, number, boolean][] = [
      ['2', 2, true],
      ['==3', 2, false],
      ['<3', 2, true],
      ['>2', 2, false],
      ['>=2', 2, true],
      ['<=1', 2, false],
      ['x', 2, false],
    ];
    for (const [is, members, expected] of cases)
      expect(compileCondition({ kind: 'room_member_count', is })(view({}, members), {}), is).to.equal(
        expected,
      );
    expect(compileCondition({ kind: 'org.example.unknown' })(view({}), {})).to.equal(false);
  });

  it('contains_display_name looks for the name as a word of the body', () => {
    const test = compileCondition({ kind: 'contains_display_name' });
    expect(test(view({ content: { body: 'hello Alice!' } }), { displayName: 'alice' })).to.equal(true);
    expect(test(view({ content: { body: 'hello Alicea' } }), { displayName: 'Alice' })).to.equal(false);
    expect(test(view({ content: { body: 'hello' } }), {})).to.equal(false);
  });

  it('splits dotted paths with escapes and round-trips escaped names', () => {
    expect(splitPropertyPath('content.m\\.relates_to.rel_type')).to.deep.equal([
      'content',
      'm.relates_to',
      'rel_type',
    ]);
    expect(splitPropertyPath('content.m\\\\foo')).to.deep.equal(['content', 'm\\foo']);
    expect(splitPropertyPath('content.a\\xb')).to.deep.equal(['content', 'a\\xb']);
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 5 }), (names) => {
        expect(splitPropertyPath(names.map(escapePropertyName).join('.'))).to.deep.equal(names);
      }),
    );
  });

  it('globs: a pattern without wildcards matches itself, * matches anything, words match in any case', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !/[*?]/.test(s)),
        fc.string(),
        (text, other) => {
          expect(compileGlob(text)(text)).to.equal(true);
          expect(compileGlob('*')(other)).to.equal(true);
          expect(compileGlob(`${text}*`)(text + other)).to.equal(true);
        },
      ),
    );
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z]{1,8}$/),
        fc.stringMatching(/^[ ,.!-]{1,3}$/),
        (word, separator) => {
          expect(compileWordGlob(word)(`x${separator}${word.toUpperCase()}${separator}y`)).to.equal(true);
          expect(compileWordGlob(word)(`x${word}y`)).to.equal(false);
        },
      ),
    );
  });

  it('tweaks carry sound and highlight (a bare highlight tweak means true)', () => {
    expect(
      tweaksOf(['notify', { set_tweak: 'sound', value: 'default' }, { set_tweak: 'highlight' }]),
    ).to.deep.equal({
      sound: 'default',
      highlight: true,
    });
  });
});

describe('push rules: editing (pushrules.yaml)', () => {
  const put = (
    user: UserPushRules,
    ...args: Parameters<typeof putUserRule> extends [unknown, ...infer R] ? R : never
  ) => {
    const verdict = putUserRule(user, ...args);
    if (!verdict.ok) throw new Error(verdict.message);
    return verdict.value;
  };

  it('adds new rules first, places them before/after user rules, updates in place', () => {
    let user = put(EMPTY_USER_PUSH_RULES, 'content', 'a', { pattern: 'a', actions: ['notify'] });
    user = put(user, 'content', 'b', { pattern: 'b', actions: ['notify'] });
    user = put(user, 'content', 'c', { pattern: 'c', actions: ['notify'] }, { after: 'a' });
    user = put(user, 'content', 'd', { pattern: 'd', actions: ['notify'] }, { before: 'b' });
    user = put(user, 'content', 'a', { pattern: 'A', actions: [] });
    const ids = effectivePushRules(ME, user).content.map((rule) => rule.rule_id);
    expect(ids).to.deep.equal(['d', 'b', 'a', 'c']);
    expect(effectivePushRules(ME, user).content[2]).to.deep.include({
      pattern: 'A',
      default: false,
      enabled: true,
    });
  });

  it('refuses reserved IDs, placement against defaults or unknown rules, and deleting defaults', () => {
    expect(putUserRule(EMPTY_USER_PUSH_RULES, 'override', '.mine', { actions: [] })).to.include({
      ok: false,
      error: 'invalid',
    });
    expect(
      putUserRule(EMPTY_USER_PUSH_RULES, 'override', 'x', { actions: [] }, { before: '.m.rule.master' }),
    ).to.include({ ok: false });
    expect(
      putUserRule(EMPTY_USER_PUSH_RULES, 'override', 'x', { actions: [] }, { after: 'nope' }),
    ).to.include({ error: 'not_found' });
    expect(putUserRule(EMPTY_USER_PUSH_RULES, 'content', 'x', { actions: [] })).to.include({
      error: 'invalid',
    });
    expect(deleteUserRule(EMPTY_USER_PUSH_RULES, 'override', '.m.rule.reaction')).to.include({
      error: 'invalid',
    });
    expect(deleteUserRule(EMPTY_USER_PUSH_RULES, 'override', 'none')).to.include({ error: 'not_found' });
    expect(
      changeRule(ME, EMPTY_USER_PUSH_RULES, 'content', '.m.rule.reaction', { enabled: false }),
    ).to.include({ error: 'not_found' });
  });

  it("changes a default rule's actions and enabled flag, and drops historical actions", () => {
    const changed = changeRule(ME, EMPTY_USER_PUSH_RULES, 'override', '.m.rule.reaction', {
      actions: ['notify', 'dont_notify'],
    });
    if (!changed.ok) throw new Error(changed.message);
    expect(evaluate(changed.value, { type: 'm.reaction', content: {} })).to.include({ notify: true });
    const disabled = changeRule(ME, changed.value, 'underride', '.m.rule.message', { enabled: false });
    if (!disabled.ok) throw new Error(disabled.message);
    expect(evaluate(disabled.value, message('hi'))).to.equal(null);
  });

  it('custom preferences: mute a room, mentions-only room, keyword, mute reactions', () => {
    const muted = put(EMPTY_USER_PUSH_RULES, 'override', ROOM, {
      actions: [],
      conditions: [{ kind: 'event_match', key: 'room_id', pattern: ROOM }],
    });
    expect(evaluate(muted, message('hi'))?.notify).to.equal(false);
    expect(evaluate(muted, message('hi', { 'm.mentions': { user_ids: [ME] } }))?.notify).to.equal(false);
    const mentionsOnly = put(EMPTY_USER_PUSH_RULES, 'room', ROOM, { actions: [] });
    expect(evaluate(mentionsOnly, message('hi'))?.notify).to.equal(false);
    expect(evaluate(mentionsOnly, message('hi', { 'm.mentions': { user_ids: [ME] } }))?.highlight).to.equal(
      true,
    );
    const keyword = put(EMPTY_USER_PUSH_RULES, 'content', 'cake', {
      pattern: 'cake',
      actions: ['notify', { set_tweak: 'highlight' }],
    });
    expect(evaluate(keyword, message('Cake time!'))?.highlight).to.equal(true);
    expect(evaluate(keyword, message('cakes'))?.highlight).to.equal(false);
  });
});
