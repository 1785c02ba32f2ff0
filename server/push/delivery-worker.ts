/**
 * The delivery worker thread: push gateway requests are prepared (push-preparer.ts)
 * and sent (gateway-queues.ts) here, so that building thousands of request bodies
 * and the HTTP exchanges with gateways never take turns from the event loop that
 * serves sends and syncs (issue #8: push delivery adds nothing to send latency).
 * The main thread posts one message per batch of notified events, and answers the
 * worker's questions about users (their pushers and unread totals); the worker posts
 * back those questions, settlements, rejected pushkeys and log lines.
 *
 * The thread runs at a lower scheduling priority: pushes are background work, and
 * on a busy machine the threads answering clients should win the CPU.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { GatewayPush, GatewayQueuesOptions } from './gateway-queues.js';
import { DeliveryLine, type ToDelivery } from './push-preparer.js';

export type FromWorker =
  /** Questions about users: their http pushers and unread totals (answered by a `users` message). */
  | { type: 'need'; userIds: string[] }
  | { type: 'settled'; count: number }
  | { type: 'rejected'; targets: GatewayPush['targets'] }
  | { type: 'log'; level: 'info' | 'warn'; fields: Record<string, unknown>; message: string }
  | { type: 'stopped' };

export type DeliveryWorkerData = Omit<GatewayQueuesOptions, 'onRejected' | 'onSettled' | 'log'> & {
  /** Nice value for this thread (Linux sets it per thread; elsewhere it may apply to the process: 0 there). */
  readonly niceness: number;
};

const port = parentPort;
if (port !== null) {
  const post = (message: FromWorker) => port.postMessage(message);
  const data = workerData as DeliveryWorkerData;
  if (data.niceness !== 0) {
    try {
      // Linux: priority 0 names the calling thread, not the whole process.
      setPriority(0, data.niceness);
    } catch {
      // Not permitted here: deliver at normal priority.
    }
  }
  // Settlements are counted and posted once per turn, not once per event.
  let settled = 0;
  let flushScheduled = false;
  const line = new DeliveryLine({
    ...data,
    onNotificationsSettled: (count) => {
      settled += count;
      if (flushScheduled) return;
      flushScheduled = true;
      setImmediate(() => {
        flushScheduled = false;
        if (settled === 0) return;
        post({ type: 'settled', count: settled });
        settled = 0;
      });
    },
    need: (userIds) => post({ type: 'need', userIds }),
    onRejected: (targets) => post({ type: 'rejected', targets }),
    log: (level, fields, message) => post({ type: 'log', level, fields, message }),
  });
  port.on('message', (message: ToDelivery) => {
    void line.handle(message).then(() => {
      if (message.type !== 'stop') return;
      if (settled > 0) post({ type: 'settled', count: settled });
      settled = 0;
      post({ type: 'stopped' });
    });
  });
}
