/**
 * Backfill (server-server "Backfilling and retrieving missing events"): when a local user
 * pages back past the oldest event this server holds of a room it joined over federation,
 * the history before it is fetched from a resident server with /backfill, each PDU checked
 * like an inbound one (signatures, hash, auth events, state before it; not against the
 * current state: old history is not soft-failed), and stored below everything we have.
 *
 * Ordering: backfilled events take negative stream orderings counting down (storage
 * EventToPersist.backfilled), as Synapse does, so each batch is persisted newest first after
 * being checked oldest first. They do not move forward extremities or current state, and are
 * not announced to syncs (they are not new). A backfilled redaction strips its target, stored
 * or not yet (storage applies it when the older target is persisted, later in the batch).
 */
import type { Logger } from 'pino';
import type { AuthStateLookup } from '../protocol/auth-rules.js';
import { type RoomEvent, referencedEventIds, type StateMap, stateTupleKey } from '../protocol/events.js';
import type { RoomEventSender } from '../server/rooms/room-event-sender.js';
import type { RoomReads } from '../server/rooms/room-reads.js';
import { isRejected, type StoredEvent } from '../storage/event-store.js';
import type { StateSnapshotId, StateSnapshotInput } from '../storage/state-store.js';
import type { Storage } from '../storage/storage.js';
import { applyFederatedRedaction } from './federated-redactions.js';
import type { FederatedRoom, InboundPdus } from './inbound-pdus.js';
import { serversInRoom } from './outbound-events.js';
import {
  checkAgainstAuthEvents,
  checkAgainstState,
  describeVerdict,
  parseReceivedPdu,
} from './pdu-checks.js';
import type { RemoteRooms } from './remote-rooms.js';
import { resolveStates } from './stored-state.js';

/** Events asked for per /backfill request (the spec lets servers cap it; Synapse serves 100). */
export const BACKFILL_LIMIT = 100;
/** How many of the room's oldest timeline events are looked at for history we lack. */
const OLDEST_EVENTS_EXAMINED = 50;
/** After a fruitless attempt, a room is not backfilled again for this long. */
const RETRY_AFTER_MS = 30_000;
const MAX_RESTING_ROOMS = 10_000;

export interface BackfillOptions {
  readonly storage: Storage;
  readonly reads: Pick<RoomReads, 'powers'>;
  readonly sender: Pick<RoomEventSender, 'runExclusive'>;
  readonly inbound: InboundPdus;
  readonly remote: Pick<RemoteRooms, 'backfill'>;
  readonly serverName: string;
  readonly log: Pick<Logger, 'debug' | 'warn'>;
  /** A stored event was rewritten (a backfilled redaction applied to it): sync drops what it cached. */
  readonly onEventRewritten?: (eventId: string) => void;
}

interface Checked {
  readonly event: RoomEvent;
  readonly stateBefore: StateMap;
  readonly rejectionReason: string | null;
}

export class Backfiller {
  private readonly quietUntil = new Map<string, number>();

  constructor(private readonly options: BackfillOptions) {}

  /**
   * Fetches one batch of the history before the oldest events we hold of the room.
   * @returns whether any event was added to the timeline.
   */
  async backfill(roomId: string): Promise<boolean> {
    const quiet = this.quietUntil.get(roomId);
    if (quiet !== undefined && quiet > Date.now()) return false;
    // Most rooms reach their create event: nothing is missing, nothing is asked.
    if ((await this.backwardExtremities(roomId)).length === 0) return false;
    const room = await this.options.inbound.roomContext(roomId);
    if (room === null) return false;
    // In the room's turn: no inbound PDU or local send stores the same events meanwhile.
    const added = await this.options.sender.runExclusive(roomId, async (turn) => {
      const count = await this.backfillInTurn(room);
      turn.keepHead(); // neither current state nor extremities moved
      return count;
    });
    if (added === 0) this.rest(roomId);
    else this.quietUntil.delete(roomId);
    return added > 0;
  }

  /** No server gave us anything: leave the room alone for a while (entries expire). */
  private rest(roomId: string): void {
    const now = Date.now();
    if (this.quietUntil.size >= MAX_RESTING_ROOMS) {
      for (const [id, until] of this.quietUntil) if (until <= now) this.quietUntil.delete(id);
      if (this.quietUntil.size >= MAX_RESTING_ROOMS) this.quietUntil.clear();
    }
    this.quietUntil.set(roomId, now + RETRY_AFTER_MS);
  }

