/**
 * notification_count and highlight_count per room. They come from push rule
 * evaluation (#8, `hs.push.unreadCounts(userId, roomIds)`), which this server
 * does not have yet: every room reports 0 until it is wired here.
 */
import type { UnreadCounts } from './sliding-sync-context.js';

const NONE: UnreadCounts = { notificationCount: 0, highlightCount: 0 };

export async function unreadCountsOf(
  _userId: string,
  roomIds: readonly string[],
): Promise<Map<string, UnreadCounts>> {
  return new Map(roomIds.map((roomId) => [roomId, NONE]));
}
