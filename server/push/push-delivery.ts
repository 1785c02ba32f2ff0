/**
 * Delivery to push gateways (push-gateway API, POST /_matrix/push/v1/notify)
 * with undici, off every request path. A notification for a user goes to all
 * their pushers at once: pushers that share a gateway URL share one request
 * (its `devices` list), so a user's phone and tablet cost one call. Each
 * (user, gateway) has its own ordered queue and one request in flight; a network
 * error, a timeout, a 429 or a 5xx is retried with exponential backoff (the
 * notification stays at the head, so it is delivered once and in order); other
 * 4xx answers drop it. Pushkeys the gateway lists as `rejected` are removed.
 */
import { Agent, request } from 'undici';
import type { JsonObject } from '../../protocol/events.js';
import { tweaksOf } from '../../protocol/push-rules/index.js';
import type { PusherRecord } from '../../storage/push-store.js';
import type { Storage } from '../../storage/storage.js';
import { type GatewayPolicy, guardedLookup } from './gateway-address.js';
import type { ProducedNotification } from './push-evaluator.js';
import type { UnreadBadges } from './unread-badges.js';

export interface PushDeliveryOptions {
  readonly storage: Storage;
  readonly badges: UnreadBadges;
  readonly policy: GatewayPolicy;
  readonly requestTimeoutMs: number;
  readonly initialRetryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly maxAttempts: number;
  readonly log: {
    warn(fields: object, message: string): void;
    info(fields: object, message: string): void;
  };
  /** A pushkey was removed because its gateway rejected it. */
  readonly onPushkeyRejected?: (pusher: PusherRecord) => void;
}

/** Users whose pushes are prepared between two yields to the event loop. */
const USERS_PER_SLICE = 20;

interface QueuedPush {
  readonly body: string;
  readonly pushers: readonly PusherRecord[];
  readonly eventId: string;
  attempts: number;
}

interface GatewayQueue {
  readonly url: string;
  readonly items: QueuedPush[];
  running: boolean;
}

export class PushDelivery {
  private readonly agent: Agent;
  private readonly queues = new Map<string, GatewayQueue>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private inFlight = 0;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(private readonly options: PushDeliveryOptions) {
    this.agent = new Agent({
      connect: { lookup: guardedLookup(options.policy) as never, timeout: options.requestTimeoutMs },
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
    });
  }

  /** Queues the notifications for the users' http pushers; returns at once. */
  async deliver(notifications: readonly ProducedNotification[]): Promise<void> {
    if (this.stopped || notifications.length === 0) return;
    this.inFlight++;
    try {
      await this.queueAll(notifications);
    } finally {
      this.inFlight--;
      this.wakeIdleWaiters();
    }
  }

