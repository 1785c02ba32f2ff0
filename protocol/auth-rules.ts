/**
 * The authorization rules for room versions 1 to 12 (spec: rooms/vN.md "Authorization rules",
 * fragments v1-auth-rules, v3-auth-rules, v8-auth-rules). Every difference between versions
 * comes from a RoomVersionRules flag. Step numbers in comments follow room versions 6-11;
 * verdicts carry the step number as the event's own room version numbers it
 * (v1-5 insert the aliases rule as 4, v12 inserts the room ID rule as 2).
 */
import { selectAuthEventKeys } from './auth-events-selection.js';
import { ProtocolError } from './errors.js';
import {
  type JsonObject,
  type JsonValue,
  type RoomEvent,
  referencedEventId,
  stateTupleKey,
} from './events.js';
import { isValidUserId } from './identifiers.js';
import {
  CREATOR_POWER_LEVEL_WITHOUT_POWER_LEVELS_EVENT,
  NAMED_POWER_LEVEL_KEYS,
  POWER_LEVELS_WITHOUT_EVENT,
  type PowerLevels,
  powerLevelValue,
  requiredPowerLevelForEvent,
  roomCreatorsReadonly,
  tryParsePowerLevels,
} from './power-levels.js';
import { isKnownRoomVersion, type RoomVersionRules } from './room-versions.js';
import { isSignedByInviteKey, type JsonSignatureVerifier } from './third-party-invite-signature.js';

export type AuthVerdict = { allowed: true } | { allowed: false; rule: string; reason: string };
export type AuthStateLookup = (type: string, stateKey: string) => RoomEvent | undefined;

export interface AuthRuleOptions {
  /** Checks the signatures of invites carrying `third_party_invite` (rule 4.4.1.7). Default: ed25519. */
  verifyJsonSignature?: JsonSignatureVerifier;
}

const ALLOWED: AuthVerdict = Object.freeze({ allowed: true });

function reject(rule: string, reason: string): AuthVerdict {
  return { allowed: false, rule, reason };
}

// ---- step labels: only built on rejection -------------------------------------------

/** Top-level step, given in room version 6-11 numbering. */
function step(rules: RoomVersionRules, top: number, ...sub: number[]): string {
  let n = top;
  if (rules.roomIdIsCreateEventHash && top >= 2) n += 1;
  if (rules.specialCaseAliasesAuth && top >= 4) n += 1;
  return [n, ...sub].join('.');
}

/** Sub-step of the membership rule (4.x), given in v8+ numbering. */
function memberStep(rules: RoomVersionRules, n: number): number {
  let label = n;
  if (!rules.restrictedJoinAllowed && n >= 3) label -= 1;
  if (!rules.knockAllowed && n >= 8) label -= 1;
  return label;
}

/** Sub-step of the join rule (4.3.x), given in v8+ numbering. */
function joinStep(rules: RoomVersionRules, n: number): number {
  return !rules.restrictedJoinAllowed && n >= 6 ? n - 1 : n;
}

/** Sub-step of the power levels rule (9.x), given in v1-9 numbering (1 = users, 2 = no previous...). */
function powerStep(rules: RoomVersionRules, n: number): number {
  if (rules.integerPowerLevels) n += 2;
  if (rules.privilegedCreators && n >= 4) n += 1;
  return n;
}

// ---- small readers that never throw on malformed input ------------------------------

function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function field(value: JsonValue | undefined, key: string): JsonValue | undefined {
  return isJsonObject(value) ? value[key] : undefined;
}

/** The server name of a user ID, room ID or v1-2 event ID: everything after the first colon. */
function domainOf(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const colon = id.indexOf(':');
  return colon < 0 ? undefined : id.slice(colon + 1);
}

/** Rules 9.1 and v12 1.4: user IDs as any sender may have them (historical localparts allowed). */
function isUserId(value: unknown): value is string {
  return isValidUserId(value, { historical: true });
}

