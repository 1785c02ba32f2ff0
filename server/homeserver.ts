/**
 * Composes one Homeserver from a validated config: storage, signing key, the
 * route table, one HTTP app and server per listener. Disposable: everything it
 * opens, stop() closes; no module-level state, nothing happens at import.
 */
import { setMaxListeners } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { createFederation } from '../federation/compose.js';
import { createDeviceListAnnouncer, registerE2eEduHandlers } from '../federation/e2e-edus.js';
import { oldSigningKeysPath, readOldSigningKeys } from '../federation/old-signing-keys.js';
import { RemoteDeviceLists } from '../federation/remote-device-lists.js';
import { RemoteHierarchy } from '../federation/remote-hierarchy.js';
import { createRemoteKeyQueries } from '../federation/remote-keys.js';
import { createRemoteMediaSource } from '../federation/remote-media.js';
import { requesterOver } from '../federation/remote-rooms.js';
import { createRoomFederation, type RoomFederation } from '../federation/room-federation.js';
import { libsodiumLoadError } from '../protocol/ed25519.js';
import type { OldVerifyKey } from '../protocol/server-keys.js';
import {
  formatSigningKeyFile,
  generateSigningKey,
  parseSigningKeyFile,
  type SigningKey,
} from '../protocol/signing.js';
import type { SearchIndex } from '../storage/search-index.js';
import { openSqliteStorage } from '../storage/sqlite/sqlite-storage.js';
import type { Storage } from '../storage/storage.js';
import { createAccessTokenCodec, loadOrCreateSessionSecret } from './accounts/access-tokens.js';
import { createAccountsAuthenticator } from './accounts/authenticator.js';
import { type JwtLoginVerifier, loadJwtLoginVerifier } from './accounts/jwt-login.js';
import { createLastSeenRecorder } from './accounts/last-seen-recorder.js';
import { createOpenIdTokens } from './accounts/openid-tokens.js';
import { createPasswordHasher } from './accounts/password-hash.js';
import { createPresenceService } from './accounts/presence-service.js';
import { createProfileService, type ProfileChangedListener } from './accounts/profile-service.js';
import { createRoomMembershipView } from './accounts/room-membership-view.js';
import { createSessionService } from './accounts/session-service.js';
import {
  createSharedSecretRegistration,
  loadOrCreateRegistrationSharedSecret,
} from './accounts/shared-secret-registration.js';
import { createUserInteractiveAuthState } from './accounts/user-interactive-auth.js';
import { createAppservices } from './appservice/appservices.js';
import { type AppserviceRegistration, loadAppserviceRegistrations } from './appservice/registration.js';
import type { ListenerConfig, MyelinConfig } from './config/index.js';
import type { HomeserverContext } from './context.js';
import { createDeviceKeysService, type RemoteKeyQueries } from './e2e/device-keys.js';
import { KeyBackupService } from './e2e/key-backup.js';
import { type RemoteToDeviceSender, ToDeviceService } from './e2e/to-device.js';
import { createHttpApp, createRouteDispatcher } from './http/app.js';
import type { Authenticator } from './http/auth.js';
import { createRateLimiter } from './http/rate-limit.js';
import type { Resource, Route } from './http/route.js';
import { createRequestValidation } from './http/validation.js';
import { ThirdPartyInvites } from './identity/third-party-invites.js';
import { createLogger } from './logger.js';
import { BlobStore } from './media/blob-store.js';
import { loadMediaKey } from './media/encryption.js';
import { MediaService, noRemoteMedia, type RemoteMediaSource } from './media/media-service.js';
import { type MediaRetentionSchedule, scheduleMediaRetention } from './media/retention.js';
import { createTranscoder, type Transcoder } from './media/transcoder.js';
import { UrlPreviewService } from './media/url-preview.js';
import { buildOpenApiDocument, type OpenApiDocument } from './openapi/document.js';
import { PushService } from './push/push-service.js';
import { RetentionService } from './retention/retention-service.js';
import { announceProfileChange, leaveRoomsOnDeactivation } from './rooms/account-hooks.js';
import { createHistoryVisibility } from './rooms/history-visibility.js';
import { ReceiptService } from './rooms/receipts.js';
import { createRelationService } from './rooms/relations.js';
import { RoomArchive } from './rooms/room-archive.js';
import { createRoomDirectory } from './rooms/room-directory.js';
import { createRoomServices } from './rooms/room-services.js';
import { RoomTags } from './rooms/room-tags.js';
import { stopTypingOnLeave, TypingService } from './rooms/typing.js';
import { allRoutes } from './routes/index.js';
import { SearchIndexer } from './search/search-indexer.js';
import { SearchService } from './search/search-service.js';
import { SlidingSyncService } from './sliding-sync/sliding-sync-service.js';
import { notifyOnPresence, notifyOnRoomEvents, SyncNotifier } from './sync/notifier.js';
import { SyncService } from './sync/sync-service.js';
import type { WebSocketLimits } from './ws/connection.js';
import { createWebSocketGateway, type WebSocketGateway } from './ws/gateway.js';

