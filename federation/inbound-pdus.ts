/**
 * Inbound PDUs (server-server "Checks performed on receipt of a PDU", "Retrieving events"):
 * each PDU of a /send transaction (or fetched to fill a gap) goes through the spec's checks
 * in order, then is persisted like a local event and announced to the same listeners
 * (notifier, sync, directory), so that syncs wake as for the local send path.
 *
 * Per-room serialisation: a room's PDUs are handled one after the other inside the send
 * path's queue for that room (RoomEventSender.runExclusive), so they never interleave with
 * local sends; different rooms run concurrently.
 */
import type { Logger } from 'pino';
import { selectAuthEventKeys } from '../protocol/auth-events-selection.js';
import type { AuthVerdict } from '../protocol/auth-rules.js';
import { type RoomEvent, referencedEventIds, type StateMap, stateTupleKey } from '../protocol/events.js';
import type { RoomVersionRules } from '../protocol/room-versions.js';
import type { ExclusiveRoom, RoomEventSender } from '../server/rooms/room-event-sender.js';
import { eventReference, type RoomHead, roomVersionOfCreateEvent } from '../server/rooms/room-head.js';
import type { RoomReads } from '../server/rooms/room-reads.js';
import {
  isRejected,
  type PersistedEvent,
  SOFT_FAILED_PREFIX,
  type StoredEvent,
} from '../storage/event-store.js';
import type { StateSnapshotInput } from '../storage/state-store.js';
import type { Storage } from '../storage/storage.js';
import { applyFederatedRedaction } from './federated-redactions.js';
import type { KeyRing } from './federation.js';
import {
  checkAgainstAuthEvents,
  checkAgainstState,
  describeVerdict,
  type IntegrityVerdict,
  integrityVerdict,
  parseReceivedPdu,
} from './pdu-checks.js';
import type { RemoteRooms } from './remote-rooms.js';
import {
  loadStateLookup,
  resolveStates,
  stateAfter,
  stateDelta,
  stateFromPrevEvents,
} from './stored-state.js';

/** The /send answer for one PDU: `{}` when processed, `{ error }` when not. */
export type PduResult = { error?: string };

/** spec: get_missing_events is bounded; we ask for at most this many events per gap. */
export const MISSING_EVENTS_LIMIT = 20;
/** Events we fetch one by one (auth events, state) for one PDU at most. */
const MAX_FETCHED_EVENTS = 2_000;

export interface InboundPdusOptions {
  readonly storage: Storage;
  /** The room's current power levels (whether a redaction's sender may redact any event). */
  readonly reads: Pick<RoomReads, 'powers'>;
  readonly sender: RoomEventSender;
  readonly remote: RemoteRooms;
  /** Signatures then content hash, keys fetched as needed (the federation key ring). */
  readonly keys: Pick<KeyRing, 'checkReceivedEvent'>;
  /** The room's server ACL (m.room.server_acl): PDUs from a denied origin are refused. */
  readonly isAllowedInRoom?: (serverName: string, roomId: string) => Promise<boolean>;
  readonly log: Pick<Logger, 'warn' | 'debug'>;
}

export interface FederatedRoom {
  readonly roomId: string;
  readonly rules: RoomVersionRules;
  readonly createEvent: StoredEvent;
}

interface DeferredWrite {
  readonly room: FederatedRoom;
  readonly event: RoomEvent;
  readonly json: string;
  readonly write: Promise<PersistedEvent>;
}

export class InboundPdus {
  /** Accepted messages whose writes are queued but not yet awaited, per room (within its turn). */
  private readonly pending = new Map<string, DeferredWrite[]>();

  constructor(private readonly options: InboundPdusOptions) {}

  private deferWrite(
    room: FederatedRoom,
    event: RoomEvent,
    json: string,
    write: Promise<PersistedEvent>,
  ): void {
    const list = this.pending.get(room.roomId);
    if (list === undefined) this.pending.set(room.roomId, [{ room, event, json, write }]);
    else list.push({ room, event, json, write });
  }

