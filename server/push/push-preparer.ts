/**
 * Turns "this event notified these users" into push gateway requests
 * (push_notifier.yaml). Runs in the delivery worker thread (delivery-worker.ts),
 * so that building request bodies costs the main thread nothing: the main thread
 * posts one message per event (the event's fields once, then each recipient's
 * actions and badge) and, once per user, their http pushers. No storage here.
 *
 * A user's pushers that share a gateway URL and format share one request (its
 * `devices` list), so a user's phone and tablet cost one call.
 */
import type { JsonObject } from '../../protocol/events.js';
import { tweaksOf } from '../../protocol/push-rules/index.js';
import type { PusherRecord } from '../../storage/push-store.js';
import { type GatewayPush, GatewayQueues, type GatewayQueuesOptions } from './gateway-queues.js';

/** What every recipient's push shares: the event, as the gateway will see it. */
export interface NotifiedEvent {
  readonly eventId: string;
  readonly roomId: string;
  readonly type: string;
  readonly sender: string;
  readonly stateKey: string | undefined;
  readonly content: JsonObject;
  readonly senderDisplayName: string | undefined;
  readonly roomName: string | undefined;
}

export interface NotifiedUser {
  readonly userId: string;
  readonly actions: readonly (string | JsonObject)[];
  /** The user's unread notifications, this one included (`counts.unread`). */
  readonly unread: number;
}

/**
 * One event's pushes, as posted to the worker: its recipients in flat form (user IDs
 * joined by newlines, which user IDs never contain; each one's badge and the index of
 * their actions in `actionSets` in typed arrays), which costs far less to copy between
 * threads than one object per user.
 */
export interface EventNotification {
  readonly event: NotifiedEvent;
  readonly userIds: string;
  readonly unread: Uint32Array;
  /** The distinct action lists of this event's recipients (usually one or two). */
  readonly actionSets: (string | JsonObject)[][];
  readonly actionOf: Uint16Array;
}

/** A push made from one EventNotification: settling all of them settles the notification. */
export interface PreparedPush extends GatewayPush {
  readonly batch: { remaining: number };
}

export class PushPreparer {
  /** The http pushers of users the main thread has told us about (absent: none). */
  private readonly pushers = new Map<string, readonly PusherRecord[]>();

  setPushers(userId: string, pushers: readonly PusherRecord[]): void {
    if (pushers.length === 0) this.pushers.delete(userId);
    else this.pushers.set(userId, pushers);
  }

  forgetPushers(userId?: string): void {
    if (userId === undefined) this.pushers.clear();
    else this.pushers.delete(userId);
  }

  /** The requests for one event; empty when none of its users has a pusher any more. */
  prepare(notification: EventNotification): PreparedPush[] {
    const { event } = notification;
    const batch = { remaining: 0 };
    const pushes: PreparedPush[] = [];
    let shared: SharedJson | undefined;
    const userIds = notification.userIds.split('\n');
    for (let i = 0; i < userIds.length; i++) {
      const user: NotifiedUser = {
        userId: userIds[i]!,
        actions: notification.actionSets[notification.actionOf[i]!]!,
        unread: notification.unread[i]!,
      };
      const userPushers = this.pushers.get(user.userId);
      if (userPushers === undefined) continue;
      shared ??= sharedJson(event);
      // One request per gateway URL and format: event_id_only devices never share a full payload.
      const groups = new Map<string, PusherRecord[]>();
      for (const pusher of userPushers) {
        const key = `${pusher.data.format === 'event_id_only' ? 'id' : 'full'} ${pusher.data.url as string}`;
        const group = groups.get(key);
        if (group === undefined) groups.set(key, [pusher]);
        else group.push(pusher);
      }
      for (const group of groups.values()) {
        const url = group[0]!.data.url as string;
        batch.remaining++;
        pushes.push({
          key: `${user.userId} ${url}`,
          url,
          body: requestBody(shared, event, user, group),
          eventId: event.eventId,
          targets: group.map((pusher) => ({
            userId: pusher.userId,
            appId: pusher.appId,
            pushkey: pusher.pushkey,
          })),
          batch,
        });
      }
    }
    return pushes;
  }
}

