/**
 * Delivery to push gateways (push-gateway API). The main thread only decides who
 * is pushed: for each notified event it keeps the recipients that have http
 * pushers, adds their unread badge, and posts one message per batch of events
 * to the delivery worker thread (delivery-worker.ts), which builds the request
 * bodies and runs the HTTP exchanges, retries and backoff. Each user's pushers
 * are posted to the worker once, and again when they change. Where no worker
 * can start (the server running from a bundle), the same delivery line runs on
 * this thread. Pushkeys a gateway rejects are removed from storage.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PusherRecord } from '../../storage/push-store.js';
import type { Storage } from '../../storage/storage.js';
import { LazyLruCache } from '../lazy-lru-cache.js';
import type { DeliveryWorkerData, FromWorker } from './delivery-worker.js';
import type { GatewayPolicy } from './gateway-address.js';
import type { PushTarget } from './gateway-queues.js';
import type { ProducedNotification } from './push-evaluator.js';
import { DeliveryLine, type EventNotification, type ToDelivery } from './push-preparer.js';
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

/** The worker's nice value: per thread on Linux; elsewhere it would slow the whole process. */
const WORKER_NICENESS = process.platform === 'linux' ? 10 : 0;

/** Where delivery messages go: the worker thread, or a delivery line on this thread. */
interface DeliverySink {
  post(message: ToDelivery): void;
  stop(): Promise<void>;
}

export class PushDelivery {
  private sink: DeliverySink | undefined;
  /** Users' http pushers, as last posted to the sink (an empty list: none). */
  private readonly pushers = new LazyLruCache<string, readonly PusherRecord[]>({ max: 10_000 });
  private stopped = false;
  /** Event notifications handed to the sink and not yet settled, plus preparations in progress. */
  private outstanding = 0;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(private readonly options: PushDeliveryOptions) {}

