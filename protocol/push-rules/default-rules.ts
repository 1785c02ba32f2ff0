/**
 * The server-default push rules of spec v1.19 (push.md "Predefined Rules"), in
 * their exact order. `.m.rule.master` is always checked first, ahead of every
 * user-defined rule; the other defaults come after the user's rules of their kind.
 * v1.17 removed the legacy body-matching defaults (contains_display_name,
 * contains_user_name, roomnotif), so the content kind has no defaults.
 */
import type { PushAction, PushRule, RuleKind } from './types.js';

const SOUND_DEFAULT: PushAction = { set_tweak: 'sound', value: 'default' };
const HIGHLIGHT: PushAction = { set_tweak: 'highlight' };

function rule(
  rule_id: string,
  conditions: PushRule['conditions'],
  actions: PushAction[],
  enabled = true,
): PushRule {
  return { rule_id, default: true, enabled, conditions, actions };
}

/** The default override rules after `.m.rule.master`, for `userId`. */
function overrideDefaults(userId: string): PushRule[] {
  return [
    rule(
      '.m.rule.suppress_notices',
      [{ kind: 'event_match', key: 'content.msgtype', pattern: 'm.notice' }],
      [],
    ),
    rule(
      '.m.rule.invite_for_me',
      [
        { kind: 'event_match', key: 'type', pattern: 'm.room.member' },
        { kind: 'event_match', key: 'content.membership', pattern: 'invite' },
        { kind: 'event_match', key: 'state_key', pattern: userId },
      ],
      ['notify', SOUND_DEFAULT],
    ),
    rule('.m.rule.member_event', [{ kind: 'event_match', key: 'type', pattern: 'm.room.member' }], []),
    rule(
      '.m.rule.is_user_mention',
      [{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: userId }],
      ['notify', SOUND_DEFAULT, HIGHLIGHT],
    ),
    rule(
      '.m.rule.is_room_mention',
      [
        { kind: 'event_property_is', key: 'content.m\\.mentions.room', value: true },
        { kind: 'sender_notification_permission', key: 'room' },
      ],
      ['notify', HIGHLIGHT],
    ),
    rule(
      '.m.rule.tombstone',
      [
        { kind: 'event_match', key: 'type', pattern: 'm.room.tombstone' },
        { kind: 'event_match', key: 'state_key', pattern: '' },
      ],
      ['notify', HIGHLIGHT],
    ),
    rule('.m.rule.reaction', [{ kind: 'event_match', key: 'type', pattern: 'm.reaction' }], []),
    rule(
      '.m.rule.room.server_acl',
      [
        { kind: 'event_match', key: 'type', pattern: 'm.room.server_acl' },
        { kind: 'event_match', key: 'state_key', pattern: '' },
      ],
      [],
    ),
    rule(
      '.m.rule.suppress_edits',
      [{ kind: 'event_property_is', key: 'content.m\\.relates_to.rel_type', value: 'm.replace' }],
      [],
    ),
  ];
}

function underrideDefaults(): PushRule[] {
  return [
    rule(
      '.m.rule.call',
      [{ kind: 'event_match', key: 'type', pattern: 'm.call.invite' }],
      ['notify', { set_tweak: 'sound', value: 'ring' }],
    ),
    rule(
      '.m.rule.encrypted_room_one_to_one',
      [
        { kind: 'room_member_count', is: '2' },
        { kind: 'event_match', key: 'type', pattern: 'm.room.encrypted' },
      ],
      ['notify', SOUND_DEFAULT],
    ),
    rule(
      '.m.rule.room_one_to_one',
      [
        { kind: 'room_member_count', is: '2' },
        { kind: 'event_match', key: 'type', pattern: 'm.room.message' },
      ],
      ['notify', SOUND_DEFAULT],
    ),
    rule('.m.rule.message', [{ kind: 'event_match', key: 'type', pattern: 'm.room.message' }], ['notify']),
    rule(
      '.m.rule.encrypted',
      [{ kind: 'event_match', key: 'type', pattern: 'm.room.encrypted' }],
      ['notify'],
    ),
  ];
}

export const MASTER_RULE_ID = '.m.rule.master';

export const MASTER_RULE: PushRule = rule(MASTER_RULE_ID, [], [], false);

/** The server-default rules of each kind for `userId`, in order (master first among overrides). */
export function defaultPushRules(userId: string): { readonly [K in RuleKind]: PushRule[] } {
  return {
    override: [MASTER_RULE, ...overrideDefaults(userId)],
    content: [],
    room: [],
    sender: [],
    underride: underrideDefaults(),
  };
}
