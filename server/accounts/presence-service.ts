/**
 * Presence (client-server "Presence"): online / unavailable / offline, a
 * status message, when the user was last active and whether they are
 * currently active. Set by PUT /presence (and by sync's set_presence, #4),
 * bumped by the user's requests, aged by one periodic sweep: online users
 * with no activity for `idle_after_ms` become unavailable, users with no
 * request for `offline_after_ms` go offline. Every change is stored on the
 * presence stream (sync reads it with presenceChangesFor) and announced to
 * onPresenceChanged listeners (the notifier wakes syncs there).
 *
 * The users who are not offline live in memory (the sweep walks them; a
 * restart reloads them from storage). Activity that changes nothing visible
 * (an already currently-active user making another request) touches memory
 * only: no write per request.
 */

import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { PresenceRecord, PresenceState, PresenceStore } from '../../storage/presence-store.js';
import type { MyelinConfig } from '../config/index.js';
import type { RoomMembershipView } from './room-membership-view.js';

/**
 * presence module "Last active ago": while currently_active is true clients
 * take the user as active and the server sends no last-active updates;
 * it turns false after this long without activity (Synapse's granularity).
 */
export const CURRENTLY_ACTIVE_WINDOW_MS = 60_000;
const MIN_SWEEP_INTERVAL_MS = 50;
const MAX_SWEEP_INTERVAL_MS = 5_000;
const OFFLINE_ENTRIES_CACHED = 50_000;
const DEFAULT_CHANGES_LIMIT = 500;

export type PresenceChangedListener = (record: PresenceRecord) => void;

/** The body of GET /presence/{userId}/status and the content of an m.presence event. */
export interface PresenceContent {
  presence: PresenceState;
  last_active_ago?: number;
  status_msg?: string;
  currently_active?: boolean;
}

export interface PresenceService {
  /** config.presence.enabled; when false nothing is tracked and everyone reads as offline (as Synapse). */
  readonly enabled: boolean;
  /** Reloads the users who were not offline and starts the sweep. */
  start(): Promise<void>;
  /** Stops the sweep and waits for writes in flight. */
  stop(): Promise<void>;
  /**
   * The user chose a state. `statusMsg` undefined keeps the current message,
   * null clears it. Choosing counts as activity. A chosen `unavailable` or
   * `offline` holds against later requests (a restart included) until the
   * user chooses again or the offline timer takes over.
   */
  setPresence(userId: string, state: PresenceState, statusMsg?: string | null): Promise<void>;
  /** The user did something (any authenticated request): cheap, writes only when the visible state changes. */
  markActive(userId: string): void;
  /** The user's current presence; null when they never had any. */
  getPresence(userId: string): Promise<PresenceRecord | null>;
  /**
   * For sync: changes after `sincePosition` of the user and of everyone who
   * shares a room with them, oldest first, and the position to resume from.
   */
  presenceChangesFor(
    userId: string,
    sincePosition: number,
    limit?: number,
  ): Promise<{ changes: PresenceRecord[]; position: number }>;
  /** Subscribes to every stored presence change; returns an unsubscribe. */
  onPresenceChanged(listener: PresenceChangedListener): () => void;
  /** Applies the idle and offline timers as of `now` (the periodic sweep calls this). */
  sweep(now?: number): Promise<void>;
}

/** What the service keeps per user: the record as clients see it, plus the timers' inputs. */
interface PresenceEntry {
  userId: string;
  state: PresenceState;
  statusMsg: string | null;
  lastActiveTs: number;
  updatedTs: number;
  currentlyActive: boolean;
  streamPosition: number;
  /** Last request of any kind (keeps the user from going offline). */
  lastSeenTs: number;
  /**
   * The user chose this non-online state: requests do not bring them back
   * online. Stored as a choice's mark, lastActiveTs === updatedTs, which a
   * timer transition (always later than the last activity) never leaves.
   */
  chosen: boolean;
}