function membershipIn(authState: AuthStateLookup, userId: string): string | undefined {
  const membership = field(authState('m.room.member', userId)?.pdu.content, 'membership');
  return typeof membership === 'string' ? membership : undefined;
}

/** What the auth rules need to know about power in the state being checked against. */
interface PowerContext {
  readonly rules: RoomVersionRules;
  readonly powerLevelsEvent: RoomEvent | undefined;
  readonly levels: PowerLevels;
  readonly creators: ReadonlySet<string>;
}

function powerOf(ctx: PowerContext, userId: string): number {
  if (ctx.rules.privilegedCreators && ctx.creators.has(userId)) return Number.POSITIVE_INFINITY;
  if (ctx.powerLevelsEvent !== undefined) return ctx.levels.users.get(userId) ?? ctx.levels.usersDefault;
  return ctx.creators.has(userId) ? CREATOR_POWER_LEVEL_WITHOUT_POWER_LEVELS_EVENT : 0;
}

// ---- the rules ------------------------------------------------------------------------

/**
 * The spec's authorization rules, steps 1 onward, against the given state.
 * The caller supplies the state to check against: the event's auth events, the state before
 * it, or the current state. In v12 the create event is not among auth_events; callers make it
 * reachable through the lookup ('m.room.create', '') all the same, and only if it was accepted.
 * Rule 2's checks on the auth_events list itself are in checkAuthEventsList.
 */
export function checkAuthRules(
  event: RoomEvent,
  authState: AuthStateLookup,
  rules: RoomVersionRules,
  options?: AuthRuleOptions,
): AuthVerdict {
  const pdu = event.pdu;
  const content: JsonValue | undefined = pdu.content;
  const sender = pdu.sender;
  const stateKey = pdu.state_key;

  // 1. m.room.create
  if (pdu.type === 'm.room.create') return checkCreateEvent(event, rules);

  // 2.4 (v12: 2) the room's create event must be known
  const createEvent = authState('m.room.create', '');
  if (createEvent === undefined) {
    return reject(rules.roomIdIsCreateEventHash ? '2' : '2.4', 'no m.room.create event in the auth state');
  }
  if (rules.roomIdIsCreateEventHash) {
    // v12 2. the room ID is the create event's ID with the `!` sigil
    if (event.roomId !== `!${createEvent.eventId.slice(1)}`) {
      return reject('2', 'room_id is not the ID of the room\u2019s m.room.create event');
    }
  } else if (createEvent.roomId !== event.roomId) {
    return reject(step(rules, 2, 5), 'the m.room.create event belongs to another room');
  }

  // 3. m.federate: false keeps other servers out
  if (
    field(createEvent.pdu.content, 'm.federate') === false &&
    domainOf(sender) !== domainOf(createEvent.pdu.sender)
  ) {
    return reject(step(rules, 3), 'room is not federated and sender is on another server');
  }

  // v1-5 4. m.room.aliases: only the server named in state_key may set it
  if (rules.specialCaseAliasesAuth && pdu.type === 'm.room.aliases') {
    if (typeof stateKey !== 'string') return reject('4.1', 'm.room.aliases without a state_key');
    if (domainOf(sender) !== stateKey) return reject('4.2', 'sender\u2019s server does not match state_key');
    return ALLOWED;
  }

  const powerLevelsEvent = authState('m.room.power_levels', '');
  let levels = POWER_LEVELS_WITHOUT_EVENT;
  if (powerLevelsEvent !== undefined) {
    const parsed = tryParsePowerLevels(powerLevelsEvent.pdu.content, rules);
    if (parsed instanceof ProtocolError) {
      return reject(step(rules, 7), `the room\u2019s m.room.power_levels is invalid: ${parsed.message}`);
    }
    levels = parsed;
  }
  const ctx: PowerContext = {
    rules,
    powerLevelsEvent,
    levels,
    creators: roomCreatorsReadonly(createEvent, rules),
  };

  // 4. m.room.member
  if (pdu.type === 'm.room.member') return checkMembership(event, authState, ctx, createEvent, options);

  // 5. the sender must be joined
  if (membershipIn(authState, sender) !== 'join')
    return reject(step(rules, 5), 'sender is not joined to the room');

  const senderPower = powerOf(ctx, sender);

  // 6. m.room.third_party_invite needs the invite level
  if (pdu.type === 'm.room.third_party_invite') {
    return senderPower >= levels.invite
      ? ALLOWED
      : reject(step(rules, 6, 1), 'sender\u2019s power level is below the invite level');
  }

  // 7. the event type's required power level
  const isState = typeof stateKey === 'string';
  if (requiredPowerLevelForEvent(levels, pdu.type, isState) > senderPower) {
    return reject(step(rules, 7), `sender\u2019s power level is too low to send ${pdu.type}`);
  }

  // 8. state keys that are user IDs belong to that user
  if (isState && stateKey.startsWith('@') && stateKey !== sender) {
    return reject(step(rules, 8), 'state_key names another user');
  }

  // 9. m.room.power_levels
  if (pdu.type === 'm.room.power_levels') return checkPowerLevelsChange(content, sender, senderPower, ctx);

  // v1-2 11. m.room.redaction: redact level or same server. The domain rule only makes sense
  // while event IDs carry the originating server, i.e. in the versions that have it.
  if (pdu.type === 'm.room.redaction' && rules.eventIdFormat === 'server-generated') {
    if (senderPower >= levels.redact) return ALLOWED;
    const redactedDomain = domainOf(pdu.redacts);
    if (redactedDomain !== undefined && redactedDomain === domainOf(event.eventId)) return ALLOWED;
    return reject('11.3', 'sender is below the redact level and the redacted event is from another server');
  }

  // 10. otherwise, allow
  return ALLOWED;
}

