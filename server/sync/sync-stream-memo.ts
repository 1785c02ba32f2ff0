/**
 * What one client's stream of syncs keeps between its rounds (a WebSocket's sync stream:
 * one round per message, a thousand streams woken together): the filter it resolved and
 * its lazy-loading key per room. Each round would otherwise look them up again in caches
 * shared by every user, by keys made of its user, device, filter ID or room: a few hash
 * lookups per woken member per message, into memory nobody else touched since the last
 * message. Only what cannot go stale is kept: a stored filter never changes (an inline
 * one parses to the same filter), and a key names the same (device, room) for ever.
 */
import type { LazyMembersSent } from './lazy-members.js';
import type { SyncFilter } from './sync-filter.js';

export class SyncStreamMemo {
  private filterParam: string | undefined;
  private filter: SyncFilter | undefined;
  private lazyRoom: string | undefined;
  private lazyKey: string | undefined;

  /** The filter this stream resolved for `param`, if it did. */
  filterFor(param: string | undefined): SyncFilter | undefined {
    return this.filter !== undefined && this.filterParam === param ? this.filter : undefined;
  }

  rememberFilter(param: string | undefined, filter: SyncFilter): void {
    this.filterParam = param;
    this.filter = filter;
  }

  /** The lazy-loading key of the stream's device in `roomId` (one room remembered: most streams watch one busy room). */
  lazyMembersKey(
    lazyMembers: LazyMembersSent,
    userId: string,
    deviceId: string | null,
    roomId: string,
  ): string {
    if (this.lazyRoom !== roomId || this.lazyKey === undefined) {
      this.lazyKey = lazyMembers.keyOf(userId, deviceId, roomId);
      this.lazyRoom = roomId;
    }
    return this.lazyKey;
  }
}
