/**
 * Devices' last_seen_ip / last_seen_ts / user agent (client-server "Device
 * management"), gathered in memory from every authenticated request and
 * written in one batch every few seconds and at shutdown, never a database
 * write per request. The same signal tells presence a user is active.
 */
import type { Logger } from 'pino';
import type { DeviceWriter, LastSeenUpdate } from '../../storage/device-store.js';

export type ActivityListener = (userId: string) => void;

export interface LastSeenRecorder {
  /** Called for each authenticated request of a device. Cheap: a map update. */
  record(userId: string, deviceId: string | null, ip: string | null, userAgent: string | null): void;
  /** Subscribes to "this user made an authenticated request" (presence's last active); returns an unsubscribe. */
  onActivity(listener: ActivityListener): () => void;
  /** The newest unflushed sighting of a device, to merge into what storage says. */
  pending(userId: string, deviceId: string): LastSeenUpdate | undefined;
  /** Drops pending sightings of devices that are gone. */
  forgetDevices(userId: string, deviceIds: readonly string[]): void;
  /** Writes everything pending now. */
  flush(): Promise<void>;
  /** Stops the timer and flushes. */
  close(): Promise<void>;
}

export const DEFAULT_LAST_SEEN_FLUSH_MS = 5_000;

export function createLastSeenRecorder(options: {
  devices: Pick<DeviceWriter, 'recordLastSeen'>;
  log: Logger;
  flushIntervalMs?: number;
  now?: () => number;
}): LastSeenRecorder {
  const now = options.now ?? Date.now;
  let pending = new Map<string, LastSeenUpdate>();
  const listeners = new Set<ActivityListener>();
  let flushing: Promise<void> = Promise.resolve();
  let closed = false;

  const flush = (): Promise<void> => {
    if (pending.size === 0) return flushing;
    const batch = [...pending.values()];
    pending = new Map();
    flushing = flushing
      .then(() => options.devices.recordLastSeen(batch))
      .catch((error: unknown) =>
        options.log.warn({ err: error, devices: batch.length }, 'Could not record last seen'),
      );
    return flushing;
  };

  const timer = setInterval(() => void flush(), options.flushIntervalMs ?? DEFAULT_LAST_SEEN_FLUSH_MS);
  timer.unref();

  return {
    record(userId, deviceId, ip, userAgent) {
      if (deviceId !== null && !closed) {
        pending.set(`${userId}\u0000${deviceId}`, { userId, deviceId, ip, userAgent, ts: now() });
      }
      for (const listener of listeners) {
        try {
          listener(userId);
        } catch (error) {
          options.log.warn({ err: error }, 'Activity listener failed');
        }
      }
    },
    onActivity(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    pending(userId, deviceId) {
      return pending.get(`${userId}\u0000${deviceId}`);
    },
    forgetDevices(userId, deviceIds) {
      for (const deviceId of deviceIds) pending.delete(`${userId}\u0000${deviceId}`);
    },
    flush,
    async close() {
      closed = true;
      clearInterval(timer);
      await flush();
    },
  };
}