function checkCreateEvent(event: RoomEvent, rules: RoomVersionRules): AuthVerdict {
  const pdu = event.pdu;
  // 1.1 no prev_events
  if (!Array.isArray(pdu.prev_events) || pdu.prev_events.length > 0) {
    return reject('1.1', 'm.room.create has prev_events');
  }
  if (rules.roomIdIsCreateEventHash) {
    // v12 1.2 no room_id: it is derived from this event
    if (pdu.room_id !== undefined) return reject('1.2', 'm.room.create has a room_id');
  } else {
    // 1.2 room ID and sender on the same server
    const roomDomain = domainOf(pdu.room_id);
    if (roomDomain === undefined || roomDomain !== domainOf(pdu.sender)) {
      return reject('1.2', 'room_id and sender are on different servers');
    }
  }
  // 1.3 a recognised room_version, if any
  const roomVersion = field(pdu.content, 'room_version');
  if (roomVersion !== undefined && !isKnownRoomVersion(roomVersion)) {
    return reject('1.3', 'content.room_version is not a recognised room version');
  }
  // v1-10 1.4 content.creator
  if (rules.createEventHasCreatorField && field(pdu.content, 'creator') === undefined) {
    return reject('1.4', 'content has no creator');
  }
  // v12 1.4 additional_creators: an array of valid user IDs
  if (rules.privilegedCreators) {
    const additional = field(pdu.content, 'additional_creators');
    if (additional !== undefined && !(Array.isArray(additional) && additional.every(isUserId))) {
      return reject('1.4', 'content.additional_creators is not an array of user IDs');
    }
  }
  // 1.5 (v11: 1.4) otherwise allow
  return ALLOWED;
}

