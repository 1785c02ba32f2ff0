/**
 * The persistent outbound queue (server-server "Transactions"): PDUs and
 * EDUs are stored per destination before anything is sent, then sent in
 * order as PUT /_matrix/federation/v1/send/{txnId} transactions of at most
 * 50 PDUs and 100 EDUs, one transaction in flight per destination. A claimed
 * transaction keeps its ID until delivered, so a resend after a failure or a
 * restart is recognised by the receiver and nothing is lost or repeated.
 * A destination that fails is retried after an exponential backoff with
 * jitter, kept in storage; it is retried at once when it contacts us.
 */
import type { Logger } from 'pino';
import type { FederationStore, OutboxItem } from '../storage/federation-store.js';
import { type Edu, type FederationClient, FederationRequestError, type OutboundQueue } from './federation.js';

export const MAX_PDUS_PER_TRANSACTION = 50;
export const MAX_EDUS_PER_TRANSACTION = 100;
/** Transactions in flight at once, all destinations together: a burst to thousands of servers must not open thousands of TLS connections at once. */
const MAX_CONCURRENT_SENDS = 64;

export interface OutboundQueueOptions {
  readonly serverName: string;
  readonly store: FederationStore;
  readonly client: FederationClient;
  readonly log: Logger;
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly isServerAllowed?: (serverName: string) => boolean;
  readonly now?: () => number;
  readonly random?: () => number;
}

interface DestinationState {
  /** The send loop is running. */
  running: boolean;
  /** New items arrived while running: look again before stopping. */
  dirty: boolean;
  timer: NodeJS.Timeout | undefined;
  retryAfterTs: number;
  /** A backoff is recorded in storage (cleared at the next delivery). */
  storedRetry: boolean;
}