  /** Prev events of the room's oldest timeline events that we lack as timeline events. */
  async backwardExtremities(roomId: string): Promise<string[]> {
    const { storage } = this.options;
    const oldest = await storage.events.roomEventsAfter(
      roomId,
      Number.MIN_SAFE_INTEGER,
      OLDEST_EVENTS_EXAMINED,
    );
    const prevIds = [...new Set(oldest.flatMap((event) => referencedEventIds(event.pdu.prev_events)))];
    const stored = await storage.events.getEvents(prevIds);
    return prevIds.filter((id) => {
      const event = stored.get(id);
      return event === undefined || event.outlier;
    });
  }

  private async backfillInTurn(room: FederatedRoom): Promise<number> {
    const { storage, remote, serverName, log } = this.options;
    const from = await this.backwardExtremities(room.roomId);
    if (from.length === 0) return 0;
    const servers = [...(await serversInRoom(storage, room.roomId))].filter((s) => s !== serverName);
    for (const server of servers) {
      let pdus: unknown[];
      try {
        pdus = await remote.backfill(server, room.roomId, from, BACKFILL_LIMIT);
      } catch (error) {
        log.debug({ err: error, server, roomId: room.roomId }, 'backfill failed');
        continue;
      }
      const added = await this.storeBatch(server, room, pdus);
      if (added > 0) return added;
    }
    return 0;
  }

  /** Checks a /backfill answer oldest first, then stores it newest first. @returns events accepted. */
  private async storeBatch(origin: string, room: FederatedRoom, pdus: readonly unknown[]): Promise<number> {
    const { storage, inbound, log } = this.options;
    const { rules } = room;
    const parsed = new Map<string, RoomEvent>();
    for (const json of pdus.slice(0, BACKFILL_LIMIT)) {
      const result = parseReceivedPdu(json, rules);
      if (result.ok && result.event.roomId === room.roomId) parsed.set(result.event.eventId, result.event);
    }
    const known = await storage.events.getEvents([...parsed.keys()]);
    const fresh = [...parsed.values()].filter((event) => known.get(event.eventId)?.outlier !== false);
    // Steps 2-3: signatures, then content hash (a mismatch keeps the redacted event).
    const verdicts = await Promise.all(fresh.map((event) => inbound.verifyIntegrity(event, rules)));
    const events = fresh
      .flatMap((_, i) => {
        const verdict = verdicts[i]!;
        return verdict.ok ? [verdict.event] : [];
      })
      .sort(
        (a, b) =>
          a.pdu.depth - b.pdu.depth ||
          a.pdu.origin_server_ts - b.pdu.origin_server_ts ||
          (a.eventId < b.eventId ? -1 : 1),
      );
    if (events.length === 0) return 0;

    // Auth events neither in the batch nor stored: fetched as outliers first.
    const inBatch = new Map(events.map((event) => [event.eventId, event]));
    const authIds = new Set<string>();
    for (const event of events)
      for (const id of referencedEventIds(event.pdu.auth_events)) if (!inBatch.has(id)) authIds.add(id);
    await inbound.fetchOutliers(origin, room, [...authIds]);
    const storedAuth = await storage.events.getEvents([...authIds]);

    const checked: Checked[] = [];
    const lookups = new Map<StateMap, AuthStateLookup>();
    const stateAfterOf = new Map<string, StateMap>();
    const rejected = new Set<string>();
    for (const event of events) {
      const stateBefore = await this.stateBefore(origin, room, event, stateAfterOf, inBatch);
      if (stateBefore === null) continue; // unknown state: left for a later attempt
      const authEvents = new Map<string, RoomEvent>();
      for (const id of referencedEventIds(event.pdu.auth_events)) {
        const authEvent = inBatch.get(id) ?? storedAuth.get(id);
        if (authEvent !== undefined) authEvents.set(id, authEvent);
      }
      const createEvent = event.pdu.type === 'm.room.create' ? undefined : room.createEvent;
      // Step 4 against its auth events, step 5 against the state before it.
      let verdict = checkAgainstAuthEvents(event, authEvents, createEvent, rules, (id) => {
        const stored = storedAuth.get(id);
        return rejected.has(id) || (stored !== undefined && isRejected(stored));
      });
      if (verdict.allowed) {
        let lookup = lookups.get(stateBefore);
        if (lookup === undefined) {
          lookup = await this.lookupOver(stateBefore, inBatch);
          lookups.set(stateBefore, lookup);
        }
        verdict = checkAgainstState(event, lookup, rules);
      }
      const rejectionReason = verdict.allowed ? null : describeVerdict(verdict);
      if (rejectionReason !== null) rejected.add(event.eventId);
      const isState = typeof event.pdu.state_key === 'string';
      // Messages share the state object before them: one snapshot serves a run of them.
      const after =
        rejectionReason === null && isState
          ? new Map(stateBefore).set(stateTupleKey(event.pdu.type, event.pdu.state_key!), event.eventId)
          : stateBefore;
      stateAfterOf.set(event.eventId, after);
      checked.push({ event, stateBefore, rejectionReason });
    }

    // Newest first: each gets the next lower stream ordering.
    const snapshots = new Map<StateMap, StateSnapshotId>();
    let accepted = 0;
    for (const { event, stateBefore, rejectionReason } of checked.reverse()) {
      const snapshotId = snapshots.get(stateBefore);
      const input: StateSnapshotInput =
        snapshotId !== undefined ? { snapshotId } : { parentSnapshotId: null, delta: { set: stateBefore } };
      try {
        const persisted = await storage.events.persistEvent({
          event,
          json: JSON.stringify(event.pdu),
          rejectionReason,
          stateBefore: input,
          backfilled: true,
        });
        if (persisted.stateBeforeSnapshotId !== null)
          snapshots.set(stateBefore, persisted.stateBeforeSnapshotId);
        if (rejectionReason === null) accepted++;
        // Its target is older, so usually not stored yet: storage strips it as it is persisted.
        if (rejectionReason === null && event.pdu.type === 'm.room.redaction') {
          const targetId = await applyFederatedRedaction(storage, this.options.reads, room, event);
          // Not announced (not new): caches that may hold a stored target are told directly.
          if (targetId !== undefined) this.options.onEventRewritten?.(targetId);
        }
      } catch (error) {
        log.warn({ err: error, eventId: event.eventId }, 'Storing a backfilled event failed');
      }
    }
    return accepted;
  }