/** The `notification` object without its closing brace, in full and for event_id_only pushers. */
interface SharedJson {
  readonly full: string;
  readonly idOnly: string;
}

function sharedJson(event: NotifiedEvent): SharedJson {
  const ids = { event_id: event.eventId, room_id: event.roomId };
  const details: JsonObject = { ...ids, type: event.type, sender: event.sender };
  if (event.senderDisplayName !== undefined) details.sender_display_name = event.senderDisplayName;
  if (event.roomName !== undefined) details.room_name = event.roomName;
  details.content = event.content;
  // Without the closing brace: the per-user fields follow.
  return { full: JSON.stringify(details).slice(0, -1), idOnly: JSON.stringify(ids).slice(0, -1) };
}

/** The JSON request body: the shared event part completed with the user's priority, badge and devices. */
function requestBody(
  shared: SharedJson,
  event: NotifiedEvent,
  user: NotifiedUser,
  pushers: readonly PusherRecord[],
): string {
  const tweaks = tweaksOf(user.actions);
  const devices = pushers.map((pusher) => {
    const { url: _url, ...data } = pusher.data;
    return {
      app_id: pusher.appId,
      pushkey: pusher.pushkey,
      pushkey_ts: Math.floor(pusher.createdTs / 1000),
      data,
      tweaks,
    };
  });
  // Synapse's rule: encrypted events and highlighted or sounding ones wake the device.
  const prio =
    event.type === 'm.room.encrypted' || tweaks.highlight === true || tweaks.sound !== undefined
      ? 'high'
      : 'low';
  const idOnly = pushers.every((pusher) => pusher.data.format === 'event_id_only');
  const target =
    !idOnly && event.type === 'm.room.member' ? `,"user_is_target":${event.stateKey === user.userId}` : '';
  return `{"notification":${idOnly ? shared.idOnly : shared.full},"prio":"${prio}","counts":{"unread":${user.unread}},"devices":${JSON.stringify(devices)}${target}}}`;
}

/** What the main thread posts to the delivery worker. */
export type ToDelivery =
  | { type: 'notify'; notifications: EventNotification[] }
  | { type: 'pushers'; userId: string; pushers: PusherRecord[] }
  | { type: 'forget'; userId?: string }
  | { type: 'stop' };

export interface DeliveryLineOptions extends Omit<GatewayQueuesOptions, 'onSettled'> {
  /** Event notifications finished with (all their pushes delivered, refused or given up on). */
  readonly onNotificationsSettled: (count: number) => void;
}

/**
 * The whole delivery side, wherever it runs (the worker thread, or the main thread
 * when no worker can start): pushers known per user, requests prepared per event,
 * queued per user and gateway.
 */
export class DeliveryLine {
  private readonly preparer = new PushPreparer();
  private readonly queues: GatewayQueues;

  constructor(private readonly options: DeliveryLineOptions) {
    this.queues = new GatewayQueues({
      ...options,
      onSettled: (push) => {
        const { batch } = push as PreparedPush;
        if (--batch.remaining === 0) options.onNotificationsSettled(1);
      },
    });
  }

  /** Handles one message; resolves when it is taken in (at once, except `stop`). */
  async handle(message: ToDelivery): Promise<void> {
    switch (message.type) {
      case 'pushers':
        this.preparer.setPushers(message.userId, message.pushers);
        return;
      case 'forget':
        this.preparer.forgetPushers(message.userId);
        return;
      case 'stop':
        await this.queues.stop();
        return;
      case 'notify': {
        let empty = 0;
        for (const notification of message.notifications) {
          const pushes = this.preparer.prepare(notification);
          if (pushes.length === 0) empty++;
          for (const push of pushes) this.queues.add(push);
        }
        if (empty > 0) this.options.onNotificationsSettled(empty);
      }
    }
  }
}
