/**
 * Sends each application service its queued events (application-service
 * "Pushing events") as PUT /_matrix/app/v1/transactions/{txnId}, one
 * transaction in flight per service, in queue order. A transaction keeps its
 * ID and its events until the service answers 2xx ("Homeservers MUST NOT
 * alter (e.g. add more) events they were going to send within that
 * transaction ID on retries"); any other answer, or none, is retried after a
 * delay that doubles up to a cap ("the homeserver SHOULD backoff
 * exponentially until the application service is reachable again").
 */
import type { Logger } from 'pino';
import type { AppserviceStore } from '../../storage/appservice-store.js';
import type { AppserviceClient } from './appservice-client.js';
import type { AppserviceRegistration } from './registration.js';
import type { AppserviceRegistry } from './registry.js';

export interface TransactionSenderOptions {
  readonly store: AppserviceStore;
  readonly client: AppserviceClient;
  readonly log: Pick<Logger, 'info' | 'warn'>;
  readonly maxEventsPerTransaction: number;
  readonly initialRetryDelayMs: number;
  readonly maxRetryDelayMs: number;
  /**
   * Done before a transaction is sent (the user query of an invitee who has no account): in
   * this service's own loop, so a slow service delays only itself. `events` are JSON texts.
   */
  readonly beforeSend?: (service: AppserviceRegistration, events: readonly string[]) => Promise<void>;
}

interface ServiceState {
  running: boolean;
  /** New events arrived while running: look again before stopping. */
  dirty: boolean;
  timer: NodeJS.Timeout | undefined;
  /** The delay of the last retry; 0 while the service answers. */
  backoffMs: number;
  retryAfterTs: number;
}

export class TransactionSender {
  private readonly states = new Map<string, ServiceState>();
  private readonly loops = new Set<Promise<void>>();
  private readonly inFlight = new AbortController();
  private started = false;
  private stopping = false;

  constructor(
    private readonly registry: Pick<AppserviceRegistry, 'withId'>,
    private readonly options: TransactionSenderOptions,
  ) {}

  async start(): Promise<void> {
    this.started = true;
    for (const id of await this.options.store.pendingAppservices()) this.kick(id);
  }

  /** New events are queued for the service. */
  kick(appserviceId: string): void {
    if (!this.started || this.stopping) return;
    const service = this.registry.withId(appserviceId);
    if (service === undefined || service.url === null) return;
    const state = this.stateOf(appserviceId);
    if (state.running) {
      state.dirty = true;
      return;
    }
    if (state.retryAfterTs > Date.now()) return; // its timer will kick it
    state.running = true;
    const loop = this.run(service, state).finally(() => {
      state.running = false;
      this.loops.delete(loop);
    });
    this.loops.add(loop);
  }

  /** Resolves when no service has a send under way (tests). */
  async settled(): Promise<void> {
    while (this.loops.size > 0) await Promise.allSettled([...this.loops]);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.inFlight.abort();
    for (const state of this.states.values()) clearTimeout(state.timer);
    await Promise.allSettled([...this.loops]);
  }

  private stateOf(appserviceId: string): ServiceState {
    let state = this.states.get(appserviceId);
    if (state === undefined) {
      state = { running: false, dirty: false, timer: undefined, backoffMs: 0, retryAfterTs: 0 };
      this.states.set(appserviceId, state);
    }
    return state;
  }

  private async run(service: AppserviceRegistration, state: ServiceState): Promise<void> {
    const { store, client, log } = this.options;
    try {
      do {
        state.dirty = false;
        while (!this.stopping) {
          const txn = await store.claimTransaction(service.id, this.options.maxEventsPerTransaction);
          if (txn === null) break;
          await this.options.beforeSend?.(service, txn.events);
          if (this.stopping) return;
          const body = `{"events":[${txn.events.join(',')}]}`;
          const path = `/_matrix/app/v1/transactions/${encodeURIComponent(txn.txnId)}`;
          const outcome = await client.request(service, 'PUT', path, body, this.inFlight.signal);
          if (this.stopping) return;
          if (outcome.kind !== 'ok') {
            const reason = 'status' in outcome ? `status ${outcome.status}` : outcome.message;
            this.backOff(service.id, state);
            log.info(
              { appservice: service.id, txnId: txn.txnId, reason, retryInMs: state.backoffMs },
              'Application service did not accept a transaction; will retry',
            );
            return;
          }
          await store.completeTransaction(service.id, txn.txnId);
          state.backoffMs = 0;
          state.retryAfterTs = 0;
        }
      } while (state.dirty && !this.stopping);
    } catch (error) {
      // A storage failure: try again later rather than spin.
      log.warn({ err: error, appservice: service.id }, 'Sending to an application service failed');
      this.backOff(service.id, state);
    }
  }

  private backOff(appserviceId: string, state: ServiceState): void {
    const { initialRetryDelayMs, maxRetryDelayMs } = this.options;
    state.backoffMs =
      state.backoffMs === 0
        ? Math.min(initialRetryDelayMs, maxRetryDelayMs)
        : Math.min(state.backoffMs * 2, maxRetryDelayMs);
    state.retryAfterTs = Date.now() + state.backoffMs;
    clearTimeout(state.timer);
    state.timer = setTimeout(() => {
      state.timer = undefined;
      state.retryAfterTs = 0;
      this.kick(appserviceId);
    }, state.backoffMs);
    state.timer.unref();
  }
}