function checkMembership(
  event: RoomEvent,
  authState: AuthStateLookup,
  ctx: PowerContext,
  createEvent: RoomEvent,
  options: AuthRuleOptions | undefined,
): AuthVerdict {
  const { rules, levels } = ctx;
  const pdu = event.pdu;
  const sender = pdu.sender;
  const target = pdu.state_key;
  const membership = field(pdu.content, 'membership');
  const s = (n: number, ...sub: number[]) => step(rules, 4, memberStep(rules, n), ...sub);

  // 4.1 a state_key and a membership
  if (typeof target !== 'string' || typeof membership !== 'string') {
    return reject(s(1), 'm.room.member without a state_key or content.membership');
  }

  // v8+ 4.2 the authorising server must have signed the event
  const authoriser = rules.restrictedJoinAllowed
    ? field(pdu.content, 'join_authorised_via_users_server')
    : undefined;
  if (authoriser !== undefined) {
    const authoriserServer = domainOf(authoriser);
    const signatures = authoriserServer === undefined ? undefined : pdu.signatures?.[authoriserServer];
    if (typeof signatures !== 'object' || signatures === null || Object.keys(signatures).length === 0) {
      return reject(s(2, 1), 'not signed by the server of join_authorised_via_users_server');
    }
  }

  const senderMembership = membershipIn(authState, sender);
  const targetMembership = sender === target ? senderMembership : membershipIn(authState, target);
  const joinRuleValue = field(authState('m.room.join_rules', '')?.pdu.content, 'join_rule');
  // Without a join rules event the room behaves as invite-only (as Synapse and Ruma read it).
  const joinRule = typeof joinRuleValue === 'string' ? joinRuleValue : 'invite';

  switch (membership) {
    case 'join': {
      const j = (n: number) => s(3, joinStep(rules, n));
      // 4.3.1 the creator's first join, straight after the create event
      const prevEvents = pdu.prev_events;
      if (
        Array.isArray(prevEvents) &&
        prevEvents.length === 1 &&
        prevEvents[0] !== undefined &&
        referencedEventId(prevEvents[0]) === createEvent.eventId &&
        target ===
          (rules.createEventHasCreatorField
            ? field(createEvent.pdu.content, 'creator')
            : createEvent.pdu.sender)
      ) {
        return ALLOWED;
      }
      // 4.3.2 only the user can join themselves
      if (sender !== target) return reject(j(2), 'sender does not match state_key');
      // 4.3.3 not while banned
      if (senderMembership === 'ban') return reject(j(3), 'sender is banned');
      // 4.3.4 invite (v7+: and knock) rooms need an invite or an existing join
      if (joinRule === 'invite' || (rules.knockAllowed && joinRule === 'knock')) {
        return senderMembership === 'invite' || senderMembership === 'join'
          ? ALLOWED
          : reject(j(4), `join rule is ${joinRule} and sender is not invited`);
      }
      // v8+ 4.3.5 restricted (v10+: and knock_restricted)
      if (
        (rules.restrictedJoinAllowed && joinRule === 'restricted') ||
        (rules.knockRestrictedJoinAllowed && joinRule === 'knock_restricted')
      ) {
        // 4.3.5.1
        if (senderMembership === 'join' || senderMembership === 'invite') return ALLOWED;
        // 4.3.5.2 the authorising user must be joined and able to invite
        if (
          typeof authoriser !== 'string' ||
          membershipIn(authState, authoriser) !== 'join' ||
          powerOf(ctx, authoriser) < levels.invite
        ) {
          return reject(
            `${j(5)}.2`,
            'join_authorised_via_users_server is not a joined member able to invite',
          );
        }
        // 4.3.5.3
        return ALLOWED;
      }
      // 4.3.6 public
      if (joinRule === 'public') return ALLOWED;
      // 4.3.7
      return reject(j(7), `join rule ${joinRule} does not allow joining`);
    }

    case 'invite': {
      // 4.4.1 third-party invites
      const thirdPartyInvite = field(pdu.content, 'third_party_invite');
      if (thirdPartyInvite !== undefined) {
        return checkThirdPartyInvite(
          pdu.sender,
          target,
          thirdPartyInvite,
          targetMembership,
          authState,
          (n) => s(4, 1, n),
          options,
        );
      }
      // 4.4.2
      if (senderMembership !== 'join') return reject(s(4, 2), 'sender is not joined to the room');
      // 4.4.3
      if (targetMembership === 'join' || targetMembership === 'ban') {
        return reject(s(4, 3), `target user is already ${targetMembership === 'join' ? 'joined' : 'banned'}`);
      }
      // 4.4.4, 4.4.5
      return powerOf(ctx, sender) >= levels.invite
        ? ALLOWED
        : reject(s(4, 5), 'sender\u2019s power level is below the invite level');
    }

    case 'leave': {
      // 4.5.1 leaving (or declining, or retracting a knock) oneself
      if (sender === target) {
        return senderMembership === 'join' ||
          senderMembership === 'invite' ||
          (rules.knockAllowed && senderMembership === 'knock')
          ? ALLOWED
          : reject(s(5, 1), 'sender is not in the room, invited or knocking');
      }
      // 4.5.2
      if (senderMembership !== 'join') return reject(s(5, 2), 'sender is not joined to the room');
      const senderPower = powerOf(ctx, sender);
      // 4.5.3 unbanning needs the ban level
      if (targetMembership === 'ban' && senderPower < levels.ban) {
        return reject(s(5, 3), 'sender\u2019s power level is below the ban level');
      }
      // 4.5.4, 4.5.5 kicking needs the kick level and more power than the target
      return senderPower >= levels.kick && powerOf(ctx, target) < senderPower
        ? ALLOWED
        : reject(s(5, 5), 'sender is below the kick level or not above the target user');
    }

    case 'ban': {
      // 4.6.1
      if (senderMembership !== 'join') return reject(s(6, 1), 'sender is not joined to the room');
      const senderPower = powerOf(ctx, sender);
      // 4.6.2, 4.6.3
      return senderPower >= levels.ban && powerOf(ctx, target) < senderPower
        ? ALLOWED
        : reject(s(6, 3), 'sender is below the ban level or not above the target user');
    }

    case 'knock': {
      // v7+ 4.7
      if (!rules.knockAllowed) break;
      // 4.7.1 the room must take knocks
      if (joinRule !== 'knock' && !(rules.knockRestrictedJoinAllowed && joinRule === 'knock_restricted')) {
        return reject(s(7, 1), `join rule ${joinRule} does not allow knocking`);
      }
      // 4.7.2
      if (sender !== target) return reject(s(7, 2), 'sender does not match state_key');
      // 4.7.3, 4.7.4
      return senderMembership !== 'ban' && senderMembership !== 'invite' && senderMembership !== 'join'
        ? ALLOWED
        : reject(s(7, 4), `sender is already ${senderMembership}`);
    }
  }
  // 4.8 unknown membership
  return reject(s(8), `unknown membership ${membership}`);
}

