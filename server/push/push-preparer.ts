/**
 * Turns "this event notified these users" into push gateway requests
 * (push_notifier.yaml). Runs in the delivery worker thread (delivery-worker.ts),
 * so that the main thread's share is one compact message per batch of events:
 * each event's fields once, its notified users as one string and the index of
 * their actions. Who has pushers and each user's badge are the worker's to know
 * (recipient-book.ts). No storage here.
 *
 * A user's pushers that share a gateway URL and format share one request (its
 * `devices` list), so a user's phone and tablet cost one call.
 */
import type { JsonObject } from '../../protocol/events.js';
import { tweaksOf } from '../../protocol/push-rules/index.js';
import { type GatewayPush, GatewayQueues, type GatewayQueuesOptions } from './gateway-queues.js';
import { type Admitted, type PushRoute, RecipientBook, type UserFacts } from './recipient-book.js';

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

/**
 * One event's notified users, as posted to the worker: their IDs joined by newlines
 * (which user IDs never contain) and the index of each one's actions in `actionSets`,
 * which costs far less to copy between threads than an object per user.
 */
export interface EventNotification {
  readonly event: NotifiedEvent;
  readonly userIds: string;
  /** The distinct action lists of this event's recipients (usually one or two). */
  readonly actionSets: (string | JsonObject)[][];
  readonly actionOf: Uint16Array;
}

/** What the main thread posts to the delivery worker. */
export type ToDelivery =
  | {
      type: 'notify';
      notifications: EventNotification[];
      /** How many batches of events (deliver calls) it carries: settling it settles them all. */
      batches: number;
      /** How long the main thread held it back for sends (send-yield.ts): counted in the bound. */
      heldMs: number;
    }
  /** The answer to a `need`. */
  | { type: 'users'; users: UserFacts[] }
  /** A user's pushers changed (every user's when undefined). */
  | { type: 'forget'; userId?: string }
  /** These users' read marks moved: their badges are read again. */
  | { type: 'read'; userIds: string[] }
  | { type: 'stop' };

/** A push made from one notify message: settling all of them settles the message. */
interface PreparedPush extends GatewayPush {
  readonly batch: Batch;
}

/** One notify message: open while its events wait or their pushes are under way. */
interface Batch {
  /** Held for sends since (SendYield's clock): its pushes are held at most maxHoldMs from then. */
  readonly heldSince: number;
  /** The main thread's deliver() calls it carries (each is settled). */
  readonly batches: number;
  remaining: number;
  /** The notified users it carried (the main thread bounds how many wait). */
  recipients: number;
}

interface ReadyEvent {
  readonly notification: EventNotification;
  readonly batch: Batch;
}

export interface DeliveryLineOptions extends Omit<GatewayQueuesOptions, 'onSettled'> {
  /**
   * Notify messages finished with (all their pushes delivered, refused or given up on),
   * and the notified users they carried.
   */
  readonly onNotificationsSettled: (count: number, recipients: number) => void;
  /** Asks the main thread about these users (their pushers and unread total): answered by a `users` message. */
  readonly need: (userIds: string[]) => void;
}

/**
 * The whole delivery side, wherever it runs (the worker thread, or the main thread
 * when no worker can start): users known, requests prepared per event, queued per
 * user and gateway.
 */
export class DeliveryLine {
  private readonly book: RecipientBook<ReadyEvent>;
  private readonly queues: GatewayQueues;

  constructor(private readonly options: DeliveryLineOptions) {
    this.queues = new GatewayQueues({
      ...options,
      onSettled: (push) => this.release((push as PreparedPush).batch),
    });
    this.book = new RecipientBook({
      ask: options.need,
      ready: (admitted) => this.prepare(admitted),
    });
  }

  /** Handles one message; resolves when it is taken in (at once, except `stop`). */
  async handle(message: ToDelivery): Promise<void> {
    switch (message.type) {
      case 'users':
        this.book.learn(message.users);
        return;
      case 'forget':
        this.book.forget(message.userId);
        return;
      case 'read':
        this.book.read(message.userIds);
        return;
      case 'stop':
        for (const { item } of this.book.takeWaiting()) this.release(item.batch);
        await this.queues.stop();
        return;
      case 'notify': {
        // The message's own share, released once every event is taken in.
        const batch: Batch = {
          heldSince: this.queues.now() - message.heldMs,
          batches: message.batches,
          remaining: 1,
          recipients: 0,
        };
        for (const notification of message.notifications) {
          batch.remaining++;
          const userIds = notification.userIds.split('\n');
          batch.recipients += userIds.length;
          this.book.admit({ userIds, item: { notification, batch } });
        }
        this.release(batch);
      }
    }
  }

  private release(batch: Batch): void {
    if (--batch.remaining === 0) this.options.onNotificationsSettled(batch.batches, batch.recipients);
  }

  /** Queues the requests for one event whose recipients are all known. */
  private prepare({ userIds, item }: Admitted<ReadyEvent>): void {
    const { notification, batch } = item;
    const { event } = notification;
    let shared: SharedJson | undefined;
    const tweaks: (Tweaks | undefined)[] = [];
    for (let i = 0; i < userIds.length; i++) {
      const userId = userIds[i]!;
      const recipient = this.book.notified(userId);
      if (recipient === undefined) continue;
      shared ??= sharedJson(event);
      const set = notification.actionOf[i]!;
      tweaks[set] ??= tweaksFor(notification.actionSets[set]!);
      for (const route of recipient.routes) {
        batch.remaining++;
        const push: PreparedPush = {
          key: route.key,
          url: route.url,
          body: requestBody(shared, event, userId, recipient.unread!, tweaks[set]!, route),
          eventId: event.eventId,
          targets: route.targets,
          heldSince: batch.heldSince,
          batch,
        };
        this.queues.add(push);
      }
    }
    this.release(batch);
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

/** One action list's tweaks, as JSON, and whether they wake the device. */
interface Tweaks {
  readonly json: string;
  readonly wake: boolean;
}

function tweaksFor(actions: readonly (string | JsonObject)[]): Tweaks {
  const tweaks = tweaksOf(actions);
  return { json: JSON.stringify(tweaks), wake: tweaks.highlight === true || tweaks.sound !== undefined };
}

/** The JSON request body: the shared event part completed with the user's priority, badge and devices. */
function requestBody(
  shared: SharedJson,
  event: NotifiedEvent,
  userId: string,
  unread: number,
  tweaks: Tweaks,
  route: PushRoute,
): string {
  // Synapse's rule: encrypted events and highlighted or sounding ones wake the device.
  const prio = event.type === 'm.room.encrypted' || tweaks.wake ? 'high' : 'low';
  if (route.lastTweaks !== tweaks.json) {
    route.lastTweaks = tweaks.json;
    route.lastDevices = `[${route.devicePrefixes.map((prefix) => `${prefix}${tweaks.json}}`).join(',')}]`;
  }
  const target =
    !route.idOnly && event.type === 'm.room.member' ? `,"user_is_target":${event.stateKey === userId}` : '';
  return `{"notification":${route.idOnly ? shared.idOnly : shared.full},"prio":"${prio}","counts":{"unread":${unread}},"devices":${route.lastDevices}${target}}}`;
}
