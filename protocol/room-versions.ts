/**
 * Every difference between room versions, as named flags (spec: /rooms/v1 .. /rooms/v12).
 * Algorithms consult these flags, never the version string, so adding a room
 * version means adding one entry here.
 */
import { ProtocolError } from './errors.js';

export type RoomVersionId = '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9' | '10' | '11' | '12';

export interface RoomVersionRules {
  readonly id: RoomVersionId;
  readonly stability: 'stable' | 'unstable';
  /** v1-2: `$opaque:server` chosen by the origin; v3: reference hash, standard base64; v4+: URL-safe base64. */
  readonly eventIdFormat: 'server-generated' | 'reference-hash' | 'reference-hash-url-safe';
  /** v1-2 reference events as `[id, {sha256}]` pairs in prev_events/auth_events. */
  readonly eventReferencesIncludeHashes: boolean;
  readonly stateResolution: 'v1' | 'v2' | 'v2.1';
  /** v5+: a signing key's `valid_until_ts` must cover the event's `origin_server_ts`. */
  readonly enforceKeyValidity: boolean;
  /** v6+: canonical JSON is strict: integers only, within [-(2^53)+1, (2^53)-1]. */
  readonly strictCanonicalJson: boolean;
  /** v1-5: `m.room.aliases` has its own auth rule (state_key must match sender's server). */
  readonly specialCaseAliasesAuth: boolean;
  /** v6+: changes to `notifications` power levels are checked like other keys. */
  readonly limitNotificationsPowerLevels: boolean;
  /** v7+: `knock` join rule and membership. */
  readonly knockAllowed: boolean;
  /** v8+: `restricted` join rule with `join_authorised_via_users_server`. */
  readonly restrictedJoinAllowed: boolean;
  /** v10+: `knock_restricted` join rule. */
  readonly knockRestrictedJoinAllowed: boolean;
  /** v10+: power level values must be integers (no numeric strings). */
  readonly integerPowerLevels: boolean;
  /** v1-10: the create event's `content.creator` names the creator; v11+: its `sender` does. */
  readonly createEventHasCreatorField: boolean;
  /** v11+: `redacts` lives in `content` (top-level key still accepted for compatibility). */
  readonly redactsInContent: boolean;
  /** v12+: room ID is `!` + the create event's reference hash; the create event has no room_id. */
  readonly roomIdIsCreateEventHash: boolean;
  /** v1-11: the create event is selected into auth_events; v12+: it is implied by the room ID. */
  readonly createEventInAuthEvents: boolean;
  /** v12+: the create event's sender and `additional_creators` have infinite power. */
  readonly privilegedCreators: boolean;

  // Redaction algorithm (spec: client-server "Redactions", per-version fragments).
  /** v1-5: `m.room.aliases` keeps `content.aliases`. */
  readonly redactionKeepsAliases: boolean;
  /** v8+: `m.room.join_rules` keeps `content.allow`. */
  readonly redactionKeepsJoinRulesAllow: boolean;
  /** v9+: `m.room.member` keeps `content.join_authorised_via_users_server`. */
  readonly redactionKeepsJoinAuthorisedVia: boolean;
  /** v11+: `m.room.create` keeps its whole content (otherwise only `creator`). */
  readonly redactionKeepsAllCreateContent: boolean;
  /** v11+: `m.room.power_levels` keeps `content.invite`. */
  readonly redactionKeepsPowerLevelsInvite: boolean;
  /** v11+: `m.room.redaction` keeps `content.redacts`. */
  readonly redactionKeepsRedactsContent: boolean;
  /** v11+: `m.room.member` keeps `content.third_party_invite.signed`. */
  readonly redactionKeepsThirdPartyInviteSigned: boolean;
  /** v1-10: top-level `origin`, `membership` and `prev_state` survive redaction; v11+ drops them. */
  readonly redactionKeepsOriginMembershipPrevState: boolean;
}

const v1: RoomVersionRules = {
  id: '1',
  stability: 'stable',
  eventIdFormat: 'server-generated',
  eventReferencesIncludeHashes: true,
  stateResolution: 'v1',
  enforceKeyValidity: false,
  strictCanonicalJson: false,
  specialCaseAliasesAuth: true,
  limitNotificationsPowerLevels: false,
  knockAllowed: false,
  restrictedJoinAllowed: false,
  knockRestrictedJoinAllowed: false,
  integerPowerLevels: false,
  createEventHasCreatorField: true,
  redactsInContent: false,
  roomIdIsCreateEventHash: false,
  createEventInAuthEvents: true,
  privilegedCreators: false,
  redactionKeepsAliases: true,
  redactionKeepsJoinRulesAllow: false,
  redactionKeepsJoinAuthorisedVia: false,
  redactionKeepsAllCreateContent: false,
  redactionKeepsPowerLevelsInvite: false,
  redactionKeepsRedactsContent: false,
  redactionKeepsThirdPartyInviteSigned: false,
  redactionKeepsOriginMembershipPrevState: true,
};
const v2: RoomVersionRules = { ...v1, id: '2', stateResolution: 'v2' };
const v3: RoomVersionRules = {
  ...v2,
  id: '3',
  eventIdFormat: 'reference-hash',
  eventReferencesIncludeHashes: false,
};
const v4: RoomVersionRules = { ...v3, id: '4', eventIdFormat: 'reference-hash-url-safe' };
const v5: RoomVersionRules = { ...v4, id: '5', enforceKeyValidity: true };
const v6: RoomVersionRules = {
  ...v5,
  id: '6',
  strictCanonicalJson: true,
  specialCaseAliasesAuth: false,
  limitNotificationsPowerLevels: true,
  redactionKeepsAliases: false,
};
const v7: RoomVersionRules = { ...v6, id: '7', knockAllowed: true };
const v8: RoomVersionRules = {
  ...v7,
  id: '8',
  restrictedJoinAllowed: true,
  redactionKeepsJoinRulesAllow: true,
};
const v9: RoomVersionRules = { ...v8, id: '9', redactionKeepsJoinAuthorisedVia: true };
const v10: RoomVersionRules = {
  ...v9,
  id: '10',
  knockRestrictedJoinAllowed: true,
  integerPowerLevels: true,
};
const v11: RoomVersionRules = {
  ...v10,
  id: '11',
  createEventHasCreatorField: false,
  redactsInContent: true,
  redactionKeepsAllCreateContent: true,
  redactionKeepsPowerLevelsInvite: true,
  redactionKeepsRedactsContent: true,
  redactionKeepsThirdPartyInviteSigned: true,
  redactionKeepsOriginMembershipPrevState: false,
};
const v12: RoomVersionRules = {
  ...v11,
  id: '12',
  stateResolution: 'v2.1',
  roomIdIsCreateEventHash: true,
  createEventInAuthEvents: false,
  privilegedCreators: true,
};

export const ROOM_VERSIONS: ReadonlyMap<string, RoomVersionRules> = new Map(
  [v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12].map((r) => [r.id, r]),
);

/** The version new rooms get unless the client asks otherwise (spec recommendation). */
export const DEFAULT_ROOM_VERSION: RoomVersionId = '12';

export function isKnownRoomVersion(id: unknown): id is RoomVersionId {
  return typeof id === 'string' && ROOM_VERSIONS.has(id);
}

export function roomVersionRules(id: string): RoomVersionRules {
  const rules = ROOM_VERSIONS.get(id);
  if (!rules) throw new ProtocolError('UNSUPPORTED_ROOM_VERSION', `Unknown room version '${id}'`);
  return rules;
}