export function createPresenceService(deps: {
  config: MyelinConfig['presence'];
  store: PresenceStore;
  membership: Pick<RoomMembershipView, 'usersSharingRoomWith'>;
  log: { warn(details: object, message: string): void };
  now?: () => number;
}): PresenceService {
  const { config, store } = deps;
  const now = deps.now ?? Date.now;
  const activeWindowMs = Math.min(CURRENTLY_ACTIVE_WINDOW_MS, config.idle_after_ms);
  const sweepIntervalMs = Math.min(
    MAX_SWEEP_INTERVAL_MS,
    Math.max(MIN_SWEEP_INTERVAL_MS, Math.floor(Math.min(activeWindowMs, config.offline_after_ms) / 4)),
  );

  /** Users who are not offline: the sweep's working set. */
  const present = new Map<string, PresenceEntry>();
  /** Recently seen offline users, so activity does not re-read storage each time. */
  const offline = new LazyLruCache<string, PresenceEntry>({ max: OFFLINE_ENTRIES_CACHED });
  const loads = new Map<string, Promise<PresenceEntry>>();
  const listeners = new Set<PresenceChangedListener>();
  const writes = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> | undefined;

  const cached = (userId: string) => present.get(userId) ?? offline.get(userId);

  /** One entry object per user: concurrent callers get the same one and change it synchronously. */
  const entryFor = (userId: string): Promise<PresenceEntry> => {
    const entry = cached(userId);
    if (entry) return Promise.resolve(entry);
    let load = loads.get(userId);
    if (!load) {
      load = store
        .getPresence(userId)
        .then((record) => {
          const loaded = cached(userId) ?? (record ? entryFromRecord(record) : neverSeen(userId));
          file(loaded);
          return loaded;
        })
        .finally(() => loads.delete(userId));
      loads.set(userId, load);
    }
    return load;
  };

  const file = (entry: PresenceEntry) => {
    if (entry.state === 'offline') {
      present.delete(entry.userId);
      offline.set(entry.userId, entry);
    } else {
      offline.delete(entry.userId);
      present.set(entry.userId, entry);
    }
  };

  /** Stores the entry's visible state as a new change on the stream, then tells the listeners. */
  const persist = (entry: PresenceEntry, at: number) => {
    entry.updatedTs = at;
    file(entry);
    const update = {
      userId: entry.userId,
      state: entry.state,
      statusMsg: entry.statusMsg,
      lastActiveTs: entry.lastActiveTs,
      updatedTs: at,
      currentlyActive: entry.currentlyActive,
    };
    const write = store.setPresence(update).then(
      (streamPosition) => {
        entry.streamPosition = Math.max(entry.streamPosition, streamPosition);
        const record: PresenceRecord = { ...update, streamPosition };
        for (const listener of listeners) {
          try {
            listener(record);
          } catch (error) {
            deps.log.warn({ err: error }, 'Presence listener failed');
          }
        }
      },
      (error: unknown) => deps.log.warn({ err: error, userId: entry.userId }, 'Could not store presence'),
    );
    writes.add(write);
    void write.finally(() => writes.delete(write));
    return write;
  };

  const becomeActive = (entry: PresenceEntry, at: number) => {
    entry.lastSeenTs = at;
    if (entry.chosen) {
      entry.lastActiveTs = at;
      return;
    }
    if (entry.state === 'online' && entry.currentlyActive) {
      entry.lastActiveTs = at;
      return;
    }
    entry.state = 'online';
    entry.currentlyActive = true;
    entry.lastActiveTs = at;
    void persist(entry, at);
  };

  const sweep = async (at = now()): Promise<void> => {
    const changed: Promise<void>[] = [];
    for (const entry of [...present.values()]) {
      const sinceActive = at - entry.lastActiveTs;
      const sinceSeen = at - Math.max(entry.lastSeenTs, entry.lastActiveTs);
      if (sinceSeen >= config.offline_after_ms) {
        entry.state = 'offline';
        entry.currentlyActive = false;
        entry.chosen = false;
      } else if (entry.state === 'online' && sinceActive >= config.idle_after_ms) {
        entry.state = 'unavailable';
        entry.currentlyActive = false;
        entry.chosen = false;
      } else if (entry.currentlyActive && sinceActive >= activeWindowMs) {
        entry.currentlyActive = false;
      } else {
        continue;
      }
      changed.push(persist(entry, at));
    }
    await Promise.all(changed);
  };

  const service: PresenceService = {
    enabled: config.enabled,

    async start() {
      if (!config.enabled || timer) return;
      for (const record of await store.listNotOffline()) {
        if (!cached(record.userId)) file(entryFromRecord(record));
      }
      timer = setInterval(() => {
        if (sweeping) return;
        sweeping = sweep()
          .catch((error: unknown) => deps.log.warn({ err: error }, 'Presence sweep failed'))
          .finally(() => {
            sweeping = undefined;
          });
      }, sweepIntervalMs);
      timer.unref();
    },

    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await sweeping;
      await Promise.all([...writes]);
    },

    async setPresence(userId, state, statusMsg) {
      if (!config.enabled) return;
      const entry = await entryFor(userId);
      const at = now();
      const before = visible(entry);
      const wasChosen = entry.chosen;
      entry.state = state;
      if (statusMsg !== undefined) entry.statusMsg = statusMsg;
      entry.chosen = state !== 'online';
      entry.lastSeenTs = at;
      entry.lastActiveTs = at;
      entry.currentlyActive = state === 'online';
      if (visible(entry) !== before || entry.chosen !== wasChosen) await persist(entry, at);
      else file(entry);
    },

    markActive(userId) {
      if (!config.enabled) return;
      const entry = cached(userId);
      if (entry) {
        becomeActive(entry, now());
        return;
      }
      entryFor(userId).then(
        (loaded) => becomeActive(loaded, now()),
        (error: unknown) => deps.log.warn({ err: error, userId }, 'Could not load presence'),
      );
    },

    async getPresence(userId) {
      if (!config.enabled) return null;
      const entry = cached(userId);
      if (entry) return entry.streamPosition === 0 && entry.updatedTs === 0 ? null : recordOf(entry);
      return store.getPresence(userId);
    },

    async presenceChangesFor(userId, sincePosition, limit = DEFAULT_CHANGES_LIMIT) {
      const latest = await store.latestPresencePosition();
      if (!config.enabled) return { changes: [], position: latest };
      const users = await deps.membership.usersSharingRoomWith(userId);
      users.add(userId);
      const changes = (await store.presenceChangedSince(sincePosition, [...users], limit)).map((record) => {
        const entry = cached(record.userId);
        // The stored last-active time is only as fresh as the last change; memory knows better.
        return entry && entry.lastActiveTs > record.lastActiveTs
          ? { ...record, lastActiveTs: entry.lastActiveTs }
          : record;
      });
      const last = changes.at(-1)?.streamPosition ?? sincePosition;
      const position = changes.length >= limit ? last : Math.max(latest, last, sincePosition);
      return { changes, position };
    },

    onPresenceChanged(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    sweep,
  };
  return service;
}

