/**
 * Delivery to push gateways (push-gateway API). The main thread's share is kept
 * small: it knows which users have http pushers at all (read once, then kept up to
 * date), and per batch of notified events it posts one compact message (each
 * event's fields once, its notified users with pushers and their actions) to the
 * delivery worker thread (delivery-worker.ts), which knows who has pushers and
 * counts each user's badge (recipient-book.ts), builds the request bodies and runs
 * the HTTP exchanges, retries and backoff. While events are being sent, messages
 * are posted to it and it starts requests only once the sends pause, for a bounded
 * time (send-yield.ts, held-posts.ts; noteSend counts sends in shared memory). The worker
 * asks about users it does not know yet (their pushers and unread totals); the main
 * thread answers from storage, and tells it when pushers change or read marks
 * move. Where no worker can start (the server running from a bundle), the same
 * delivery line runs on this thread. Pushkeys a gateway rejects are removed from storage.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PusherRecord } from '../../storage/push-store.js';
import type { Storage } from '../../storage/storage.js';
import { setThreadPolicy } from './background-priority.js';
import { BacklogPriority } from './backlog-priority.js';
import type { DeliveryWorkerData, FromWorker } from './delivery-worker.js';
import type { GatewayPolicy } from './gateway-address.js';
import type { PushTarget } from './gateway-queues.js';
import { HeldPosts } from './held-posts.js';
import type { ProducedNotification } from './push-evaluator.js';
import { DeliveryLine, type EventNotification, type ToDelivery } from './push-preparer.js';
import type { UserFacts } from './recipient-book.js';
import { SendActivity, SendYield } from './send-yield.js';

export interface PushDeliveryOptions {
  readonly storage: Storage;
  readonly policy: GatewayPolicy;
  readonly requestTimeoutMs: number;
  readonly initialRetryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly maxAttempts: number;
  /** Run gateway requests on this thread (tests of the fallback); default: in a worker thread. */
  readonly inline?: boolean;
  /** push.max_pending_pushes; default MAX_PENDING_PUSHES. */
  readonly maxPendingPushes?: number;
  /** push.delivery_quiet_ms; default DELIVERY_QUIET_MS (send-yield.ts). */
  readonly deliveryQuietMs?: number;
  /** push.delivery_max_hold_ms; default DELIVERY_MAX_HOLD_MS. */
  readonly deliveryMaxHoldMs?: number;
  /** Default RAISE_PRIORITY_AFTER_MS (tests set less). */
  readonly raisePriorityAfterMs?: number;
  readonly log: {
    warn(fields: object, message: string): void;
    info(fields: object, message: string): void;
  };
}

/** Users whose pushers and unread totals are read in one turn of the event loop. */
const ANSWER_CHUNK = 16;

/** The worker's nice value where it cannot have SCHED_IDLE (background-priority.ts). */
const WORKER_NICENESS = 10;

/**
 * Notified users posted to the delivery line and not yet settled, at most. The worker
 * runs at SCHED_IDLE: while every CPU is busy with client work it gets very little, and
 * what waits for it would grow without end. Past this bound new notifications are not
 * pushed (they still count: sync, /notifications and the next push's badge show them)
 * until half of them are settled; a batch is taken whole when nothing waits. About 1 KB
 * each while waiting. The default of push.max_pending_pushes.
 */
export const MAX_PENDING_PUSHES = 100_000;

/**
 * Gateway requests start once no event was sent for this long (send-yield.ts): delivery
 * yields the CPU to sends. The default of push.delivery_quiet_ms.
 */
export const DELIVERY_QUIET_MS = 15;

/**
 * ...but a push is held back for at most this long, so that a server that never pauses
 * still delivers. The default of push.delivery_max_hold_ms.
 */
export const DELIVERY_MAX_HOLD_MS = 250;

/**
 * A push waiting this long raises the worker from SCHED_IDLE to its nice value until it
 * catches up (backlog-priority.ts): under a saturated CPU pushes are delayed, not dropped.
 */
const RAISE_PRIORITY_AFTER_MS = 5_000;

/** While pushes are dropped, how often the count so far is logged. */
const SHED_LOG_INTERVAL_MS = 60_000;

/** Where delivery messages go: the worker thread, or a delivery line on this thread. */
interface DeliverySink {
  post(message: ToDelivery): void;
  stop(): Promise<void>;
}

