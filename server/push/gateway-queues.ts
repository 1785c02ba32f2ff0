/**
 * The HTTP side of push delivery (push-gateway API, POST /_matrix/push/v1/notify)
 * with undici. Each (user, gateway) has its own ordered queue and one request in
 * flight; a network error, a timeout, a 429 or a 5xx is retried with exponential
 * backoff (the notification stays at the head, so it is delivered once and in
 * order); other 4xx answers drop it. Pushkeys the gateway lists as `rejected`
 * are reported. A gateway URL whose literal address the outbound guard refuses (SSRF, see
 * gateway-address.ts) is final: its pushes are dropped. A host name that resolves to a
 * refused address is a failure like any other, retried with backoff: DNS may change.
 * Either is logged once per gateway, not per push. Requests (retries too) start only once
 * the server's sends pause, for a bounded time (send-yield.ts). No storage here: this runs
 * in the delivery worker thread.
 */
import { isIP } from 'node:net';
import type { Agent } from 'undici';
import { undici } from '../http/undici.js';
import type { AddressGuard } from '../outbound/address-guard.js';
import { ForbiddenAddressError } from '../outbound/address-guard.js';
import { type GatewayPolicy, gatewayAddressGuard, literalHost } from './gateway-address.js';
import { SendYield, type SendYieldOptions } from './send-yield.js';

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
  /** Held for sends since (SendYield's clock), when before it was queued. */
  readonly heldSince?: number;
}

export interface GatewayQueuesOptions {
  readonly policy: Pick<GatewayPolicy, 'allowPrivate'>;
  readonly requestTimeoutMs: number;
  readonly initialRetryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly maxAttempts: number;
  /** Requests start once sends pause (send-yield.ts); undefined: at once. */
  readonly yieldToSends?: SendYieldOptions;
  readonly onRejected: (targets: readonly PushTarget[]) => void;
  /** A push is finished with (delivered, refused or given up on). */
  readonly onSettled: (push: GatewayPush) => void;
  readonly log: (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => void;
}

interface Queued {
  readonly push: GatewayPush;
  attempts: number;
  /** When it was queued (SendYield's clock): how long it may still be held for sends. */
  readonly queuedAt: number;
}

/** A gateway URL split as undici's dispatch takes it; parsed once per URL, not per request. */
interface Destination {
  readonly origin: string;
  readonly path: string;
  /** A literal address the guard refuses (a name is checked at each connection). */
  readonly refused: boolean;
}

/**
 * How one attempt ended: `refused` when the host name resolved to an address the guard
 * refuses (retried), `forbidden` when the URL's literal address is refused (final).
 */
type Outcome = 'done' | 'retry' | 'refused' | 'forbidden';

/** Distinct gateway URLs remembered (there are a handful; the bound only guards memory). */
const MAX_DESTINATIONS = 1_000;
/** A gateway's answer is `{"rejected": [...]}`: anything longer is not read. */
const MAX_ANSWER_BYTES = 64 * 1024;
const JSON_HEADERS = ['content-type', 'application/json'];

export class GatewayQueues {
  private readonly agent: Agent;
  private readonly guard: AddressGuard;
  private readonly queues = new Map<string, Queued[]>();
  private readonly destinations = new Map<string, Destination>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /**
   * Gateway URLs refused by the guard since they were last reached (logged once each), and
   * how many pushes to them were dropped meanwhile. Bounded like `destinations`.
   */
  private readonly refusedGateways = new Map<string, { dropped: number }>();
  /** Holds new requests back while the server is sending events. */
  private readonly sendYield: SendYield;
  private stopped = false;

  /** `guard`: the policy's (tests give one with a fake resolver). */
  constructor(
    private readonly options: GatewayQueuesOptions,
    guard: AddressGuard = gatewayAddressGuard(options.policy),
  ) {
    this.guard = guard;
    this.sendYield = new SendYield(options.yieldToSends);
    this.agent = new (undici().Agent)({
      connect: { lookup: this.guard.lookup, timeout: options.requestTimeoutMs },
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
    });
  }

  add(push: GatewayPush): void {
    if (this.stopped) {
      this.options.onSettled(push);
      return;
    }
    const queued: Queued = { push, attempts: 0, queuedAt: push.heldSince ?? this.sendYield.now() };
    const queue = this.queues.get(push.key);
    if (queue !== undefined) {
      queue.push(queued);
      return;
    }
    const fresh: Queued[] = [queued];
    this.queues.set(push.key, fresh);
    this.run(push.key, fresh);
  }

  /** The clock pushes' `heldSince` is on. */
  now(): number {
    return this.sendYield.now();
  }

  async stop(): Promise<void> {
    // Requests held for the sends start now, as they would have without the hold; the agent's
    // close below lets them (and those under way) finish. What waits behind them is dropped.
    this.sendYield.releaseHeld();
    this.stopped = true;
    this.sendYield.stop();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const queue of this.queues.values()) for (const item of queue) this.options.onSettled(item.push);
    this.queues.clear();
    await this.agent.close().catch(() => {});
  }

  /** Starts the queue's head once sends pause (a retry too: it was queued long ago, so soon). */
  private run(key: string, queue: Queued[]): void {
    const item = queue[0];
    if (item === undefined || this.stopped) {
      this.queues.delete(key);
      return;
    }
    this.sendYield.start(item.queuedAt, () => this.attempt(key, queue, item));
  }

