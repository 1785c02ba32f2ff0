/**
 * A cache of other servers' users' device lists (server-server "Device Management"), for the
 * users we share a room with:
 *
 * - filled by the first /keys/query that asks for them (one batched /user/keys/query per server,
 *   as before), with no stream position yet;
 * - kept current by m.device_list_update EDUs applied in order: an update applies when every
 *   `prev_id` it names is one we have applied; otherwise (a gap, a restart of the sender, or an
 *   entry with no position) the list is fetched again with /user/devices/{userId}, whose
 *   `stream_id` anchors the following updates. Until that answers, the entry is not served;
 * - m.signing_key_update replaces the master and self-signing keys;
 * - dropped when no local user shares a room with the user any more (a leave, a kick or a ban
 *   of either side), since their server then stops telling us of changes.
 *
 * /keys/query for a cached user is answered from here, without a request. The cache lives in
 * memory, bounded in users and aged out after an hour (a safety net against a missed update:
 * the next query fetches the list again); after a restart the first query fills it again.
 */
import type { Logger } from 'pino';
import type { JsonObject } from '../protocol/events.js';
import { belongsToServer, serverNameOfId as serverOf } from '../protocol/identifiers.js';
import type { RemoteKeyQueries } from '../server/e2e/device-keys.js';
import type { PersistedRoomEvent } from '../server/rooms/room-event-sender.js';
import { LazyLruCache } from '../storage/lazy-lru-cache.js';
import type { Storage } from '../storage/storage.js';
import type { FederationClient } from './federation.js';

const MAX_USERS = 20_000;
/** A safety net against a missed update: entries older than this are misses, fetched again. */
const MAX_AGE_MS = 60 * 60 * 1000;
/** How many applied stream IDs are remembered per user (updates may arrive a little out of order). */
const SEEN_STREAM_IDS = 32;

interface DeviceListEntry {
  /** device ID → signed device keys (unsigned.device_display_name added when known). */
  readonly devices: Map<string, JsonObject>;
  master?: JsonObject;
  selfSigning?: JsonObject;
  /** Stream IDs of updates applied (or the resync's); empty until anchored by a resync. */
  readonly seen: number[];
  /** While a resync is wanted or under way, queries go to the user's server. */
  stale: boolean;
}

type KeysAnswer = Awaited<ReturnType<RemoteKeyQueries['queryKeys']>>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface RemoteDeviceListsOptions {
  /** The uncached queries (one batched /user/keys/query per server). */
  readonly upstream: RemoteKeyQueries;
  readonly client: Pick<FederationClient, 'request'>;
  readonly storage: Pick<Storage, 'memberships'>;
  readonly serverName: string;
  readonly log: Logger;
}

export class RemoteDeviceLists {
  /** Bounded, and aged out by the TTL (counted from the fill or resync that set the entry). */
  private readonly entries = new LazyLruCache<string, DeviceListEntry>({ max: MAX_USERS, ttl: MAX_AGE_MS });
  private readonly resyncs = new Map<string, Promise<void>>();
  /** Stream IDs of updates met while a resync is wanted, per user. */
  private readonly pendingStreamIds = new Map<string, number[]>();
  /** Counts of what was served, for tests and logs. */
  readonly stats = { cacheHits: 0, upstreamUsers: 0, resyncs: 0 };

  constructor(private readonly options: RemoteDeviceListsOptions) {}

  /** The RemoteKeyQueries hs.deviceKeys uses: cached users answered here, the rest asked of their server. */
  readonly queries: RemoteKeyQueries = {
    queryKeys: (serverName, deviceKeys, timeoutMs) => this.queryKeys(serverName, deviceKeys, timeoutMs),
    claimKeys: (serverName, oneTimeKeys, timeoutMs) =>
      this.options.upstream.claimKeys(serverName, oneTimeKeys, timeoutMs),
  };

  /** Whether a fresh entry is held for the user (tests). */
  isCached(userId: string): boolean {
    return this.fresh(userId) !== undefined;
  }

  private fresh(userId: string): DeviceListEntry | undefined {
    const entry = this.entries.get(userId);
    return entry === undefined || entry.stale ? undefined : entry;
  }