export class PushDelivery {
  private sink: DeliverySink | undefined;
  /**
   * Users with http pushers; a few may have lost theirs since (the worker finds out).
   * Undefined until read, on first use; notifications meanwhile wait in `early`.
   */
  private pusherUsers: Set<string> | undefined;
  private loading: Promise<void> | undefined;
  private readonly early: (readonly ProducedNotification[])[] = [];
  /** Users whose pushers changed while pusherUsers was being read. */
  private readonly changedEarly: string[] = [];
  /** Counts pusher changes: an answer read across one may be stale. */
  private pusherChanges = 0;
  private stopped = false;
  /** Notify messages handed to the sink and not yet settled. */
  private outstanding = 0;
  /** Notified users in those messages. */
  private pendingPushes = 0;
  /** Past MAX_PENDING_PUSHES: notifications are not pushed until the line catches up. */
  private shedding = false;
  /** Pushes dropped since shedding started, when it started, and when that was last logged. */
  private shed = 0;
  private shedSince = 0;
  private shedLogged = 0;
  private readonly idleWaiters: (() => void)[] = [];
  /** Watches the age of waiting pushes, once the worker runs at SCHED_IDLE. */
  private backlog: BacklogPriority | undefined;
  /** Users whose read marks moved, told to the sink together (before the next notify message). */
  private readonly reads = new Set<string>();
  /** The worker's questions, answered one after another. */
  private answering: Promise<void> = Promise.resolve();

  private readonly maxPendingPushes: number;
  /** Counts sends for the delivery line, which holds new requests back while they go on. */
  private readonly sends = new SendActivity();
  private readonly yieldToSends: { sends: SharedArrayBuffer; quietMs: number; maxHoldMs: number };
  /** Everything for the sink goes through here: notify messages wait for the sends to pause. */
  private readonly outbox: HeldPosts;

  constructor(private readonly options: PushDeliveryOptions) {
    this.maxPendingPushes = options.maxPendingPushes ?? MAX_PENDING_PUSHES;
    this.yieldToSends = {
      sends: this.sends.buffer,
      quietMs: options.deliveryQuietMs ?? DELIVERY_QUIET_MS,
      maxHoldMs: options.deliveryMaxHoldMs ?? DELIVERY_MAX_HOLD_MS,
    };
    this.outbox = new HeldPosts(new SendYield(this.yieldToSends), (message) => {
      if (message.type === 'notify') this.sinkNow().post(message);
      else this.sink?.post(message);
    });
  }

  /** An event was persisted (a send): new gateway requests wait for the sends to pause. */
  noteSend(): void {
    this.sends.noteSend();
  }

  /**
   * Hands the pushes of these notifications (one batch of events) to the delivery line:
   * one message, whose cost here is a few array pushes per notified user.
   */
  deliver(notifications: readonly ProducedNotification[]): void {
    if (this.stopped || notifications.length === 0) return;
    const pusherUsers = this.pusherUsers;
    if (pusherUsers === undefined) {
      this.early.push(notifications);
      this.loadPusherUsers();
      return;
    }
    if (pusherUsers.size === 0) return;
    // Events in the order of their first notification; their users in the order given.
    const drafts = new Map<string, Draft>();
    let pushes = 0;
    for (const produced of notifications) {
      if (!pusherUsers.has(produced.userId)) continue;
      let draft = drafts.get(produced.event.eventId);
      if (draft === undefined) {
        draft = startDraft(produced);
        drafts.set(produced.event.eventId, draft);
      }
      draft.userIds.push(produced.userId);
      draft.actionOf.push(actionIndex(draft, produced.outcome.actions));
      pushes++;
    }
    if (pushes === 0 || this.shedLoad(pushes)) return;
    this.outstanding++;
    this.pendingPushes += pushes;
    this.postReads();
    this.outbox.send({
      type: 'notify',
      notifications: Array.from(drafts.values(), finish),
      batches: 1,
      heldMs: 0,
    });
    this.backlog?.posted();
  }

  /**
   * Whether these pushes are dropped: the line is too far behind (see MAX_PENDING_PUSHES).
   * A batch is always taken when nothing waits, however large: dropping it would free
   * nothing, and dropping must never start with nothing left to settle and so end it.
   */
  private shedLoad(pushes: number): boolean {
    if (this.shedding && this.pendingPushes <= this.maxPendingPushes / 2) this.resume();
    if (
      !this.shedding &&
      (this.pendingPushes === 0 || this.pendingPushes + pushes <= this.maxPendingPushes)
    ) {
      return false;
    }
    const now = Date.now();
    if (!this.shedding) {
      this.shedding = true;
      this.shedSince = now;
      this.shedLogged = now;
      this.options.log.warn(
        { pending: this.pendingPushes, maxPendingPushes: this.maxPendingPushes },
        'Push delivery is too far behind (the server is short of CPU or gateways are slow); new notifications are not pushed until it catches up (push.max_pending_pushes)',
      );
    } else if (now - this.shedLogged >= SHED_LOG_INTERVAL_MS) {
      this.shedLogged = now;
      this.options.log.warn(
        { notPushed: this.shed + pushes, pending: this.pendingPushes, forMs: now - this.shedSince },
        'Push delivery is still behind; notifications are not being pushed',
      );
    }
    this.shed += pushes;
    return true;
  }

