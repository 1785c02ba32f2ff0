import type { Pdu, RoomEvent } from '../protocol/events.js';
import { redactEvent } from '../protocol/redaction.js';
import { roomVersionRules } from '../protocol/room-versions.js';
import type { StateDelta, StateSnapshotId, StateSnapshotInput } from './state-store.js';

/** A position on the room event stream; assigned at persist time, strictly increasing. */
export type StreamOrdering = number;

export interface StoredEvent extends RoomEvent {
  /** The event exactly as it was received or created (byte-exact JSON text). */
  readonly json: string;
  readonly streamOrdering: StreamOrdering;
  /** Known but not part of the room timeline (auth chains, state fetched over federation). */
  readonly outlier: boolean;
  /** Why the event failed authorisation; null for accepted events. */
  readonly rejectionReason: string | null;
  readonly stateBeforeSnapshotId: StateSnapshotId | null;
  readonly stateAfterSnapshotId: StateSnapshotId | null;
}

/**
 * The rejection reason of a soft-failed event (server-server "Soft failure": it passed auth
 * against the state before it but not against the current state). Such an event is kept out
 * of everything clients see and out of the forward extremities, like a rejected one, but is
 * otherwise accepted: its state counts in the state after it and in state resolution.
 */
export const SOFT_FAILED_PREFIX = 'soft-failed: ';

export function isSoftFailed(event: Pick<StoredEvent, 'rejectionReason'>): boolean {
  return event.rejectionReason?.startsWith(SOFT_FAILED_PREFIX) ?? false;
}

/** Rejected by the auth rules (a soft-failed event is not). */
export function isRejected(event: Pick<StoredEvent, 'rejectionReason'>): boolean {
  return event.rejectionReason !== null && !isSoftFailed(event);
}

export interface EventToPersist {
  readonly event: RoomEvent;
  /** The JSON text as received; when absent `JSON.stringify(event.pdu)` is stored. */
  readonly json?: string;
  /** Defaults to false. Outliers get no state, touch no extremities and stay out of the timeline. */
  readonly outlier?: boolean;
  /** Null when accepted; SOFT_FAILED_PREFIX + why for a soft-failed event. */
  readonly rejectionReason?: string | null;
  /** State before the event; the state after it is derived (plus the event if it is an accepted state event). */
  readonly stateBefore?: StateSnapshotInput;
  /** Changes to the room's current state table made by this event (usually `{ set: {key -> eventId} }`). */
  readonly currentStateDelta?: StateDelta;
  /**
   * Defaults to true for accepted non-outliers: the event's prev events stop
   * being forward extremities and the event becomes one unless a stored event
   * already names it as a prev event.
   */
  readonly updateForwardExtremities?: boolean;
  /**
   * History older than anything stored (federation backfill): the event gets a negative
   * stream ordering below every stored one, so it sorts before them in the timeline while
   * syncs (which read forward from a positive position) never see it as new. Persist a
   * backfilled batch newest first.
   */
  readonly backfilled?: boolean;
  /**
   * The client transaction of a local send, kept with the event so that sync can echo
   * `transaction_id` to the sending device (recordTransaction must record it too: the
   * event names its transaction only while that record exists).
   */
  readonly transaction?: { readonly deviceId: string; readonly txnId: string };
  /**
   * Built and signed by this server for this write (a local send): no stored event can be
   * it, name it as a prev event or wait to redact it, so those lookups are skipped (a
   * duplicate is still refused, by the unique event ID). Its prev edges are not indexed
   * either: they are asked only of events arriving from elsewhere, and its prevs are
   * timeline events already stored, which never arrive again; nor, unless it is a state
   * event (only those can be auth events), are its auth edges: its auth chain starts from
   * its own auth_events.
   */
  readonly builtHere?: boolean;
}

/** What an indexer reads of an accepted timeline event (EventReader.timelineContentsBetween). */
export interface TimelineContent {
  readonly streamOrdering: StreamOrdering;
  readonly eventId: string;
  readonly roomId: string;
  readonly type: string;
  readonly stateKey: string | null;
  readonly sender: string;
  readonly originServerTs: number;
  /** The event's `content`, as JSON text. */
  readonly contentJson: string;
  /** The top-level `redacts` of a redaction (room versions before 11), when a string. */
  readonly redacts: string | null;
}

export interface PersistedEvent {
  readonly eventId: string;
  readonly streamOrdering: StreamOrdering;
  readonly stateBeforeSnapshotId: StateSnapshotId | null;
  readonly stateAfterSnapshotId: StateSnapshotId | null;
  /** Set when a redaction that arrived first was applied in this write: the JSON as stored. */
  readonly redactedJson?: string;
}

