/**
 * Test support: builds the events of one room in any room version with sequential fake event
 * IDs, picking prev_events, auth_events and depth the way a server would and keeping the
 * current state. Hashes and signatures are placeholders; event IDs are not reference hashes.
 * Branches: `snapshot()` the state and head, build on, then `restore()` and build another.
 */
import { selectAuthEventKeys } from './auth-events-selection.js';
import { type AuthStateLookup, type AuthVerdict, checkAuthRules } from './auth-rules.js';
import {
  type EventReference,
  type JsonObject,
  type Pdu,
  type RoomEvent,
  referencedEventId,
  type StateTupleKey,
  stateTupleKey,
} from './events.js';
import { type RoomVersionId, type RoomVersionRules, roomVersionRules } from './room-versions.js';

export interface TestRoomOptions {
  roomVersion?: RoomVersionId;
  /** Sender of the create event (and its `creator` in v1-10). Default `@creator:example.org`. */
  creator?: string;
  /** v12: `content.additional_creators`. */
  additionalCreators?: string[];
  /** Extra keys merged into the create event's content. */
  createContent?: JsonObject;
  /** Start of `origin_server_ts`; each event adds one second. */
  startTs?: number;
}

export interface TestEventSpec {
  type: string;
  sender: string;
  content?: JsonObject;
  state_key?: string;
  /** Default: the builder's head (the last event added). */
  prev_events?: string[];
  /** Default: the auth events selection over the builder's current state. */
  auth_events?: string[];
  /** v1-10: top-level `redacts`; v11+: also copied into `content.redacts`. */
  redacts?: string;
  origin_server_ts?: number;
}

export interface TestRoomSnapshot {
  readonly state: ReadonlyMap<StateTupleKey, RoomEvent>;
  readonly head: readonly string[];
}

export class TestRoomBuilder {
  readonly rules: RoomVersionRules;
  readonly creator: string;
  readonly roomId: string;
  readonly createEvent: RoomEvent;
  /** Every event built, by ID. */
  readonly events = new Map<string, RoomEvent>();
  /** The room's current state. */
  state = new Map<StateTupleKey, RoomEvent>();
  /** The forward extremities new events point at. */
  head: string[] = [];
  private sequence = 0;
  private ts: number;

  constructor(options: TestRoomOptions = {}) {
    this.rules = roomVersionRules(options.roomVersion ?? '10');
    this.creator = options.creator ?? '@creator:example.org';
    this.ts = options.startTs ?? 1_700_000_000_000;
    const content: JsonObject = { room_version: this.rules.id };
    if (this.rules.createEventHasCreatorField) content.creator = this.creator;
    if (options.additionalCreators) content.additional_creators = options.additionalCreators;
    Object.assign(content, options.createContent);

    const createId = this.nextEventId(this.creator);
    this.roomId = this.rules.roomIdIsCreateEventHash
      ? `!${createId.slice(1)}`
      : `!room${createId.slice(1).replace(/:.*$/, '')}:${serverOf(this.creator)}`;
    const pdu: Pdu = this.pdu(
      { type: 'm.room.create', sender: this.creator, content, state_key: '' },
      [],
      [],
      1,
    );
    if (this.rules.roomIdIsCreateEventHash) delete pdu.room_id;
    this.createEvent = this.record(createId, pdu);
  }

  /** Looks up the current state. */
  readonly lookup: AuthStateLookup = (type, stateKey) => this.state.get(stateTupleKey(type, stateKey));

  /** The event's own auth events as a lookup, plus (v12) the room's create event. */
  authEventsLookup(event: RoomEvent): AuthStateLookup {
    const byKey = new Map<StateTupleKey, RoomEvent>();
    for (const ref of event.pdu.auth_events) {
      const authEvent = this.events.get(referencedEventId(ref));
      if (authEvent?.pdu.state_key !== undefined) {
        byKey.set(stateTupleKey(authEvent.pdu.type, authEvent.pdu.state_key), authEvent);
      }
    }
    if (!this.rules.createEventInAuthEvents) byKey.set(stateTupleKey('m.room.create', ''), this.createEvent);
    return (type, stateKey) => byKey.get(stateTupleKey(type, stateKey));
  }

  /** Makes an event on top of the current head and state without adding it to either. */
  build(spec: TestEventSpec): RoomEvent {
    const prevIds = spec.prev_events ?? this.head;
    const authIds =
      spec.auth_events ??
      selectAuthEventKeys({ content: {}, ...spec }, this.rules)
        .map(([type, stateKey]) => this.state.get(stateTupleKey(type, stateKey))?.eventId)
        .filter((id): id is string => id !== undefined);
    let depth = 0;
    for (const id of prevIds) depth = Math.max(depth, this.events.get(id)?.pdu.depth ?? 0);
    const eventId = this.nextEventId(spec.sender);
    const pdu = this.pdu(spec, prevIds, authIds, depth + 1);
    const event: RoomEvent = { eventId, roomId: this.roomId, pdu };
    this.events.set(eventId, event);
    return event;
  }

  /** The verdict of the auth rules against the current state. */
  check(event: RoomEvent): AuthVerdict {
    return checkAuthRules(event, this.lookup, this.rules);
  }

