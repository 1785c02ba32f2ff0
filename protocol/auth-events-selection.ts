/**
 * Which pieces of room state an event cites as its `auth_events`
 * (spec: server-server-api "Auth events selection").
 */
import type { JsonValue, Pdu } from './events.js';
import type { RoomVersionRules } from './room-versions.js';

export type AuthEventKey = [type: string, stateKey: string];

function field(value: JsonValue | undefined, key: string): JsonValue | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value[key] : undefined;
}

/**
 * The (type, state_key) pairs an event's `auth_events` may hold: empty for `m.room.create`;
 * otherwise the create event (before v12), the power levels, the sender's membership and,
 * for memberships, the target's membership, the join rules, the third-party invite and the
 * authorising user's membership as they apply. Malformed content selects nothing extra.
 */
export function selectAuthEventKeys(
  pdu: Pick<Pdu, 'type' | 'sender' | 'state_key' | 'content'>,
  rules: RoomVersionRules,
): AuthEventKey[] {
  if (pdu.type === 'm.room.create') return [];
  const keys: AuthEventKey[] = [];
  if (rules.createEventInAuthEvents) keys.push(['m.room.create', '']);
  keys.push(['m.room.power_levels', ''], ['m.room.member', pdu.sender]);
  if (pdu.type !== 'm.room.member' || typeof pdu.state_key !== 'string') return keys;

  if (pdu.state_key !== pdu.sender) keys.push(['m.room.member', pdu.state_key]);
  const membership = field(pdu.content, 'membership');
  if (membership === 'join' || membership === 'invite' || membership === 'knock') {
    keys.push(['m.room.join_rules', '']);
  }
  if (membership === 'invite') {
    const token = field(field(field(pdu.content, 'third_party_invite'), 'signed'), 'token');
    if (typeof token === 'string') keys.push(['m.room.third_party_invite', token]);
  }
  if (membership === 'join' && rules.restrictedJoinAllowed) {
    const authoriser = field(pdu.content, 'join_authorised_via_users_server');
    if (typeof authoriser === 'string' && authoriser !== pdu.sender) keys.push(['m.room.member', authoriser]);
  }
  return keys;
}
