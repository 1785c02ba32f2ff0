/**
 * The end-to-end key parts of a sync (client-server "Extensions to /sync"):
 * device_lists (incremental syncs only), device_one_time_keys_count and
 * device_unused_fallback_key_types for the requesting device.
 */
import type { DeviceListChanges } from '../e2e/device-keys.js';
import type { SyncDeps, SyncRequest } from './sync-context.js';

export interface DeviceKeySections {
  readonly deviceLists: DeviceListChanges;
  readonly oneTimeKeyCounts: Record<string, number>;
  readonly unusedFallbackKeyTypes: string[];
}

export async function deviceKeySections(deps: SyncDeps, request: SyncRequest): Promise<DeviceKeySections> {
  const { deviceKeys } = deps.hs;
  const { userId, deviceId } = request.requester;
  const [deviceLists, oneTimeKeyCounts, unusedFallbackKeyTypes] = await Promise.all([
    request.since === null
      ? { changed: [], left: [] }
      : deviceKeys.deviceListChanges(userId, request.since.deviceLists, request.upTo.deviceLists),
    deviceId === null ? { signed_curve25519: 0 } : deviceKeys.oneTimeKeyCounts(userId, deviceId),
    deviceId === null ? [] : deviceKeys.unusedFallbackKeyTypes(userId, deviceId),
  ]);
  return { deviceLists, oneTimeKeyCounts, unusedFallbackKeyTypes };
}
