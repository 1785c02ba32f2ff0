/**
 * The `presence` section (client-server "Presence"): m.presence events of the
 * user and of users who share a room with them. An initial sync sends everyone's
 * current presence; an incremental one the changes since the token, taken from a
 * change log kept in memory (fed by the presence service), so that no sync walks
 * the members of all the user's rooms in storage each time someone's presence
 * moves. A token older than the log falls back to the presence service's query.
 */
import type { JsonObject } from '../../protocol/events.js';
import type { PresenceRecord } from '../../storage/presence-store.js';
import { presenceContent } from '../accounts/presence-service.js';
import { matchesEventFilter } from '../rooms/event-filter.js';
import type { SyncDeps, SyncRequest } from './sync-context.js';

const DEFAULT_LOG_SIZE = 20_000;

export class PresenceChangeLog {
  private entries: PresenceRecord[] = [];
  /** Every change with a position above it is in `entries`; null until the first change is seen. */
  private floor: number | null = null;

  constructor(private readonly maxEntries = DEFAULT_LOG_SIZE) {}

  observe(record: PresenceRecord): void {
    this.floor ??= record.streamPosition - 1;
    this.entries.push(record);
    if (this.entries.length > this.maxEntries) {
      const dropped = this.entries.splice(0, this.entries.length - this.maxEntries);
      this.floor = dropped.at(-1)!.streamPosition;
    }
  }

  /** Changes in (after, upTo], oldest first; null when the log does not reach back to `after`. */
  between(after: number, upTo: number): PresenceRecord[] | null {
    if (this.floor === null || after < this.floor) return null;
    const found: PresenceRecord[] = [];
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const entry = this.entries[i]!;
      if (entry.streamPosition <= after) break;
      if (entry.streamPosition <= upTo) found.push(entry);
    }
    return found.reverse();
  }
}

export async function presenceEvents(
  deps: SyncDeps,
  request: SyncRequest,
  joinedRoomIds: readonly string[],
  log: PresenceChangeLog,
): Promise<{ events: JsonObject[]; position: number }> {
  const { since, upTo, filter, requester } = request;
  const presenceFilter = filter.presence;
  const none = { events: [], position: upTo.presence };
  if (!deps.hs.presence.enabled || !matchesEventFilter(presenceFilter, { type: 'm.presence' })) return none;
  if (presenceFilter?.limit === 0 || (since !== null && since.presence >= upTo.presence)) return none;

  let records: PresenceRecord[];
  let position = upTo.presence;
  if (since === null) {
    const users = new Set<string>([requester.userId]);
    for (const roomId of joinedRoomIds)
      for (const userId of await deps.reads.joinedUserIds(roomId)) users.add(userId);
    const current = await Promise.all([...users].map((userId) => deps.hs.presence.getPresence(userId)));
    records = current.filter((record): record is PresenceRecord => record !== null);
  } else {
    const logged = log.between(since.presence, upTo.presence);
    if (logged === null) {
      const changes = await deps.hs.presence.presenceChangesFor(
        requester.userId,
        since.presence,
        presenceFilter?.limit,
      );
      records = changes.changes;
      position = changes.position;
    } else {
      records = [];
      for (const record of logged) {
        if (await sharesRoom(deps, requester.userId, record.userId, joinedRoomIds)) records.push(record);
      }
    }
  }

  const latestPerUser = new Map<string, JsonObject>();
  for (const record of records) {
    if (!matchesEventFilter(presenceFilter, { type: 'm.presence', sender: record.userId })) continue;
    latestPerUser.delete(record.userId);
    latestPerUser.set(record.userId, {
      type: 'm.presence',
      sender: record.userId,
      content: presenceContent(record, request.now) as unknown as JsonObject,
    });
  }
  let events = [...latestPerUser.values()];
  if (presenceFilter?.limit !== undefined) events = events.slice(-presenceFilter.limit);
  return { events, position };
}

async function sharesRoom(
  deps: SyncDeps,
  userId: string,
  otherUserId: string,
  joinedRoomIds: readonly string[],
): Promise<boolean> {
  if (otherUserId === userId) return true;
  for (const roomId of joinedRoomIds)
    if ((await deps.reads.joinedUserIds(roomId)).has(otherUserId)) return true;
  return false;
}
