/**
 * Which rooms each user is joined to, kept from the membership events this process
 * persists. A stop-gap: storage has no "rooms of a user" query yet (it needs
 * `StateReader.roomsForUser(userId, membership)` over current_state), so after a restart
 * this index knows only the memberships changed since.
 */
import type { RoomEvent } from '../../protocol/events.js';
import type { RoomEventSender } from './room-event-sender.js';

export class JoinedRoomsIndex {
  private readonly roomsByUser = new Map<string, Set<string>>();

  /** Follows the sender's persisted events; returns the unsubscribe. */
  follow(sender: RoomEventSender): () => void {
    return sender.onEventPersisted(({ event }) => {
      this.observe(event);
    });
  }

  observe(event: RoomEvent): void {
    const { pdu } = event;
    if (pdu.type !== 'm.room.member' || typeof pdu.state_key !== 'string') return;
    const userId = pdu.state_key;
    let rooms = this.roomsByUser.get(userId);
    if (pdu.content.membership === 'join') {
      if (rooms === undefined) {
        rooms = new Set();
        this.roomsByUser.set(userId, rooms);
      }
      rooms.add(event.roomId);
    } else if (rooms !== undefined) {
      rooms.delete(event.roomId);
      if (rooms.size === 0) this.roomsByUser.delete(userId);
    }
  }

  joinedRooms(userId: string): string[] {
    return [...(this.roomsByUser.get(userId) ?? [])];
  }
}
