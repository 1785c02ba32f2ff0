/**
 * The state a new room starts with (client-server `POST /createRoom`: the preset table,
 * and the default `m.room.power_levels`, whose levels follow Synapse's, the de-facto standard).
 */
import type { JsonObject } from '../../protocol/events.js';
import type { RoomVersionRules } from '../../protocol/room-versions.js';

export type RoomPreset = 'private_chat' | 'trusted_private_chat' | 'public_chat';

export interface PresetState {
  readonly joinRule: 'invite' | 'public';
  readonly historyVisibility: 'shared';
  readonly guestAccess: 'can_join' | 'forbidden';
  /** trusted_private_chat: invitees get the creator's power (v12+: by becoming additional creators). */
  readonly inviteesAreAdmins: boolean;
  /** Level needed to invite: anyone in a private chat, moderators in a public one. */
  readonly inviteLevel: number;
}

const PRESETS: Record<RoomPreset, PresetState> = {
  private_chat: {
    joinRule: 'invite',
    historyVisibility: 'shared',
    guestAccess: 'can_join',
    inviteesAreAdmins: false,
    inviteLevel: 0,
  },
  trusted_private_chat: {
    joinRule: 'invite',
    historyVisibility: 'shared',
    guestAccess: 'can_join',
    inviteesAreAdmins: true,
    inviteLevel: 0,
  },
  public_chat: {
    joinRule: 'public',
    historyVisibility: 'shared',
    guestAccess: 'forbidden',
    inviteesAreAdmins: false,
    inviteLevel: 50,
  },
};

/** Without a preset the visibility decides: `public` is public_chat, otherwise private_chat. */
export function presetState(preset: RoomPreset | undefined, visibility: 'public' | 'private'): PresetState {
  return PRESETS[preset ?? (visibility === 'public' ? 'public_chat' : 'private_chat')];
}

export const ADMIN_POWER_LEVEL = 100;
/** v12: upgrading a room must need more than any admin can be given (spec createRoom step 3). */
export const TOMBSTONE_POWER_LEVEL_WITH_PRIVILEGED_CREATORS = 150;

/**
 * The default power levels before the client's override: the creator (and in a trusted private
 * chat the invitees) at 100 in v1-11; v12+ lists no creator, whose power is infinite anyway.
 */
export function defaultPowerLevels(
  rules: RoomVersionRules,
  creator: string,
  preset: PresetState,
  invitees: readonly string[],
): JsonObject {
  const users: JsonObject = {};
  if (!rules.privilegedCreators) {
    users[creator] = ADMIN_POWER_LEVEL;
    if (preset.inviteesAreAdmins) for (const invitee of invitees) users[invitee] = ADMIN_POWER_LEVEL;
  }
  return {
    users,
    users_default: 0,
    events: {
      'm.room.name': 50,
      'm.room.power_levels': ADMIN_POWER_LEVEL,
      'm.room.history_visibility': ADMIN_POWER_LEVEL,
      'm.room.canonical_alias': 50,
      'm.room.avatar': 50,
      'm.room.tombstone': rules.privilegedCreators
        ? TOMBSTONE_POWER_LEVEL_WITH_PRIVILEGED_CREATORS
        : ADMIN_POWER_LEVEL,
      'm.room.server_acl': ADMIN_POWER_LEVEL,
      'm.room.encryption': ADMIN_POWER_LEVEL,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: preset.inviteLevel,
  };
}