function checkThirdPartyInvite(
  sender: string,
  target: string,
  thirdPartyInvite: JsonValue,
  targetMembership: string | undefined,
  authState: AuthStateLookup,
  label: (n: number) => string,
  options: AuthRuleOptions | undefined,
): AuthVerdict {
  // 4.4.1.1
  if (targetMembership === 'ban') return reject(label(1), 'target user is banned');
  // 4.4.1.2
  const signed = field(thirdPartyInvite, 'signed');
  if (!isJsonObject(signed)) return reject(label(2), 'third_party_invite has no signed object');
  // 4.4.1.3
  const mxid = signed.mxid;
  const token = signed.token;
  if (typeof mxid !== 'string' || typeof token !== 'string') {
    return reject(label(3), 'third_party_invite.signed lacks mxid or token');
  }
  // 4.4.1.4
  if (mxid !== target) return reject(label(4), 'third_party_invite.signed.mxid does not match state_key');
  // 4.4.1.5
  const inviteEvent = authState('m.room.third_party_invite', token);
  if (inviteEvent === undefined) return reject(label(5), 'no m.room.third_party_invite for this token');
  // 4.4.1.6
  if (inviteEvent.pdu.sender !== sender) {
    return reject(label(6), 'sender did not send the m.room.third_party_invite');
  }
  // 4.4.1.7 any signature in signed by any of the invite's public keys
  if (isSignedByInviteKey(signed, inviteEvent.pdu.content, options?.verifyJsonSignature)) return ALLOWED;
  // 4.4.1.8
  return reject(label(8), 'no signature in third_party_invite.signed matches the invite\u2019s public keys');
}

