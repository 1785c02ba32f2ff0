/**
 * The delivery worker thread: push gateway requests are prepared (push-preparer.ts)
 * and sent (gateway-queues.ts) here, so that building thousands of request bodies
 * and the HTTP exchanges with gateways never take turns from the event loop that
 * serves sends and syncs (issue #8: push delivery adds nothing to send latency).
 * The main thread posts one message per batch of notified events, and answers the
 * worker's questions about users (their pushers and unread totals); the worker posts
 * back those questions, settlements, rejected pushkeys and log lines.
 *
 * The thread runs below the threads answering clients (SCHED_IDLE on Linux, else a nice
 * value: background-priority.ts): pushes are background work, and the CPU is the sends' first.
 * For the same reason it starts gateway requests only once the sends pause, for at most
 * push.delivery_max_hold_ms (send-yield.ts; the main thread counts sends in shared memory).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { lowerThisThread } from './background-priority.js';
import type { GatewayPush, GatewayQueuesOptions } from './gateway-queues.js';
import { DeliveryLine, type ToDelivery } from './push-preparer.js';

export type FromWorker =
  /** Questions about users: their http pushers and unread totals (answered by a `users` message). */
  | { type: 'need'; userIds: string[] }
  /** Notify messages finished with, and the notified users they carried. */
  | { type: 'settled'; count: number; recipients: number }
  | { type: 'rejected'; targets: GatewayPush['targets'] }
  | { type: 'log'; level: 'info' | 'warn'; fields: Record<string, unknown>; message: string }
  /** The thread runs at SCHED_IDLE: its ID, for the main thread to raise it while pushes wait too long. */
  | { type: 'idle'; threadId: string }
  | { type: 'stopped' };

export type DeliveryWorkerData = Omit<GatewayQueuesOptions, 'onRejected' | 'onSettled' | 'log'> & {
  /** Nice value for this thread where SCHED_IDLE cannot be had (Linux sets it per thread). */
  readonly niceness: number;
};

const port = parentPort;
if (port !== null) {
  const post = (message: FromWorker) => port.postMessage(message);
  const data = workerData as DeliveryWorkerData;
  void lowerThisThread(data.niceness).then((priority) => {
    if (priority.kind === 'idle') {
      post({ type: 'idle', threadId: priority.threadId });
      return;
    }
    post({
      type: 'log',
      level: 'warn',
      fields: { priority: priority.kind, reason: priority.why },
      message:
        priority.kind === 'nice'
          ? `Push delivery runs at nice ${priority.niceness}, not SCHED_IDLE: a busy server shares more CPU with it`
          : 'Push delivery runs at normal priority: a busy server shares more CPU with it',
    });
  });
  // Settlements are counted and posted once per turn, not once per event.
  let settled = 0;
  let settledRecipients = 0;
  let flushScheduled = false;
  const flush = () => {
    if (settled === 0) return;
    post({ type: 'settled', count: settled, recipients: settledRecipients });
    settled = 0;
    settledRecipients = 0;
  };
  const line = new DeliveryLine({
    ...data,
    onNotificationsSettled: (count, recipients) => {
      settled += count;
      settledRecipients += recipients;
      if (flushScheduled) return;
      flushScheduled = true;
      setImmediate(() => {
        flushScheduled = false;
        flush();
      });
    },
    need: (userIds) => post({ type: 'need', userIds }),
    onRejected: (targets) => post({ type: 'rejected', targets }),
    log: (level, fields, message) => post({ type: 'log', level, fields, message }),
  });
  port.on('message', (message: ToDelivery) => {
    void line.handle(message).then(() => {
      if (message.type !== 'stop') return;
      flush();
      post({ type: 'stopped' });
    });
  });
}