  private async queryKeys(
    serverName: string,
    deviceKeys: Record<string, string[]>,
    timeoutMs: number,
  ): Promise<KeysAnswer> {
    const result: Required<KeysAnswer> = { device_keys: {}, master_keys: {}, self_signing_keys: {} };
    const missing: Record<string, string[]> = {};
    for (const [userId, deviceIds] of Object.entries(deviceKeys)) {
      const entry = this.fresh(userId);
      if (entry === undefined) {
        missing[userId] = deviceIds;
        continue;
      }
      this.stats.cacheHits++;
      const wanted = deviceIds.length === 0 ? [...entry.devices.keys()] : deviceIds;
      const devices: Record<string, JsonObject> = {};
      for (const deviceId of wanted) {
        const keys = entry.devices.get(deviceId);
        if (keys !== undefined) devices[deviceId] = keys;
      }
      result.device_keys[userId] = devices;
      if (entry.master !== undefined) result.master_keys[userId] = entry.master;
      if (entry.selfSigning !== undefined) result.self_signing_keys[userId] = entry.selfSigning;
    }
    const missingUsers = Object.keys(missing);
    if (missingUsers.length === 0) return result;

    // Ask for every device of a user we will cache, so the entry is the whole list.
    const cacheable = new Set<string>();
    for (const userId of missingUsers) if (await this.sharesRoom(userId)) cacheable.add(userId);
    const request = Object.fromEntries(
      missingUsers.map((userId) => [userId, cacheable.has(userId) ? [] : (missing[userId] ?? [])]),
    );
    this.stats.upstreamUsers += missingUsers.length;
    const answer = await this.options.upstream.queryKeys(serverName, request, timeoutMs);
    for (const userId of missingUsers) {
      const devices = answer.device_keys?.[userId];
      const master = answer.master_keys?.[userId];
      const selfSigning = answer.self_signing_keys?.[userId];
      // A resync that ended while we asked anchored the entry on a stream ID: replacing it with
      // this unanchored answer would make the next update, which follows on, resync again.
      const current = this.entries.get(userId);
      const anchoredMeanwhile = current !== undefined && !current.stale && current.seen.length > 0;
      if (cacheable.has(userId) && devices !== undefined && !this.resyncs.has(userId) && !anchoredMeanwhile) {
        this.entries.set(userId, {
          devices: new Map(Object.entries(devices)),
          ...(master !== undefined ? { master } : {}),
          ...(selfSigning !== undefined ? { selfSigning } : {}),
          seen: [],
          stale: false,
        });
      }
      const asked = missing[userId] ?? [];
      if (devices !== undefined) {
        result.device_keys[userId] =
          asked.length === 0
            ? devices
            : Object.fromEntries(Object.entries(devices).filter(([deviceId]) => asked.includes(deviceId)));
      }
      if (master !== undefined) result.master_keys[userId] = master;
      if (selfSigning !== undefined) result.self_signing_keys[userId] = selfSigning;
    }
    return result;
  }

  /**
   * An m.device_list_update from `origin` (already checked to be the user's server). Applied
   * in order when its prev_ids are all known; else the list is fetched again.
   */
  deviceListUpdate(content: JsonObject): void {
    const userId = content.user_id as string;
    const entry = this.entries.get(userId);
    if (entry === undefined) return; // Not cached: the next query asks their server anyway.
    const { stream_id: streamId, device_id: deviceId } = content;
    const prevIds = Array.isArray(content.prev_id) ? content.prev_id : [];
    if (typeof streamId !== 'number' || typeof deviceId !== 'string') {
      this.resync(userId);
      return;
    }
    const inOrder =
      !entry.stale &&
      prevIds.length > 0 &&
      prevIds.every((prev) => typeof prev === 'number' && entry.seen.includes(prev));
    if (!inOrder) {
      // Already applied (a repeat, or the same update by another path) needs nothing more.
      if (entry.seen.includes(streamId) && !entry.stale) return;
      this.resync(userId, streamId);
      return;
    }
    if (content.deleted === true) {
      entry.devices.delete(deviceId);
    } else if (isObject(content.keys)) {
      const displayName = content.device_display_name;
      entry.devices.set(deviceId, {
        ...content.keys,
        unsigned: typeof displayName === 'string' ? { device_display_name: displayName } : {},
      });
    }
    remember(entry.seen, streamId);
  }

  /** An m.signing_key_update: the user's master and self-signing keys replace ours. */
  signingKeyUpdate(content: JsonObject): void {
    const entry = this.entries.get(content.user_id as string);
    if (entry === undefined) return;
    if (isObject(content.master_key)) entry.master = content.master_key;
    if (isObject(content.self_signing_key)) entry.selfSigning = content.self_signing_key;
  }