  /** Pushing resumes: the drop is reported with its count. */
  private resume(): void {
    this.shedding = false;
    this.options.log.warn(
      { notPushed: this.shed, forMs: Date.now() - this.shedSince },
      'Push delivery caught up; pushing again',
    );
    this.shed = 0;
    // The line counted no badge for what was not pushed: every badge is read again.
    this.outbox.send({ type: 'forget' });
  }

  /** Resolves when nothing is queued or being sent (tests, benches). */
  async idle(): Promise<void> {
    await this.loading;
    if (this.outstanding === 0) return;
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private loadPusherUsers(): void {
    this.loading ??= this.options.storage.push.usersWithPushers('http').then(
      (userIds) => {
        const pusherUsers = new Set(userIds);
        for (const userId of this.changedEarly.splice(0)) pusherUsers.add(userId);
        this.pusherUsers = pusherUsers;
        for (const notifications of this.early.splice(0)) this.deliver(notifications);
      },
      (error: unknown) => {
        this.loading = undefined;
        this.early.length = 0;
        this.options.log.warn({ err: error }, 'Reading who has pushers failed; notifications not pushed');
      },
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.outbox.stop();
    this.backlog?.stop();
    await this.sink?.stop();
    this.outstanding = 0;
    this.pendingPushes = 0;
    for (const waiter of this.idleWaiters.splice(0)) waiter();
  }

  private settle(count: number, pushes: number): void {
    this.outstanding = Math.max(0, this.outstanding - count);
    this.pendingPushes = Math.max(0, this.pendingPushes - pushes);
    this.backlog?.settled(count);
    // Pushing resumes once half the bound is free again.
    if (this.shedding && this.pendingPushes <= this.maxPendingPushes / 2) this.resume();
    if (this.outstanding === 0) for (const waiter of this.idleWaiters.splice(0)) waiter();
  }

  /**
   * A user's pushers changed (set, deleted, rejected; every user's when undefined). The
   * user may have an http pusher now: their notifications go to the line, which reads
   * their pushers again; if they have none, the answer drops them from pusherUsers.
   */
  pushersChanged(userId?: string): void {
    this.pusherChanges++;
    if (userId !== undefined) {
      // Not read yet: a read under way may miss the change; one still to come sees it.
      if (this.pusherUsers === undefined) {
        if (this.loading !== undefined) this.changedEarly.push(userId);
      } else this.pusherUsers.add(userId);
    }
    this.outbox.send({ type: 'forget', userId });
  }

  /** The user's read marks moved: their badge is to be read again. */
  readMoved(userId: string): void {
    // A line not started knows no badge yet; users without pushers have none.
    if (this.sink === undefined || this.pusherUsers?.has(userId) !== true) return;
    if (this.reads.size === 0) queueMicrotask(() => this.postReads());
    this.reads.add(userId);
  }

  private postReads(): void {
    if (this.reads.size === 0) return;
    this.outbox.send({ type: 'read', userIds: [...this.reads] });
    this.reads.clear();
  }

  /**
   * The worker asks about users: answered in turn, a few users per turn of the event
   * loop (reading a user's unread total costs a few queries), each part posted as
   * soon as it is read, so that the totals count exactly the notifications posted before them.
   */
  private answer(userIds: readonly string[]): void {
    this.answering = this.answering.then(async () => {
      for (let from = 0; from < userIds.length && !this.stopped; from += ANSWER_CHUNK) {
        if (from > 0) await new Promise((resolve) => setImmediate(resolve));
        const users = await this.usersFacts(userIds.slice(from, from + ANSWER_CHUNK));
        if (!this.stopped) this.outbox.send({ type: 'users', users });
      }
    });
  }

  private async usersFacts(userIds: readonly string[]): Promise<UserFacts[]> {
    const { storage } = this.options;
    const changes = this.pusherChanges;
    try {
      const pushers = new Map<string, PusherRecord[]>(userIds.map((userId) => [userId, []]));
      for (const pusher of await storage.push.pushersOfUsers(userIds)) {
        if (pusher.kind === 'http' && typeof pusher.data.url === 'string')
          pushers.get(pusher.userId)?.push(pusher);
      }
      // Users found without http pushers are no longer posted, unless pushers changed meanwhile.
      if (changes === this.pusherChanges) {
        for (const [userId, list] of pushers) if (list.length === 0) this.pusherUsers?.delete(userId);
      }
      return await Promise.all(
        [...pushers].map(async ([userId, list]) => ({
          userId,
          pushers: list,
          unread: list.length === 0 ? 0 : await storage.push.totalUnread(userId),
        })),
      );
    } catch (error) {
      this.options.log.warn(
        { err: error },
        'Reading pushers failed; these users are not pushed to this time',
      );
      return userIds.map((userId) => ({ userId, pushers: [], unread: 0, transient: true }));
    }
  }

  private sinkNow(): DeliverySink {
    this.sink ??= this.startSink();
    return this.sink;
  }

  private startSink(): DeliverySink {
    const handlers = {
      need: (userIds: string[]) => this.answer(userIds),
      onRejected: (targets: readonly PushTarget[]) => {
        this.removeRejected(targets).catch((error: unknown) =>
          this.options.log.warn({ err: error }, 'Removing rejected pushkeys failed'),
        );
      },
      onNotificationsSettled: (count: number, pushes: number) => this.settle(count, pushes),
      log: (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) =>
        this.options.log[level](fields, message),
    };
    const data: DeliveryWorkerData = {
      policy: { allowPrivate: this.options.policy.allowPrivate },
      requestTimeoutMs: this.options.requestTimeoutMs,
      initialRetryDelayMs: this.options.initialRetryDelayMs,
      maxRetryDelayMs: this.options.maxRetryDelayMs,
      maxAttempts: this.options.maxAttempts,
      yieldToSends: this.yieldToSends,
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
      if (message.type === 'settled') this.settle(message.count, message.recipients);
      else if (message.type === 'need') handlers.need(message.userIds);
      else if (message.type === 'rejected') handlers.onRejected(message.targets);
      else if (message.type === 'log') handlers.log(message.level, message.fields, message.message);
      else if (message.type === 'idle') this.watchBacklog(message.threadId);
      else stopped?.();
    });
    worker.on('error', (error) => {
      this.options.log.warn({ err: error }, 'The push delivery worker failed; delivering on the main thread');
      this.backlog?.stop();
      this.backlog = undefined;
      this.settle(this.outstanding, this.pendingPushes);
      // The new line knows no users yet: it asks as it goes.
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

  /** The worker runs at SCHED_IDLE on this thread: it is raised while pushes wait too long. */
  private watchBacklog(threadId: string): void {
    if (this.stopped) return;
    this.backlog?.stop();
    this.backlog = new BacklogPriority({
      raiseAfterMs: this.options.raisePriorityAfterMs ?? RAISE_PRIORITY_AFTER_MS,
      setPolicy: (policy) => setThreadPolicy(threadId, policy),
      log: this.options.log,
    });
  }

  private async removeRejected(targets: readonly PushTarget[]): Promise<void> {
    for (const target of targets) {
      await this.options.storage.push.deletePusher(target.userId, target.appId, target.pushkey);
      this.pushersChanged(target.userId);
      this.options.log.info(
        { userId: target.userId, appId: target.appId },
        'Removed a pushkey the gateway rejected',
      );
    }
  }
}

/** An EventNotification being gathered, in plain arrays. */
interface Draft {
  readonly event: EventNotification['event'];
  readonly userIds: string[];
  readonly actionSets: EventNotification['actionSets'];
  readonly actionOf: number[];
  /** Action list JSON -> its index in actionSets. */
  readonly actionIndex: Map<string, number>;
}

function startDraft({ event, room }: ProducedNotification): Draft {
  const { pdu } = event;
  return {
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
    actionSets: [],
    actionOf: [],
    actionIndex: new Map(),
  };
}

function finish(draft: Draft): EventNotification {
  return {
    event: draft.event,
    userIds: draft.userIds.join('\n'),
    actionSets: draft.actionSets,
    actionOf: new Uint16Array(draft.actionOf),
  };
}

/** Members whose rules gave the same actions share one entry. */
function actionIndex(draft: Draft, actions: readonly unknown[]): number {
  const key = actionsKey(actions);
  let index = draft.actionIndex.get(key);
  if (index === undefined) {
    index = draft.actionSets.push([...(actions as EventNotification['actionSets'][number])]) - 1;
    draft.actionIndex.set(key, index);
  }
  return index;
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