  /**
   * The state before a backfilled event: from its prev events (checked earlier in this batch,
   * or stored with state), else as the origin reports it (/state_ids).
   */
  private async stateBefore(
    origin: string,
    room: FederatedRoom,
    event: RoomEvent,
    stateAfterOf: ReadonlyMap<string, StateMap>,
    inBatch: ReadonlyMap<string, RoomEvent>,
  ): Promise<StateMap | null> {
    const { storage, inbound } = this.options;
    const prevIds = [...new Set(referencedEventIds(event.pdu.prev_events))];
    if (prevIds.length === 0) return new Map();
    const sets: StateMap[] = [];
    for (const id of prevIds) {
      const after = stateAfterOf.get(id) ?? (await storage.state.stateAfterEvent(id));
      if (after === null) return inbound.remoteStateBefore(origin, room, event);
      sets.push(after);
    }
    if (sets.length === 1) return sets[0]!;
    const unstored = prevIds.flatMap((id) => {
      const batchEvent = inBatch.get(id);
      return batchEvent === undefined ? [] : [batchEvent];
    });
    return resolveStates(storage, room.rules, sets, unstored);
  }

  /** An auth lookup over a state whose events are in the batch or stored. */
  private async lookupOver(
    state: StateMap,
    inBatch: ReadonlyMap<string, RoomEvent>,
  ): Promise<AuthStateLookup> {
    const stored = await this.options.storage.events.getEvents(
      [...state.values()].filter((id) => !inBatch.has(id)),
    );
    return (type, stateKey) => {
      const id = state.get(stateTupleKey(type, stateKey));
      if (id === undefined) return undefined;
      return inBatch.get(id) ?? (stored.get(id) as StoredEvent | undefined);
    };
  }
}