  /** Hands the pushes of these notifications (one event's or several) to the delivery line. */
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
    this.sink?.post({ type: 'forget', userId });
  }

  /**
   * The users who have http pushers. Lists not cached are read in one query and
   * posted to the sink before the notifications that need them (messages keep their order).
   */
  private async withPushers(userIds: readonly string[]): Promise<Set<string>> {
    const result = new Set<string>();
    const missing: string[] = [];
    for (const userId of userIds) {
      const cached = this.pushers.get(userId);
      if (cached === undefined) missing.push(userId);
      else if (cached.length > 0) result.add(userId);
    }
    if (missing.length === 0) return result;
    const read = new Map<string, PusherRecord[]>(missing.map((userId) => [userId, []]));
    for (const pusher of await this.options.storage.push.pushersOfUsers(missing)) {
      if (pusher.kind === 'http' && typeof pusher.data.url === 'string')
        read.get(pusher.userId)?.push(pusher);
    }
    for (const [userId, list] of read) {
      this.pushers.set(userId, list);
      if (list.length === 0) continue;
      result.add(userId);
      this.sinkNow().post({ type: 'pushers', userId, pushers: list });
    }
    return result;
  }

  private async prepare(notifications: readonly ProducedNotification[]): Promise<void> {
    const withPushers = await this.withPushers([...new Set(notifications.map((n) => n.userId))]);
    if (withPushers.size === 0 || this.stopped) return;
    const byEvent = new Map<string, { notification: DraftNotification; actionIndex: Map<string, number> }>();
    for (const produced of notifications) {
      if (!withPushers.has(produced.userId)) continue;
      const { event, room } = produced;
      let entry = byEvent.get(event.eventId);
      if (entry === undefined) {
        const { pdu } = event;
        entry = {
          actionIndex: new Map(),
          notification: {
            event: {
              eventId: event.eventId,
              roomId: event.roomId,
              type: pdu.type,
              sender: pdu.sender,
              stateKey: typeof pdu.state_key === 'string' ? pdu.state_key : undefined,
              content: pdu.content,
              senderDisplayName: room.joined.get(pdu.sender),
              roomName: room.roomName,
            },
            userIds: [],
            unread: [],
            actionSets: [],
            actionOf: [],
          },
        };
        byEvent.set(event.eventId, entry);
      }
      const { notification, actionIndex } = entry;
      // Members whose rules gave the same actions share one entry.
      const { actions } = produced.outcome;
      const key = actionsKey(actions);
      let index = actionIndex.get(key);
      if (index === undefined) {
        index = notification.actionSets.push([...actions]) - 1;
        actionIndex.set(key, index);
      }
      notification.userIds.push(produced.userId);
      const { badges } = this.options;
      // Known for nearly every user: no await (a microtask per user) unless storage must be read.
      notification.unread.push(badges.cached(produced.userId) ?? (await badges.count(produced.userId)));
      notification.actionOf.push(index);
    }
    if (byEvent.size === 0 || this.stopped) return;
    this.outstanding += byEvent.size;
    this.sinkNow().post({
      type: 'notify',
      notifications: [...byEvent.values()].map(({ notification }) => ({
        event: notification.event,
        userIds: notification.userIds.join('\n'),
        unread: Uint32Array.from(notification.unread),
        actionSets: notification.actionSets,
        actionOf: Uint16Array.from(notification.actionOf),
      })),
    });
  }

  private sinkNow(): DeliverySink {
    this.sink ??= this.startSink();
    return this.sink;
  }

  private startSink(): DeliverySink {
    const handlers = {
      onRejected: (targets: readonly PushTarget[]) => {
        this.removeRejected(targets).catch((error: unknown) =>
          this.options.log.warn({ err: error }, 'Removing rejected pushkeys failed'),
        );
      },
      onNotificationsSettled: (count: number) => this.settle(count),
      log: (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) =>
        this.options.log[level](fields, message),
    };
    const data: DeliveryWorkerData = {
      policy: { allowPrivate: this.options.policy.allowPrivate },
      requestTimeoutMs: this.options.requestTimeoutMs,
      initialRetryDelayMs: this.options.initialRetryDelayMs,
      maxRetryDelayMs: this.options.maxRetryDelayMs,
      maxAttempts: this.options.maxAttempts,
      niceness: WORKER_NICENESS,
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
    const inlineSink = (): DeliverySink => {
      const line = new DeliveryLine({ ...data, ...handlers });
      return {
        post: (message) => void line.handle(message),
        stop: () => line.handle({ type: 'stop' }),
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
      // The new line knows no pushers yet: read them again on next use.
      this.pushers.clear();
      this.sink = inlineSink();
    });
    worker.unref();
    return {
      post: (message) => worker.postMessage(message),
      stop: () =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2_000);
          stopped = () => {
            clearTimeout(timer);
            resolve();
          };
          worker.postMessage({ type: 'stop' } satisfies ToDelivery);
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

/** An EventNotification being gathered, in plain arrays. */
interface DraftNotification {
  readonly event: EventNotification['event'];
  readonly userIds: string[];
  readonly unread: number[];
  readonly actionSets: EventNotification['actionSets'];
  readonly actionOf: number[];
}

/** Compiled rules keep their action lists: each is serialised once. */
const actionKeys = new WeakMap<readonly unknown[], string>();

function actionsKey(actions: readonly unknown[]): string {
  let key = actionKeys.get(actions);
  if (key === undefined) {
    key = JSON.stringify(actions);
    actionKeys.set(actions, key);
  }
  return key;
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

/** tsx's ESM register API (its CommonJS build cannot register from a worker). */
function tsxApiUrl(): string {
  if (typeof import.meta.resolve === 'function') return import.meta.resolve('tsx/esm/api');
  const commonJs = createRequire(import.meta.url).resolve('tsx/esm/api');
  return pathToFileURL(commonJs.replace(/\.cjs$/, '.mjs')).href;
}