  /**
   * Awaits the room's deferred writes, in order, and announces each stored event.
   * @returns the events whose write failed, with the error.
   */
  private async flushPending(roomId: string): Promise<Map<string, unknown>> {
    const failed = new Map<string, unknown>();
    const list = this.pending.get(roomId);
    if (list === undefined) return failed;
    this.pending.delete(roomId);
    for (const { room, event, json, write } of list) {
      try {
        const persisted = await write;
        await this.afterAccepted(room, event, json, persisted);
      } catch (error) {
        failed.set(event.eventId, error);
      }
    }
    return failed;
  }

  /**
   * Handles a transaction's PDUs: rooms concurrently, each room's PDUs in order. PDUs of rooms
   * we are not in, or without a parsable room, are answered with an error and dropped.
   */
  async handlePdus(origin: string, pdus: readonly unknown[]): Promise<Record<string, PduResult>> {
    const results: Record<string, PduResult> = {};
    const byRoom = new Map<string, unknown[]>();
    for (const pdu of pdus) {
      const roomId = roomIdOf(pdu);
      if (roomId === undefined) continue;
      const list = byRoom.get(roomId);
      if (list === undefined) byRoom.set(roomId, [pdu]);
      else list.push(pdu);
    }
    await Promise.all(
      [...byRoom].map(([roomId, roomPdus]) =>
        this.options.sender.runExclusive(roomId, async (turn) => {
          // spec: server-server "Server Access Control Lists": a denied origin's PDUs are dropped.
          const allowed = (await this.options.isAllowedInRoom?.(origin, roomId)) ?? true;
          const room = allowed ? await this.roomContext(roomId) : null;
          for (const pdu of roomPdus) {
            if (room === null) {
              const id = (pdu as { event_id?: unknown }).event_id;
              const error = allowed
                ? `Unknown room ${roomId}`
                : `${origin} is denied by the room's server ACL`;
              if (typeof id === 'string') results[id] = { error };
              continue;
            }
            const parsed = parseReceivedPdu(pdu, room.rules);
            if (!parsed.ok) continue; // no event ID to answer under
            try {
              const error = await this.receiveInRoom(origin, room, parsed.event, true, turn);
              results[parsed.event.eventId] = error === undefined ? {} : { error };
            } catch (error) {
              this.options.log.warn({ err: error, eventId: parsed.event.eventId }, 'Inbound PDU failed');
              results[parsed.event.eventId] = { error: 'Internal error handling the event' };
              turn.invalidate();
            }
          }
          const failed = await this.flushPending(roomId);
          for (const [eventId, error] of failed) {
            this.options.log.warn({ err: error, eventId }, 'Storing an inbound PDU failed');
            results[eventId] = { error: 'Internal error handling the event' };
          }
          // Every path that did not keep the head in step dropped it (a failed write included).
          if (failed.size === 0) turn.keepHead();
        }),
      ),
    );
    return results;
  }

  /** The room's version and create event, when this server knows the room. */
  async roomContext(roomId: string): Promise<FederatedRoom | null> {
    const { storage } = this.options;
    const createId = await storage.state.currentStateEventId(roomId, 'm.room.create', '');
    if (createId === null) return null;
    const createEvent = await storage.events.getEvent(createId);
    if (createEvent === null) return null;
    return { roomId, rules: roomVersionOfCreateEvent(createEvent), createEvent };
  }

  /** Steps 2-3 for any event from elsewhere: keys fetched, signatures verified, hash checked. */
  async verifyIntegrity(event: RoomEvent, rules: RoomVersionRules): Promise<IntegrityVerdict> {
    return integrityVerdict(event, await this.options.keys.checkReceivedEvent(event.pdu, rules));
  }