  private attempt(key: string, queue: Queued[], item: Queued): void {
    if (this.stopped) return;
    item.attempts++;
    this.send(item.push, (outcome) => {
      if (this.stopped) return;
      const { push } = item;
      if (outcome === 'refused') this.refused(push.url, false);
      else if (outcome === 'done' && this.refusedGateways.size > 0) this.reached(push.url);
      if ((outcome === 'retry' || outcome === 'refused') && item.attempts < this.options.maxAttempts) {
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
          { eventId: push.eventId, url: push.url },
          'Push gateway kept failing; notification dropped',
        );
      } else if (outcome === 'refused') {
        // Absent when the map was cleared at its bound while this push was retried.
        const refused = this.refusedGateways.get(push.url);
        if (refused !== undefined) refused.dropped++;
      }
      queue.shift();
      this.options.onSettled(push);
      this.run(key, queue);
    });
  }

  /**
   * One POST through undici's dispatch with a bare handler: no response stream, body
   * reader or promise per request, which request() would add to every push.
   */
  private send(push: GatewayPush, done: (outcome: Outcome) => void): void {
    const destination = this.destination(push.url);
    if (destination === undefined) {
      this.options.log('warn', { eventId: push.eventId, url: push.url }, 'Push gateway URL is not a URL');
      done('done');
      return;
    }
    if (destination.refused) {
      this.refused(push.url, true);
      done('forbidden');
      return;
    }
    this.agent.dispatch(
      {
        origin: destination.origin,
        path: destination.path,
        method: 'POST',
        headers: JSON_HEADERS,
        body: push.body,
      },
      new GatewayExchange(push, this.options, done),
    );
  }

  /** The guard refused this gateway: said once, until it is reached again. */
  private refused(url: string, literal: boolean): void {
    if (this.refusedGateways.has(url)) return;
    if (this.refusedGateways.size >= MAX_DESTINATIONS) this.refusedGateways.clear();
    this.refusedGateways.set(url, { dropped: 0 });
    this.options.log(
      'warn',
      { url },
      literal
        ? 'Push gateway address refused (private or reserved); its pushes are dropped'
        : 'Push gateway host resolves to a private or reserved address; its pushes are retried with backoff and dropped after max_attempts',
    );
  }

  /** A gateway refused before answered (its name resolves to a permitted address now). */
  private reached(url: string): void {
    const refused = this.refusedGateways.get(url);
    if (refused === undefined) return;
    this.refusedGateways.delete(url);
    this.options.log(
      'info',
      { url, dropped: refused.dropped },
      'Push gateway host resolves to a permitted address again',
    );
  }

  private destination(url: string): Destination | undefined {
    let destination = this.destinations.get(url);
    if (destination !== undefined) return destination;
    try {
      const parsed = new URL(url);
      const host = literalHost(parsed);
      destination = {
        origin: parsed.origin,
        path: `${parsed.pathname}${parsed.search}`,
        refused: isIP(host) !== 0 && !this.guard.permits(host),
      };
    } catch {
      return undefined;
    }
    if (this.destinations.size >= MAX_DESTINATIONS) this.destinations.clear();
    this.destinations.set(url, destination);
    return destination;
  }
}

/**
 * undici's (legacy) dispatch handler for one push: a network error, a timeout, a 429
 * or a 5xx is to be retried, another 4xx drops the push, a 2xx may list rejected pushkeys.
 */
class GatewayExchange {
  private status = 0;
  private readonly answer: Buffer[] = [];
  private answerBytes = 0;
  private finished = false;

  constructor(
    private readonly push: GatewayPush,
    private readonly options: Pick<GatewayQueuesOptions, 'onRejected' | 'log'>,
    private readonly done: (outcome: Outcome) => void,
  ) {}

  onConnect(): void {}

  onHeaders(statusCode: number): boolean {
    this.status = statusCode;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.status < 300 && this.answerBytes < MAX_ANSWER_BYTES) {
      this.answer.push(chunk);
      this.answerBytes += chunk.length;
    }
    return true;
  }

  onComplete(): void {
    if (this.finished) return;
    this.finished = true;
    this.done(this.outcome());
  }

  private outcome(): 'done' | 'retry' {
    const { status, push } = this;
    if (status === 429 || status >= 500) return 'retry';
    if (status >= 400) {
      this.options.log(
        'warn',
        { eventId: push.eventId, url: push.url, status },
        'Push gateway refused a notification',
      );
      return 'done';
    }
    const rejected = rejectedPushkeys(Buffer.concat(this.answer).toString('utf8'));
    if (rejected.size > 0) {
      const targets = push.targets.filter((target) => rejected.has(target.pushkey));
      if (targets.length > 0) this.options.onRejected(targets);
    }
    return 'done';
  }

  onError(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    // Not logged here: the queues say it once per gateway.
    if (ForbiddenAddressError.isOrCauses(error)) {
      this.done('refused');
      return;
    }
    this.options.log(
      'info',
      { err: String(error), eventId: this.push.eventId, url: this.push.url },
      'Push gateway unreachable; will retry',
    );
    this.done('retry');
  }
}

/** push_notifier.yaml: `rejected` lists pushkeys the homeserver should stop sending to. */
function rejectedPushkeys(text: string): Set<string> {
  // The usual answer, `{"rejected":[]}`, is not worth parsing.
  if (text.length === 0 || !text.includes('"rejected"')) return new Set();
  try {
    const rejected = (JSON.parse(text) as { rejected?: unknown }).rejected;
    return new Set(
      Array.isArray(rejected) ? rejected.filter((key): key is string => typeof key === 'string') : [],
    );
  } catch {
    return new Set();
  }
}
