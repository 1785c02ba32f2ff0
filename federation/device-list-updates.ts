/**
 * Outbound m.device_list_update EDUs (server-server "Device Management"), built without I/O:
 * the user's current devices are compared with what other servers were last told, and each
 * device that is new, changed or gone gets one update with its own stream ID, chained to the
 * previous one by prev_id. A device that is gone is sent with `deleted: true`.
 *
 * Stream IDs count per user from 1 and are the ones /user/devices answers with, so a server
 * that resynced there can apply the next update in order.
 */
import { createHash } from 'node:crypto';
import { encodeCanonicalJson } from '../protocol/canonical-json.js';
import type { JsonObject } from '../protocol/events.js';

/** What other servers were last told of a user's devices. */
export interface SentDeviceList {
  /** The stream ID of the last update sent for the user (0: none yet). */
  readonly lastStreamId: number;
  /** device ID → hash of the content last sent for it. */
  readonly hashes: ReadonlyMap<string, string>;
}

export interface CurrentDevice {
  readonly deviceId: string;
  readonly displayName: string | null;
  /** The signed device keys, when uploaded. */
  readonly keys?: JsonObject | undefined;
}

export interface DeviceListUpdatePlan {
  /** The EDU contents, in stream order. */
  readonly updates: JsonObject[];
  readonly lastStreamId: number;
  /** device ID → hash of its new content, or null when it was deleted. */
  readonly changes: Map<string, string | null>;
}

function contentOf(userId: string, device: CurrentDevice): JsonObject {
  const content: JsonObject = { user_id: userId, device_id: device.deviceId };
  if (device.displayName) content.device_display_name = device.displayName;
  if (device.keys !== undefined) content.keys = device.keys;
  return content;
}

function hashOf(content: JsonObject): string {
  return createHash('sha256').update(encodeCanonicalJson(content)).digest('base64');
}

export function planDeviceListUpdates(
  userId: string,
  sent: SentDeviceList,
  current: readonly CurrentDevice[],
): DeviceListUpdatePlan {
  const updates: JsonObject[] = [];
  const changes = new Map<string, string | null>();
  let streamId = sent.lastStreamId;
  const push = (content: JsonObject): void => {
    // prev_id: the update before this one; empty for the user's first.
    content.prev_id = streamId > 0 ? [streamId] : [];
    streamId++;
    content.stream_id = streamId;
    updates.push(content);
  };
  const present = new Set<string>();
  for (const device of current) {
    present.add(device.deviceId);
    const content = contentOf(userId, device);
    const hash = hashOf(content);
    if (sent.hashes.get(device.deviceId) === hash) continue;
    changes.set(device.deviceId, hash);
    push(content);
  }
  for (const deviceId of [...sent.hashes.keys()].sort()) {
    if (present.has(deviceId)) continue;
    changes.set(deviceId, null);
    push({ user_id: userId, device_id: deviceId, deleted: true });
  }
  return { updates, lastStreamId: streamId, changes };
}