  /**
   * One PDU through the checks, in the spec's order, then persisted. Call it inside the
   * room's turn (sender.runExclusive), handing over that turn.
   * @returns undefined when the event was accepted, soft-failed or already known, else why not.
   */
  async receiveInRoom(
    origin: string,
    room: FederatedRoom,
    received: RoomEvent,
    fillGaps: boolean,
    turn: ExclusiveRoom,
  ): Promise<string | undefined> {
    const { storage } = this.options;
    const { rules } = room;
    if (received.roomId !== room.roomId) return 'Event is for another room';
    const known = await storage.events.getEvent(received.eventId);
    if (known !== null && !known.outlier) return isRejected(known) ? known.rejectionReason! : undefined;
    if (this.pending.get(room.roomId)?.some((write) => write.event.eventId === received.eventId))
      return undefined;

    // Steps 2-3: signatures (drop), content hash (keep the redacted event).
    const integrity = await this.verifyIntegrity(received, rules);
    if (!integrity.ok) return integrity.reason;
    const event = integrity.event;
    const json = JSON.stringify(event.pdu);

    // Step 4: against its auth events (usually current state, which the head holds), fetched if we lack some.
    const head = await turn.head();
    const neededKeys = [...selectAuthEventKeys(event.pdu, rules), ['m.room.create', ''] as [string, string]];
    if (head !== null) await head.load(storage, neededKeys);
    const authEvents = await this.authEventsOf(origin, room, event, head, neededKeys);
    const authVerdict = checkAgainstAuthEvents(event, authEvents, room.createEvent, rules, (id) => {
      const authEvent = authEvents.get(id) as StoredEvent | undefined;
      return authEvent?.rejectionReason !== undefined && isRejected(authEvent);
    });
    if (!authVerdict.allowed) return this.persistRejected(event, json, authVerdict, undefined);

    // The common case: the event extends our only forward extremity, so the state before it
    // is the current state, steps 5 and 6 are one check against the head's auth state, and
    // the head moves on with the event (no state is read from storage).
    const prevIds = referencedEventIds(event.pdu.prev_events);
    const sole = head?.extremities.length === 1 ? head.extremities[0]! : undefined;
    if (
      head !== null &&
      head.stateSnapshotId !== null &&
      prevIds.length === 1 &&
      prevIds[0] === sole?.eventId
    ) {
      const verdict = checkAgainstState(event, (type, key) => head.lookup(type, key), rules);
      const stateInput: StateSnapshotInput = { snapshotId: head.stateSnapshotId };
      if (!verdict.allowed) return this.persistRejected(event, json, verdict, stateInput);
      const { pdu } = event;
      const isState = typeof pdu.state_key === 'string';
      if (!isState && known === null) {
        // A message leaves the state (and the head's snapshot) as it was: its write need not be
        // awaited before the next PDU, so a transaction's messages commit together.
        const write = storage.events.persistEvent({ event, json, stateBefore: stateInput });
        write.catch(() => {});
        this.deferWrite(room, event, json, write);
        head.extremities = [
          { eventId: event.eventId, depth: pdu.depth, reference: eventReference(event, rules) },
        ];
        return undefined;
      }
      await this.flushPending(room.roomId);
      const persisted = await storage.events.persistEvent({
        event,
        json,
        stateBefore: stateInput,
        currentStateDelta: isState
          ? { set: new Map([[stateTupleKey(pdu.type, pdu.state_key!), event.eventId]]) }
          : undefined,
      });
      head.extremities = [
        { eventId: event.eventId, depth: pdu.depth, reference: eventReference(event, rules) },
      ];
      head.stateSnapshotId = persisted.stateAfterSnapshotId;
      if (isState) head.remember(pdu.type, pdu.state_key!, event);
      await this.afterAccepted(room, event, json, persisted);
      return undefined;
    }

    // Anything else may move the room's state in ways the head does not follow.
    await this.flushPending(room.roomId);
    turn.invalidate();
    try {
      return await this.receiveAfterFork(origin, room, event, json, prevIds, neededKeys, fillGaps, turn);
    } finally {
      turn.invalidate();
    }
  }

