import type { StateMap, StateTupleKey } from '../protocol/events.js';

/** Identifies an immutable stored room state. */
export type StateSnapshotId = number;

/** Changes from one state to another: entries set (added or replaced) and keys removed. */
export interface StateDelta {
  readonly set?: StateMap;
  readonly remove?: readonly StateTupleKey[];
}

/**
 * Where the state before an event comes from when it is persisted: an existing
 * snapshot (the common case: one prev event, state unchanged since), or a new
 * snapshot written as a delta against a parent (`null` parent: from empty state).
 */
export type StateSnapshotInput =
  | { readonly snapshotId: StateSnapshotId }
  | { readonly parentSnapshotId: StateSnapshotId | null; readonly delta: StateDelta };

export interface StateReader {
  /** The full state a snapshot stands for; throws NOT_FOUND for an unknown ID. */
  stateAtSnapshot(snapshotId: StateSnapshotId): Promise<StateMap>;
  /**
   * The event IDs of a few keys of a snapshot's state (absent keys are left out): what
   * formatting one state event needs (its replaced state), without reading the whole state.
   * An unknown snapshot has no entries.
   */
  stateEntriesAtSnapshot(
    snapshotId: StateSnapshotId,
    keys: readonly StateTupleKey[],
  ): Promise<Map<StateTupleKey, string>>;
  /** State before an event (its prev events' resolved state); null for outliers and unknown events. */
  stateBeforeEvent(eventId: string): Promise<StateMap | null>;
  /** State after an event (state before plus the event itself if it is an accepted state event). */
  stateAfterEvent(eventId: string): Promise<StateMap | null>;

  /** The room's current state table: (type, state_key) -> event ID. */
  currentState(roomId: string): Promise<StateMap>;
  currentStateEventId(roomId: string, type: string, stateKey: string): Promise<string | null>;
  /** Current state entries of one type, keyed by state key (e.g. all `m.room.member`). */
  currentStateOfType(roomId: string, type: string): Promise<Map<string, string>>;
  /** Rooms whose current state holds (type, stateKey), each with that entry's event ID (e.g. a user's memberships). */
  roomsWithCurrentState(type: string, stateKey: string): Promise<Map<string, string>>;

  /** Events of the room that no other stored event names in its prev_events. */
  forwardExtremities(roomId: string): Promise<string[]>;
}

export interface StateWriter {
  /** Stores a snapshot as a delta against `parentSnapshotId` and resolves to its ID after commit. */
  createSnapshot(
    roomId: string,
    parentSnapshotId: StateSnapshotId | null,
    delta: StateDelta,
  ): Promise<StateSnapshotId>;
  applyCurrentStateDelta(roomId: string, delta: StateDelta): Promise<void>;
  /** Replaces the room's forward extremities (repair, or after resolving a fork elsewhere). */
  setForwardExtremities(roomId: string, eventIds: readonly string[]): Promise<void>;
}

export interface StateStore extends StateReader, StateWriter {}
