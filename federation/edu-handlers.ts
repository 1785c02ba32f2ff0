/**
 * Incoming typing, receipt and presence EDUs (server-server "Typing
 * Notifications", "Receipts", "Presence"), applied to the local services
 * that sync reads. Each accepts only users of the sending server, in rooms
 * where the user is joined and the room's ACL admits the sender.
 *
 * The end-to-end encryption EDUs (m.device_list_update, m.signing_key_update,
 * m.direct_to_device) are handled in federation/e2e-edus.ts.
 */
import type { Logger } from 'pino';
import type { PresenceService } from '../server/accounts/presence-service.js';
import { RECEIPT_READ, type ReceiptService } from '../server/rooms/receipts.js';
import type { TypingService } from '../server/rooms/typing.js';
import type { PresenceState } from '../storage/presence-store.js';
import type { Storage } from '../storage/storage.js';
import type { EduRegistry, FederationAccess } from './federation.js';

const PRESENCE_STATES = new Set(['online', 'unavailable', 'offline']);
/** Typing EDUs carry no timeout; a remote typist stops after this unless renewed (Synapse: 30 s). */
const REMOTE_TYPING_TIMEOUT_MS = 30_000;

export interface EduHandlerDependencies {
  readonly storage: Pick<Storage, 'memberships' | 'events'>;
  readonly typing: TypingService;
  readonly receipts: ReceiptService;
  readonly presence: PresenceService;
  readonly access: FederationAccess;
  readonly log: Logger;
}

export function registerStandardEduHandlers(registry: EduRegistry, deps: EduHandlerDependencies): void {
  /** The user belongs to the sending server and is joined to a room that admits that server. */
  const mayActInRoom = async (origin: string, userId: unknown, roomId: unknown): Promise<boolean> => {
    if (typeof userId !== 'string' || typeof roomId !== 'string') return false;
    if (serverOf(userId) !== origin) return false;
    if (!(await deps.access.isAllowedInRoom(origin, roomId))) return false;
    const membership = await deps.storage.memberships.getMembership(roomId, userId);
    return membership?.membership === 'join';
  };

  registry.register('m.typing', async (origin, content) => {
    if (!isRecord(content)) return;
    const { room_id: roomId, user_id: userId, typing } = content;
    if (typeof typing !== 'boolean' || !(await mayActInRoom(origin, userId, roomId))) return;
    deps.typing.setTyping(roomId as string, userId as string, typing, REMOTE_TYPING_TIMEOUT_MS);
  });

  registry.register('m.receipt', async (origin, content) => {
    if (!isRecord(content)) return;
    for (const [roomId, byType] of Object.entries(content)) {
      if (!isRecord(byType)) continue;
      // Only m.read federates (m.read.private stays on the user's server).
      const byUser = byType[RECEIPT_READ];
      if (!isRecord(byUser)) continue;
      for (const [userId, receipt] of Object.entries(byUser)) {
        if (!isRecord(receipt) || !Array.isArray(receipt.event_ids)) continue;
        if (!(await mayActInRoom(origin, userId, roomId))) continue;
        const data = isRecord(receipt.data) ? receipt.data : {};
        const threadId = typeof data.thread_id === 'string' ? data.thread_id : null;
        for (const eventId of receipt.event_ids) {
          if (typeof eventId !== 'string') continue;
          const event = await deps.storage.events.getEvent(eventId);
          if (event === null || event.roomId !== roomId) continue;
          await deps.receipts.setReceipt({ roomId, userId, receiptType: RECEIPT_READ, eventId, threadId });
        }
      }
    }
  });

  registry.register('m.presence', async (origin, content) => {
    if (!isRecord(content) || !Array.isArray(content.push)) return;
    for (const update of content.push) {
      if (!isRecord(update)) continue;
      const { user_id: userId, presence, status_msg: statusMsg } = update;
      if (typeof userId !== 'string' || serverOf(userId) !== origin) continue;
      if (typeof presence !== 'string' || !PRESENCE_STATES.has(presence)) continue;
      await deps.presence.setPresence(
        userId,
        presence as PresenceState,
        typeof statusMsg === 'string' ? statusMsg : null,
      );
    }
  });
}

function serverOf(userId: string): string | undefined {
  const colon = userId.indexOf(':');
  return colon < 0 ? undefined : userId.slice(colon + 1);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