  /** Steps 5-6 for an event that does not simply extend our only extremity (gaps, forks). */
  private async receiveAfterFork(
    origin: string,
    room: FederatedRoom,
    event: RoomEvent,
    json: string,
    prevIds: readonly string[],
    neededKeys: readonly [string, string][],
    fillGaps: boolean,
    turn: ExclusiveRoom,
  ): Promise<string | undefined> {
    const { storage } = this.options;
    const { rules } = room;
    // Fill a gap before the event: get_missing_events between our extremities and it.
    let missing = await this.missingPrevEvents(prevIds);
    if (missing.length > 0 && fillGaps) {
      await this.fillGap(origin, room, event, turn);
      missing = await this.missingPrevEvents(prevIds);
    }

    // Step 5: against the state before it (from its prev events, or asked of the origin).
    let stateBefore = missing.length === 0 ? await stateFromPrevEvents(storage, rules, prevIds) : null;
    if (stateBefore === null) stateBefore = await this.remoteStateBefore(origin, room, event);
    if (stateBefore === null) return 'Could not determine the state before the event';
    const stateVerdict = checkAgainstState(
      event,
      await loadStateLookup(storage, stateBefore, neededKeys),
      rules,
    );
    if (!stateVerdict.allowed) {
      return this.persistRejected(event, json, stateVerdict, {
        parentSnapshotId: null,
        delta: { set: stateBefore },
      });
    }

    // Step 6: against the current state; failing it soft-fails the event.
    const currentState = await storage.state.currentState(room.roomId);
    const currentVerdict = checkAgainstState(
      event,
      await loadStateLookup(storage, currentState, neededKeys),
      rules,
    );
    if (!currentVerdict.allowed) {
      // Kept with its state (later events citing it resolve state with it) but never shown to
      // clients nor built upon: not a forward extremity, current state untouched.
      await storage.events.persistEvent({
        event,
        json,
        rejectionReason: `${SOFT_FAILED_PREFIX}${describeVerdict(currentVerdict)}`,
        stateBefore: { parentSnapshotId: null, delta: { set: stateBefore } },
      });
      return undefined;
    }

    await this.persistAccepted(room, event, json, prevIds, stateBefore, currentState);
    return undefined;
  }

  /** Persists an accepted timeline event with its state, moves current state on, announces it. */
  private async persistAccepted(
    room: FederatedRoom,
    event: RoomEvent,
    json: string,
    prevIds: readonly string[],
    stateBefore: StateMap,
    currentState: StateMap,
  ): Promise<void> {
    const { storage } = this.options;
    const extremities = await storage.state.forwardExtremities(room.roomId);
    const after = stateAfter(stateBefore, event, true);
    // The room's new extremities: ours replaces the prev events it cites.
    const prevSet = new Set(prevIds);
    const others = extremities.filter((id) => !prevSet.has(id) && id !== event.eventId);
    let newCurrent: StateMap;
    if (others.length === 0) {
      newCurrent = after;
    } else {
      // Forks meet: the current state is the resolution of the states after each extremity.
      const sets: StateMap[] = [after];
      for (const id of others) {
        const otherState = await storage.state.stateAfterEvent(id);
        if (otherState !== null) sets.push(otherState);
      }
      newCurrent = await resolveStates(storage, room.rules, sets, [event]);
    }
    const single = prevIds.length === 1 ? await storage.events.getEvent(prevIds[0]!) : null;
    const stateInput: StateSnapshotInput =
      single?.stateAfterSnapshotId != null &&
      sameKeys(stateBefore, await storage.state.stateAfterEvent(single.eventId))
        ? { snapshotId: single.stateAfterSnapshotId }
        : { parentSnapshotId: null, delta: { set: stateBefore } };
    const persisted = await storage.events.persistEvent({
      event,
      json,
      stateBefore: stateInput,
      currentStateDelta: stateDelta(currentState, newCurrent),
    });
    await this.afterAccepted(room, event, json, persisted);
  }

