/**
 * `POST /createRoom` below the route (client-server "Creation", createRoom.yaml): the
 * request's shape is the route schema's job; this checks what a schema cannot, lays out
 * the events in the spec's order and hands them to the send path, which authorises each.
 */
import type { JsonObject } from '../../protocol/events.js';
import {
  belongsToServer,
  isValidRoomAlias,
  isValidUserId,
  type RoomAlias,
} from '../../protocol/identifiers.js';
import {
  DEFAULT_ROOM_VERSION,
  isKnownRoomVersion,
  type RoomVersionId,
  type RoomVersionRules,
  roomVersionRules,
} from '../../protocol/room-versions.js';
import type { Storage } from '../../storage/storage.js';
import { isMatrixError, MatrixError } from '../errors.js';
import type { EventTemplate } from './event-builder.js';
import { memberProfile } from './membership.js';
import type { RoomEventSender, SentEvent } from './room-event-sender.js';
import { defaultPowerLevels, type PresetState, presetState, type RoomPreset } from './room-presets.js';

export interface InitialStateEvent {
  readonly type: string;
  readonly state_key?: string;
  readonly content: JsonObject;
}

/** The createRoom request body, as the route schema lets it through. */
export interface CreateRoomRequest {
  readonly visibility?: 'public' | 'private';
  readonly room_alias_name?: string;
  readonly name?: string;
  readonly topic?: string;
  readonly invite?: readonly string[];
  readonly room_version?: string;
  readonly creation_content?: JsonObject;
  readonly initial_state?: readonly InitialStateEvent[];
  readonly preset?: RoomPreset;
  readonly is_direct?: boolean;
  readonly power_level_content_override?: JsonObject;
}

export interface CreatedRoom {
  readonly roomId: string;
  readonly roomVersion: RoomVersionId;
  /** The room's alias when `room_alias_name` was given (also its canonical alias). */
  readonly alias?: RoomAlias;
  /** Where the room is in the published room directory (recorded in storage.rooms). */
  readonly visibility: 'public' | 'private';
  /** Every event the creation sent, in order, the create event first. */
  readonly events: readonly SentEvent[];
}

/**
 * Seam for the alias table (issue #4 "Directory"), which does not exist yet: without one,
 * the alias is only announced in `m.room.canonical_alias`.
 */
export interface RoomAliasRegistry {
  /** Throws MatrixError M_ROOM_IN_USE when the alias is taken; runs before the room exists. */
  assertAvailable(alias: RoomAlias): Promise<void>;
  /** Maps the alias to the new room, once it exists. */
  register(alias: RoomAlias, roomId: string, creator: string): Promise<void>;
}

export interface RoomCreationDeps {
  readonly storage: Storage;
  readonly sender: RoomEventSender;
  readonly aliases?: RoomAliasRegistry;
}

function stateKeyOf(type: string, stateKey: string): string {
  return `${type}\u0000${stateKey}`;
}

function requestedRoomVersion(requested: string | undefined): RoomVersionRules {
  const version = requested ?? DEFAULT_ROOM_VERSION;
  if (!isKnownRoomVersion(version)) {
    throw MatrixError.unsupportedRoomVersion(`This server does not support room version ${version}`);
  }
  return roomVersionRules(version);
}

/** Invitees, deduplicated, each a valid user ID other than the creator's. */
function checkedInvitees(invite: readonly string[] | undefined, creator: string): string[] {
  const invitees = [...new Set(invite ?? [])];
  for (const userId of invitees) {
    // Remote users may have historical localparts; our own never do, but the auth rules accept both.
    if (!isValidUserId(userId, { historical: true })) {
      throw MatrixError.invalidParam(`Invalid user ID in invite: ${JSON.stringify(userId)}`);
    }
    if (userId === creator) throw MatrixError.invalidParam('The room creator cannot invite themselves');
  }
  return invitees;
}

function checkedAlias(localpart: string | undefined, serverName: string): RoomAlias | undefined {
  if (localpart === undefined) return undefined;
  const alias = `#${localpart}:${serverName}`;
  if (localpart === '' || /[:\s]/u.test(localpart) || !isValidRoomAlias(alias)) {
    throw MatrixError.invalidParam(`Invalid room_alias_name: ${JSON.stringify(localpart)}`);
  }
  return alias as RoomAlias;
}

/** creation_content with the keys the server owns: creator (v1-10), room_version, additional_creators (v12). */
function createContent(
  request: CreateRoomRequest,
  rules: RoomVersionRules,
  creator: string,
  preset: PresetState,
  invitees: readonly string[],
): JsonObject {
  const content: JsonObject = { ...request.creation_content };
  if (rules.createEventHasCreatorField) content.creator = creator;
  else delete content.creator;
  content.room_version = rules.id;
  if (rules.privilegedCreators) {
    const additional = content.additional_creators;
    if (additional !== undefined) {
      if (!Array.isArray(additional) || !additional.every((u) => isValidUserId(u, { historical: true }))) {
        throw MatrixError.invalidParam('creation_content.additional_creators must be an array of user IDs');
      }
    }
    // spec createRoom step 3: a trusted private chat's invitees become additional creators.
    if (preset.inviteesAreAdmins && invitees.length > 0) {
      content.additional_creators = [
        ...new Set([...((additional as string[] | undefined) ?? []), ...invitees]),
      ];
    }
  }
  return content;
}

