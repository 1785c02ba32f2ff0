/**
 * What building one sliding sync response reads from: the services, who asks,
 * the stream positions the response covers, and per-request lookups.
 */
import type { HomeserverContext } from '../context.js';
import type { StreamPositions } from '../sync/sync-token.js';
import type { SlidingSyncReads } from './shared-reads.js';

export type SlidingSyncServices = Pick<
  HomeserverContext,
  | 'storage'
  | 'log'
  | 'notifier'
  | 'sync'
  | 'presence'
  | 'typing'
  | 'receipts'
  | 'relations'
  | 'historyVisibility'
  | 'toDevice'
  | 'deviceKeys'
  | 'push'
>;

export interface UnreadCounts {
  readonly notificationCount: number;
  readonly highlightCount: number;
}

export interface SlidingSyncContext {
  readonly hs: SlidingSyncServices;
  /** Reads shared by the requests that make the same ones (shared-reads.ts). */
  readonly reads: SlidingSyncReads;
  readonly userId: string;
  readonly deviceId: string | null;
  /** One clock for the response (unsigned.age). */
  readonly now: number;
  /** The positions this response covers. */
  readonly upTo: StreamPositions;
  /** The events position of the `pos` the client sent (null for a new connection): later events are live. */
  readonly baseEvents: number | null;
  /** Rooms in the user's m.direct (read once per response). */
  directRooms(): Promise<Set<string>>;
}
