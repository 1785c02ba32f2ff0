/**
 * The application service support of one homeserver, composed: the
 * registrations, the hand-out of room events to their queues, the transaction
 * sender, the ping, queries and third-party lookups. With no registration,
 * nothing runs and nothing listens to the send path.
 */
import type { Logger } from 'pino';
import { isStorageError } from '../../storage/errors.js';
import type { Storage } from '../../storage/storage.js';
import type { MyelinConfig } from '../config/index.js';
import { AppserviceClient } from './appservice-client.js';
import { AppserviceFanOut } from './event-fan-out.js';
import { AppserviceInterest } from './interest.js';
import { pingAppservice } from './ping.js';
import { AppserviceQueries } from './queries.js';
import type { AppserviceRegistration } from './registration.js';
import { AppserviceRegistry } from './registry.js';
import { ThirdPartyLookups } from './third-party-lookups.js';
import { TransactionSender } from './transaction-sender.js';

const APPSERVICE_TRANSACTION_IDS_KEPT_MS = 24 * 3600_000;
const APPSERVICE_TRANSACTION_IDS_PRUNE_EVERY_MS = 3600_000;

export interface Appservices {
  readonly registry: AppserviceRegistry;
  /** /thirdparty/* answered by the services that declare protocols. */
  readonly thirdParty: ThirdPartyLookups;
  /** For rooms.sender.onEventPersisted (registered only when a service is configured). */
  readonly eventPersisted: () => void;
  /**
   * A membership handshake over federation changed a user's membership: an invite, knock or
   * rescinding kept outside the timeline is queued for the services concerned.
   */
  membershipChanged(roomId: string, userId: string): void;
  /**
   * application-service "Pinging": calls the service's /_matrix/app/v1/ping; resolves to how
   * long it took (ms). M_URL_NOT_SET, M_BAD_STATUS, M_CONNECTION_FAILED, M_CONNECTION_TIMEOUT.
   */
  ping(service: AppserviceRegistration, transactionId: string | undefined): Promise<number>;
  /**
   * application-service "Querying" (query_room.yaml): asks the services whose alias namespace
   * covers the alias whether it exists; true when one answered 2xx (it has made the room).
   */
  queryAlias(alias: string): Promise<boolean>;
  /** Makes the services' sender accounts, then hands out and sends what is pending. */
  start(): Promise<void>;
  /** Resolves once every persisted event is queued and no send is under way (tests). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

export interface AppservicesOptions {
  readonly config: Pick<MyelinConfig, 'server_name' | 'appservice'>;
  readonly storage: Storage;
  readonly registrations: readonly AppserviceRegistration[];
  readonly log: Logger;
}

export function createAppservices(options: AppservicesOptions): Appservices {
  const { config, storage, log } = options;
  const registry = new AppserviceRegistry(options.registrations, config.server_name);
  const client = new AppserviceClient(config.appservice.request_timeout_ms);
  const queries = new AppserviceQueries(registry, client, storage.accounts, log);
  const sender = new TransactionSender(registry, {
    store: storage.appservices,
    client,
    log,
    maxEventsPerTransaction: config.appservice.max_events_per_transaction,
    initialRetryDelayMs: config.appservice.initial_retry_delay_ms,
    maxRetryDelayMs: config.appservice.max_retry_delay_ms,
    beforeSend: (service, events) => queries.queryInvitees(service, events),
  });
  const fanOut = new AppserviceFanOut({
    store: storage.appservices,
    events: storage.events,
    state: storage.state,
    interest: new AppserviceInterest(registry, storage),
    receivingIds: new Set(registry.services.filter((s) => s.url !== null).map((s) => s.id)),
    onQueued: (ids) => {
      for (const id of ids) sender.kick(id);
    },
    log,
    initialRetryDelayMs: config.appservice.initial_retry_delay_ms,
    maxRetryDelayMs: config.appservice.max_retry_delay_ms,
  });
  let started = false;
  let pruneTimer: NodeJS.Timeout | undefined;
  /** A service retries a send within minutes; a day of its transaction IDs is kept, the rest pruned. */
  const pruneTransactionIds = () => {
    storage.transactionIds
      .deleteAppserviceTransactionsBefore(Date.now() - APPSERVICE_TRANSACTION_IDS_KEPT_MS)
      .catch((error: unknown) =>
        log.warn({ err: error }, 'Pruning application services transaction IDs failed'),
      );
  };

  return {
    registry,
    thirdParty: new ThirdPartyLookups(registry, client, log),
    eventPersisted: fanOut.eventPersisted,
    membershipChanged(roomId, userId) {
      fanOut.membershipChanged(roomId, userId).catch((error: unknown) => {
        log.warn({ err: error, roomId, userId }, 'Queueing a membership for application services failed');
      });
    },
    ping: (service, transactionId) => pingAppservice(client, service, transactionId),
    queryAlias: (alias) => queries.queryAlias(alias),
    async start() {
      if (registry.size === 0 || started) return;
      started = true;
      for (const service of registry.services) await ensureSenderAccount(storage, service);
      await fanOut.start();
      await sender.start();
      pruneTransactionIds();
      pruneTimer = setInterval(pruneTransactionIds, APPSERVICE_TRANSACTION_IDS_PRUNE_EVERY_MS);
      pruneTimer.unref();
      const orphaned = (await storage.appservices.pendingAppservices()).filter((id) => !registry.withId(id));
      if (orphaned.length > 0) {
        // Kept, not dropped: a registration removed by mistake gets its events when it comes back.
        log.warn(
          { appservices: orphaned },
          'Events are queued for application services no longer configured',
        );
      }
      log.info({ appservices: registry.services.map((service) => service.id) }, 'Application services ready');
      const ephemeral = registry.services
        .filter((service) => service.receiveEphemeral)
        .map((service) => service.id);
      if (ephemeral.length > 0) {
        log.warn(
          { appservices: ephemeral },
          'receive_ephemeral is set, but this server sends application services room events only (no typing, receipts or presence yet)',
        );
      }
    },
    async settled() {
      await fanOut.settled();
      await sender.settled();
    },
    async stop() {
      clearInterval(pruneTimer);
      await fanOut.close();
      await sender.stop();
      await client.close();
    },
  };
}

/** A service acts as its sender from the start, so the account exists (made once, kept after). */
async function ensureSenderAccount(storage: Storage, service: AppserviceRegistration): Promise<void> {
  if ((await storage.accounts.getAccount(service.sender)) !== null) return;
  try {
    await storage.accounts.createAccount({
      userId: service.sender,
      passwordHash: null,
      displayName: service.senderLocalpart,
      createdTs: Date.now(),
    });
  } catch (error) {
    if (!isStorageError(error, 'CONFLICT')) throw error;
  }
}
