/**
 * What application service delivery keeps (application-service "Pushing
 * events"): how far the room event stream has been handed out to the
 * services, and each service's queue of events not yet delivered. A claimed
 * transaction keeps its ID until the service accepts it, so a resend after a
 * failure or a restart carries the same events under the same ID.
 */
import type { StreamOrdering } from './event-store.js';

export interface AppserviceOutboxItem {
  readonly appserviceId: string;
  /** The event in client format, as JSON text, sent as is. */
  readonly json: string;
}

export interface ClaimedAppserviceTransaction {
  readonly txnId: string;
  /** Client-format events as JSON text, in stream order. */
  readonly events: readonly string[];
}

export interface AppserviceStore {
  /** The stream ordering up to which events were handed to the queues; null before the first hand-out. */
  fanOutPosition(): Promise<StreamOrdering | null>;
  /**
   * Accepted timeline events after `afterOrdering`, in stream order (none rejected or
   * soft-failed, no outlier, none already queued as an out-of-band membership).
   */
  eventIdsAfter(
    afterOrdering: StreamOrdering,
    limit: number,
  ): Promise<{ eventId: string; streamOrdering: StreamOrdering }[]>;
  /**
   * Appends items to their services' queues and, when given, moves the hand-out position,
   * atomically.
   */
  enqueue(items: readonly AppserviceOutboxItem[], fanOutPosition?: StreamOrdering): Promise<void>;
  /**
   * Queues an out-of-band membership (an invite, knock or its rescinding kept outside the
   * timeline) once: false, and nothing queued, when the event was queued before. The event
   * is never handed out again, even once it enters the timeline.
   */
  enqueueOutOfBand(eventId: string, items: readonly AppserviceOutboxItem[]): Promise<boolean>;
  /**
   * The service's next transaction: the one claimed and not yet completed, or else up to
   * `maxEvents` queued events claimed under an ID never used for it before. Null when nothing waits.
   */
  claimTransaction(appserviceId: string, maxEvents: number): Promise<ClaimedAppserviceTransaction | null>;
  /** Removes a delivered transaction's events. */
  completeTransaction(appserviceId: string, txnId: string): Promise<void>;
  /** Services with queued events. */
  pendingAppservices(): Promise<string[]>;

  /** Lists (or unlists) a room in a service's directory of one third-party network. */
  setRoomListed(appserviceId: string, networkId: string, roomId: string, listed: boolean): Promise<void>;
  /** The rooms listed in one network's directory, or (no network given) in any service's. */
  listedRoomIds(network?: { appserviceId: string; networkId: string }): Promise<string[]>;
}
