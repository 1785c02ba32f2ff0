/**
 * A room head plus the events accepted so far in one batch, not yet committed: later
 * events of the batch build on earlier ones, and nothing touches the cached head
 * until the batch's transaction has committed (a failed commit just drops the draft).
 */
import {
  isStateEvent,
  type RoomEvent,
  referencedEventIds,
  type StateTupleKey,
  stateTupleKey,
} from '../../protocol/events.js';
import type { RoomVersionRules } from '../../protocol/room-versions.js';
import type { StateSnapshotId } from '../../storage/state-store.js';
import { type Extremity, eventReference, type RoomHead } from './room-head.js';

export class RoomDraft {
  private readonly stateChanges = new Map<StateTupleKey, RoomEvent>();
  private currentExtremities: readonly Extremity[];

  constructor(readonly head: RoomHead) {
    this.currentExtremities = head.extremities;
  }

  get roomId(): string {
    return this.head.roomId;
  }

  get rules(): RoomVersionRules {
    return this.head.rules;
  }

  get extremities(): readonly Extremity[] {
    return this.currentExtremities;
  }

  /** Current state as of the draft, for the keys the auth rules read (the head must have them loaded). */
  readonly lookup = (type: string, stateKey: string): RoomEvent | undefined =>
    this.stateChanges.get(stateTupleKey(type, stateKey)) ?? this.head.lookup(type, stateKey);

  /** The event joins the draft: it replaces the extremities it cites and, if state, its state entry. */
  accept(event: RoomEvent): void {
    const cited = new Set(referencedEventIds(event.pdu.prev_events));
    this.currentExtremities = [
      ...this.currentExtremities.filter((extremity) => !cited.has(extremity.eventId)),
      { eventId: event.eventId, depth: event.pdu.depth, reference: eventReference(event, this.rules) },
    ];
    if (isStateEvent(event.pdu)) {
      this.stateChanges.set(stateTupleKey(event.pdu.type, event.pdu.state_key!), event);
    }
  }

  /** After the commit: the head takes the draft's extremities, state and state snapshot. */
  commitTo(stateSnapshotId: StateSnapshotId | null): void {
    this.head.extremities = this.currentExtremities;
    for (const event of this.stateChanges.values()) {
      this.head.remember(event.pdu.type, event.pdu.state_key!, event);
    }
    this.head.stateSnapshotId = stateSnapshotId;
  }
}
