/**
 * Builds `hs.federation` from the config: resolver and TLS agents, signed
 * client, key ring, access lists, outbound queue, inbound transactions and
 * the standard EDU handlers. Room federation supplies the InboundPduHandler
 * through `inbound` (it receives the built Federation, to make requests).
 */
import { resolveSrv } from 'node:dns/promises';
import type { Logger } from 'pino';
import type { JsonObject } from '../protocol/events.js';
import { buildServerKeys, type OldVerifyKey } from '../protocol/server-keys.js';
import { type SigningKey, signJson } from '../protocol/signing.js';
import type { PresenceService } from '../server/accounts/presence-service.js';
import type { MyelinConfig } from '../server/config/index.js';
import type { ReceiptService } from '../server/rooms/receipts.js';
import type { TypingService } from '../server/rooms/typing.js';
import type { Storage } from '../storage/storage.js';
import { createFederationAccess } from './access.js';
import { registerStandardEduHandlers } from './edu-handlers.js';
import { createEduRegistry } from './edu-registry.js';
import type { Federation, FederationClient, InboundPduHandler } from './federation.js';
import { createFederationHttpClient, TlsAgents, wellKnownFetcher } from './http-client.js';
import { createInboundTransactions, unimplementedPduHandler } from './inbound-transactions.js';
import { createKeyRing } from './key-ring.js';
import { createEduAnnouncer } from './outbound-edus.js';
import { createOutboundQueue } from './outbound-queue.js';
import { createServerAuthenticator } from './request-auth.js';
import { createServerResolver, type ServerResolverOptions } from './server-resolver.js';

export interface FederationDependencies {
  readonly config: MyelinConfig;
  readonly storage: Storage;
  readonly signingKey: SigningKey;
  readonly oldKeys: readonly OldVerifyKey[];
  /** PEM of federation.ca_file, read by the caller. */
  readonly extraCa: string | undefined;
  readonly log: Logger;
  readonly typing: TypingService;
  readonly receipts: ReceiptService;
  readonly presence: PresenceService;
  /** Room federation's handler of received PDUs; default answers each with an error. */
  readonly inbound?: (federation: Federation) => InboundPduHandler;
  /** Replaces DNS SRV lookups (tests). */
  readonly resolveSrv?: ServerResolverOptions['resolveSrv'];
  /** Replaces the signed HTTP client (tests). */
  readonly client?: FederationClient;
}

export function createFederation(deps: FederationDependencies): Federation {
  const { config, storage, signingKey, log } = deps;
  const settings = config.federation;
  const serverName = config.server_name;
  const access = createFederationAccess({
    allowlist: settings.domain_allowlist,
    denylist: settings.domain_denylist,
    storage,
  });
  const agents = new TlsAgents(deps.extraCa);
  const resolver = createServerResolver({
    resolveSrv:
      deps.resolveSrv ??
      (async (name) => {
        try {
          return await resolveSrv(name);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
          throw error;
        }
      }),
    fetchWellKnown: wellKnownFetcher(agents),
    overrides: settings.resolver_overrides,
  });
  const client =
    deps.client ??
    createFederationHttpClient(
      {
        serverName,
        signingKey,
        ...(deps.extraCa ? { extraCa: deps.extraCa } : {}),
        requestTimeoutMs: settings.request_timeout_ms,
        maxResponseBytes: settings.max_response_bytes,
        isServerAllowed: (name) => settings.enabled && access.isServerAllowed(name),
      },
      resolver,
      agents,
    );
  const ownValidUntilTs = () => Date.now() + settings.key_validity_period_ms;
  const keys = createKeyRing({
    serverName,
    signingKey,
    oldKeys: deps.oldKeys,
    ownValidUntilTs,
    store: storage.federation,
    client,
    trustedKeyServers: settings.trusted_key_servers,
    log,
  });
  const queue = createOutboundQueue({
    serverName,
    store: storage.federation,
    client,
    log,
    minBackoffMs: settings.retry_min_backoff_ms,
    maxBackoffMs: settings.retry_max_backoff_ms,
    isServerAllowed: (name) => settings.enabled && access.isServerAllowed(name),
  });
  const edus = createEduRegistry(log);
  registerStandardEduHandlers(edus, {
    storage,
    typing: deps.typing,
    receipts: deps.receipts,
    presence: deps.presence,
    access,
    log,
  });
  const announce = createEduAnnouncer({ serverName, storage, queue, log, enabled: settings.enabled });
  deps.presence.onPresenceChanged((record) => announce.presence(record));
  let inbound: InboundPduHandler = unimplementedPduHandler;
  const transactions = createInboundTransactions({
    store: storage.federation,
    pdus: () => inbound,
    edus,
    log,
    acl: {
      access,
      roomVersionOf: async (roomId) => (await storage.rooms.getRoom(roomId))?.roomVersion,
    },
  });
  const ownServerKeys = () =>
    buildServerKeys({ serverName, key: signingKey, oldKeys: deps.oldKeys, validUntilTs: ownValidUntilTs() });

  const federation: Federation = {
    enabled: settings.enabled,
    client,
    keys,
    queue,
    get inbound() {
      return inbound;
    },
    edus,
    announce,
    access,
    transactions,
    authenticateServer: createServerAuthenticator({
      serverName,
      enabled: settings.enabled,
      keys,
      access,
      onAuthenticated: (origin) => queue.wake(origin),
    }),
    ownServerKeys,
    async notarise(name, minimumValidUntilTs) {
      const response =
        name === serverName ? ownServerKeys() : await keys.keyResponseFor(name, minimumValidUntilTs);
      // spec "Querying Keys Through Another Server": the notary adds its own signature.
      return response === undefined ? undefined : (signJson(response, serverName, signingKey) as JsonObject);
    },
    async start() {
      if (settings.enabled) await queue.start();
    },
    async stop() {
      await queue.stop();
      await client.close();
    },
  };
  if (deps.inbound) inbound = deps.inbound(federation);
  return federation;
}