  private async persistRejected(
    event: RoomEvent,
    json: string,
    verdict: AuthVerdict,
    stateBefore: StateSnapshotInput | undefined,
  ): Promise<string> {
    const reason = describeVerdict(verdict);
    await this.flushPending(event.roomId);
    const stored = await this.options.storage.events.getEvent(event.eventId);
    if (stored === null || (stored.outlier && stateBefore !== undefined)) {
      await this.options.storage.events.persistEvent({
        event,
        json,
        rejectionReason: reason,
        ...(stateBefore === undefined ? { outlier: true } : { stateBefore }),
      });
    } else {
      await this.options.storage.events.setRejectionReason(event.eventId, reason);
    }
    return `Event rejected: ${reason}`;
  }

  /** What follows an accepted timeline event: listeners told, redactions applied. */
  private async afterAccepted(
    room: FederatedRoom,
    event: RoomEvent,
    json: string,
    persisted: PersistedEvent,
  ): Promise<void> {
    // The target is stripped first, so that sync, hearing of the redaction, reads it redacted.
    if (event.pdu.type === 'm.room.redaction')
      await applyFederatedRedaction(this.options.storage, this.options.reads, room, event);
    // A redaction that came first was applied as it was stored: listeners (push) get it redacted too.
    const { redactedJson } = persisted;
    if (redactedJson === undefined) {
      this.options.sender.announcePersisted({ event, json, streamOrdering: persisted.streamOrdering });
    } else {
      const redacted: RoomEvent = { ...event, pdu: JSON.parse(redactedJson) };
      this.options.sender.announcePersisted({
        event: redacted,
        json: redactedJson,
        streamOrdering: persisted.streamOrdering,
      });
    }
  }

  /**
   * The auth events an event cites: from the head's current state when they are the ones it
   * holds, the rest from storage, fetched from the origin first if we lack them.
   */
  private async authEventsOf(
    origin: string,
    room: FederatedRoom,
    event: RoomEvent,
    head: RoomHead | null,
    keys: readonly [string, string][],
  ): Promise<Map<string, RoomEvent>> {
    const authIds = referencedEventIds(event.pdu.auth_events);
    const found = new Map<string, RoomEvent>();
    if (head !== null) {
      const wanted = new Set(authIds);
      for (const [type, stateKey] of keys) {
        const current = head.lookup(type, stateKey);
        if (current !== undefined && wanted.has(current.eventId)) found.set(current.eventId, current);
      }
    }
    const rest = authIds.filter((id) => !found.has(id));
    if (rest.length > 0) {
      await this.fetchOutliers(origin, room, rest);
      for (const [id, stored] of await this.options.storage.events.getEvents(rest)) found.set(id, stored);
    }
    return found;
  }

  /** Prev events we do not hold as timeline events (outliers have no state to build on). */
  private async missingPrevEvents(prevIds: readonly string[]): Promise<string[]> {
    const stored = await this.options.storage.events.getEvents(prevIds);
    return prevIds.filter((id) => {
      const event = stored.get(id);
      return event === undefined || event.outlier;
    });
  }

