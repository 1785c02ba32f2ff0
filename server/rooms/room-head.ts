/**
 * What the send path keeps in memory per room so that a send reads no database:
 * the room version, its create event, the forward extremities (with depths) and
 * the pieces of current state the auth rules consult. One process is the only
 * writer of a room's events (ARCHITECTURE "Scale-out": one event persister per
 * shard), so after loading once the head is kept up to date by the sender itself.
 */
import { encodeUnpaddedBase64 } from '../../protocol/base64.js';
import {
  type EventReference,
  type JsonObject,
  type RoomEvent,
  type StateTupleKey,
  stateTupleKey,
} from '../../protocol/events.js';
import { computeReferenceHash } from '../../protocol/hashing.js';
import { type RoomVersionRules, roomVersionRules } from '../../protocol/room-versions.js';
import type { StateSnapshotId } from '../../storage/state-store.js';
import type { Storage } from '../../storage/storage.js';

/** State types the auth rules read (auth events selection plus the create event). */
const AUTH_STATE_TYPES: ReadonlySet<string> = new Set([
  'm.room.create',
  'm.room.power_levels',
  'm.room.join_rules',
  'm.room.member',
  'm.room.third_party_invite',
]);

export function isAuthStateType(type: string): boolean {
  return AUTH_STATE_TYPES.has(type);
}

/** spec: server-server "PDUs": a new event cites at most this many prev_events (we pick the deepest). */
export const MAX_PREV_EVENTS_CITED = 10;

export interface Extremity {
  readonly eventId: string;
  readonly depth: number;
  /** How events of this room version cite it in prev_events/auth_events. */
  readonly reference: EventReference;
}

/** v1-2 cite events as `[eventId, {sha256: reference hash}]`; later versions by bare ID. */
export function eventReference(event: RoomEvent, rules: RoomVersionRules): EventReference {
  if (!rules.eventReferencesIncludeHashes) return event.eventId;
  return [event.eventId, { sha256: encodeUnpaddedBase64(computeReferenceHash(event.pdu, rules)) }];
}

/** The room version named by a create event (absent means version 1). */
export function roomVersionOfCreateEvent(createEvent: RoomEvent): RoomVersionRules {
  const version = (createEvent.pdu.content as JsonObject).room_version;
  return roomVersionRules(typeof version === 'string' ? version : '1');
}

export class RoomHead {
  /** Loaded auth-relevant current state; `null` records a key known to be absent. */
  private readonly authState = new Map<StateTupleKey, RoomEvent | null>();

  constructor(
    readonly roomId: string,
    readonly rules: RoomVersionRules,
    readonly createEvent: RoomEvent,
    public extremities: readonly Extremity[],
    /** Snapshot of the state after the extremities; null when it must be written afresh (a forked DAG). */
    public stateSnapshotId: StateSnapshotId | null,
  ) {
    this.authState.set(stateTupleKey('m.room.create', ''), createEvent);
  }

  lookup(type: string, stateKey: string): RoomEvent | undefined {
    return this.authState.get(stateTupleKey(type, stateKey)) ?? undefined;
  }

  isLoaded(key: StateTupleKey): boolean {
    return this.authState.has(key);
  }

  /** Records a current-state entry; entries of types the auth rules never read are not kept. */
  remember(type: string, stateKey: string, event: RoomEvent | null): void {
    if (isAuthStateType(type)) this.authState.set(stateTupleKey(type, stateKey), event);
  }

  /**
   * Reads the given current-state entries from storage unless already known. Undefined
   * (nothing to wait for, no promise made) when they all are: the usual case of a send.
   */
  load(storage: Storage, keys: Iterable<[type: string, stateKey: string]>): Promise<void> | undefined {
    let missing: Map<StateTupleKey, [string, string]> | undefined;
    for (const [type, stateKey] of keys) {
      const key = stateTupleKey(type, stateKey);
      if (!this.authState.has(key) && isAuthStateType(type)) {
        missing ??= new Map();
        missing.set(key, [type, stateKey]);
      }
    }
    return missing === undefined ? undefined : this.loadMissing(storage, missing);
  }

  private async loadMissing(storage: Storage, missing: Map<StateTupleKey, [string, string]>): Promise<void> {
    const eventIds = new Map<StateTupleKey, string>();
    for (const [key, [type, stateKey]] of missing) {
      const eventId = await storage.state.currentStateEventId(this.roomId, type, stateKey);
      if (eventId === null) this.authState.set(key, null);
      else eventIds.set(key, eventId);
    }
    if (eventIds.size === 0) return;
    const events = await storage.events.getEvents([...eventIds.values()]);
    for (const [key, eventId] of eventIds) {
      const event = events.get(eventId);
      if (event === undefined)
        throw new Error(`current state of ${this.roomId} names unknown event ${eventId}`);
      this.authState.set(key, event);
    }
  }
}

/** Loads a room's head from storage; null when the room has no create event here. */
export async function loadRoomHead(storage: Storage, roomId: string): Promise<RoomHead | null> {
  const createEventId = await storage.state.currentStateEventId(roomId, 'm.room.create', '');
  if (createEventId === null) return null;
  const createEvent = await storage.events.getEvent(createEventId);
  if (createEvent === null)
    throw new Error(`current state of ${roomId} names unknown event ${createEventId}`);
  const rules = roomVersionOfCreateEvent(createEvent);
  const extremityIds = await storage.state.forwardExtremities(roomId);
  const stored = await storage.events.getEvents(extremityIds);
  const extremities: Extremity[] = [];
  for (const eventId of extremityIds) {
    const event = stored.get(eventId);
    if (event === undefined) throw new Error(`forward extremity ${eventId} of ${roomId} is not stored`);
    extremities.push({ eventId, depth: event.pdu.depth, reference: eventReference(event, rules) });
  }
  // With one extremity the current state is exactly the state after it; with several the
  // current state table holds their resolution, which the next send writes as a fresh snapshot.
  const single = extremityIds.length === 1 ? stored.get(extremityIds[0]!) : undefined;
  const stateSnapshotId = single?.stateAfterSnapshotId ?? null;
  return new RoomHead(roomId, rules, createEvent, extremities, stateSnapshotId);
}

/** The extremities a new event cites: all of them, or the deepest ten. */
export function extremitiesToCite(extremities: readonly Extremity[]): readonly Extremity[] {
  if (extremities.length <= MAX_PREV_EVENTS_CITED) return extremities;
  return [...extremities].sort((a, b) => b.depth - a.depth).slice(0, MAX_PREV_EVENTS_CITED);
}