  private async queueAll(notifications: readonly ProducedNotification[]): Promise<void> {
    const pushers = await this.options.storage.push.pushersOfUsers(notifications.map((n) => n.userId));
    if (pushers.length === 0) return;
    const byUser = new Map<string, PusherRecord[]>();
    for (const pusher of pushers) {
      if (pusher.kind !== 'http' || typeof pusher.data.url !== 'string') continue;
      const list = byUser.get(pusher.userId) ?? [];
      list.push(pusher);
      byUser.set(pusher.userId, list);
    }
    let sinceYield = 0;
    for (const notification of notifications) {
      const userPushers = byUser.get(notification.userId);
      if (userPushers === undefined) continue;
      // Bounded slices: a room full of pushers must not hold the loop that sends run on.
      if (++sinceYield % USERS_PER_SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const unread = await this.options.badges.count(notification.userId);
      const byUrl = new Map<string, PusherRecord[]>();
      // One request per gateway URL and format: event_id_only devices never share a full payload.
      for (const pusher of userPushers) {
        const key = `${pusher.data.format === 'event_id_only' ? 'id' : 'full'} ${pusher.data.url as string}`;
        byUrl.set(key, [...(byUrl.get(key) ?? []), pusher]);
      }
      for (const group of byUrl.values()) {
        const url = group[0]!.data.url as string;
        this.enqueue(`${notification.userId} ${url}`, url, {
          body: JSON.stringify({ notification: notificationBody(notification, group, unread) }),
          pushers: group,
          eventId: notification.event.eventId,
          attempts: 0,
        });
      }
    }
  }

  /** Resolves when nothing is queued or in flight (tests, benches). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const waiter of this.idleWaiters.splice(0)) waiter();
    await this.agent.close().catch(() => {});
  }

  private wakeIdleWaiters(): void {
    if (this.isIdle()) for (const waiter of this.idleWaiters.splice(0)) waiter();
  }

  private isIdle(): boolean {
    return this.inFlight === 0 && [...this.queues.values()].every((queue) => queue.items.length === 0);
  }

  private enqueue(key: string, url: string, item: QueuedPush): void {
    let queue = this.queues.get(key);
    if (queue === undefined) {
      queue = { url, items: [], running: false };
      this.queues.set(key, queue);
    }
    queue.items.push(item);
    if (!queue.running) this.run(key, queue);
  }

  private run(key: string, queue: GatewayQueue): void {
    queue.running = true;
    const item = queue.items[0];
    if (item === undefined || this.stopped) {
      queue.running = false;
      this.queues.delete(key);
      this.wakeIdleWaiters();
      return;
    }
    this.inFlight++;
    this.send(queue.url, item)
      .then((outcome) => {
        this.inFlight--;
        if (outcome === 'retry' && item.attempts < this.options.maxAttempts) {
          const delay = Math.min(
            this.options.initialRetryDelayMs * 2 ** (item.attempts - 1),
            this.options.maxRetryDelayMs,
          );
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            this.run(key, queue);
          }, delay);
          timer.unref();
          this.timers.add(timer);
          return;
        }
        if (outcome === 'retry') {
          this.options.log.warn(
            { eventId: item.eventId, url: queue.url },
            'Push gateway kept failing; notification dropped',
          );
        }
        queue.items.shift();
        this.run(key, queue);
      })
      .catch(() => {});
  }

  private async send(url: string, item: QueuedPush): Promise<'done' | 'retry'> {
    item.attempts++;
    try {
      const response = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/json' },
        body: item.body,
      });
      const text = await response.body.text();
      if (response.statusCode === 429 || response.statusCode >= 500) return 'retry';
      if (response.statusCode >= 400) {
        this.options.log.warn(
          { eventId: item.eventId, url, status: response.statusCode },
          'Push gateway refused a notification',
        );
        return 'done';
      }
      await this.removeRejected(text, item.pushers);
      return 'done';
    } catch (error) {
      this.options.log.info(
        { err: error, eventId: item.eventId, url },
        'Push gateway unreachable; will retry',
      );
      return 'retry';
    }
  }

  /** push_notifier.yaml: `rejected` lists pushkeys the homeserver should stop sending to. */
  private async removeRejected(text: string, pushers: readonly PusherRecord[]): Promise<void> {
    let rejected: unknown;
    try {
      rejected = (JSON.parse(text) as { rejected?: unknown }).rejected;
    } catch {
      return;
    }
    if (!Array.isArray(rejected)) return;
    for (const pushkey of rejected) {
      for (const pusher of pushers) {
        if (pusher.pushkey !== pushkey) continue;
        await this.options.storage.push.deletePusher(pusher.userId, pusher.appId, pusher.pushkey);
        this.options.log.info(
          { userId: pusher.userId, appId: pusher.appId },
          'Removed a pushkey the gateway rejected',
        );
        this.options.onPushkeyRejected?.(pusher);
      }
    }
  }
}

/** The `notification` object of push_notifier.yaml; `event_id_only` pushers get no event details. */
function notificationBody(
  produced: ProducedNotification,
  pushers: readonly PusherRecord[],
  unread: number,
): JsonObject {
  const { event, outcome, room, userId } = produced;
  const { pdu } = event;
  const tweaks = tweaksOf(outcome.actions);
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
    pdu.type === 'm.room.encrypted' || tweaks.highlight === true || tweaks.sound !== undefined
      ? 'high'
      : 'low';
  const idOnly = pushers.every((pusher) => pusher.data.format === 'event_id_only');
  const body: JsonObject = {
    event_id: event.eventId,
    room_id: event.roomId,
    prio,
    counts: { unread },
    devices,
  };
  if (idOnly) return body;
  body.type = pdu.type;
  body.sender = pdu.sender;
  const senderName = room.joined.get(pdu.sender);
  if (senderName !== undefined) body.sender_display_name = senderName;
  if (room.roomName !== undefined) body.room_name = room.roomName;
  if (pdu.type === 'm.room.member') body.user_is_target = pdu.state_key === userId;
  body.content = pdu.content;
  return body;
}