export interface HomeserverOptions {
  readonly logger?: Logger;
  /** Who owns an access token or an X-Matrix signature; the accounts and federation work supply it. */
  readonly authenticator?: Authenticator;
  /** The route table; defaults to every route the server declares. */
  readonly routes?: readonly Route[];
  /** Check each JSON response against its schema (tests, development). */
  readonly validateResponses?: boolean;
  /** How long stop() lets in-flight requests finish before cutting their connections. */
  readonly shutdownTimeoutMs?: number;
  /** Heartbeat, buffer and frame limits of the WebSocket endpoint (tests); see ws/gateway.ts for the defaults. */
  readonly webSocketLimits?: Partial<WebSocketLimits>;
}

export interface Homeserver {
  readonly config: MyelinConfig;
  readonly context: HomeserverContext;
  /** Listens on every configured listener; resolves with the bound ports, one per listener address, in order. */
  start(): Promise<{ ports: number[] }>;
  /** Stops accepting, lets in-flight requests drain (up to the deadline), closes the database. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/** Opens storage and the signing key; call start() to listen and stop() to release everything. */
export async function createHomeserver(
  config: MyelinConfig,
  options: HomeserverOptions = {},
): Promise<Homeserver> {
  const log = options.logger ?? createLogger(config.logging);
  await mkdir(config.data_dir, { recursive: true });
  const signingKey = await loadOrCreateSigningKey(config.signing_key_path, log);
  const accountKeys = {
    sessionSecret: await loadOrCreateSessionSecret(config, log),
    jwtLogin: await loadJwtLoginVerifier(config),
    registrationSharedSecret: await loadOrCreateRegistrationSharedSecret(config, log),
  };
  const mediaParts = await prepareMedia(config, log);
  const federationFiles = await loadFederationFiles(config);
  const appserviceRegistrations = await loadAppserviceRegistrations(
    config.app_service_config_files,
    config.server_name,
  );
  const storage = await openStorage(config);
  let searchIndex: SearchIndex | undefined;
  try {
    searchIndex = await openSearchIndex(config, storage);
    return assemble(
      config,
      options,
      log,
      signingKey,
      storage,
      searchIndex,
      accountKeys,
      mediaParts,
      federationFiles,
      appserviceRegistrations,
    );
  } catch (error) {
    if (searchIndex !== undefined && searchIndex !== storage.search) await searchIndex.close();
    await storage.close();
    throw error;
  }
}

function assemble(
  config: MyelinConfig,
  options: HomeserverOptions,
  log: Logger,
  signingKey: SigningKey,
  storage: Storage,
  searchIndex: SearchIndex,
  accountKeys: {
    sessionSecret: Uint8Array;
    jwtLogin: JwtLoginVerifier | undefined;
    registrationSharedSecret: string;
  },
  mediaParts: { blobs: BlobStore; transcoder: Transcoder },
  federationFiles: FederationFiles,
  appserviceRegistrations: readonly AppserviceRegistration[],
): Homeserver {
  const routes = options.routes ?? allRoutes;
  const shutdown = new AbortController();
  // Every parked long-poll listens on this signal (and unhooks when it ends); thousands at once is normal, not a leak.
  setMaxListeners(0, shutdown.signal);
  let openApi: OpenApiDocument | undefined;
  const lastSeen = createLastSeenRecorder({ devices: storage.devices, log });
  const sessions = createSessionService({
    config,
    storage,
    tokens: createAccessTokenCodec(accountKeys.sessionSecret, config.server_name),
    lastSeen,
    log,
    onDevicesChanged: (userId) => deviceKeys.devicesChanged(userId),
  });
  const rateLimiter = createRateLimiter(config.rate_limits);
  const membership = createRoomMembershipView(storage);
  const onProfileChanged: ProfileChangedListener[] = [];
  const presence = createPresenceService({
    config: config.presence,
    store: storage.presence,
    membership,
    log,
  });
  lastSeen.onActivity((userId) => presence.markActive(userId));
  const directory = createRoomDirectory({ storage, serverName: config.server_name });
  const rooms = createRoomServices({
    storage,
    serverName: config.server_name,
    signingKey,
    aliases: directory,
    log,
    onListenerError: (error, persisted) =>
      log.error({ err: error, eventId: persisted.event.eventId }, 'Room event listener failed'),
  });
  const roomAccountHooks = { storage, membership: rooms.membership, log };
  onProfileChanged.push(announceProfileChange(roomAccountHooks));
  directory.follow(rooms.sender);
  const notifier = new SyncNotifier();
  const deviceKeys = createDeviceKeysService({
    storage,
    serverName: config.server_name,
    notifier: () => notifier,
    log,
    // Federation is built below; until then (and when disabled) remote users are failures.
    remote: () => remoteKeys,
    onLocalChange: () => announceDeviceList,
  });
  let remoteKeys: RemoteKeyQueries | undefined;
  let announceDeviceList: ((userId: string, what: 'devices' | 'signing_keys') => void) | undefined;
  let remoteToDevice: RemoteToDeviceSender | undefined;
  const toDevice = new ToDeviceService({
    store: storage.toDevice,
    serverName: config.server_name,
    notifier: () => notifier,
    log,
    remote: () => remoteToDevice,
  });
  const typing = new TypingService({ notifier: () => notifier });
  stopTypingOnLeave(typing, rooms.sender);
  const receipts = new ReceiptService({ storage, notifier: () => notifier });
  // From the start every receipt write is seen, so syncs can skip receipts that cannot concern them.
  receipts
    .trackChanges()
    .catch((error: unknown) => log.warn({ err: error }, 'Receipt tracking did not start'));
  notifyOnRoomEvents(notifier, rooms.sender);
  const sync = new SyncService(storage, () => context);
  rooms.sender.onEventPersisted((persisted) => sync.observe(persisted));
  const searchIndexer = new SearchIndexer({ storage, index: searchIndex, log });
  rooms.sender.onEventPersisted(searchIndexer.eventPersisted);
  const tags = new RoomTags(storage, () => notifier);
  const archive = new RoomArchive(storage, tags, config.server_name, log);
  const retention = new RetentionService(storage, config.retention, log);
  rooms.sender.onEventPersisted(archive.eventPersisted);
  const push = new PushService({
    config,
    storage,
    reads: rooms.reads,
    log,
    notifyUsers: (userIds) => notifier.notifyUsers(userIds, 'account_data'),
  });
  rooms.sender.onEventPersisted((persisted) => push.observe(persisted));
  receipts.onReadReceipt(({ userId, roomId, threadId, eventId }) =>
    // A failure here leaves counts high until the next receipt; the receipt itself stands.
    push.receiptMoved(userId, roomId, threadId, eventId).catch((error: unknown) => {
      log.warn({ err: error, roomId, eventId }, 'Clearing notifications after a receipt failed');
    }),
  );
  const slidingSync = new SlidingSyncService(() => context);
  rooms.sender.onEventPersisted((persisted) => slidingSync.observe(persisted));
  const appservices = createAppservices({ config, storage, registrations: appserviceRegistrations, log });
  // Without application services the send path carries no listener for them.
  if (appservices.registry.size > 0) {
    rooms.sender.onEventPersisted(appservices.eventPersisted);
    directory.provideUnknownAliases((alias) => appservices.queryAlias(alias));
  }
  presence.onPresenceChanged((record) => sync.observePresence(record));
  notifyOnPresence(notifier, presence, membership, (error) =>
    log.warn({ err: error }, 'Presence notification failed'),
  );
  const media = new MediaService({
    config,
    storage,
    ...mediaParts,
    // Remote media through federation (set below); disabled federation: 404 M_NOT_FOUND.
    remote: {
      fetch: (serverName, mediaId) => remoteMedia.fetch(serverName, mediaId),
      fetchThumbnail: async (serverName, mediaId, size) =>
        (await remoteMedia.fetchThumbnail?.(serverName, mediaId, size)) ?? null,
    },
    log,
  });
  let remoteMedia: RemoteMediaSource = noRemoteMedia;
  let remoteDeviceLists: RemoteDeviceLists | undefined;
  const urlPreviews = new UrlPreviewService({ config, media, log });
  const thirdPartyInvites = new ThirdPartyInvites(() => context, config, log);
  let roomFederation: RoomFederation | undefined;
  const federation = createFederation({
    config,
    storage,
    signingKey,
    oldKeys: federationFiles.oldKeys,
    extraCa: federationFiles.extraCa,
    log,
    typing,
    receipts,
    presence,
    inbound: (built) => {
      roomFederation = createRoomFederation({
        federation: built,
        storage,
        sender: rooms.sender,
        roomReads: rooms.reads,
        serverName: config.server_name,
        signingKey,
        log,
        onMembershipChanged: (roomId, userId) => {
          // Invites and knocks kept outside the timeline are not announced as persisted events.
          if (appservices.registry.size > 0) appservices.membershipChanged(roomId, userId);
          sync.membershipChanged(roomId, userId);
          slidingSync.membershipChanged(roomId, userId);
          notifier.notifyUsers([userId], 'invites');
          notifier.notifyRooms([roomId], 'events');
        },
        onEventRewritten: (eventId) => {
          sync.forgetEvent(eventId);
          slidingSync.forgetEvent(eventId);
        },
      });
      return roomFederation.inbound;
    },
  });
  if (federation.enabled) {
    remoteDeviceLists = new RemoteDeviceLists({
      upstream: createRemoteKeyQueries(federation.client),
      client: federation.client,
      storage,
      serverName: config.server_name,
      log,
    });
    rooms.sender.onEventPersisted(remoteDeviceLists.eventPersisted);
    remoteKeys = remoteDeviceLists.queries;
    remoteMedia = createRemoteMediaSource({
      client: federation.client,
      storage,
      media: () => media,
      maxBytes: config.media.max_upload_bytes,
      log,
    });
    remoteToDevice = (destination, content) =>
      federation.queue.sendEdu(destination, { edu_type: 'm.direct_to_device', content: content as never });
    directory.useRemoteHierarchy(
      new RemoteHierarchy({
        request: requesterOver(federation.client),
        serverName: config.server_name,
        onError: (error, roomId, server) =>
          log.debug({ err: error, roomId, server }, 'Remote space hierarchy request failed'),
      }),
    );
    announceDeviceList = createDeviceListAnnouncer({
      serverName: config.server_name,
      storage,
      queue: federation.queue,
      deviceKeys,
      log,
    });
  }
  registerE2eEduHandlers(federation.edus, { toDevice, deviceKeys, storage, deviceLists: remoteDeviceLists });
  const context: HomeserverContext = {
    config,
    log,
    storage,
    signingKey,
    passwords: createPasswordHasher(config.password_hashing),
    sessions,
    lastSeen,
    jwtLogin: accountKeys.jwtLogin,
    rateLimiter,
    userInteractiveAuth: createUserInteractiveAuthState(),
    onAccountDeactivated: [
      leaveRoomsOnDeactivation(roomAccountHooks),
      async ({ userId, erase }) => {
        if (erase) await searchIndexer.eraseSender(userId);
      },
      ({ userId }) => push.removePushersOf(userId),
    ],
    membership,
    profiles: createProfileService({
      storage,
      serverName: config.server_name,
      listeners: onProfileChanged,
      log,
    }),
    onProfileChanged,
    presence,
    rooms,
    notifier,
    sync,
    slidingSync,
    typing,
    receipts,
    tags,
    archive,
    retention,
    push,
    directory,
    sharedSecretRegistration: createSharedSecretRegistration(accountKeys.registrationSharedSecret),
    historyVisibility: createHistoryVisibility(storage),
    relations: createRelationService({ storage, visibility: () => context.historyVisibility }),
    openIdTokens: createOpenIdTokens(accountKeys.sessionSecret, config.server_name),
    toDevice,
    keyBackup: new KeyBackupService(storage.keyBackups),
    deviceKeys,
    media,
    urlPreviews,
    thirdPartyInvites,
    search: new SearchService(() => context, searchIndexer, searchIndex),
    federation,
    roomFederation: roomFederation!,
    remoteDeviceLists,
    appservices,
    shutdownSignal: shutdown.signal,
    openApiDocument: () => {
      openApi ??= buildOpenApiDocument(
        routes.filter((route) => route.resource !== 'docs' || config.docs.enabled),
      );
      return openApi;
    },
  };

  const pipeline = {
    context,
    authenticator:
      options.authenticator ??
      createAccountsAuthenticator(sessions, federation.authenticateServer, {
        registry: appservices.registry,
        sessions,
        devices: storage.devices,
      }),
    rateLimiter,
    validation: createRequestValidation(),
    maxRequestBodyBytes: config.limits.max_request_body_bytes,
    validateResponses: options.validateResponses ?? false,
  };
  let stopping = false;
  const servers: Server[] = [];
  const webSockets: WebSocketGateway[] = [];
  for (const listener of config.listeners) {
    const resources = servedBy(listener, config);
    const dispatcher = createRouteDispatcher(
      routes.filter((route) => resources.has(route.resource)),
      pipeline,
    );
    const app = createHttpApp({
      dispatcher,
      logger: log,
      shutdownSignal: shutdown.signal,
      corsAllowedOrigins: config.cors.allowed_origins,
      trustProxy: listener.x_forwarded,
      stopping: () => stopping,
    });
    const webSocket = createWebSocketGateway({
      dispatcher,
      authenticator: pipeline.authenticator,
      context,
      sync: context.sync,
      servesClientApi: resources.has('client'),
      trustProxy: listener.x_forwarded,
      ...(options.webSocketLimits ? { limits: options.webSocketLimits } : {}),
      log,
    });
    webSockets.push(webSocket);
    for (const _address of listener.bind_addresses) {
      const server = listener.tls.cert_file
        ? createTlsServer(
            { cert: federationFiles.tls.get(listener)!.cert, key: federationFiles.tls.get(listener)!.key },
            app,
          )
        : createServer(app);
      server.on('upgrade', webSocket.handleUpgrade);
      servers.push(server);
    }
  }

  let mediaRetention: MediaRetentionSchedule | undefined;
  let started = false;
  let stopped: Promise<void> | undefined;
  return {
    config,
    context,
    async start() {
      if (started) throw new Error('Homeserver already started');
      started = true;
      if (libsodiumLoadError !== undefined) {
        log.warn(
          { error: libsodiumLoadError },
          'libsodium (sodium-native) did not load: ed25519 runs on node:crypto, about half as fast',
        );
      }
      await presence.start();
      typing.start();
      mediaRetention = await scheduleMediaRetention({ config, storage, media, log });
      // Events stored while the server was down (or before the index existed) become searchable.
      searchIndexer.catchUp().catch((error: unknown) => log.warn({ err: error }, 'Search indexing failed'));
      retention.start();
      await federation.start();
      await appservices.start();
      const ports: number[] = [];
      let index = 0;
      for (const listener of config.listeners) {
        for (const address of listener.bind_addresses) {
          const server = servers[index++]!;
          ports.push(await listen(server, listener.port, address));
          log.info({ address, port: ports.at(-1), resources: listener.resources }, 'Listening');
        }
      }
      return { ports };
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        shutdown.abort();
        const deadline = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
        await Promise.all([
          ...webSockets.map((webSocket) => webSocket.close(deadline)),
          ...servers.filter((server) => server.listening).map((server) => drain(server, deadline)),
        ]);
        await federation.stop();
        await appservices.stop();
        await presence.stop();
        typing.close();
        await rooms.close();
        // Deliveries handed out in the last few milliseconds are still gathering.
        await receipts.flushDeliveries().catch((error: unknown) => {
          log.warn({ err: error }, 'Recording the last delivery receipts failed');
        });
        await retention.stop();
        await searchIndexer.close();
        if (searchIndex !== storage.search) await searchIndex.close();
        await push.stop();
        await sessions.close();
        await mediaRetention?.destroy();
        await urlPreviews.close();
        await thirdPartyInvites.close();
        await storage.close();
        log.info('Stopped');
      })();
      return stopped;
    },
  };
}

