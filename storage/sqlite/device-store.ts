import { and, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import type { Device, DeviceStore, LastSeenUpdate, NewDevice } from '../device-store.js';
import { StorageError } from '../errors.js';
import type { SqliteConnection } from './connection.js';
import { deviceKeyCountsOf } from './device-key-counts.js';
import { parameterChunks } from './parameter-chunks.js';
import { devices } from './schema.js';
import type { EnqueueWrite } from './write-queue.js';

export class SqliteDeviceStore implements DeviceStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  async getDevice(userId: string, deviceId: string): Promise<Device | null> {
    return (
      this.connection.db
        .select()
        .from(devices)
        .where(and(eq(devices.userId, userId), eq(devices.deviceId, deviceId)))
        .get() ?? null
    );
  }

  async listDevices(userId: string): Promise<Device[]> {
    return this.connection.db
      .select()
      .from(devices)
      .where(eq(devices.userId, userId))
      .orderBy(devices.deviceId)
      .all();
  }

  createDevice(device: NewDevice): Promise<void> {
    const row = {
      userId: device.userId,
      deviceId: device.deviceId,
      displayName: device.displayName ?? null,
      createdTs: device.createdTs,
    };
    return this.enqueue(() => {
      this.connection.db.insert(devices).values(row).run();
      deviceKeyCountsOf(this.connection.sqlite).forget(row.userId, row.deviceId);
    });
  }

  setDisplayName(userId: string, deviceId: string, displayName: string | null): Promise<void> {
    return this.enqueue(() => {
      const updated = this.connection.db
        .update(devices)
        .set({ displayName })
        .where(and(eq(devices.userId, userId), eq(devices.deviceId, deviceId)))
        .run();
      if (updated.changes === 0) throw new StorageError('NOT_FOUND', `no device ${deviceId} of ${userId}`);
    });
  }

  deleteDevices(userId: string, deviceIds: readonly string[]): Promise<void> {
    const ids = [...deviceIds];
    return this.enqueue(() => {
      for (const chunk of parameterChunks(ids)) {
        this.connection.db
          .delete(devices)
          .where(and(eq(devices.userId, userId), inArray(devices.deviceId, chunk)))
          .run();
      }
      // Their keys went with them (ON DELETE CASCADE).
      const counts = deviceKeyCountsOf(this.connection.sqlite);
      for (const deviceId of ids) counts.forget(userId, deviceId);
    });
  }

  recordLastSeen(updates: readonly LastSeenUpdate[]): Promise<void> {
    const copies = updates.map((u) => ({ ...u }));
    return this.enqueue(() => {
      const statement = this.connection.db
        .update(devices)
        .set({
          lastSeenIp: sql`${sql.placeholder('ip')}`,
          lastSeenTs: sql`${sql.placeholder('ts')}`,
          lastSeenUserAgent: sql`${sql.placeholder('userAgent')}`,
        })
        .where(
          and(
            eq(devices.userId, sql.placeholder('userId')),
            eq(devices.deviceId, sql.placeholder('deviceId')),
            or(isNull(devices.lastSeenTs), lt(devices.lastSeenTs, sql.placeholder('ts'))),
          ),
        )
        .prepare();
      for (const update of copies) statement.run(update);
    });
  }
}