function powerLevelsContent(
  request: CreateRoomRequest,
  rules: RoomVersionRules,
  creator: string,
  preset: PresetState,
  invitees: readonly string[],
): JsonObject {
  const override = request.power_level_content_override;
  const users = override?.users;
  // As Synapse: before v12 an override listing users must keep the creator among them.
  if (
    !rules.privilegedCreators &&
    typeof users === 'object' &&
    users !== null &&
    !Array.isArray(users) &&
    !(creator in users)
  ) {
    throw MatrixError.invalidParam(`power_level_content_override.users must contain ${creator}`);
  }
  return { ...defaultPowerLevels(rules, creator, preset, invitees), ...override };
}

/**
 * Creates a room for a local user, in the order createRoom.yaml prescribes: create, the
 * creator's join, power levels, canonical alias, the preset's join rules / history
 * visibility / guest access, initial_state, name, topic, invites.
 * @throws MatrixError M_UNSUPPORTED_ROOM_VERSION, M_INVALID_PARAM (invitees, alias, overrides),
 *   M_ROOM_IN_USE (alias taken), M_INVALID_ROOM_STATE (an event the auth rules refuse: nothing is stored).
 */
export async function createRoom(
  deps: RoomCreationDeps,
  creator: string,
  request: CreateRoomRequest,
): Promise<CreatedRoom> {
  const { sender, storage } = deps;
  const rules = requestedRoomVersion(request.room_version);
  const visibility = request.visibility ?? 'private';
  const preset = presetState(request.preset, visibility);
  const invitees = checkedInvitees(request.invite, creator);
  const alias = checkedAlias(request.room_alias_name, sender.serverName);
  if (alias !== undefined) await deps.aliases?.assertAvailable(alias);

  // initial_state: the last entry per (type, state_key) wins, in the place of its first; name and topic
  // replace theirs, and an initial power levels event replaces the default (the override is not applied).
  const initialState = new Map<string, EventTemplate>();
  for (const entry of request.initial_state ?? []) {
    const stateKey = entry.state_key ?? '';
    initialState.set(stateKeyOf(entry.type, stateKey), {
      sender: creator,
      type: entry.type,
      stateKey,
      content: entry.content,
    });
  }
  const state = (type: string, content: JsonObject): EventTemplate => ({
    sender: creator,
    type,
    stateKey: '',
    content,
  });
  const takeInitial = (type: string): EventTemplate | undefined => {
    const key = stateKeyOf(type, '');
    const template = initialState.get(key);
    initialState.delete(key);
    return template;
  };
  if (request.name !== undefined) takeInitial('m.room.name');
  if (request.topic !== undefined) takeInitial('m.room.topic');

  const events: EventTemplate[] = [];
  // 2. The creator joins.
  events.push({
    sender: creator,
    type: 'm.room.member',
    stateKey: creator,
    content: { membership: 'join', ...(await memberProfile(storage, creator)) },
  });
  // 3. Power levels.
  events.push(
    takeInitial('m.room.power_levels') ??
      state('m.room.power_levels', powerLevelsContent(request, rules, creator, preset, invitees)),
  );
  // 4. Canonical alias.
  if (alias !== undefined) {
    events.push(takeInitial('m.room.canonical_alias') ?? state('m.room.canonical_alias', { alias }));
  }
  // 5. The preset's state, unless initial_state sets it.
  events.push(takeInitial('m.room.join_rules') ?? state('m.room.join_rules', { join_rule: preset.joinRule }));
  events.push(
    takeInitial('m.room.history_visibility') ??
      state('m.room.history_visibility', { history_visibility: preset.historyVisibility }),
  );
  events.push(
    takeInitial('m.room.guest_access') ?? state('m.room.guest_access', { guest_access: preset.guestAccess }),
  );
  // 6. initial_state, in order.
  events.push(...initialState.values());
  // 7. Name and topic.
  if (request.name !== undefined) events.push(state('m.room.name', { name: request.name }));
  if (request.topic !== undefined) {
    events.push(
      state('m.room.topic', { topic: request.topic, 'm.topic': { 'm.text': [{ body: request.topic }] } }),
    );
  }
  // 8. Invites of local users; users of other servers are invited through their server
  // once the room exists (server-server "Inviting to a room": their server signs first).
  const localServer = creator.slice(creator.indexOf(':') + 1);
  for (const invitee of invitees.filter((userId) => belongsToServer(userId, localServer))) {
    const content: JsonObject = { membership: 'invite', ...(await memberProfile(storage, invitee)) };
    if (request.is_direct === true) content.is_direct = true;
    events.push({ sender: creator, type: 'm.room.member', stateKey: invitee, content });
  }

  let created: Awaited<ReturnType<RoomEventSender['createRoom']>>;
  try {
    created = await sender.createRoom({
      rules,
      creator,
      createContent: createContent(request, rules, creator, preset, invitees),
      initialEvents: events,
      writeAlongside: (tx, roomId, createdTs) => {
        // The transaction's own promise carries any failure.
        tx.rooms
          .createRoom({
            roomId,
            roomVersion: rules.id,
            creator,
            createdTs,
            isPublic: visibility === 'public',
          })
          .catch(() => {});
      },
    });
  } catch (e) {
    // The spec's 400 for "the initial state implied by the parameters to the request is invalid".
    if (isMatrixError(e) && e.errcode === 'M_FORBIDDEN')
      throw MatrixError.of('M_INVALID_ROOM_STATE', e.message);
    throw e;
  }
  if (alias !== undefined) await deps.aliases?.register(alias, created.roomId, creator);
  return {
    roomId: created.roomId,
    roomVersion: rules.id,
    ...(alias === undefined ? {} : { alias }),
    visibility,
    events: created.events,
  };
}