/** format of m.presence / GET status: last_active_ago when known, currently_active when online. */
export function presenceContent(record: PresenceRecord | null, at: number): PresenceContent {
  if (!record) return { presence: 'offline' };
  return {
    presence: record.state,
    ...(record.lastActiveTs > 0 ? { last_active_ago: Math.max(0, at - record.lastActiveTs) } : {}),
    ...(record.statusMsg !== null ? { status_msg: record.statusMsg } : {}),
    ...(record.state === 'online' ? { currently_active: record.currentlyActive } : {}),
  };
}

function entryFromRecord(record: PresenceRecord): PresenceEntry {
  return {
    ...record,
    lastSeenTs: Math.max(record.lastActiveTs, record.updatedTs),
    chosen: record.state !== 'online' && record.lastActiveTs === record.updatedTs,
  };
}

function neverSeen(userId: string): PresenceEntry {
  return {
    userId,
    state: 'offline',
    statusMsg: null,
    lastActiveTs: 0,
    updatedTs: 0,
    currentlyActive: false,
    streamPosition: 0,
    lastSeenTs: 0,
    chosen: false,
  };
}

function recordOf(entry: PresenceEntry): PresenceRecord {
  return {
    userId: entry.userId,
    state: entry.state,
    statusMsg: entry.statusMsg,
    lastActiveTs: entry.lastActiveTs,
    updatedTs: entry.updatedTs,
    currentlyActive: entry.currentlyActive,
    streamPosition: entry.streamPosition,
  };
}

/** What a change must alter to be worth a stream entry. */
function visible(entry: PresenceEntry): string {
  return `${entry.state}\u0000${entry.statusMsg ?? '\u0001'}\u0000${entry.currentlyActive}`;
}
