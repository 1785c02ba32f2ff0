/**
 * Joined rooms' `ephemeral` events (client-server "Typing Notifications",
 * "Receipts"): `m.typing` for rooms whose typing changed since the token (every
 * room where someone types, on an initial sync), `m.receipt` with the receipts
 * changed since the token (all of them, initially). The ephemeral filter applies.
 */
import type { JsonObject } from '../../protocol/events.js';
import { matchesRoomEventFilter } from '../rooms/event-filter.js';
import { RECEIPT_DELIVERED } from '../rooms/receipts.js';
import type { SyncDeps, SyncRequest } from './sync-context.js';

export async function ephemeralEvents(
  deps: SyncDeps,
  request: SyncRequest,
  joinedRoomIds: readonly string[],
): Promise<Map<string, JsonObject[]>> {
  const byRoom = new Map<string, JsonObject[]>();
  const { since, upTo, filter } = request;
  const add = (roomId: string, event: JsonObject) => {
    if (!matchesRoomEventFilter(filter.ephemeral, { type: event.type as string, roomId })) return;
    let events = byRoom.get(roomId);
    if (events === undefined) {
      events = [];
      byRoom.set(roomId, events);
    }
    if (filter.ephemeral?.limit === undefined || events.length < filter.ephemeral.limit) events.push(event);
  };
  if (joinedRoomIds.length === 0) return byRoom;

  const { typing } = deps.hs;
  if (since === null) {
    for (const roomId of joinedRoomIds) {
      const userIds = typing.typingUsers(roomId);
      if (userIds.length > 0) add(roomId, { type: 'm.typing', content: { user_ids: userIds } });
    }
  } else if (since.typing < upTo.typing) {
    const joined = new Set(joinedRoomIds);
    for (const roomId of typing.changedRoomsSince(since.typing)) {
      if (joined.has(roomId))
        add(roomId, { type: 'm.typing', content: { user_ids: typing.typingUsers(roomId) } });
    }
  }

  if (since === null || since.receipts < upTo.receipts) {
    const receipts = await deps.hs.receipts.receiptContentForRooms(
      request.requester.userId,
      joinedRoomIds,
      since === null ? null : since.receipts,
      upTo.receipts,
    );
    for (const [roomId, content] of receipts) {
      const shown = withoutOwnDeliveries(content, request.requester.userId);
      if (shown !== null) add(roomId, { type: 'm.receipt', content: shown });
    }
  }
  return byRoom;
}

/**
 * A user's own io.myelin.delivered receipts tell them nothing (they are for the
 * senders): left out, so that handing a user their messages does not wake them
 * again with the receipt of that hand-over. Null when nothing is left to show.
 */
function withoutOwnDeliveries(content: JsonObject, userId: string): JsonObject | null {
  let shown: JsonObject | null = null;
  for (const [eventId, byType] of Object.entries(content)) {
    const types = byType as JsonObject;
    const delivered = types[RECEIPT_DELIVERED] as JsonObject | undefined;
    let kept: JsonObject = types;
    if (delivered?.[userId] !== undefined) {
      const others: JsonObject = { ...delivered };
      delete others[userId];
      kept = { ...types };
      if (Object.keys(others).length > 0) kept[RECEIPT_DELIVERED] = others;
      else delete kept[RECEIPT_DELIVERED];
    }
    if (Object.keys(kept).length > 0) {
      shown ??= {};
      shown[eventId] = kept;
    }
  }
  return shown;
}
