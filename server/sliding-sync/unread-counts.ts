/**
 * notification_count and highlight_count per room, from push rule evaluation
 * (#8): the same counts /sync reports in unread_notifications, waiting (briefly)
 * for events up to the response's position to be evaluated.
 */
import type { SlidingSyncServices, UnreadCounts } from './sliding-sync-context.js';

export async function unreadCountsOf(
  hs: Pick<SlidingSyncServices, 'push'>,
  userId: string,
  roomIds: readonly string[],
  upTo: number,
): Promise<Map<string, UnreadCounts>> {
  const counts = await hs.push.unreadCounts(userId, roomIds, upTo);
  return new Map(
    roomIds.map((roomId) => {
      const room = counts.get(roomId);
      return [
        roomId,
        {
          notificationCount: room?.notificationCount ?? 0,
          highlightCount: room?.highlightCount ?? 0,
        },
      ];
    }),
  );
}
