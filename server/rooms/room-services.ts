/**
 * The rooms domain, composed once per Homeserver: the send path, room creation,
 * membership changes and current-state reads, sharing one sender and its caches.
 */
import type { SigningKey } from '../../protocol/signing.js';
import type { Storage } from '../../storage/storage.js';
import { JoinedRoomsIndex } from './joined-rooms-index.js';
import { RoomMembership } from './membership.js';
import {
  type CreatedRoom,
  type CreateRoomRequest,
  createRoom,
  type RoomAliasRegistry,
} from './room-creation.js';
import { type PersistedRoomEvent, RoomEventSender } from './room-event-sender.js';
import { RoomReads } from './room-reads.js';

export interface RoomServicesOptions {
  readonly storage: Storage;
  readonly serverName: string;
  readonly signingKey: SigningKey;
  readonly aliases?: RoomAliasRegistry;
  readonly now?: () => number;
  readonly onListenerError?: (error: unknown, persisted: PersistedRoomEvent) => void;
}

export interface RoomServices {
  readonly sender: RoomEventSender;
  readonly membership: RoomMembership;
  readonly reads: RoomReads;
  createRoom(creator: string, request: CreateRoomRequest): Promise<CreatedRoom>;
  /** Stops following events and waits for queued sends (call before closing storage). */
  close(): Promise<void>;
}

export function createRoomServices(options: RoomServicesOptions): RoomServices {
  const sender = new RoomEventSender(options);
  const joinedRooms = new JoinedRoomsIndex();
  const unfollow = joinedRooms.follow(sender);
  const deps = { storage: options.storage, sender, aliases: options.aliases };
  return {
    sender,
    membership: new RoomMembership(options.storage, sender),
    reads: new RoomReads(options.storage, joinedRooms),
    createRoom: (creator, request) => createRoom(deps, creator, request),
    async close() {
      await sender.idle();
      unfollow();
    },
  };
}
