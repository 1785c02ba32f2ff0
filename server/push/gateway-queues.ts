/**
 * The HTTP side of push delivery (push-gateway API, POST /_matrix/push/v1/notify)
 * with undici. Each (user, gateway) has its own ordered queue and one request in
 * flight; a network error, a timeout, a 429 or a 5xx is retried with exponential
 * backoff (the notification stays at the head, so it is delivered once and in
 * order); other 4xx answers drop it. Pushkeys the gateway lists as `rejected`
 * are reported. No storage here: this runs in the delivery worker thread.
 */
import type { Agent } from 'undici';
import { undici } from '../http/undici.js';
import { type GatewayPolicy, guardedLookup } from './gateway-address.js';

/** Who one device entry of a request belongs to. */
export interface PushTarget {
  readonly userId: string;
  readonly appId: string;
  readonly pushkey: string;
}

/** One request to make: its JSON body is ready. */
export interface GatewayPush {
  /** The queue: user and gateway URL. */
  readonly key: string;
  readonly url: string;
  readonly body: string;
  readonly eventId: string;
  readonly targets: readonly PushTarget[];
}

export interface GatewayQueuesOptions {
  readonly policy: Pick<GatewayPolicy, 'allowPrivate'>;
  readonly requestTimeoutMs: number;
  readonly initialRetryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly maxAttempts: number;
  readonly onRejected: (targets: readonly PushTarget[]) => void;
  /** A push is finished with (delivered, refused or given up on). */
  readonly onSettled: (push: GatewayPush) => void;
  readonly log: (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => void;
}

interface Queued extends GatewayPush {
  attempts: number;
}

export class GatewayQueues {
  private readonly agent: Agent;
  private readonly queues = new Map<string, Queued[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly options: GatewayQueuesOptions) {
    this.agent = new (undici().Agent)({
      connect: { lookup: guardedLookup(options.policy) as never, timeout: options.requestTimeoutMs },
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
    });
  }

  add(push: GatewayPush): void {
    if (this.stopped) {
      this.options.onSettled(push);
      return;
    }
    const queue = this.queues.get(push.key);
    if (queue !== undefined) {
      queue.push({ ...push, attempts: 0 });
      return;
    }
    const fresh: Queued[] = [{ ...push, attempts: 0 }];
    this.queues.set(push.key, fresh);
    this.run(push.key, fresh);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const queue of this.queues.values()) for (const push of queue) this.options.onSettled(push);
    this.queues.clear();
    await this.agent.close().catch(() => {});
  }

  private run(key: string, queue: Queued[]): void {
    const item = queue[0];
    if (item === undefined || this.stopped) {
      this.queues.delete(key);
      return;
    }
    this.send(item).then((outcome) => {
      if (this.stopped) return;
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
        this.options.log(
          'warn',
          { eventId: item.eventId, url: item.url },
          'Push gateway kept failing; notification dropped',
        );
      }
      queue.shift();
      this.options.onSettled(item);
      this.run(key, queue);
    });
  }

  private async send(item: Queued): Promise<'done' | 'retry'> {
    item.attempts++;
    try {
      const response = await undici().request(item.url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/json' },
        body: item.body,
      });
      const text = await response.body.text();
      if (response.statusCode === 429 || response.statusCode >= 500) return 'retry';
      if (response.statusCode >= 400) {
        this.options.log(
          'warn',
          { eventId: item.eventId, url: item.url, status: response.statusCode },
          'Push gateway refused a notification',
        );
        return 'done';
      }
      const rejected = rejectedPushkeys(text);
      const targets = item.targets.filter((target) => rejected.has(target.pushkey));
      if (targets.length > 0) this.options.onRejected(targets);
      return 'done';
    } catch (error) {
      this.options.log(
        'info',
        { err: String(error), eventId: item.eventId, url: item.url },
        'Push gateway unreachable; will retry',
      );
      return 'retry';
    }
  }
}

/** push_notifier.yaml: `rejected` lists pushkeys the homeserver should stop sending to. */
function rejectedPushkeys(text: string): Set<string> {
  try {
    const rejected = (JSON.parse(text) as { rejected?: unknown }).rejected;
    return new Set(
      Array.isArray(rejected) ? rejected.filter((key): key is string => typeof key === 'string') : [],
    );
  } catch {
    return new Set();
  }
}
