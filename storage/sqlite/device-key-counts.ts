import type Database from 'better-sqlite3';
import { LazyLruCache } from '../lazy-lru-cache.js';

/**
 * The one-time-key counts and unused fallback-key types of each device, as every
 * incremental sync reports them. A message into a room of a thousand members woke a
 * thousand syncs, and each ran both queries again for counts that change only when the
 * device uploads keys or someone claims one. Kept here per device and dropped by every
 * write that can change them: an upload or a claim (e2e-key-store.ts), and a device
 * created or deleted (device-store.ts: its keys go with it by cascade, and a device ID
 * may come back). One cache per database connection, shared by every store over it;
 * the writes are synchronous transactions, so no read falls between a write and its drop.
 */
export interface DeviceKeyCounts {
  oneTimeKeys?: Readonly<Record<string, number>>;
  fallbackTypes?: readonly string[];
}

/** Devices remembered at most; past it the least recently used go (syncing devices stay). */
const MAX_DEVICES = 20_000;

export class DeviceKeyCountsCache {
  private readonly byDevice: LazyLruCache<string, DeviceKeyCounts>;

  constructor(maxDevices = MAX_DEVICES) {
    this.byDevice = new LazyLruCache({ max: maxDevices });
  }

  /** The device's entry, made on first use; fill its fields from storage when absent. */
  entry(userId: string, deviceId: string): DeviceKeyCounts {
    const key = deviceKey(userId, deviceId);
    let counts = this.byDevice.get(key);
    if (counts === undefined) {
      counts = {};
      this.byDevice.set(key, counts);
    }
    return counts;
  }

  /** Devices with an entry (tests). */
  get size(): number {
    return this.byDevice.size;
  }

  /** The device's keys changed (or it was created or deleted): read them again next time. */
  forget(userId: string, deviceId: string): void {
    this.byDevice.delete(deviceKey(userId, deviceId));
  }
}

function deviceKey(userId: string, deviceId: string): string {
  return `${userId}\u0000${deviceId}`;
}

const caches = new WeakMap<Database.Database, DeviceKeyCountsCache>();

/** The cache of the stores over this database. */
export function deviceKeyCountsOf(sqlite: Database.Database): DeviceKeyCountsCache {
  let cache = caches.get(sqlite);
  if (cache === undefined) {
    cache = new DeviceKeyCountsCache();
    caches.set(sqlite, cache);
  }
  return cache;
}
