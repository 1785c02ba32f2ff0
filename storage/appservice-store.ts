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
   * Events after `afterOrdering`, in stream order: accepted timeline events (none rejected or
   * soft-failed), and membership events kept as outliers (invites from rooms this server is
   * not in, and their rejections), flagged as such.
   */
  eventIdsAfter(
    afterOrdering: StreamOrdering,
    limit: number,
  ): Promise<{ eventId: string; streamOrdering: StreamOrdering; outlier: boolean }[]>;
  /** Appends items to their services' queues and moves the hand-out position, atomically. */
  enqueue(items: readonly AppserviceOutboxItem[], fanOutPosition: StreamOrdering): Promise<void>;
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
