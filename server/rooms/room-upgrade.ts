/**
 * `POST /rooms/{roomId}/upgrade` below the route (client-server "Room upgrades", server
 * behaviour steps 1-6), with the choices Synapse made where the spec leaves them open:
 * which state is copied, bans carried over, the upgrader raised for the copy and restored,
 * the old room's directory listing moved, and its power levels restricted afterwards.
 */
import type { JsonObject, JsonValue, StateTupleKey } from '../../protocol/events.js';
import { splitStateTupleKey } from '../../protocol/events.js';
import { requiredPowerLevelForEvent } from '../../protocol/power-levels.js';
import { isKnownRoomVersion, type RoomVersionRules, roomVersionRules } from '../../protocol/room-versions.js';
import type { StoredEvent } from '../../storage/event-store.js';
import type { Storage } from '../../storage/storage.js';
import { MatrixError } from '../errors.js';
import type { CreatedRoom, CreateRoomRequest, InitialStateEvent } from './room-creation.js';
import type { RoomEventSender } from './room-event-sender.js';
import { ADMIN_POWER_LEVEL } from './room-presets.js';
import type { RoomReads } from './room-reads.js';

export interface UpgradeRoomRequest {
  readonly roomId: string;
  readonly upgrader: string;
  readonly newVersion: string;
  /** v12+: the other creators of the new room (never carried over implicitly). */
  readonly additionalCreators?: readonly string[];
}

export interface RoomUpgradeDeps {
  readonly storage: Storage;
  readonly sender: RoomEventSender;
  readonly reads: RoomReads;
  createRoom(creator: string, request: CreateRoomRequest): Promise<CreatedRoom>;
  readonly log: { warn(details: object, message: string): void };
}

/** spec step 3's recommended list; membership and sender-sensitive state are not copied. */
const COPIED_STATE_TYPES = [
  'm.room.server_acl',
  'm.room.encryption',
  'm.room.name',
  'm.room.avatar',
  'm.room.topic',
  'm.room.guest_access',
  'm.room.history_visibility',
  'm.room.join_rules',
] as const;

/**
 * @returns the replacement room's ID.
 * @throws MatrixError M_UNSUPPORTED_ROOM_VERSION, M_FORBIDDEN (not joined, or below the tombstone level).
 */
export async function upgradeRoom(deps: RoomUpgradeDeps, request: UpgradeRoomRequest): Promise<string> {
  const { storage, reads, sender } = deps;
  const { roomId, upgrader } = request;
  if (!isKnownRoomVersion(request.newVersion)) {
    throw MatrixError.unsupportedRoomVersion(
      `This server does not support room version ${request.newVersion}`,
    );
  }
  const target = roomVersionRules(request.newVersion);
  const powers = await reads.powers(roomId);
  if (powers === null || (await reads.membership(roomId, upgrader)) !== 'join') {
    throw MatrixError.forbidden(`User ${upgrader} is not in room ${roomId}`);
  }
  // 1. The upgrader may send m.room.tombstone here.
  if (powers.levelOf(upgrader) < requiredPowerLevelForEvent(powers.levels, 'm.room.tombstone', true)) {
    throw MatrixError.forbidden('You do not have permission to upgrade this room');
  }

  const state = await reads.currentState(roomId);
  const stateContent = (type: string, stateKey = ''): JsonObject | undefined =>
    state.get(`${type}\u0000${stateKey}` as StateTupleKey)?.pdu.content;

  // 2. The create event names its predecessor and keeps the room type.
  const oldCreate = powers.createEvent.pdu.content;
  const creationContent: JsonObject = {
    predecessor: { room_id: roomId, event_id: await lastEventId(storage, roomId, powers.createEvent) },
  };
  if (oldCreate.type !== undefined) creationContent.type = oldCreate.type;
  if (oldCreate['m.federate'] !== undefined) creationContent['m.federate'] = oldCreate['m.federate'];
  const creators = new Set([upgrader]);
  if (target.privilegedCreators && request.additionalCreators !== undefined) {
    creationContent.additional_creators = [...request.additionalCreators];
    for (const creator of request.additionalCreators) creators.add(creator);
  }

  // 3. Transferable state, power levels arranged so the upgrader can send all of it.
  const initialState: InitialStateEvent[] = [];
  for (const type of COPIED_STATE_TYPES) {
    const content = stateContent(type);
    if (content !== undefined && Object.keys(content).length > 0) initialState.push({ type, content });
  }
  for (const [key, event] of state) {
    const [type, stateKey] = splitStateTupleKey(key);
    if (type === 'm.space.child' && Object.keys(event.pdu.content).length > 0) {
      initialState.push({ type, state_key: stateKey, content: event.pdu.content });
    }
  }
  const canonicalAlias = stateContent('m.room.canonical_alias');
  if (canonicalAlias !== undefined && Object.keys(canonicalAlias).length > 0) {
    initialState.push({ type: 'm.room.canonical_alias', content: canonicalAlias });
  }
  const oldPowerLevels = stateContent('m.room.power_levels');
  const powerLevels =
    oldPowerLevels === undefined
      ? undefined
      : powerLevelsForCopy(oldPowerLevels, target, upgrader, creators, powers.levelOf(upgrader));
  if (powerLevels !== undefined)
    initialState.unshift({ type: 'm.room.power_levels', content: powerLevels.forCopy });
  // Bans carry over (as Synapse), for users the upgrader outranks.
  for (const event of bannedMembers(state)) {
    const banned = event.pdu.state_key!;
    if (powers.levelOf(banned) < powers.levelOf(upgrader)) {
      initialState.push({ type: 'm.room.member', state_key: banned, content: { membership: 'ban' } });
    }
  }

  const oldRoom = await storage.rooms.getRoom(roomId);
  const created = await deps.createRoom(upgrader, {
    room_version: target.id,
    preset: 'private_chat',
    visibility: oldRoom?.isPublic === true ? 'public' : 'private',
    creation_content: creationContent,
    initial_state: initialState,
  });
  const newRoomId = created.roomId;
  if (powerLevels?.afterCopy !== undefined) {
    await sender.sendEvent({
      roomId: newRoomId,
      sender: upgrader,
      type: 'm.room.power_levels',
      stateKey: '',
      content: powerLevels.afterCopy,
    });
  }

  // 4. Local aliases point to the new room; the directory listing moves with them.
  const aliases = await storage.rooms.aliasesOfRoom(roomId);
  if (aliases.length > 0 || oldRoom?.isPublic === true) {
    const now = Date.now();
    await storage.transaction((tx) => {
      for (const alias of aliases) {
        tx.rooms.deleteAlias(alias.alias).catch(() => {});
        tx.rooms.createAlias({ ...alias, roomId: newRoomId, createdTs: now }).catch(() => {});
      }
      if (oldRoom?.isPublic === true) tx.rooms.setRoomPublic(roomId, false).catch(() => {});
    });
  }

  // 5. The tombstone.
  await sender.sendEvent({
    roomId,
    sender: upgrader,
    type: 'm.room.tombstone',
    stateKey: '',
    content: { body: 'This room has been replaced', replacement_room: newRoomId },
  });

  // 6. Nobody but moderators speaks or invites in the old room any more.
  if (oldPowerLevels !== undefined) {
    const restricted = restrictedPowerLevels(oldPowerLevels);
    if (restricted !== undefined) {
      try {
        await sender.sendEvent({
          roomId,
          sender: upgrader,
          type: 'm.room.power_levels',
          stateKey: '',
          content: restricted,
        });
      } catch (error) {
        deps.log.warn({ err: error, roomId }, 'Could not restrict the power levels of the upgraded room');
      }
    }
  }
  return newRoomId;
}

