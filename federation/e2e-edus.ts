/**
 * The EDUs of end-to-end encryption (server-server "Send-to-device messaging",
 * "Device Management", "End-to-End Encryption"):
 *
 * - m.direct_to_device in: stored for the local devices it names (ToDeviceService.receiveRemote).
 * - m.device_list_update and m.signing_key_update in: the remote user's devices or keys
 *   changed, so the syncs of local users sharing a room with them list them in
 *   device_lists.changed (their clients then query the keys again, over federation).
 * - m.device_list_update out: when a local user's devices or keys change, one EDU per
 *   device added, changed or deleted (`deleted: true`) to every other server sharing a room
 *   with them, each with its own stream ID and prev_id naming the one before
 *   (federation/device-list-updates.ts). Receivers that track stream IDs resync through
 *   /user/devices, which answers the same numbering, when prev_id does not match theirs.
 * - m.signing_key_update out: when their cross-signing keys change, the master and
 *   self-signing keys (the user-signing key never leaves the server).
 */

import type { Logger } from 'pino';
import type { JsonObject } from '../protocol/events.js';
import { belongsToServer } from '../protocol/identifiers.js';
import type { DeviceKeysService } from '../server/e2e/device-keys.js';
import type { ToDeviceService } from '../server/e2e/to-device.js';
import type { Storage } from '../storage/storage.js';
import { planDeviceListUpdates } from './device-list-updates.js';
import type { EduRegistry, OutboundQueue } from './federation.js';
import { serversInRoom } from './outbound-events.js';
import type { RemoteDeviceLists } from './remote-device-lists.js';

export function registerE2eEduHandlers(
  registry: EduRegistry,
  deps: {
    readonly toDevice: ToDeviceService;
    readonly deviceKeys: DeviceKeysService;
    readonly storage: Pick<Storage, 'e2eKeys'>;
    /** The cache of remote device lists, kept current by these EDUs (absent without federation). */
    readonly deviceLists?: RemoteDeviceLists | undefined;
  },
): void {
  registry.register('m.direct_to_device', (origin, content) => deps.toDevice.receiveRemote(origin, content));

  const remoteUserChanged =
    (apply: ((content: JsonObject) => void) | undefined) => async (origin: string, content: unknown) => {
      if (typeof content !== 'object' || content === null || Array.isArray(content)) return;
      const userId = (content as { user_id?: unknown }).user_id;
      // Only the user's own server may say their devices changed.
      if (typeof userId !== 'string' || !belongsToServer(userId, origin)) return;
      apply?.(content as JsonObject);
      await deps.storage.e2eKeys.recordDeviceListChange(userId);
      deps.deviceKeys.devicesChanged(userId);
    };
  const lists = deps.deviceLists;
  registry.register('m.device_list_update', remoteUserChanged(lists && ((c) => lists.deviceListUpdate(c))));
  registry.register('m.signing_key_update', remoteUserChanged(lists && ((c) => lists.signingKeyUpdate(c))));
}

/** The servers other than ours sharing a room with the user. */
async function serversSharingARoom(
  storage: Storage,
  serverName: string,
  userId: string,
): Promise<Set<string>> {
  const rooms = await storage.memberships.membershipsOfUser(userId, ['join']);
  const servers = new Set<string>();
  for (const room of rooms)
    for (const server of await serversInRoom(storage, room.roomId)) servers.add(server);
  servers.delete(serverName);
  return servers;
}

/** Tells the servers sharing a room with a local user that their devices or keys changed. */
export function createDeviceListAnnouncer(options: {
  readonly serverName: string;
  readonly storage: Storage;
  readonly queue: OutboundQueue;
  /** The user's device keys as other servers see them (with the owner's cross-signing signatures). */
  readonly deviceKeys: Pick<DeviceKeysService, 'queryKeys'>;
  readonly log: Logger;
}): (userId: string, what: 'devices' | 'signing_keys') => void {
  const { serverName, storage, queue, log } = options;
  /**
   * One announcement at a time per user: each reads what was last sent and records what it
   * sends, so two at once would number their updates twice or send stale content last.
   */
  const running = new Map<string, Promise<void>>();

  const announceSigningKeys = async (userId: string, servers: Set<string>) => {
    if (servers.size === 0) return;
    // The receivers' caches take the new master and self-signing keys from this EDU.
    const crossSigning = await storage.e2eKeys.crossSigningKeys(userId);
    const content: Record<string, unknown> = { user_id: userId };
    const master = crossSigning.get('master');
    if (master !== undefined) content.master_key = master.key;
    const selfSigning = crossSigning.get('self_signing');
    if (selfSigning !== undefined) content.self_signing_key = selfSigning.key;
    for (const destination of servers) {
      await queue.sendEdu(destination, { edu_type: 'm.signing_key_update', content: content as never });
    }
  };

  const announceDevices = async (userId: string, servers: Set<string>) => {
    // Asked as this server, so only the owner's signatures are added: a device newly signed by
    // the user's self-signing key is a change the other servers must hear of.
    const [devices, served, sent] = await Promise.all([
      storage.devices.listDevices(userId),
      options.deviceKeys.queryKeys(serverName, { [userId]: [] }, 0),
      storage.e2eKeys.outboundDeviceList(userId),
    ]);
    const keys = new Map(
      Object.entries(served.device_keys[userId] ?? {}).map(
        ([deviceId, { unsigned: _unsigned, ...signed }]) => [deviceId, signed],
      ),
    );
    const plan = planDeviceListUpdates(
      userId,
      sent,
      devices.map((device) => ({
        deviceId: device.deviceId,
        displayName: device.displayName,
        keys: keys.get(device.deviceId),
      })),
    );
    if (plan.updates.length === 0) return;
    // Recorded even with no server to tell: /user/devices answers this stream ID, and a
    // server that shares a room later starts from a query, not from these updates.
    await storage.e2eKeys.recordOutboundDeviceList(userId, plan.lastStreamId, plan.changes);
    for (const content of plan.updates) {
      for (const destination of servers) {
        await queue.sendEdu(destination, { edu_type: 'm.device_list_update', content: content as never });
      }
    }
  };

  return (userId, what) => {
    // The rooms are read now: a deactivation leaves them right after deleting the devices.
    const servers = serversSharingARoom(storage, serverName, userId);
    const previous = running.get(userId) ?? Promise.resolve();
    const run = previous.then(async () => {
      if (what === 'signing_keys') await announceSigningKeys(userId, await servers);
      else await announceDevices(userId, await servers);
    });
    const settled = run.catch((error: unknown) =>
      log.warn({ err: error, userId }, 'Could not queue a device list update'),
    );
    running.set(userId, settled);
    void settled.then(() => {
      if (running.get(userId) === settled) running.delete(userId);
    });
  };
}
