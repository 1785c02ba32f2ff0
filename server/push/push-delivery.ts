/**
 * Delivery to push gateways (push-gateway API), prepared on the main thread and
 * sent from the delivery worker thread (delivery-worker.ts). A notification for
 * a user goes to all their pushers at once: pushers that share a gateway URL and
 * format share one request (its `devices` list), so a user's phone and tablet
 * cost one call. Preparing is done in bounded slices between yields; the HTTP
 * exchanges, retries and backoff run in the worker, started on first use. Where
 * no worker can start (the server running from a bundle), they run here.
 * Pushkeys a gateway rejects are removed from storage.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { JsonObject } from '../../protocol/events.js';
import { tweaksOf } from '../../protocol/push-rules/index.js';
import type { PusherRecord } from '../../storage/push-store.js';
import type { Storage } from '../../storage/storage.js';
import { LazyLruCache } from '../lazy-lru-cache.js';
import type { DeliveryWorkerData, FromWorker, ToWorker } from './delivery-worker.js';
import type { GatewayPolicy } from './gateway-address.js';
import { type GatewayPush, GatewayQueues, type PushTarget } from './gateway-queues.js';
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
  /** Run gateway requests on this thread (tests of the fallback); default: in a worker thread. */
  readonly inline?: boolean;
  readonly log: {
    warn(fields: object, message: string): void;
    info(fields: object, message: string): void;
  };
}

/** Users whose pushes are prepared between two yields to the event loop. */
const USERS_PER_SLICE = 20;

/** Where ready pushes go: the worker thread, or queues on this thread. */
interface PushSink {
  post(pushes: GatewayPush[]): void;
  stop(): Promise<void>;
}

export class PushDelivery {
  private sink: PushSink | undefined;
  private readonly pushers = new LazyLruCache<string, readonly PusherRecord[]>({ max: 10_000 });
  private stopped = false;
  /** Pushes handed to the sink and not yet settled, plus preparations in progress. */
  private outstanding = 0;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(private readonly options: PushDeliveryOptions) {}

  /** Prepares and hands over the pushes for the users' http pushers. */
  async deliver(notifications: readonly ProducedNotification[]): Promise<void> {
    if (this.stopped || notifications.length === 0) return;
    this.outstanding++;
    try {
      await this.prepare(notifications);
    } finally {
      this.settle(1);
    }
  }

  /** Resolves when nothing is being prepared, queued or sent (tests, benches). */
  idle(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.sink?.stop();
    this.outstanding = 0;
    for (const waiter of this.idleWaiters.splice(0)) waiter();
  }

  private settle(count: number): void {
    this.outstanding = Math.max(0, this.outstanding - count);
    if (this.outstanding === 0) for (const waiter of this.idleWaiters.splice(0)) waiter();
  }

  /** A user's pushers changed (set, deleted, rejected): read them again. */
  forgetPushers(userId?: string): void {
    if (userId === undefined) this.pushers.clear();
    else this.pushers.delete(userId);
  }

  /** The users' http pushers, from the cache or one read for those not cached (none is cached too). */
  private async pushersOf(userIds: readonly string[]): Promise<Map<string, readonly PusherRecord[]>> {
    const result = new Map<string, readonly PusherRecord[]>();
    const missing: string[] = [];
    for (const userId of userIds) {
      const cached = this.pushers.get(userId);
      if (cached === undefined) missing.push(userId);
      else if (cached.length > 0) result.set(userId, cached);
    }
    if (missing.length === 0) return result;
    const read = new Map<string, PusherRecord[]>(missing.map((userId) => [userId, []]));
    for (const pusher of await this.options.storage.push.pushersOfUsers(missing)) {
      if (pusher.kind === 'http' && typeof pusher.data.url === 'string')
        read.get(pusher.userId)?.push(pusher);
    }
    for (const [userId, list] of read) {
      this.pushers.set(userId, list);
      if (list.length > 0) result.set(userId, list);
    }
    return result;
  }

  private async prepare(notifications: readonly ProducedNotification[]): Promise<void> {
    const byUser = await this.pushersOf(notifications.map((n) => n.userId));
    if (byUser.size === 0) return;
    const shared = new SharedNotificationJson();
    let pushes: GatewayPush[] = [];
    let prepared = 0;
    for (const notification of notifications) {
      const userPushers = byUser.get(notification.userId);
      if (userPushers === undefined) continue;
      // Bounded slices: a room full of pushers must not hold the loop that sends run on.
      if (++prepared % USERS_PER_SLICE === 0) {
        this.hand(pushes);
        pushes = [];
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const unread = await this.options.badges.count(notification.userId);
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
        pushes.push({
          key: `${notification.userId} ${url}`,
          url,
          body: shared.body(notification, group, unread),
          eventId: notification.event.eventId,
          targets: group.map((pusher) => ({
            userId: pusher.userId,
            appId: pusher.appId,
            pushkey: pusher.pushkey,
          })),
        });
      }
    }
    this.hand(pushes);
  }

  private hand(pushes: GatewayPush[]): void {
    if (pushes.length === 0 || this.stopped) return;
    this.outstanding += pushes.length;
    this.sink ??= this.startSink();
    this.sink.post(pushes);
  }

