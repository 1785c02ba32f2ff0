import { and, asc, count, eq, gt } from 'drizzle-orm';
import { StorageError } from '../errors.js';
import type { RoomAliasRecord, RoomRecord, RoomStore } from '../room-store.js';
import type { SqliteConnection } from './connection.js';
import { roomAliases, rooms } from './schema.js';
import type { EnqueueWrite } from './write-queue.js';

export class SqliteRoomStore implements RoomStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  async getRoom(roomId: string): Promise<RoomRecord | null> {
    return this.connection.db.select().from(rooms).where(eq(rooms.roomId, roomId)).get() ?? null;
  }

  async listPublicRooms(afterRoomId: string | null, limit: number): Promise<RoomRecord[]> {
    return this.connection.db
      .select()
      .from(rooms)
      .where(
        afterRoomId === null
          ? eq(rooms.isPublic, true)
          : and(eq(rooms.isPublic, true), gt(rooms.roomId, afterRoomId)),
      )
      .orderBy(asc(rooms.roomId))
      .limit(Math.max(0, Math.trunc(limit)))
      .all();
  }

  async countPublicRooms(): Promise<number> {
    return (
      this.connection.db.select({ rooms: count() }).from(rooms).where(eq(rooms.isPublic, true)).get()
        ?.rooms ?? 0
    );
  }

  async getAlias(alias: string): Promise<RoomAliasRecord | null> {
    return this.connection.db.select().from(roomAliases).where(eq(roomAliases.alias, alias)).get() ?? null;
  }

  async aliasesOfRoom(roomId: string): Promise<RoomAliasRecord[]> {
    return this.connection.db
      .select()
      .from(roomAliases)
      .where(eq(roomAliases.roomId, roomId))
      .orderBy(asc(roomAliases.createdTs), asc(roomAliases.alias))
      .all();
  }

  createRoom(room: RoomRecord): Promise<void> {
    const values = { ...room };
    return this.enqueue(() => {
      this.connection.db.insert(rooms).values(values).run();
    });
  }

  setRoomPublic(roomId: string, isPublic: boolean): Promise<void> {
    return this.enqueue(() => {
      const result = this.connection.db.update(rooms).set({ isPublic }).where(eq(rooms.roomId, roomId)).run();
      if (result.changes === 0) throw new StorageError('NOT_FOUND', `no room ${roomId}`);
    });
  }

  createAlias(alias: RoomAliasRecord): Promise<void> {
    const values = { ...alias };
    return this.enqueue(() => {
      this.connection.db.insert(roomAliases).values(values).run();
    });
  }

  deleteAlias(alias: string): Promise<void> {
    return this.enqueue(() => {
      const result = this.connection.db.delete(roomAliases).where(eq(roomAliases.alias, alias)).run();
      if (result.changes === 0) throw new StorageError('NOT_FOUND', `no alias ${alias}`);
    });
  }
}