  /**
   * Fetches the user's whole list again (/user/devices), once at a time per user. The updates
   * that asked for it (and those met meanwhile) count as applied when the answer's stream ID is
   * not older than theirs, so the next update that follows them applies in order.
   */
  private resync(userId: string, streamId?: number, retry = false): void {
    const entry = this.entries.get(userId);
    if (entry !== undefined) entry.stale = true;
    const pending = this.pendingStreamIds.get(userId) ?? [];
    if (streamId !== undefined) pending.push(streamId);
    this.pendingStreamIds.set(userId, pending);
    if (this.resyncs.has(userId)) return;
    this.stats.resyncs++;
    const run = this.fetchDevices(userId, retry)
      .catch((error: unknown) => {
        // Left stale (so not served): the next query asks their server, the next update retries.
        this.pendingStreamIds.delete(userId);
        this.options.log.debug({ err: error, userId }, 'Device list resync failed');
      })
      .finally(() => {
        this.resyncs.delete(userId);
        const newer = this.pendingStreamIds.get(userId);
        this.pendingStreamIds.delete(userId);
        // Once more for updates newer than the answer; a second answer is taken as it is (a
        // server announcing stream IDs it never reaches must not keep us asking).
        if (newer !== undefined && newer.length > 0 && !retry) this.resync(userId, Math.max(...newer), true);
      });
    this.resyncs.set(userId, run);
  }

  /** Waits for the resyncs under way (tests and shutdown). */
  async settled(): Promise<void> {
    while (this.resyncs.size > 0) await Promise.allSettled([...this.resyncs.values()]);
  }

  private async fetchDevices(userId: string, final: boolean): Promise<void> {
    const answer = await this.options.client.request<JsonObject>({
      destination: serverOf(userId),
      method: 'GET',
      path: `/_matrix/federation/v1/user/devices/${encodeURIComponent(userId)}`,
    });
    if (answer.user_id !== userId || typeof answer.stream_id !== 'number' || !Array.isArray(answer.devices)) {
      throw new Error('user/devices: malformed answer');
    }
    const devices = new Map<string, JsonObject>();
    for (const device of answer.devices) {
      if (!isObject(device) || typeof device.device_id !== 'string' || !isObject(device.keys)) continue;
      if (device.keys.user_id !== userId || device.keys.device_id !== device.device_id) continue;
      const displayName = device.device_display_name;
      devices.set(device.device_id, {
        ...device.keys,
        unsigned: typeof displayName === 'string' ? { device_display_name: displayName } : {},
      });
    }
    if (!(await this.sharesRoom(userId))) {
      this.entries.delete(userId);
      this.pendingStreamIds.delete(userId);
      return;
    }
    const pending = this.pendingStreamIds.get(userId) ?? [];
    const covered = pending.filter((id) => id <= (answer.stream_id as number));
    const newer = final ? [] : pending.filter((id) => id > (answer.stream_id as number));
    // Newer updates than the answer stay pending: the resync is run again for them.
    if (newer.length > 0) this.pendingStreamIds.set(userId, newer);
    else this.pendingStreamIds.delete(userId);
    this.entries.set(userId, {
      devices,
      ...(isObject(answer.master_key) ? { master: answer.master_key } : {}),
      ...(isObject(answer.self_signing_key) ? { selfSigning: answer.self_signing_key } : {}),
      seen: [...covered.slice(-SEEN_STREAM_IDS + 1), answer.stream_id],
      stale: newer.length > 0,
    });
  }

  /**
   * Follows memberships: when a remote user leaves (or is kicked or banned), or a local user
   * leaves a room, the cached users of that room who no longer share a room with any local
   * user are dropped. For sender.onEventPersisted.
   */
  readonly eventPersisted = (persisted: PersistedRoomEvent): void => {
    const { pdu, roomId } = persisted.event;
    if (pdu.type !== 'm.room.member' || pdu.content.membership === 'join') return;
    const userId = pdu.state_key;
    if (typeof userId !== 'string' || this.entries.size === 0) return;
    void this.dropUnshared(roomId, userId).catch((error: unknown) =>
      this.options.log.warn({ err: error, roomId }, 'Checking cached device lists failed'),
    );
  };

  private async dropUnshared(roomId: string, userId: string): Promise<void> {
    const candidates = belongsToServer(userId, this.options.serverName)
      ? (await this.options.storage.memberships.membersOfRoom(roomId, ['join']))
          .map((member) => member.userId)
          .filter((member) => this.entries.has(member))
      : this.entries.has(userId)
        ? [userId]
        : [];
    for (const candidate of candidates) {
      if (!(await this.sharesRoom(candidate))) this.entries.delete(candidate);
    }
  }

  /** Whether a local user is joined to a room the remote user is joined to. */
  private async sharesRoom(userId: string): Promise<boolean> {
    const { memberships } = this.options.storage;
    for (const room of await memberships.membershipsOfUser(userId, ['join'])) {
      if ((await memberships.joinedServers(room.roomId)).includes(this.options.serverName)) return true;
    }
    return false;
  }
}

function remember(seen: number[], streamId: number): void {
  if (seen.includes(streamId)) return;
  seen.push(streamId);
  if (seen.length > SEEN_STREAM_IDS) seen.shift();
}