  private startSink(): PushSink {
    const handlers = {
      onRejected: (targets: readonly PushTarget[]) => {
        this.removeRejected(targets).catch((error: unknown) =>
          this.options.log.warn({ err: error }, 'Removing rejected pushkeys failed'),
        );
      },
      onSettled: () => this.settle(1),
      log: (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) =>
        this.options.log[level](fields, message),
    };
    const data: DeliveryWorkerData = {
      policy: { allowPrivate: this.options.policy.allowPrivate },
      requestTimeoutMs: this.options.requestTimeoutMs,
      initialRetryDelayMs: this.options.initialRetryDelayMs,
      maxRetryDelayMs: this.options.maxRetryDelayMs,
      maxAttempts: this.options.maxAttempts,
    };
    let worker: Worker | null = null;
    try {
      worker = this.options.inline ? null : startDeliveryWorker(data);
    } catch (error) {
      this.options.log.warn(
        { err: error },
        'The push delivery worker cannot start; delivering on the main thread',
      );
    }
    const inlineSink = (): PushSink => {
      const queues = new GatewayQueues({ ...data, ...handlers });
      return {
        post: (pushes) => {
          for (const push of pushes) queues.add(push);
        },
        stop: () => queues.stop(),
      };
    };
    if (worker === null) return inlineSink();
    let stopped: (() => void) | undefined;
    worker.on('message', (message: FromWorker) => {
      if (message.type === 'settled') this.settle(message.count);
      else if (message.type === 'rejected') handlers.onRejected(message.targets);
      else if (message.type === 'log') handlers.log(message.level, message.fields, message.message);
      else stopped?.();
    });
    worker.on('error', (error) => {
      this.options.log.warn({ err: error }, 'The push delivery worker failed; delivering on the main thread');
      this.settle(this.outstanding);
      this.sink = inlineSink();
    });
    worker.unref();
    return {
      post: (pushes) => worker.postMessage({ type: 'push', pushes } satisfies ToWorker),
      stop: () =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2_000);
          stopped = () => {
            clearTimeout(timer);
            resolve();
          };
          worker.postMessage({ type: 'stop' } satisfies ToWorker);
        }).then(() => worker.terminate().then(() => {})),
    };
  }

  private async removeRejected(targets: readonly PushTarget[]): Promise<void> {
    for (const target of targets) {
      await this.options.storage.push.deletePusher(target.userId, target.appId, target.pushkey);
      this.forgetPushers(target.userId);
      this.options.log.info(
        { userId: target.userId, appId: target.appId },
        'Removed a pushkey the gateway rejected',
      );
    }
  }
}

/**
 * Starts delivery-worker beside this file: the .ts source through tsx when the
 * server runs from source, the compiled .js otherwise; null when the file is not
 * there (a bundle).
 */
function startDeliveryWorker(data: DeliveryWorkerData): Worker | null {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSource ? './delivery-worker.ts' : './delivery-worker.js', import.meta.url);
  if (!existsSync(fileURLToPath(entry))) return null;
  // Loaders of the main thread do not reach the worker: it registers tsx itself.
  const load = fromSource
    ? `import(${JSON.stringify(tsxApiUrl())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`
    : `import(${JSON.stringify(entry.href)})`;
  return new Worker(load, { eval: true, workerData: data });
}

/**
 * The JSON request body (push_notifier.yaml `notification`), written once per
 * event for what every recipient shares (the event's fields and content, or
 * its IDs alone for `event_id_only` pushers) and completed per user with their
 * priority, unread count and devices.
 */
class SharedNotificationJson {
  private readonly byEvent = new Map<string, { full: string; idOnly: string }>();

  body(produced: ProducedNotification, pushers: readonly PusherRecord[], unread: number): string {
    const { event, outcome, room, userId } = produced;
    const { pdu } = event;
    let shared = this.byEvent.get(event.eventId);
    if (shared === undefined) {
      const ids = { event_id: event.eventId, room_id: event.roomId };
      const senderName = room.joined.get(pdu.sender);
      const details: JsonObject = { ...ids, type: pdu.type, sender: pdu.sender };
      if (senderName !== undefined) details.sender_display_name = senderName;
      if (room.roomName !== undefined) details.room_name = room.roomName;
      details.content = pdu.content;
      // Without the closing brace: the per-user fields follow.
      shared = { full: JSON.stringify(details).slice(0, -1), idOnly: JSON.stringify(ids).slice(0, -1) };
      this.byEvent.set(event.eventId, shared);
    }
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
    const target =
      !idOnly && pdu.type === 'm.room.member' ? `,"user_is_target":${pdu.state_key === userId}` : '';
    return `{"notification":${idOnly ? shared.idOnly : shared.full},"prio":"${prio}","counts":{"unread":${unread}},"devices":${JSON.stringify(devices)}${target}}}`;
  }
}

/** tsx's ESM register API (its CommonJS build cannot register from a worker). */
function tsxApiUrl(): string {
  if (typeof import.meta.resolve === 'function') return import.meta.resolve('tsx/esm/api');
  const commonJs = createRequire(import.meta.url).resolve('tsx/esm/api');
  return pathToFileURL(commonJs.replace(/\.cjs$/, '.mjs')).href;
}
