/**
 * The delivery worker thread: push gateway requests (gateway-queues.ts) run
 * here, so that thousands of HTTP exchanges with gateways never take turns
 * from the event loop that serves sends and syncs (issue #8: push delivery adds
 * nothing to send latency). The main thread posts ready request bodies; the
 * worker posts back settlements, rejected pushkeys and log lines.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type GatewayPush, GatewayQueues, type GatewayQueuesOptions } from './gateway-queues.js';

export type ToWorker = { type: 'push'; pushes: GatewayPush[] } | { type: 'stop' };
export type FromWorker =
  | { type: 'settled'; count: number }
  | { type: 'rejected'; targets: GatewayPush['targets'] }
  | { type: 'log'; level: 'info' | 'warn'; fields: Record<string, unknown>; message: string }
  | { type: 'stopped' };

export type DeliveryWorkerData = Omit<GatewayQueuesOptions, 'onRejected' | 'onSettled' | 'log'>;

const port = parentPort;
if (port !== null) {
  const post = (message: FromWorker) => port.postMessage(message);
  // Settlements are counted and posted once per turn, not once per request.
  let settled = 0;
  let flushScheduled = false;
  const queues = new GatewayQueues({
    ...(workerData as DeliveryWorkerData),
    onRejected: (targets) => post({ type: 'rejected', targets }),
    onSettled: () => {
      settled++;
      if (flushScheduled) return;
      flushScheduled = true;
      setImmediate(() => {
        flushScheduled = false;
        post({ type: 'settled', count: settled });
        settled = 0;
      });
    },
    log: (level, fields, message) => post({ type: 'log', level, fields, message }),
  });
  port.on('message', (message: ToWorker) => {
    if (message.type === 'push') for (const push of message.pushes) queues.add(push);
    else
      void queues.stop().then(() => {
        if (settled > 0) post({ type: 'settled', count: settled });
        post({ type: 'stopped' });
      });
  });
}