  /**
   * server-server "Retrieving events" / get_missing_events: the events between our forward
   * extremities and `event`, at most MISSING_EVENTS_LIMIT, handled oldest first (without
   * filling further gaps: what is still missing then comes from /state_ids).
   */
  private async fillGap(
    origin: string,
    room: FederatedRoom,
    event: RoomEvent,
    turn: ExclusiveRoom,
  ): Promise<void> {
    const { storage, remote, log } = this.options;
    const extremities = await storage.state.forwardExtremities(room.roomId);
    const stored = await storage.events.getEvents(extremities);
    let minDepth = Number.MAX_SAFE_INTEGER;
    for (const e of stored.values()) minDepth = Math.min(minDepth, e.pdu.depth);
    let fetched: unknown[];
    try {
      fetched = await remote.missingEvents(origin, room.roomId, {
        earliest_events: extremities,
        latest_events: [event.eventId],
        limit: MISSING_EVENTS_LIMIT,
        min_depth: minDepth === Number.MAX_SAFE_INTEGER ? 0 : minDepth,
      });
    } catch (error) {
      log.debug({ err: error, origin, roomId: room.roomId }, 'get_missing_events failed');
      return;
    }
    const events: RoomEvent[] = [];
    for (const json of fetched.slice(0, MISSING_EVENTS_LIMIT)) {
      const parsed = parseReceivedPdu(json, room.rules);
      if (parsed.ok && parsed.event.eventId !== event.eventId) events.push(parsed.event);
    }
    events.sort((a, b) => a.pdu.depth - b.pdu.depth || a.pdu.origin_server_ts - b.pdu.origin_server_ts);
    for (const missingEvent of events) await this.receiveInRoom(origin, room, missingEvent, false, turn);
    // What comes next reads them from storage.
    for (const [eventId, error] of await this.flushPending(room.roomId)) {
      log.warn({ err: error, eventId }, 'Storing a missing event failed');
    }
  }

  /**
   * The state before `event` as the origin reports it (/state_ids at the event), its events
   * fetched and stored as outliers; null when the origin does not answer.
   */
  async remoteStateBefore(origin: string, room: FederatedRoom, event: RoomEvent): Promise<StateMap | null> {
    const { storage, remote, log } = this.options;
    let ids: { pduIds: string[]; authChainIds: string[] };
    try {
      ids = await remote.stateIds(origin, room.roomId, event.eventId);
    } catch (error) {
      log.debug({ err: error, origin, eventId: event.eventId }, 'state_ids failed');
      return null;
    }
    await this.fetchOutliers(origin, room, [...ids.authChainIds, ...ids.pduIds]);
    const events = await storage.events.getEvents(ids.pduIds);
    const state: StateMap = new Map();
    for (const stateEvent of events.values()) {
      if (isRejected(stateEvent) || typeof stateEvent.pdu.state_key !== 'string') continue;
      state.set(stateTupleKey(stateEvent.pdu.type, stateEvent.pdu.state_key), stateEvent.eventId);
    }
    return state;
  }

  /**
   * Fetches the events among `eventIds` we do not have (GET /event each), checks their
   * signatures and hashes, and stores them as outliers, oldest first, each checked against
   * its own auth events (rejected if it fails them). Bounded by MAX_FETCHED_EVENTS.
   */
  async fetchOutliers(origin: string, room: FederatedRoom, eventIds: readonly string[]): Promise<void> {
    const { storage, remote, log } = this.options;
    const have = await storage.events.haveEvents(eventIds);
    const wanted = [...new Set(eventIds)].filter((id) => !have.has(id));
    const fetched = new Map<string, RoomEvent>();
    const queue = [...wanted];
    while (queue.length > 0 && fetched.size < MAX_FETCHED_EVENTS) {
      const id = queue.shift()!;
      if (fetched.has(id)) continue;
      let json: unknown;
      try {
        json = await remote.event(origin, id);
      } catch (error) {
        log.debug({ err: error, origin, eventId: id }, 'Fetching an event failed');
        continue;
      }
      const parsed = parseReceivedPdu(json, room.rules);
      if (!parsed.ok || parsed.event.eventId !== id || parsed.event.roomId !== room.roomId) continue;
      fetched.set(id, parsed.event);
      // Its auth events too, unless we have them.
      const authIds = referencedEventIds(parsed.event.pdu.auth_events);
      const haveAuth = await storage.events.haveEvents(authIds);
      for (const authId of authIds) if (!haveAuth.has(authId) && !fetched.has(authId)) queue.push(authId);
    }
    await this.persistOutliers(room, [...fetched.values()]);
  }

