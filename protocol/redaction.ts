/**
 * The redaction algorithm (spec: client-server "Redactions"; rooms/fragments
 * v1-redactions, v6-redactions, v9-redactions, v11-redactions; rooms/v8 "Redactions").
 * Every difference between room versions comes from the `redactionKeeps*` flags.
 *
 * The result is what gets hashed for reference hashes and signed; `unsigned` is
 * not in the spec's list, so it is dropped like any other unknown key. Servers that
 * serve redacted events to clients add their own `unsigned` (e.g. `redacted_because`).
 */
import { ProtocolError } from './errors.js';
import type { JsonObject, JsonValue, Pdu } from './events.js';
import type { RoomVersionRules } from './room-versions.js';

/** Top-level keys every room version keeps. */
const ALWAYS_KEPT_TOP_LEVEL = [
  'event_id',
  'type',
  'room_id',
  'sender',
  'state_key',
  'content',
  'hashes',
  'signatures',
  'depth',
  'prev_events',
  'auth_events',
  'origin_server_ts',
] as const;

/** Kept by room versions 1-10, dropped from 11 on. */
const OLD_TOP_LEVEL = ['origin', 'membership', 'prev_state'] as const;

const POWER_LEVELS_KEPT = [
  'ban',
  'events',
  'events_default',
  'kick',
  'redact',
  'state_default',
  'users',
  'users_default',
] as const;

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function copyKeys(from: JsonObject, to: JsonObject, keys: readonly string[]): void {
  for (const key of keys) {
    if (Object.hasOwn(from, key)) to[key] = from[key] as JsonValue;
  }
}

/** The content keys that survive redaction for this event type and room version. */
function redactContent(type: unknown, content: JsonObject, rules: RoomVersionRules): JsonObject {
  const kept: JsonObject = {};
  switch (type) {
    case 'm.room.member': {
      copyKeys(content, kept, ['membership']);
      if (rules.redactionKeepsJoinAuthorisedVia)
        copyKeys(content, kept, ['join_authorised_via_users_server']);
      const invite = content.third_party_invite;
      if (
        rules.redactionKeepsThirdPartyInviteSigned &&
        isJsonObject(invite) &&
        Object.hasOwn(invite, 'signed')
      ) {
        kept.third_party_invite = { signed: invite.signed as JsonValue };
      }
      break;
    }
    case 'm.room.create':
      if (rules.redactionKeepsAllCreateContent) return { ...content };
      copyKeys(content, kept, ['creator']);
      break;
    case 'm.room.join_rules':
      copyKeys(content, kept, rules.redactionKeepsJoinRulesAllow ? ['join_rule', 'allow'] : ['join_rule']);
      break;
    case 'm.room.power_levels':
      copyKeys(content, kept, POWER_LEVELS_KEPT);
      if (rules.redactionKeepsPowerLevelsInvite) copyKeys(content, kept, ['invite']);
      break;
    case 'm.room.aliases':
      if (rules.redactionKeepsAliases) copyKeys(content, kept, ['aliases']);
      break;
    case 'm.room.history_visibility':
      copyKeys(content, kept, ['history_visibility']);
      break;
    case 'm.room.redaction':
      if (rules.redactionKeepsRedactsContent) copyKeys(content, kept, ['redacts']);
      break;
  }
  return kept;
}

/**
 * Returns the redacted copy of an event; the input is not modified. Nested values
 * that survive are shared with the input, not cloned.
 * Tolerates any shape below the top level (a missing `content`, or one that is not
 * an object, redacts to `{}`); throws ProtocolError('BAD_EVENT') only if the event itself
 * is not a JSON object.
 */
export function redactEvent(pdu: Pdu, rules: RoomVersionRules): Pdu {
  const event: unknown = pdu;
  if (!isJsonObject(event)) throw new ProtocolError('BAD_EVENT', 'An event must be a JSON object');
  const redacted: JsonObject = {};
  copyKeys(event, redacted, ALWAYS_KEPT_TOP_LEVEL);
  if (rules.redactionKeepsOriginMembershipPrevState) copyKeys(event, redacted, OLD_TOP_LEVEL);
  // Like Synapse, always emit `content`, even for an event that arrived without one.
  redacted.content = isJsonObject(event.content) ? redactContent(event.type, event.content, rules) : {};
  return redacted as unknown as Pdu;
}

/** The event a redaction names (in its content from room version 11, at the top level before). */
export function redactedEventIdOf(pdu: Pdu, rules: RoomVersionRules): string | undefined {
  const fromContent = rules.redactsInContent ? pdu.content?.redacts : undefined;
  const targetId = typeof fromContent === 'string' ? fromContent : pdu.redacts;
  return typeof targetId === 'string' ? targetId : undefined;
}