function isSafeInteger(value: JsonValue | undefined): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

function checkPowerLevelsChange(
  content: JsonValue | undefined,
  sender: string,
  senderPower: number,
  ctx: PowerContext,
): AuthVerdict {
  const { rules } = ctx;
  const top = step(rules, 9);
  const s = (n: number, ...sub: number[]) => [top, powerStep(rules, n), ...sub].join('.');
  if (!isJsonObject(content)) return reject(s(1), 'content is not an object');

  if (rules.integerPowerLevels) {
    // v10+ 9.1 the named levels are integers
    for (const key of NAMED_POWER_LEVEL_KEYS) {
      if (key in content && !isSafeInteger(content[key]))
        return reject(`${top}.1`, `${key} is not an integer`);
    }
    // v10+ 9.2 events and notifications map to integers
    for (const key of ['events', 'notifications'] as const) {
      const map = content[key];
      if (map === undefined) continue;
      if (!isJsonObject(map)) return reject(`${top}.2`, `${key} is not an object`);
      for (const entry in map) {
        if (!isSafeInteger(map[entry])) return reject(`${top}.2`, `${key}.${entry} is not an integer`);
      }
    }
  }
  // 9.1 (v10+: 9.3) users maps valid user IDs to integers (v1-9: or integer strings)
  const users = content.users;
  if (users !== undefined) {
    if (!isJsonObject(users)) return reject(s(1), 'users is not an object');
    for (const userId in users) {
      if (!isUserId(userId)) return reject(s(1), `users key ${userId} is not a valid user ID`);
      if (powerLevelValue(users[userId], rules) === undefined) {
        return reject(s(1), `users.${userId} is not an integer`);
      }
    }
  }
  // v1-9 read every value like the users map; one they cannot read is as invalid as a bad user level.
  const parsed = tryParsePowerLevels(content, rules);
  if (parsed instanceof ProtocolError) return reject(s(1), parsed.message);

  // v12 10.4 room creators cannot be listed
  if (rules.privilegedCreators) {
    for (const creator of ctx.creators) {
      if (parsed.users.has(creator)) return reject(`${top}.4`, `room creator ${creator} is listed in users`);
    }
  }

  // 9.2 no previous power levels: allow
  const previous = ctx.powerLevelsEvent;
  if (previous === undefined) return ALLOWED;
  const current = ctx.levels;
  const previousContent = previous.pdu.content;

  // 9.3 the named levels, as they appear in each event (absent is not the default here)
  for (const key of NAMED_POWER_LEVEL_KEYS) {
    const before = powerLevelValue(previousContent[key], rules);
    const after = powerLevelValue(content[key], rules);
    if (before === after) continue;
    // 9.3.1
    if (before !== undefined && before > senderPower) {
      return reject(s(3, 1), `current ${key} is above the sender\u2019s power level`);
    }
    // 9.3.2
    if (after !== undefined && after > senderPower) {
      return reject(s(3, 2), `new ${key} is above the sender\u2019s power level`);
    }
  }

  // 9.4, 9.5 events (v6+: and notifications)
  const eventsVerdict = checkLevelMapChange('events', current.events, parsed.events, senderPower, s);
  if (eventsVerdict !== ALLOWED) return eventsVerdict;
  if (rules.limitNotificationsPowerLevels) {
    const notificationsVerdict = checkLevelMapChange(
      'notifications',
      current.notifications,
      parsed.notifications,
      senderPower,
      s,
    );
    if (notificationsVerdict !== ALLOWED) return notificationsVerdict;
  }

  // 9.6 users changed or removed, other than the sender: only those below the sender
  for (const [userId, before] of current.users) {
    if (userId === sender || parsed.users.get(userId) === before) continue;
    if (before >= senderPower) {
      return reject(s(6, 1), `${userId}\u2019s current level is not below the sender\u2019s`);
    }
  }
  // 9.7 users added or changed: not above the sender
  for (const [userId, after] of parsed.users) {
    if (current.users.get(userId) === after) continue;
    if (after > senderPower) return reject(s(7, 1), `new level for ${userId} is above the sender\u2019s`);
  }
  // 9.8 otherwise allow
  return ALLOWED;
}