  /** Stores events known by their IDs only as outliers: integrity checked, auth against their own auth events. */
  async persistOutliers(room: FederatedRoom, events: readonly RoomEvent[]): Promise<void> {
    const { storage } = this.options;
    const have = await storage.events.haveEvents(events.map((event) => event.eventId));
    const fresh = orderByAuth(events.filter((event) => !have.has(event.eventId)));
    // Steps 2-3 for all of them (keys are fetched once per server by the key ring).
    const verdicts = await Promise.all(fresh.map((event) => this.verifyIntegrity(event, room.rules)));
    const checked = fresh.flatMap((_, i) => {
      const verdict = verdicts[i]!;
      return verdict.ok ? [verdict.event] : [];
    });
    // Their auth events: among them, or stored already (one read for all).
    const inBatch = new Map(checked.map((event) => [event.eventId, event]));
    const citedElsewhere = new Set<string>();
    for (const event of checked) {
      for (const id of referencedEventIds(event.pdu.auth_events))
        if (!inBatch.has(id)) citedElsewhere.add(id);
    }
    const stored = await storage.events.getEvents([...citedElsewhere]);
    const rejected = new Set<string>();
    for (const [id, event] of stored) if (isRejected(event)) rejected.add(id);
    // Step 4 for each, in auth order, then all stored in one transaction.
    const toPersist: { event: RoomEvent; rejectionReason: string | null }[] = [];
    for (const event of checked) {
      const authEvents = new Map<string, RoomEvent>();
      for (const id of referencedEventIds(event.pdu.auth_events)) {
        const authEvent = inBatch.get(id) ?? stored.get(id);
        if (authEvent !== undefined) authEvents.set(id, authEvent);
      }
      const createEvent = event.pdu.type === 'm.room.create' ? undefined : room.createEvent;
      const verdict = checkAgainstAuthEvents(event, authEvents, createEvent, room.rules, (id) =>
        rejected.has(id),
      );
      const rejectionReason = verdict.allowed ? null : describeVerdict(verdict);
      if (rejectionReason !== null) rejected.add(event.eventId);
      toPersist.push({ event, rejectionReason });
    }
    const writes: Promise<unknown>[] = [];
    await storage.transaction((tx) => {
      for (const { event, rejectionReason } of toPersist) {
        writes.push(
          tx.events.persistEvent({ event, json: JSON.stringify(event.pdu), outlier: true, rejectionReason }),
        );
      }
    });
    await Promise.all(writes);
  }
}

function roomIdOf(pdu: unknown): string | undefined {
  if (typeof pdu !== 'object' || pdu === null) return undefined;
  const roomId = (pdu as { room_id?: unknown }).room_id;
  return typeof roomId === 'string' ? roomId : undefined;
}

function sameKeys(a: StateMap, b: StateMap | null): boolean {
  if (b === null || a.size !== b.size) return false;
  for (const [key, id] of a) if (b.get(key) !== id) return false;
  return true;
}

/** Events ordered so that each comes after the auth events it cites among them (then by depth). */
export function orderByAuth<E extends RoomEvent>(events: readonly E[]): E[] {
  const byId = new Map(events.map((event) => [event.eventId, event]));
  const done = new Set<string>();
  const ordered: E[] = [];
  const visit = (event: E, path: Set<string>) => {
    if (done.has(event.eventId) || path.has(event.eventId)) return;
    path.add(event.eventId);
    for (const id of referencedEventIds(event.pdu.auth_events)) {
      const authEvent = byId.get(id);
      if (authEvent !== undefined) visit(authEvent, path);
    }
    path.delete(event.eventId);
    done.add(event.eventId);
    ordered.push(event);
  };
  for (const event of [...events].sort((a, b) => a.pdu.depth - b.pdu.depth)) visit(event, new Set());
  return ordered;
}
