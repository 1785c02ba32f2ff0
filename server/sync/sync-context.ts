/**
 * What one sync computation reads from: the services it calls and the request
 * it answers (who, from which positions, up to which, through which filter).
 */
import type { HomeserverContext } from '../context.js';
import type { AuthenticatedUser } from '../http/auth.js';
import type { LazyMembersSent } from './lazy-members.js';
import type { PresenceChangeLog } from './presence.js';
import type { SyncFilter } from './sync-filter.js';
import type { SyncReads } from './sync-reads.js';
import type { SyncStreamMemo } from './sync-stream-memo.js';
import type { StreamPositions } from './sync-token.js';

export type SyncServices = Pick<
  HomeserverContext,
  | 'storage'
  | 'log'
  | 'notifier'
  | 'presence'
  | 'typing'
  | 'receipts'
  | 'relations'
  | 'historyVisibility'
  | 'membership'
  | 'toDevice'
  | 'deviceKeys'
  | 'archive'
  | 'push'
>;

export interface SyncRequest {
  readonly requester: Pick<AuthenticatedUser, 'userId' | 'deviceId'>;
  readonly filter: SyncFilter;
  /** Clamped to `upTo`; null for an initial sync. */
  readonly since: StreamPositions | null;
  /** The positions this response covers (its next_batch). */
  readonly upTo: StreamPositions;
  readonly fullState: boolean;
  /** use_state_after: rooms carry `state_after` (state at the end of the timeline) instead of `state`. */
  readonly useStateAfter?: boolean;
  /** Senders whose events the user ignores (m.ignored_user_list). */
  readonly ignoredUsers: ReadonlySet<string>;
  /** One clock for the whole response (unsigned.age, last_active_ago). */
  readonly now: number;
  /** Whether the client's `since` confirms the to-device messages before it (sync/to-device.ts). */
  readonly acknowledgeToDevice: boolean;
  /** What the client's stream of syncs keeps between rounds (a WebSocket's), if it has one. */
  readonly stream?: SyncStreamMemo;
}

export interface SyncDeps {
  readonly hs: SyncServices;
  readonly reads: SyncReads;
  readonly lazyMembers: LazyMembersSent;
  readonly presenceLog: PresenceChangeLog;
}