  /** Builds an event, checks it against the current state (throws if rejected) and applies it. */
  add(spec: TestEventSpec): RoomEvent {
    const event = this.build(spec);
    const verdict = this.check(event);
    if (!verdict.allowed) {
      throw new Error(
        `test room: ${spec.type} from ${spec.sender} rejected by ${verdict.rule}: ${verdict.reason}`,
      );
    }
    this.apply(event);
    return event;
  }

  /** Makes an event the new head and, for state events, current state, with no checks. */
  apply(event: RoomEvent): void {
    if (event.pdu.state_key !== undefined)
      this.state.set(stateTupleKey(event.pdu.type, event.pdu.state_key), event);
    this.head = [event.eventId];
  }

  snapshot(): TestRoomSnapshot {
    return { state: new Map(this.state), head: [...this.head] };
  }

  restore(snapshot: TestRoomSnapshot): void {
    this.state = new Map(snapshot.state);
    this.head = [...snapshot.head];
  }

  // ---- shorthands --------------------------------------------------------------------------

  member(sender: string, target: string, membership: string, extra: JsonObject = {}): RoomEvent {
    return this.add({ type: 'm.room.member', sender, state_key: target, content: { membership, ...extra } });
  }
  join(user: string, extra: JsonObject = {}): RoomEvent {
    return this.member(user, user, 'join', extra);
  }
  invite(sender: string, target: string): RoomEvent {
    return this.member(sender, target, 'invite');
  }
  leave(user: string): RoomEvent {
    return this.member(user, user, 'leave');
  }
  kick(sender: string, target: string): RoomEvent {
    return this.member(sender, target, 'leave');
  }
  ban(sender: string, target: string): RoomEvent {
    return this.member(sender, target, 'ban');
  }
  powerLevels(sender: string, content: JsonObject): RoomEvent {
    return this.add({ type: 'm.room.power_levels', sender, state_key: '', content });
  }
  joinRules(sender: string, joinRule: string, extra: JsonObject = {}): RoomEvent {
    return this.add({
      type: 'm.room.join_rules',
      sender,
      state_key: '',
      content: { join_rule: joinRule, ...extra },
    });
  }
  message(sender: string, body = 'hello'): RoomEvent {
    return this.add({ type: 'm.room.message', sender, content: { msgtype: 'm.text', body } });
  }

  /**
   * The usual opening: the creator joins, sets power levels (creator 100 where the version
   * allows listing creators) and a public join rule, `members` join, then the join rule
   * changes to `joinRule` if another is asked for.
   */
  static withMembers(
    options: TestRoomOptions & {
      joinRule?: string;
      members?: readonly string[];
      powerLevels?: JsonObject;
    } = {},
  ): TestRoomBuilder {
    const room = new TestRoomBuilder(options);
    room.join(room.creator);
    const users: JsonObject = room.rules.privilegedCreators ? {} : { [room.creator]: 100 };
    room.powerLevels(room.creator, { users, ...options.powerLevels });
    room.joinRules(room.creator, 'public');
    for (const member of options.members ?? []) room.join(member);
    if (options.joinRule !== undefined && options.joinRule !== 'public')
      room.joinRules(room.creator, options.joinRule);
    return room;
  }

  private nextEventId(sender: string): string {
    this.sequence += 1;
    const n = String(this.sequence).padStart(6, '0');
    return this.rules.eventIdFormat === 'server-generated' ? `$${n}:${serverOf(sender)}` : `$${n}`;
  }

  private reference(id: string): EventReference {
    return this.rules.eventReferencesIncludeHashes ? [id, { sha256: 'fakehash' }] : id;
  }

  private pdu(
    spec: TestEventSpec,
    prevIds: readonly string[],
    authIds: readonly string[],
    depth: number,
  ): Pdu {
    this.ts += 1000;
    const pdu: Pdu = {
      type: spec.type,
      room_id: this.roomId,
      sender: spec.sender,
      origin_server_ts: spec.origin_server_ts ?? this.ts,
      content: { ...spec.content },
      depth,
      prev_events: prevIds.map((id) => this.reference(id)),
      auth_events: authIds.map((id) => this.reference(id)),
      hashes: { sha256: 'fakehash' },
      signatures: { [serverOf(spec.sender)]: { 'ed25519:test': 'fakesignature' } },
    };
    // A restricted join is also signed by the resident server that authorised it.
    const authoriser = spec.content?.join_authorised_via_users_server;
    if (typeof authoriser === 'string')
      pdu.signatures[serverOf(authoriser)] = { 'ed25519:test': 'fakesignature' };
    if (spec.state_key !== undefined) pdu.state_key = spec.state_key;
    if (spec.redacts !== undefined) {
      pdu.redacts = spec.redacts;
      if (this.rules.redactsInContent) pdu.content.redacts = spec.redacts;
    }
    return pdu;
  }

  private record(eventId: string, pdu: Pdu): RoomEvent {
    const event: RoomEvent = { eventId, roomId: this.roomId, pdu };
    this.events.set(eventId, event);
    this.apply(event);
    return event;
  }
}

function serverOf(userId: string): string {
  const colon = userId.indexOf(':');
  return colon < 0 ? 'example.org' : userId.slice(colon + 1);
}
