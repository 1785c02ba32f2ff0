/**
 * What local users do that other servers in their rooms hear of as EDUs
 * (server-server "Typing Notifications", "Receipts", "Presence"): sent to every other
 * server with a joined member, through the outbound queue. Fire and forget:
 * a failure is logged, the user's request has already succeeded.
 */

import type { Logger } from 'pino';
import { belongsToServer } from '../protocol/identifiers.js';
import { presenceContent } from '../server/accounts/presence-service.js';
import type { Storage } from '../storage/storage.js';
import type { EduAnnouncer, OutboundQueue } from './federation.js';
import { serversInRoom } from './outbound-events.js';

/** A typing notification not sent within this long is dropped: it would be stale (receivers time typing out at 30 s). */
const TYPING_TTL_MS = 30_000;

export function createEduAnnouncer(options: {
  readonly serverName: string;
  readonly storage: Storage;
  readonly queue: OutboundQueue;
  readonly log: Logger;
  readonly enabled: boolean;
}): EduAnnouncer {
  const { serverName, storage, queue, log } = options;
  const toRoomServers = (
    roomId: string,
    eduType: string,
    content: Record<string, unknown>,
    ttlMs?: number,
  ) => {
    if (!options.enabled) return;
    void (async () => {
      const servers = await serversInRoom(storage, roomId);
      servers.delete(serverName);
      for (const destination of servers) {
        await queue.sendEdu(
          destination,
          { edu_type: eduType, content: content as never },
          ttlMs !== undefined ? { ttlMs } : undefined,
        );
      }
    })().catch((error: unknown) => log.warn({ err: error, roomId, eduType }, 'Could not queue an EDU'));
  };
  const isLocal = (userId: string) => belongsToServer(userId, serverName);
  return {
    typing(roomId, userId, typing) {
      if (isLocal(userId)) {
        toRoomServers(roomId, 'm.typing', { room_id: roomId, user_id: userId, typing }, TYPING_TTL_MS);
      }
    },
    presence(record) {
      if (!options.enabled || !isLocal(record.userId)) return;
      void (async () => {
        // Every server sharing a room with the user (spec "Presence": pushed to interested servers).
        const rooms = await storage.memberships.membershipsOfUser(record.userId, ['join']);
        const servers = new Set<string>();
        for (const room of rooms)
          for (const server of await serversInRoom(storage, room.roomId)) servers.add(server);
        servers.delete(serverName);
        const content = presenceContent(record, Date.now());
        const edu = { edu_type: 'm.presence', content: { push: [{ user_id: record.userId, ...content }] } };
        for (const destination of servers) await queue.sendEdu(destination, edu as never);
      })().catch((error: unknown) =>
        log.warn({ err: error, userId: record.userId }, 'Could not queue presence'),
      );
    },
    readReceipt(roomId, userId, eventId, threadId) {
      if (!isLocal(userId)) return;
      const data: Record<string, unknown> = { ts: Date.now() };
      if (threadId !== null) data.thread_id = threadId;
      toRoomServers(roomId, 'm.receipt', {
        [roomId]: { 'm.read': { [userId]: { event_ids: [eventId], data } } },
      });
    },
  };
}
