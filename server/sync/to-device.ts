/**
 * Send-to-device messages in sync (client-server "Send-to-Device messaging",
 * "Server behaviour"): a sync from a token acknowledges the messages at or
 * below the token's to-device position (the client got them), then hands out
 * the device's next ones, at most 100; next_batch moves only as far as what
 * was handed out, so the rest follows at once and a lost response is re-sent.
 */
import type { JsonObject } from '../../protocol/events.js';
import { TO_DEVICE_MESSAGES_PER_SYNC } from '../e2e/to-device.js';
import type { SyncDeps, SyncRequest } from './sync-context.js';

export async function toDeviceMessages(
  deps: SyncDeps,
  request: Pick<SyncRequest, 'requester' | 'since' | 'upTo' | 'acknowledgeToDevice'>,
): Promise<{ events: JsonObject[]; position: number }> {
  const { requester, since, upTo } = request;
  const after = since?.toDevice ?? 0;
  // A token without a device (an appservice) has no inbox.
  if (requester.deviceId === null) return { events: [], position: upTo.toDevice };
  const { toDevice } = deps.hs;
  if (request.acknowledgeToDevice) await toDevice.acknowledge(requester.userId, requester.deviceId, after);
  return toDevice.pending(
    requester.userId,
    requester.deviceId,
    after,
    upTo.toDevice,
    TO_DEVICE_MESSAGES_PER_SYNC,
  );
}