export interface EventReader {
  getEvent(eventId: string): Promise<StoredEvent | null>;
  /** The stored events among `eventIds`, keyed by event ID; unknown IDs are absent. */
  getEvents(eventIds: readonly string[]): Promise<Map<string, StoredEvent>>;
  /** Which of `eventIds` are stored (as outliers or not). */
  haveEvents(eventIds: readonly string[]): Promise<Set<string>>;
  /** The highest stream ordering assigned so far (0 when there are no events). */
  latestStreamOrdering(): Promise<StreamOrdering>;
  /** The lowest stream ordering assigned so far: negative once history was backfilled, else 0. */
  earliestStreamOrdering(): Promise<StreamOrdering>;
  /** Accepted timeline events of a room after `afterOrdering`, oldest first. */
  roomEventsAfter(roomId: string, afterOrdering: StreamOrdering, limit: number): Promise<StoredEvent[]>;
  /** Accepted timeline events of a room before `beforeOrdering`, newest first (backward pagination). */
  roomEventsBefore(roomId: string, beforeOrdering: StreamOrdering, limit: number): Promise<StoredEvent[]>;
  /** Event IDs reachable from `eventIds` through auth_events (the auth chain, excluding the starting events). */
  authChainEventIds(eventIds: readonly string[]): Promise<Set<string>>;
  /**
   * Rooms with accepted timeline events in (afterOrdering, upToOrdering], each with
   * its highest stream ordering in that range (sync: which rooms changed since a token).
   */
  roomsChangedBetween(
    afterOrdering: StreamOrdering,
    upToOrdering: StreamOrdering,
  ): Promise<Map<string, StreamOrdering>>;
  /**
   * Accepted timeline events of `types` in every room in (afterOrdering, upToOrdering],
   * oldest first, each with only its content as JSON text (indexers following the
   * stream: search; parsing whole signed events cost them more than their own work).
   */
  timelineContentsBetween(
    afterOrdering: StreamOrdering,
    upToOrdering: StreamOrdering,
    types: readonly string[],
  ): Promise<TimelineContent[]>;
  /**
   * Per room, the stream ordering of its latest accepted timeline event of one of
   * `types` (sliding sync's bump stamps); rooms with none are absent.
   */
  latestOrderingOfTypes(
    roomIds: readonly string[],
    types: readonly string[],
  ): Promise<Map<string, StreamOrdering>>;
  /**
   * The accepted timeline event closest to `ts` in the given direction
   * (f: first at or after ts, b: last at or before ts); null when none.
   */
  closestEventByTimestamp(roomId: string, ts: number, direction: 'f' | 'b'): Promise<StoredEvent | null>;
  /** The client transaction that produced a stored event (sync echoes its transaction_id to that device). */
  transactionOfEvent(eventId: string): Promise<{ userId: string; deviceId: string; txnId: string } | null>;
  /** The redaction that redacted this event, if any (served as unsigned.redacted_because). */
  redactionOf(eventId: string): Promise<string | null>;
}

export interface EventWriter {
  /**
   * Persists the event, its prev and auth edges, its state snapshots, the
   * room's new forward extremities, current state changes and its stream
   * ordering in one transaction. An event already stored throws CONFLICT,
   * except an outlier persisted again as a timeline event: that one is
   * promoted and gets a fresh stream ordering.
   */
  persistEvent(input: EventToPersist): Promise<PersistedEvent>;
  /** Marks a stored event rejected (or accepted again with null). */
  setRejectionReason(eventId: string, reason: string | null): Promise<void>;
  /**
   * Applies an accepted redaction: replaces the stored JSON of `redactedEventId`
   * with `redactedJson` (the room version's redaction algorithm, computed by the
   * caller) and records `redactionEventId` as its redaction. Idempotent;
   * NOT_FOUND if the target is not stored (callers keep the redaction to apply later).
   */
  applyRedaction(redactedEventId: string, redactedJson: string, redactionEventId: string): Promise<void>;
  /**
   * An accepted redaction, applied to its target whenever the target is stored: at once when
   * it already is (in hot or cold storage), else kept and applied inside the write that
   * persists the target (any path: inbound, backfill, missing events, outliers, local), so the
   * target is never readable unredacted. Applied only when redactionApplies allows it (same
   * room, not a create event, same server or a sender with the redact level). Idempotent.
   */
  redactWhenStored(redaction: AcceptedRedaction): Promise<void>;
}

/** An accepted redaction as storage keeps it until its target is stored. */
export interface AcceptedRedaction {
  readonly redactionEventId: string;
  readonly targetEventId: string;
  readonly roomId: string;
  /** The room version, whose redaction algorithm strips the target. */
  readonly roomVersion: string;
  /** The server of the redaction's sender: it may redact its own users' events. */
  readonly senderServer: string;
  /** The sender had the redact power level when the redaction was accepted: any event of the room goes. */
  readonly senderMayRedactAny: boolean;
}

/**
 * The stored JSON of `target` once `redaction` is applied, or null when the redaction may not
 * strip it (server-server "Redactions": the receiving server checks on use).
 */
export function redactedJsonOf(
  redaction: AcceptedRedaction,
  target: { readonly roomId: string; readonly pdu: Pdu },
): string | null {
  if (target.roomId !== redaction.roomId || target.pdu.type === 'm.room.create') return null;
  const sender = target.pdu.sender;
  const sameServer =
    typeof sender === 'string' && sender.slice(sender.indexOf(':') + 1) === redaction.senderServer;
  if (!sameServer && !redaction.senderMayRedactAny) return null;
  return JSON.stringify(redactEvent(target.pdu, roomVersionRules(redaction.roomVersion)));
}

export interface EventStore extends EventReader, EventWriter {}
