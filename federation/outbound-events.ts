/**
 * Outbound PDUs (server-server "Transactions"): every event this server creates in a room is
 * handed to the per-destination queue for each other server with a joined member, plus the
 * server of the member a membership event is about (a kicked or invited user's server hears
 * of it too). Events received over federation are not sent on: their origin does that.
 */
import type { Pdu } from '../protocol/events.js';
import { serverNameOfId as serverOf } from '../protocol/identifiers.js';
import type { PersistedRoomEvent } from '../server/rooms/room-event-sender.js';
import type { Storage } from '../storage/storage.js';

/** Queues one PDU for the given destinations (fed-transport's outbound queue). */
export type PduQueue = (destinations: readonly string[], pdu: Pdu) => void | Promise<void>;

export interface OutboundEventsOptions {
  readonly storage: Storage;
  readonly serverName: string;
  readonly queue: PduQueue;
  readonly onError: (error: unknown, eventId: string) => void;
}

/**
 * The servers with a joined member in the room (the caller drops its own). Read from the
 * membership table, which follows the current state, and made distinct in SQL: this runs
 * for every event sent, and loading each member as a record cost 7% of the send path's
 * CPU in a 50-member room.
 */
export async function serversInRoom(storage: Storage, roomId: string): Promise<Set<string>> {
  return new Set(await storage.memberships.joinedServers(roomId));
}

/** Sends an event another server handed us (a join through send_join) to the room's other servers. */
export function relayEvent(
  options: OutboundEventsOptions,
): (pdu: Pdu, roomId: string, origin: string) => void {
  const { storage, serverName, queue, onError } = options;
  return (pdu, roomId, origin) => {
    void (async () => {
      const destinations = await serversInRoom(storage, roomId);
      destinations.delete(serverName);
      destinations.delete(origin);
      if (destinations.size > 0) await queue([...destinations], pdu);
    })().catch((error: unknown) => onError(error, String(pdu.event_id ?? roomId)));
  };
}

/** A listener for RoomEventSender.onEventPersisted. */
export function sendLocalEvents(options: OutboundEventsOptions): (persisted: PersistedRoomEvent) => void {
  const { storage, serverName, queue, onError } = options;
  return ({ event }) => {
    if (serverOf(event.pdu.sender) !== serverName) return;
    void (async () => {
      const destinations = await serversInRoom(storage, event.roomId);
      const { type, state_key: stateKey } = event.pdu;
      if (type === 'm.room.member' && typeof stateKey === 'string') destinations.add(serverOf(stateKey));
      destinations.delete(serverName);
      if (destinations.size > 0) await queue([...destinations], event.pdu);
    })().catch((error: unknown) => onError(error, event.eventId));
  };
}
