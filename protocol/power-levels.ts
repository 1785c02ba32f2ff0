/**
 * Power levels (spec: client-server-api `m.room.power_levels`; rooms/v1..v12 auth rules).
 * Parsed once per event content and cached, because the auth rules and state
 * resolution ask for the same power levels event over and over.
 */
import { ProtocolError } from './errors.js';
import type { JsonObject, JsonValue, RoomEvent } from './events.js';
import type { RoomVersionRules } from './room-versions.js';

export interface PowerLevels {
  users: ReadonlyMap<string, number>;
  usersDefault: number;
  events: ReadonlyMap<string, number>;
  eventsDefault: number;
  stateDefault: number;
  ban: number;
  kick: number;
  redact: number;
  invite: number;
  notifications: ReadonlyMap<string, number>;
}

/** The power level a room creator has when there is no `m.room.power_levels` event (before v12). */
export const CREATOR_POWER_LEVEL_WITHOUT_POWER_LEVELS_EVENT = 100;
/** Default for a `notifications` key (the spec names `room`) when it is absent. */
export const DEFAULT_NOTIFICATION_POWER_LEVEL = 50;

const EMPTY_MAP: ReadonlyMap<string, number> = new Map();

/** The room's levels when it has no `m.room.power_levels` event at all (state_default is 0 then, not 50). */
export const POWER_LEVELS_WITHOUT_EVENT: PowerLevels = Object.freeze({
  users: EMPTY_MAP,
  usersDefault: 0,
  events: EMPTY_MAP,
  eventsDefault: 0,
  stateDefault: 0,
  ban: 50,
  kick: 50,
  redact: 50,
  invite: 0,
  notifications: EMPTY_MAP,
});

/** The integer-valued top-level keys, with their defaults when an `m.room.power_levels` event exists. */
export const NAMED_POWER_LEVEL_KEYS = [
  'users_default',
  'events_default',
  'state_default',
  'ban',
  'redact',
  'kick',
  'invite',
] as const;
export type NamedPowerLevelKey = (typeof NAMED_POWER_LEVEL_KEYS)[number];

const NAMED_DEFAULTS: Record<NamedPowerLevelKey, number> = {
  users_default: 0,
  events_default: 0,
  state_default: 50,
  ban: 50,
  redact: 50,
  kick: 50,
  invite: 0,
};

// v1-9 (fragments/v1-stringy-power-levels.md): optional whitespace, one sign, base-10 digits.
const STRINGY_INTEGER = /^\s*[+-]?\d+\s*$/;

/**
 * One power level value as the room version reads it, or undefined when it is not one.
 * v10+: JSON integers only. v1-9: numbers truncated toward zero
 * (fragments/v1-floaty-power-levels.md) and integer strings (v1-stringy-power-levels.md).
 */
export function powerLevelValue(value: JsonValue | undefined, rules: RoomVersionRules): number | undefined {
  if (typeof value === 'number') {
    if (rules.integerPowerLevels) return Number.isSafeInteger(value) ? value : undefined;
    return Number.isFinite(value) ? Math.trunc(value) + 0 : undefined;
  }
  if (typeof value === 'string' && !rules.integerPowerLevels && STRINGY_INTEGER.test(value)) {
    const parsed = Number(value.trim());
    return Number.isFinite(parsed) ? parsed + 0 : undefined;
  }
  return undefined;
}

function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseLevelMap(
  content: JsonObject,
  key: 'users' | 'events' | 'notifications',
  rules: RoomVersionRules,
): ReadonlyMap<string, number> {
  const raw = content[key];
  if (raw === undefined) return EMPTY_MAP;
  if (!isJsonObject(raw))
    throw new ProtocolError('BAD_EVENT', `power levels: '${key}' is not an object`, `content.${key}`);
  const levels = new Map<string, number>();
  for (const entry in raw) {
    const level = powerLevelValue(raw[entry], rules);
    if (level === undefined) {
      throw new ProtocolError(
        'BAD_EVENT',
        `power levels: ${key}.${entry} is not an integer`,
        `content.${key}.${entry}`,
      );
    }
    levels.set(entry, level);
  }
  return levels.size === 0 ? EMPTY_MAP : levels;
}

function parseNamedLevel(content: JsonObject, key: NamedPowerLevelKey, rules: RoomVersionRules): number {
  const raw = content[key];
  if (raw === undefined) return NAMED_DEFAULTS[key];
  // v1-9 servers read `null` as "unspecified"; v10+ requires an integer whenever the key is present.
  if (raw === null && !rules.integerPowerLevels) return NAMED_DEFAULTS[key];
  const level = powerLevelValue(raw, rules);
  if (level === undefined)
    throw new ProtocolError('BAD_EVENT', `power levels: '${key}' is not an integer`, `content.${key}`);
  return level;
}

/**
 * The content of an `m.room.power_levels` event as numbers, with the spec's defaults for
 * absent keys; `undefined` content means the room has no power levels event.
 * Throws ProtocolError('BAD_EVENT') on a value the room version does not accept.
 */