/** The room's newest event: the spec's "last known event" for `predecessor.event_id`. */
async function lastEventId(storage: Storage, roomId: string, createEvent: StoredEvent): Promise<string> {
  const latest = await storage.events.latestStreamOrdering();
  const [newest] = await storage.events.roomEventsBefore(roomId, latest + 1, 1);
  return newest?.eventId ?? createEvent.eventId;
}

function bannedMembers(state: ReadonlyMap<StateTupleKey, StoredEvent>): StoredEvent[] {
  const banned: StoredEvent[] = [];
  for (const [key, event] of state) {
    if (key.startsWith('m.room.member\u0000') && event.pdu.content.membership === 'ban') banned.push(event);
  }
  return banned;
}

function integer(value: JsonValue | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) ? value : fallback;
}

/**
 * The old room's power levels for the new room. v12+ lists no creator (their power is
 * implicit). Before v12 the upgrader is raised, as Synapse does, to the highest level
 * any copied state needs; `afterCopy` then restores the level they had.
 */
function powerLevelsForCopy(
  old: JsonObject,
  target: RoomVersionRules,
  upgrader: string,
  creators: ReadonlySet<string>,
  upgraderLevel: number,
): { forCopy: JsonObject; afterCopy?: JsonObject } {
  const users: JsonObject =
    typeof old.users === 'object' && old.users !== null && !Array.isArray(old.users) ? { ...old.users } : {};
  if (target.privilegedCreators) {
    for (const creator of creators) delete users[creator];
    return { forCopy: { ...old, users } };
  }
  const level = Number.isFinite(upgraderLevel) ? upgraderLevel : ADMIN_POWER_LEVEL;
  const events =
    typeof old.events === 'object' && old.events !== null && !Array.isArray(old.events) ? old.events : {};
  const needed = Math.max(
    integer(old.state_default, 50),
    integer(old.ban, 50),
    ...Object.values(events).map((value) => integer(value, 0)),
  );
  const restored: JsonObject = { ...old, users: { ...users, [upgrader]: level } };
  if (level >= needed) return { forCopy: restored };
  return { forCopy: { ...old, users: { ...users, [upgrader]: needed } }, afterCopy: restored };
}

/** spec step 6: events_default and invite at least max(50, users_default + 1); undefined when already so. */
function restrictedPowerLevels(old: JsonObject): JsonObject | undefined {
  const restricted = Math.max(50, integer(old.users_default, 0) + 1);
  const content = { ...old };
  let changed = false;
  if (integer(old.events_default, 0) < restricted) {
    content.events_default = restricted;
    changed = true;
  }
  if (integer(old.invite, 0) < restricted) {
    content.invite = restricted;
    changed = true;
  }
  return changed ? content : undefined;
}
