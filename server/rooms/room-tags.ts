/**
 * Room tags (client-server "Room Tagging"): a user's tags on a room live in
 * one `m.tag` room account data entry, `{"tags": {name: {order?}}}`, so sync
 * carries them in the room's `account_data`. Changes to one (user, room) run
 * one at a time, so two tags added at once are both kept.
 */
import type { JsonObject } from '../../protocol/events.js';
import type { Storage } from '../../storage/storage.js';

export const TAG_EVENT_TYPE = 'm.tag';

/** What a tag change wakes: the user's syncs. */
export interface TagWakeup {
  notifyUsers(userIds: Iterable<string>, stream: 'account_data'): void;
}

/** Hears of every stored change to a user's tags on a room, with the tags now. */
export type TagsChangedListener = (
  userId: string,
  roomId: string,
  tags: Readonly<Record<string, JsonObject>>,
) => void;

export class RoomTags {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly listeners: TagsChangedListener[] = [];

  constructor(
    private readonly storage: Storage,
    private readonly notifier: () => TagWakeup | undefined = () => undefined,
  ) {}

  /**
   * The user's tags on the room (an empty object when none). m.tag may also be
   * written through the account data API, so entries that are not objects are skipped.
   */
  async tagsOf(userId: string, roomId: string): Promise<Record<string, JsonObject>> {
    const entry = await this.storage.accountData.getAccountData(userId, roomId, TAG_EVENT_TYPE);
    const tags: Record<string, JsonObject> = {};
    const stored = entry?.content.tags;
    if (!isJsonObject(stored)) return tags;
    for (const [tag, content] of Object.entries(stored)) if (isJsonObject(content)) tags[tag] = content;
    return tags;
  }

  /** Adds the tag, or replaces its content. */
  setTag(userId: string, roomId: string, tag: string, content: JsonObject): Promise<void> {
    return this.change(userId, roomId, (tags) => {
      tags[tag] = content;
      return true;
    });
  }

  /** Removes the tag; removing a tag the room does not have changes nothing. */
  removeTag(userId: string, roomId: string, tag: string): Promise<void> {
    return this.change(userId, roomId, (tags) => {
      if (!Object.hasOwn(tags, tag)) return false;
      delete tags[tag];
      return true;
    });
  }

  onTagsChanged(listener: TagsChangedListener): void {
    this.listeners.push(listener);
  }

  /**
   * Edits the user's tags on the room in place (`edit` returns false to leave
   * them unchanged), one change per (user, room) at a time.
   */
  editTags(
    userId: string,
    roomId: string,
    edit: (tags: Record<string, JsonObject>) => boolean,
  ): Promise<void> {
    return this.change(userId, roomId, edit);
  }

  private async change(
    userId: string,
    roomId: string,
    edit: (tags: Record<string, JsonObject>) => boolean,
  ): Promise<void> {
    const key = `${userId} ${roomId}`;
    const previous = this.inFlight.get(key) ?? Promise.resolve();
    const run = previous.then(async () => {
      const tags = { ...(await this.tagsOf(userId, roomId)) };
      if (!edit(tags)) return;
      await this.storage.accountData.putAccountData(userId, roomId, TAG_EVENT_TYPE, { tags });
      for (const listener of this.listeners) listener(userId, roomId, tags);
      this.notifier()?.notifyUsers([userId], 'account_data');
    });
    const settled = run.catch(() => {});
    this.inFlight.set(key, settled);
    try {
      await run;
    } finally {
      if (this.inFlight.get(key) === settled) this.inFlight.delete(key);
    }
  }
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