export function parsePowerLevels(content: JsonObject | undefined, rules: RoomVersionRules): PowerLevels {
  if (content === undefined) return POWER_LEVELS_WITHOUT_EVENT;
  if (!isJsonObject(content))
    throw new ProtocolError('BAD_EVENT', 'power levels: content is not an object', 'content');
  return {
    users: parseLevelMap(content, 'users', rules),
    usersDefault: parseNamedLevel(content, 'users_default', rules),
    events: parseLevelMap(content, 'events', rules),
    eventsDefault: parseNamedLevel(content, 'events_default', rules),
    stateDefault: parseNamedLevel(content, 'state_default', rules),
    ban: parseNamedLevel(content, 'ban', rules),
    kick: parseNamedLevel(content, 'kick', rules),
    redact: parseNamedLevel(content, 'redact', rules),
    invite: parseNamedLevel(content, 'invite', rules),
    notifications: parseLevelMap(content, 'notifications', rules),
  };
}

// Cached per content object: an event's content never changes once built, and a given
// event is always read under its room's version. One cache per integer mode all the same.
type ParseOutcome = PowerLevels | ProtocolError;
const parsedIntegerOnly = new WeakMap<JsonObject, ParseOutcome>();
const parsedLenient = new WeakMap<JsonObject, ParseOutcome>();

/** Like parsePowerLevels, memoised on the content object; returns the error instead of throwing. */
export function tryParsePowerLevels(content: JsonObject, rules: RoomVersionRules): ParseOutcome {
  const cache = rules.integerPowerLevels ? parsedIntegerOnly : parsedLenient;
  if (!isJsonObject(content))
    return new ProtocolError('BAD_EVENT', 'power levels: content is not an object', 'content');
  let outcome = cache.get(content);
  if (outcome === undefined) {
    try {
      outcome = parsePowerLevels(content, rules);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      outcome = e;
    }
    cache.set(content, outcome);
  }
  return outcome;
}

/** The power levels in force given the room's `m.room.power_levels` event (or none). Throws on bad content. */
export function powerLevelsOf(powerLevelsEvent: RoomEvent | undefined, rules: RoomVersionRules): PowerLevels {
  if (powerLevelsEvent === undefined) return POWER_LEVELS_WITHOUT_EVENT;
  const outcome = tryParsePowerLevels(powerLevelsEvent.pdu.content, rules);
  if (outcome instanceof ProtocolError) throw outcome;
  return outcome;
}

const creatorsCache = new WeakMap<RoomEvent, ReadonlySet<string>>();

/**
 * The room creators. v1-10: `content.creator`; v11: the create event's sender;
 * v12+: the sender plus every string in `content.additional_creators`.
 */
export function roomCreators(createEvent: RoomEvent, rules: RoomVersionRules): Set<string> {
  return new Set(roomCreatorsReadonly(createEvent, rules));
}

/** roomCreators without the copy, for hot paths that only read. */
export function roomCreatorsReadonly(createEvent: RoomEvent, rules: RoomVersionRules): ReadonlySet<string> {
  let creators = creatorsCache.get(createEvent);
  if (creators !== undefined) return creators;
  const set = new Set<string>();
  const content = createEvent.pdu.content;
  if (rules.createEventHasCreatorField) {
    const creator = isJsonObject(content) ? content.creator : undefined;
    if (typeof creator === 'string') set.add(creator);
  } else {
    set.add(createEvent.pdu.sender);
    if (rules.privilegedCreators && isJsonObject(content)) {
      const additional = content.additional_creators;
      if (Array.isArray(additional)) {
        for (const user of additional) if (typeof user === 'string') set.add(user);
      }
    }
  }
  creators = set;
  creatorsCache.set(createEvent, creators);
  return creators;
}

/**
 * A user's power level. v12+: room creators are infinitely powerful. With no power levels
 * event the creator has 100 and everyone else 0. Throws ProtocolError('BAD_EVENT') when the
 * power levels event's content is not valid for the room version.
 */
export function userPowerLevel(
  userId: string,
  powerLevelsEvent: RoomEvent | undefined,
  createEvent: RoomEvent | undefined,
  rules: RoomVersionRules,
): number {
  if (rules.privilegedCreators && createEvent !== undefined) {
    if (roomCreatorsReadonly(createEvent, rules).has(userId)) return Number.POSITIVE_INFINITY;
  }
  if (powerLevelsEvent !== undefined) {
    const levels = powerLevelsOf(powerLevelsEvent, rules);
    return levels.users.get(userId) ?? levels.usersDefault;
  }
  if (createEvent !== undefined && roomCreatorsReadonly(createEvent, rules).has(userId)) {
    return CREATOR_POWER_LEVEL_WITHOUT_POWER_LEVELS_EVENT;
  }
  return 0;
}

/** The level the spec calls the event type's *required power level*. */
export function requiredPowerLevelForEvent(pl: PowerLevels, eventType: string, isState: boolean): number {
  return pl.events.get(eventType) ?? (isState ? pl.stateDefault : pl.eventsDefault);
}

/** The level needed to trigger a notification of the given key (e.g. `room` for @room). */
export function notificationPowerLevel(pl: PowerLevels, key: string): number {
  return pl.notifications.get(key) ?? DEFAULT_NOTIFICATION_POWER_LEVEL;
}
