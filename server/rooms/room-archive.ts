/**
 * Archiving a conversation, for users (spec/archiving.md). Archived is a room
 * tag: `io.myelin.archived` in the user's `m.tag`, with `m.lowpriority` added
 * beside it so standard clients move the room out of their main list. Clients
 * that know the extension filter archived rooms out of (or into) sync with the
 * room filter's `io.myelin.archived`. A room archived with
 * `unarchive_on_activity` comes back by itself when someone else sends a
 * message in it.
 *
 * The tag is the only record: setting or removing `io.myelin.archived` through
 * the plain tags API archives or unarchives too (without touching
 * m.lowpriority). Who archived what is cached per user and per room, filled
 * on first use and kept current by RoomTags' change listeners.
 */

import type { Logger } from 'pino';
import type { JsonObject, RoomEvent } from '../../protocol/events.js';
import { belongsToServer } from '../../protocol/identifiers.js';
import type { Storage } from '../../storage/storage.js';
import type { RoomTags } from './room-tags.js';

export const ARCHIVE_TAG = 'io.myelin.archived';
export const LOW_PRIORITY_TAG = 'm.lowpriority';

/** Events that count as new activity: what a person sends to be read, not reactions, receipts or state. */
const ACTIVITY_TYPES: ReadonlySet<string> = new Set([
  'm.room.message',
  'm.room.encrypted',
  'm.sticker',
  'm.call.invite',
  'm.poll.start',
]);

export interface ArchiveOptions {
  /** Bring the room back when someone else sends a message in it. */
  readonly unarchiveOnActivity?: boolean;
}

export class RoomArchive {
  /** userId -> rooms they archived (loaded on first use). */
  private readonly archivedByUser = new Map<string, Set<string>>();
  /** roomId -> local users who asked to be brought back on activity (loaded on first event). */
  private readonly watchersByRoom = new Map<string, Promise<Set<string>>>();

  constructor(
    private readonly storage: Storage,
    private readonly tags: RoomTags,
    private readonly serverName: string,
    private readonly log: Pick<Logger, 'warn'>,
    private readonly now: () => number = Date.now,
  ) {
    tags.onTagsChanged((userId, roomId, tagsNow) => this.tagsChanged(userId, roomId, tagsNow));
  }

  /** Tags the room archived (and low priority, unless it already was). */
  async archive(userId: string, roomId: string, options: ArchiveOptions = {}): Promise<void> {
    await this.tags.editTags(userId, roomId, (tags) => {
      const addedLowPriority = !Object.hasOwn(tags, LOW_PRIORITY_TAG);
      const previous = tags[ARCHIVE_TAG];
      tags[ARCHIVE_TAG] = {
        unarchive_on_activity: options.unarchiveOnActivity === true,
        archived_ts: this.now(),
        // Kept from a first archive, so archiving twice does not claim a low priority the user set.
        added_low_priority:
          isObject(previous) && typeof previous.added_low_priority === 'boolean'
            ? previous.added_low_priority
            : addedLowPriority,
      };
      if (addedLowPriority) tags[LOW_PRIORITY_TAG] = {};
      return true;
    });
  }

  /** Removes the archive tag, and m.lowpriority if archiving added it. */
  async unarchive(userId: string, roomId: string): Promise<void> {
    await this.tags.editTags(userId, roomId, (tags) => {
      const archived = tags[ARCHIVE_TAG];
      if (archived === undefined) return false;
      delete tags[ARCHIVE_TAG];
      if (isObject(archived) && archived.added_low_priority === true) delete tags[LOW_PRIORITY_TAG];
      return true;
    });
  }

  /** The rooms the user has archived. */
  async archivedRooms(userId: string): Promise<ReadonlySet<string>> {
    const cached = this.archivedByUser.get(userId);
    if (cached !== undefined) return cached;
    const archived = new Set<string>();
    const joined = await this.storage.memberships.membershipsOfUser(userId, ['join', 'invite']);
    for (const { roomId } of joined) {
      if (Object.hasOwn(await this.tags.tagsOf(userId, roomId), ARCHIVE_TAG)) archived.add(roomId);
    }
    // Tag changes while loading went to a cache that did not exist yet: the loaded set is as fresh.
    const raced = this.archivedByUser.get(userId);
    if (raced !== undefined) return raced;
    this.archivedByUser.set(userId, archived);
    return archived;
  }

  /** The listener for rooms.sender.onEventPersisted: unarchives for watchers on someone else's message. */
  readonly eventPersisted = (persisted: { event: RoomEvent }): void => {
    const { pdu, roomId } = persisted.event;
    if (!ACTIVITY_TYPES.has(pdu.type) || pdu.state_key !== undefined) return;
    this.unarchiveWatchers(roomId, pdu.sender).catch((error: unknown) =>
      this.log.warn({ err: error, roomId }, 'Could not unarchive a room on new activity'),
    );
  };

  private async unarchiveWatchers(roomId: string, sender: string): Promise<void> {
    const watchers = await this.watchersOf(roomId);
    for (const userId of [...watchers]) {
      if (userId !== sender) await this.unarchive(userId, roomId);
    }
  }

  private watchersOf(roomId: string): Promise<Set<string>> {
    let watchers = this.watchersByRoom.get(roomId);
    if (watchers === undefined) {
      watchers = this.loadWatchers(roomId);
      this.watchersByRoom.set(roomId, watchers);
      watchers.catch(() => this.watchersByRoom.delete(roomId));
    }
    return watchers;
  }

  private async loadWatchers(roomId: string): Promise<Set<string>> {
    const watchers = new Set<string>();
    const members = await this.storage.memberships.membersOfRoom(roomId, ['join', 'invite']);
    for (const { userId } of members) {
      if (!belongsToServer(userId, this.serverName)) continue;
      const archived = (await this.tags.tagsOf(userId, roomId))[ARCHIVE_TAG];
      if (isObject(archived) && archived.unarchive_on_activity === true) watchers.add(userId);
    }
    return watchers;
  }

  private tagsChanged(userId: string, roomId: string, tags: Readonly<Record<string, JsonObject>>): void {
    const archived = tags[ARCHIVE_TAG];
    const rooms = this.archivedByUser.get(userId);
    if (archived === undefined) rooms?.delete(roomId);
    else rooms?.add(roomId);
    const watchers = this.watchersByRoom.get(roomId);
    void watchers?.then((set) => {
      if (isObject(archived) && archived.unarchive_on_activity === true) set.add(userId);
      else set.delete(userId);
    });
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