export function createOutboundQueue(options: OutboundQueueOptions): OutboundQueue & {
  /** Sends whatever is due now and resolves when each destination's loop is idle (tests). */
  settled(): Promise<void>;
} {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const { store, client, log } = options;
  const destinations = new Map<string, DestinationState>();
  const loops = new Set<Promise<void>>();
  let started = false;
  let stopping = false;
  /** Aborts requests in flight when the queue stops (they are resent at the next start). */
  let inFlight = new AbortController();
  let sending = 0;
  const waitingForSlot: (() => void)[] = [];
  const withSendSlot = async <T>(work: () => Promise<T>): Promise<T> => {
    if (sending < MAX_CONCURRENT_SENDS) sending++;
    // A released slot is handed to the next waiter as it is, so the count never overshoots.
    else await new Promise<void>((resolve) => waitingForSlot.push(resolve));
    try {
      return await work();
    } finally {
      const next = waitingForSlot.shift();
      if (next) next();
      else sending--;
    }
  };

  const stateOf = (destination: string): DestinationState => {
    let state = destinations.get(destination);
    if (!state) {
      state = { running: false, dirty: false, timer: undefined, retryAfterTs: 0, storedRetry: false };
      destinations.set(destination, state);
    }
    return state;
  };

  const schedule = (destination: string, atTs: number) => {
    const state = stateOf(destination);
    clearTimeout(state.timer);
    state.timer = setTimeout(
      () => {
        state.timer = undefined;
        kick(destination);
      },
      Math.max(0, atTs - now()),
    );
    state.timer.unref();
  };

  const kick = (destination: string) => {
    if (!started || stopping) return;
    const state = stateOf(destination);
    if (state.running) {
      state.dirty = true;
      return;
    }
    if (state.retryAfterTs > now()) {
      if (state.timer === undefined) schedule(destination, state.retryAfterTs);
      return;
    }
    state.running = true;
    const loop = run(destination, state).finally(() => {
      state.running = false;
      loops.delete(loop);
    });
    loops.add(loop);
  };

  const run = async (destination: string, state: DestinationState): Promise<void> => {
    do {
      state.dirty = false;
      while (!stopping) {
        const txn = await store.claimTransaction(
          destination,
          MAX_PDUS_PER_TRANSACTION,
          MAX_EDUS_PER_TRANSACTION,
          now(),
        );
        if (txn === null) break;
        const outcome = await withSendSlot(() => send(destination, txn.txnId, txn.pdus, txn.edus));
        if (stopping) return;
        if (outcome === 'retry') {
          await backOff(destination, state);
          return;
        }
        await store.completeTransaction(destination, txn.txnId);
        state.retryAfterTs = 0;
        if (state.storedRetry) {
          state.storedRetry = false;
          await store.setRetry(destination, null);
        }
      }
    } while (state.dirty && !stopping);
  };

  const send = async (
    destination: string,
    txnId: string,
    pdus: readonly string[],
    edus: readonly string[],
  ): Promise<'done' | 'retry'> => {
    try {
      const response = await client.request<{ pdus?: Record<string, { error?: string }> }>({
        destination,
        method: 'PUT',
        path: `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`,
        signal: inFlight.signal,
        body: {
          origin: options.serverName,
          origin_server_ts: now(),
          pdus: pdus.map((json) => JSON.parse(json) as unknown),
          edus: edus.map((json) => JSON.parse(json) as unknown),
        },
      });
      const refused = Object.entries(response.pdus ?? {}).filter(([, result]) => result?.error !== undefined);
      if (refused.length > 0) {
        log.info({ destination, txnId, refused: refused.slice(0, 10) }, 'Destination refused some PDUs');
      }
      return 'done';
    } catch (error) {
      // A request the destination refuses as malformed or forbidden will not get better by resending it.
      if (error instanceof FederationRequestError && (error.status === 400 || error.status === 403)) {
        log.warn({ destination, txnId, err: error }, 'Destination refused a transaction; dropped');
        return 'done';
      }
      log.info({ destination, txnId, err: error }, 'Transaction not delivered; will retry');
      return 'retry';
    }
  };

  const backOff = async (destination: string, state: DestinationState) => {
    const previous = await store.getRetry(destination);
    const base = previous
      ? Math.min(previous.backoffMs * 2, options.maxBackoffMs)
      : Math.min(options.minBackoffMs, options.maxBackoffMs);
    // Full jitter on the upper half: spreads retries of many senders, never shorter than half the step.
    const delay = Math.round(base / 2 + (random() * base) / 2);
    state.retryAfterTs = now() + delay;
    state.storedRetry = true;
    await store.setRetry(destination, { retryAfterTs: state.retryAfterTs, backoffMs: base });
    schedule(destination, state.retryAfterTs);
  };

  const enqueue = async (items: OutboxItem[]) => {
    const wanted = items.filter(
      (item) =>
        item.destination !== options.serverName &&
        (options.isServerAllowed === undefined || options.isServerAllowed(item.destination)),
    );
    await store.enqueueOutbound(wanted);
    for (const destination of new Set(wanted.map((item) => item.destination))) kick(destination);
  };

  return {
    async sendPdu(targets, pdu) {
      const json = JSON.stringify(pdu);
      await enqueue([...new Set(targets)].map((destination) => ({ destination, kind: 'pdu', json })));
    },
    async sendEdu(destination, edu: Edu, sendOptions) {
      const json = JSON.stringify(edu);
      const ttlMs = sendOptions?.ttlMs;
      await enqueue([
        { destination, kind: 'edu', json, ...(ttlMs !== undefined ? { expiresTs: now() + ttlMs } : {}) },
      ]);
    },
    wake(destination) {
      const state = destinations.get(destination);
      if (!state || state.retryAfterTs === 0) return;
      state.retryAfterTs = 0;
      clearTimeout(state.timer);
      state.timer = undefined;
      // The stored backoff stays, so a destination that fails again backs off further; a success clears it.
      kick(destination);
    },
    async start() {
      if (started) return;
      started = true;
      stopping = false;
      inFlight = new AbortController();
      for (const pending of await store.pendingDestinations()) {
        const state = stateOf(pending.destination);
        state.retryAfterTs = pending.retry?.retryAfterTs ?? 0;
        state.storedRetry = pending.retry !== null;
        kick(pending.destination);
      }
    },
    async stop() {
      stopping = true;
      inFlight.abort();
      for (const state of destinations.values()) {
        clearTimeout(state.timer);
        state.timer = undefined;
      }
      await Promise.allSettled([...loops]);
      started = false;
    },
    async settled() {
      while (loops.size > 0) await Promise.allSettled([...loops]);
    },
  };
}
