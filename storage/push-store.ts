/**
 * Push notifications (client-server "Push Notifications"): each user's push
 * rule changes, their pushers, and the notifications push rules produced for
 * them, which give the unread counts of sync and /notifications. Counts are
 * "notifications after the user's read mark": a read mark per (user, room,
 * thread) moves forward with the user's read receipts and their own events.
 */
import type { JsonObject } from '../protocol/events.js';

export interface PusherRecord {
  readonly userId: string;
  /** The device whose access token set it (removed with the device's sessions by callers). */
  readonly deviceId: string | null;
  readonly kind: string;
  readonly appId: string;
  readonly pushkey: string;
  readonly appDisplayName: string;
  readonly deviceDisplayName: string;
  readonly profileTag: string | null;
  readonly lang: string;
  /** `data` as the client gave it (url, format, ...). */
  readonly data: JsonObject;
  readonly createdTs: number;
}

export interface NewNotification {
  readonly userId: string;
  readonly roomId: string;
  /** The event's stream ordering (the event itself is read from the event store). */
  readonly streamOrdering: number;
  /** 'main' for the main timeline, else the thread root's event ID. */
  readonly threadId: string;
  readonly actions: readonly (string | JsonObject)[];
  readonly highlight: boolean;
}

export interface NotificationRecord extends NewNotification {
  readonly eventId: string;
  /** The event's origin_server_ts. */
  readonly ts: number;
  /** At or before the user's read marks. */
  readonly read: boolean;
}

/** Where a user has read up to, by stream ordering; thread null: an unthreaded receipt (all threads). */
export interface ReadMark {
  readonly userId: string;
  readonly roomId: string;
  readonly threadId: string | null;
  readonly streamOrdering: number;
}

export interface UnreadCount {
  readonly notificationCount: number;
  readonly highlightCount: number;
}

export interface RoomUnreadCounts extends UnreadCount {
  /** Per thread ('main' included) whose count is not zero. */
  readonly threads: ReadonlyMap<string, UnreadCount>;
}

export interface PushStore {
  /** The user's stored push rule changes (opaque JSON to storage), or null when they made none. */
  getPushRules(userId: string): Promise<JsonObject | null>;
  putPushRules(userId: string, rules: JsonObject): Promise<void>;

  pushersOfUser(userId: string): Promise<PusherRecord[]>;
  /** The pushers of any of these users (delivery). */
  pushersOfUsers(userIds: readonly string[]): Promise<PusherRecord[]>;
  /** Every user with at least one pusher of this kind (delivery, once at start). */
  usersWithPushers(kind: string): Promise<string[]>;
  /**
   * Adds or replaces the pusher (app ID, pushkey, user). Without `append`, the same
   * app ID and pushkey is first removed from every other user (pusher.yaml `append`).
   */
  setPusher(pusher: PusherRecord, append: boolean): Promise<void>;
  /** Removes the user's pusher; resolves to whether there was one. */
  deletePusher(userId: string, appId: string, pushkey: string): Promise<boolean>;
  /** Removes a pushkey for every user (a gateway rejected it). */
  deletePushkey(appId: string, pushkey: string): Promise<number>;

  /**
   * Resolves once the notifications count in every read of this store; the backend may
   * write them a little later (batched), but before it closes.
   */
  addNotifications(records: readonly NewNotification[]): Promise<void>;
  /** Newest first; `before`: only stream orderings below it. Notifications whose event is gone are left out. */
  notificationsOf(
    userId: string,
    options: { readonly before?: number; readonly limit: number; readonly onlyHighlight: boolean },
  ): Promise<NotificationRecord[]>;
  /** Moves a read mark forward (never back). */
  advanceReadMark(mark: ReadMark): Promise<void>;
  /**
   * Moves a read mark implied by the user's own event forward: counted in every read at
   * once; the backend may write it a little later (with other writes), but before it
   * closes. A crash may lose it (their older notifications in the room count again).
   */
  advanceReadMarkSoon(mark: ReadMark): void;
  /** Unread counts of the rooms (absent: nothing unread). */
  unreadCounts(userId: string, roomIds: readonly string[]): Promise<Map<string, RoomUnreadCounts>>;
  /** The same without a promise, from a backend that reads synchronously (SQLite); absent otherwise. */
  unreadCountsNow?(userId: string, roomIds: readonly string[]): Map<string, RoomUnreadCounts>;
  /** All the user's unread notifications (the push payload's `counts.unread`). */
  totalUnread(userId: string): Promise<number>;
}