function servedBy(listener: ListenerConfig, config: MyelinConfig): Set<Resource> {
  const resources = new Set<Resource>(listener.resources);
  if (!config.docs.enabled) resources.delete('docs');
  return resources;
}

/** The media folder and key, and whether ffmpeg is here (said once in the log when it is not). */
async function prepareMedia(
  config: MyelinConfig,
  log: Logger,
): Promise<{ blobs: BlobStore; transcoder: Transcoder }> {
  const encryption = config.media.encryption;
  const key = await loadMediaKey(
    {
      enabled: encryption.enabled,
      key: encryption.key,
      keyPath: encryption.key_path,
      dataDir: config.data_dir,
    },
    log,
  );
  const blobs = new BlobStore(config.media.store_path, key, encryption.enabled);
  await blobs.init();
  return { blobs, transcoder: await createTranscoder(log) };
}

interface FederationFiles {
  readonly oldKeys: OldVerifyKey[];
  readonly extraCa: string | undefined;
  /** Each TLS listener's certificate chain and key (PEM). */
  readonly tls: Map<ListenerConfig, { cert: string; key: string }>;
}

/** Old signing keys, the extra CA bundle and listener certificates, read once at start-up. */
async function loadFederationFiles(config: MyelinConfig): Promise<FederationFiles> {
  const tls = new Map<ListenerConfig, { cert: string; key: string }>();
  for (const listener of config.listeners) {
    const { cert_file: certFile, key_file: keyFile } = listener.tls;
    if (!certFile && !keyFile) continue;
    if (!certFile || !keyFile) throw new Error('A TLS listener needs both tls.cert_file and tls.key_file.');
    tls.set(listener, { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') });
  }
  return {
    oldKeys: await readOldSigningKeys(oldSigningKeysPath(config)),
    extraCa: config.federation.ca_file ? await readFile(config.federation.ca_file, 'utf8') : undefined,
    tls,
  };
}

/** The configured database, migrated; also used by CLI commands that work on it directly. */
export async function openStorage(config: MyelinConfig): Promise<Storage> {
  if (config.database.backend !== 'sqlite') {
    throw new Error(`Database backend '${config.database.backend}' is not available yet; use sqlite.`);
  }
  const file = config.database.sqlite.path || path.join(config.data_dir, 'homeserver.db');
  await mkdir(path.dirname(file), { recursive: true });
  return openSqliteStorage({ path: file });
}

/** The configured search index: the database's own (SQLite FTS5) or PostgreSQL's. */
async function openSearchIndex(config: MyelinConfig, storage: Storage): Promise<SearchIndex> {
  if (config.search.backend !== 'postgres') return storage.search;
  const { url, schema, pool_size: poolSize } = config.search.postgres;
  // Loaded only for this backend: the PostgreSQL client costs ~15 MB of RSS.
  const { openPostgresSearchIndex } = await import('../storage/postgres/search-index.js');
  return openPostgresSearchIndex({ url, schema, poolSize });
}

/** The key that signs this server's events: read from its file, or made and saved there on first start. */
async function loadOrCreateSigningKey(file: string, log: Logger): Promise<SigningKey> {
  try {
    return parseSigningKeyFile(await readFile(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = generateSigningKey();
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, formatSigningKeyFile(key), { mode: 0o600, flag: 'wx' });
  log.info({ keyId: key.keyId, file }, 'Generated a new signing key');
  return key;
}

function listen(server: Server, port: number, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Stops accepting connections, then closes each keep-alive connection as soon
 * as it goes idle (answers given while stopping carry Connection: close); at
 * the deadline, whatever is still open is cut.
 */
function drain(server: Server, deadlineMs: number): Promise<void> {
  return new Promise((resolve) => {
    const idleSweep = setInterval(() => server.closeIdleConnections(), 50);
    const deadline = setTimeout(() => server.closeAllConnections(), deadlineMs);
    server.close(() => {
      clearInterval(idleSweep);
      clearTimeout(deadline);
      resolve();
    });
    server.closeIdleConnections();
  });
}
