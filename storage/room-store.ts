/**
 * Rooms known to this server, their directory visibility, and room aliases
 * (client-server "Room directory" and "Room aliases").
 */
export interface RoomRecord {
  readonly roomId: string;
  readonly roomVersion: string;
  readonly creator: string;
  readonly createdTs: number;
  /** Listed in the public room directory (/directory/list/room visibility 'public'). */
  readonly isPublic: boolean;
}

export interface RoomAliasRecord {
  readonly alias: string;
  readonly roomId: string;
  readonly creator: string;
  readonly createdTs: number;
}

export interface RoomReader {
  getRoom(roomId: string): Promise<RoomRecord | null>;
  /** Public rooms ordered by room ID, after `afterRoomId` (exclusive), at most `limit`. */
  listPublicRooms(afterRoomId: string | null, limit: number): Promise<RoomRecord[]>;
  countPublicRooms(): Promise<number>;
  getAlias(alias: string): Promise<RoomAliasRecord | null>;
  aliasesOfRoom(roomId: string): Promise<RoomAliasRecord[]>;
}

export interface RoomWriter {
  /** Throws CONFLICT for a known room. */
  createRoom(room: RoomRecord): Promise<void>;
  /** Throws NOT_FOUND for an unknown room. */
  setRoomPublic(roomId: string, isPublic: boolean): Promise<void>;
  /** Throws CONFLICT when the alias exists. */
  createAlias(alias: RoomAliasRecord): Promise<void>;
  /** Throws NOT_FOUND for an unknown alias. */
  deleteAlias(alias: string): Promise<void>;
}

export interface RoomStore extends RoomReader, RoomWriter {}
