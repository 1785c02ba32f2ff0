/**
 * Who is joined to which room, read from the rooms' current state (the
 * m.room.member entries with membership `join`). Presence visibility, the
 * user directory and account deactivation all ask it the same questions, so
 * they agree; it needs nothing of the room service and starts answering as
 * soon as rooms (issue #4) write current state.
 */
import type { JsonObject } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import type { Storage } from '../../storage/storage.js';

export interface RoomMembershipView {
  /** Whether both users are joined to at least one common room (a user shares a room with themself once joined anywhere). */
  sharesRoomWith(userA: string, userB: string): Promise<boolean>;
  /** Every user joined to a room the user is joined to, the user included when joined anywhere. */
  usersSharingRoomWith(userId: string): Promise<Set<string>>;
  /**
   * Whether the user is joined to a room anyone may see into: join rule
   * `public` or history visibility `world_readable` (the rooms the spec's
   * user directory and profile look-up count as public).
   */
  isInPublicRoom(userId: string): Promise<boolean>;
  /** The rooms the user is joined to, in no particular order. */
  joinedRooms(userId: string): Promise<string[]>;
}

const MEMBER = 'm.room.member';
const JOIN_RULES = 'm.room.join_rules';
const HISTORY_VISIBILITY = 'm.room.history_visibility';

export function createRoomMembershipView(storage: Pick<Storage, 'state' | 'events'>): RoomMembershipView {
  const joinedRooms = async (userId: string): Promise<string[]> => {
    const memberEvents = await storage.state.roomsWithCurrentState(MEMBER, userId);
    const events = await storage.events.getEvents([...memberEvents.values()]);
    return [...memberEvents]
      .filter(([, eventId]) => membershipOf(events.get(eventId)) === 'join')
      .map(([roomId]) => roomId);
  };

  const joinedMembers = async (roomId: string): Promise<string[]> => {
    const memberEvents = await storage.state.currentStateOfType(roomId, MEMBER);
    const events = await storage.events.getEvents([...memberEvents.values()]);
    return [...memberEvents]
      .filter(([, eventId]) => membershipOf(events.get(eventId)) === 'join')
      .map(([userId]) => userId);
  };

  const currentStateContent = async (roomId: string, type: string): Promise<JsonObject | undefined> => {
    const eventId = await storage.state.currentStateEventId(roomId, type, '');
    if (eventId === null) return undefined;
    return (await storage.events.getEvent(eventId))?.pdu.content;
  };

  return {
    joinedRooms,

    async sharesRoomWith(userA, userB) {
      const roomsOfA = await joinedRooms(userA);
      if (roomsOfA.length === 0) return false;
      if (userA === userB) return true;
      const roomsOfB = new Set(await joinedRooms(userB));
      return roomsOfA.some((roomId) => roomsOfB.has(roomId));
    },

    async usersSharingRoomWith(userId) {
      const users = new Set<string>();
      for (const roomId of await joinedRooms(userId)) {
        for (const member of await joinedMembers(roomId)) users.add(member);
      }
      return users;
    },

    async isInPublicRoom(userId) {
      for (const roomId of await joinedRooms(userId)) {
        const joinRule = await currentStateContent(roomId, JOIN_RULES);
        if (joinRule?.join_rule === 'public') return true;
        const visibility = await currentStateContent(roomId, HISTORY_VISIBILITY);
        if (visibility?.history_visibility === 'world_readable') return true;
      }
      return false;
    },
  };
}

function membershipOf(event: StoredEvent | undefined): unknown {
  return event?.pdu.content.membership;
}