function checkLevelMapChange(
  key: 'events' | 'notifications',
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
  senderPower: number,
  s: (n: number, ...sub: number[]) => string,
): AuthVerdict {
  // 9.4 changed or removed: the current value may not be above the sender
  for (const [entry, level] of before) {
    if (after.get(entry) !== level && level > senderPower) {
      return reject(s(4, 1), `current ${key}.${entry} is above the sender\u2019s power level`);
    }
  }
  // 9.5 added or changed: the new value may not be above the sender
  for (const [entry, level] of after) {
    if (before.get(entry) !== level && level > senderPower) {
      return reject(s(5, 1), `new ${key}.${entry} is above the sender\u2019s power level`);
    }
  }
  return ALLOWED;
}

/**
 * Rule 2 (v12: 3) on the auth_events list itself: no duplicate (type, state_key), only the
 * pairs the auth events selection allows, none rejected, (v1-11) a create event among them,
 * all in the event's room. The create event has no auth events to check (rule 1 decides it).
 */
export function checkAuthEventsList(
  event: RoomEvent,
  authEvents: readonly RoomEvent[],
  rules: RoomVersionRules,
  isRejected?: (eventId: string) => boolean,
): AuthVerdict {
  if (event.pdu.type === 'm.room.create') return ALLOWED;
  const top = rules.roomIdIsCreateEventHash ? 3 : 2;
  const allowedKeys = new Set<string>();
  for (const [type, stateKey] of selectAuthEventKeys(event.pdu, rules))
    allowedKeys.add(stateTupleKey(type, stateKey));
  const seen = new Set<string>();
  let hasCreate = false;
  for (const authEvent of authEvents) {
    const { type, state_key: stateKey } = authEvent.pdu;
    if (typeof stateKey !== 'string') {
      return reject(`${top}.2`, `auth event ${authEvent.eventId} is not a state event`);
    }
    const key = stateTupleKey(type, stateKey);
    // 2.1 duplicates
    if (seen.has(key)) return reject(`${top}.1`, `duplicate auth events for (${type}, ${stateKey})`);
    seen.add(key);
    // 2.2 only what the selection algorithm picks (v12: never the create event)
    if (!allowedKeys.has(key)) {
      return reject(
        `${top}.2`,
        `auth event (${type}, ${stateKey}) is not one the auth events selection picks`,
      );
    }
    // 2.3 none rejected
    if (isRejected?.(authEvent.eventId))
      return reject(`${top}.3`, `auth event ${authEvent.eventId} was rejected`);
    // 2.5 all in this room
    if (authEvent.roomId !== event.roomId) {
      return reject(`${top}.5`, `auth event ${authEvent.eventId} belongs to another room`);
    }
    if (type === 'm.room.create') hasCreate = true;
  }
  // 2.4 (v1-11) the create event is among them
  if (rules.createEventInAuthEvents && !hasCreate) return reject('2.4', 'no m.room.create among auth_events');
  return ALLOWED;
}
