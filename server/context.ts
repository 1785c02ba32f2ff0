/**
 * What a route handler may use: the parts of one Homeserver, built by
 * createHomeserver and handed to every handler. Later issues add their
 * services here (rooms, sync, media...).
 */

import type { Logger } from 'pino';
import type { Federation } from '../federation/federation.js';
import type { RemoteDeviceLists } from '../federation/remote-device-lists.js';
import type { RoomFederation } from '../federation/room-federation.js';
import type { SigningKey } from '../protocol/signing.js';
import type { Storage } from '../storage/storage.js';
import type { JwtLoginVerifier } from './accounts/jwt-login.js';
import type { LastSeenRecorder } from './accounts/last-seen-recorder.js';
import type { OpenIdTokens } from './accounts/openid-tokens.js';
import type { PasswordHasher } from './accounts/password-hash.js';
import type { PresenceService } from './accounts/presence-service.js';
import type { ProfileChangedListener, ProfileService } from './accounts/profile-service.js';
import type { RoomMembershipView } from './accounts/room-membership-view.js';
import type { SessionService } from './accounts/session-service.js';
import type { SharedSecretRegistration } from './accounts/shared-secret-registration.js';
import type { UserInteractiveAuthState } from './accounts/user-interactive-auth.js';
import type { Appservices } from './appservice/appservices.js';
import type { MyelinConfig } from './config/index.js';
import type { DeviceKeysService } from './e2e/device-keys.js';
import type { KeyBackupService } from './e2e/key-backup.js';
import type { ToDeviceService } from './e2e/to-device.js';
import type { RateLimiter } from './http/rate-limit.js';
import type { ThirdPartyInvites } from './identity/third-party-invites.js';
import type { MediaService } from './media/media-service.js';
import type { UrlPreviewService } from './media/url-preview.js';
import type { OpenApiDocument } from './openapi/document.js';
import type { PushService } from './push/push-service.js';
import type { RetentionService } from './retention/retention-service.js';
import type { HistoryVisibility } from './rooms/history-visibility.js';
import type { ReceiptService } from './rooms/receipts.js';
import type { RelationService } from './rooms/relations.js';
import type { RoomArchive } from './rooms/room-archive.js';
import type { RoomDirectory } from './rooms/room-directory.js';
import type { RoomServices } from './rooms/room-services.js';
import type { RoomTags } from './rooms/room-tags.js';
import type { TypingService } from './rooms/typing.js';
import type { SearchService } from './search/search-service.js';
import type { SlidingSyncService } from './sliding-sync/sliding-sync-service.js';
import type { SyncNotifier } from './sync/notifier.js';
import type { SyncService } from './sync/sync-service.js';

export interface HomeserverContext {
  readonly config: MyelinConfig;
  readonly log: Logger;
  readonly storage: Storage;
  readonly signingKey: SigningKey;
  /** scrypt hashing and constant-time verification of passwords (accounts/password-hash.ts). */
  readonly passwords: PasswordHasher;
  /** Login sessions, access/refresh/login tokens, revocation (accounts/session-service.ts). */
  readonly sessions: SessionService;
  /** Devices' last seen IP/user agent/time, and `onActivity` for presence (accounts/last-seen-recorder.ts). */
  readonly lastSeen: LastSeenRecorder;
  /** org.matrix.login.jwt, when config.jwt_login.enabled (accounts/jwt-login.ts). */
  readonly jwtLogin: JwtLoginVerifier | undefined;
  /** The token buckets the pipeline uses; routes draw extra ones (per-account login attempts). */
  readonly rateLimiter: RateLimiter;
  /** User-interactive auth bookkeeping (sweeps, reserved registration tokens); see accounts/user-interactive-auth.ts. */
  readonly userInteractiveAuth: UserInteractiveAuthState;
  /** Called after an account is deactivated (its sessions and devices are already gone); #4 makes the user leave rooms here. */
  readonly onAccountDeactivated: AccountDeactivatedListener[];
  /** Nonces and the MAC check of Synapse-compatible /_synapse/admin/v1/register. */
  readonly sharedSecretRegistration: SharedSecretRegistration;
  /** Who is joined where, from the rooms' current state: presence visibility, user directory (accounts/room-membership-view.ts). */
  readonly membership: RoomMembershipView;
  /** displayname, avatar_url and custom profile fields (accounts/profile-service.ts). */
  readonly profiles: ProfileService;
  /** Called after a profile change is stored; #4 updates the user's membership events here. */
  readonly onProfileChanged: ProfileChangedListener[];
  /** online/unavailable/offline, timers and the presence stream (accounts/presence-service.ts). */
  readonly presence: PresenceService;
  /** The rooms domain: the send path, room creation, membership changes, current-state reads (rooms/room-services.ts). */
  readonly rooms: RoomServices;
  /** Room aliases (resolveAlias), the published room directory and space hierarchies (rooms/room-directory.ts). */
  readonly directory: RoomDirectory;
  /** Wakes waiting syncs for what concerns their user (sync/notifier.ts); services call notifyRooms/notifyUsers after their writes. */
  readonly notifier: SyncNotifier;
  /** /sync computed for a user, long-polling included; the WebSocket pushes its results too (sync/sync-service.ts). */
  readonly sync: SyncService;
  /** Simplified sliding sync (MSC4186): connections, room lists, extensions (sliding-sync/sliding-sync-service.ts). */
  readonly slidingSync: SlidingSyncService;
  /** Who types where, in memory, with the typing stream's positions (rooms/typing.ts). */
  readonly typing: TypingService;
  /** Receipts (m.read, m.read.private, io.myelin.delivered) and m.fully_read markers (rooms/receipts.ts). */
  readonly receipts: ReceiptService;
  /** Push rules, pushers, unread counts (`unreadCounts`) and delivery to push gateways (push/push-service.ts). */
  readonly push: PushService;
  /** A user's tags on rooms, kept as m.tag room account data (rooms/room-tags.ts). */
  readonly tags: RoomTags;
  /** Users' archived conversations: the io.myelin.archived tag, unarchive on activity (rooms/room-archive.ts). */
  readonly archive: RoomArchive;
  /** Which room events each user may see (rooms/history-visibility.ts); applied wherever events are served. */
  readonly historyVisibility: HistoryVisibility;
  /** Relation checks before a send, bundled aggregations (unsigned m.relations), /relations and /threads (rooms/relations.ts). */
  readonly relations: RelationService;
  /** Short-lived tokens proving a user's identity to third parties (accounts/openid-tokens.ts). */
  readonly openIdTokens: OpenIdTokens;
  /** Send-to-device: sends, each device's pending messages and their acknowledgement (e2e/to-device.ts). */
  readonly toDevice: ToDeviceService;
  /** Server-side key backups: versions and backed-up room keys (e2e/key-backup.ts). */
  readonly keyBackup: KeyBackupService;
  /** Device, one-time, fallback and cross-signing keys, signatures and device-list changes (e2e/device-keys.ts). */
  readonly deviceKeys: DeviceKeysService;
  /** The content repository: uploads, downloads, thumbnails, quarantine (media/media-service.ts). */
  readonly media: MediaService;
  /** OpenGraph previews of URLs, guarded against SSRF, cached (media/url-preview.ts). */
  readonly urlPreviews: UrlPreviewService;
  /** /search over the search index, with history visibility applied (search/search-service.ts). */
  readonly search: SearchService;
  /** Operator retention: moves old history to cold storage on a schedule (retention/retention-service.ts). */
  readonly retention: RetentionService;
  /** Server-Server API: signed client, key ring, outbound queue, inbound transactions and EDUs (federation/federation.ts). */
  readonly federation: Federation;
  /** Rooms over federation: inbound PDUs, join/leave/invite handshakes, reads for peers (federation/room-federation.ts). */
  readonly roomFederation: RoomFederation;
  /** Third-party (3PID) invites through identity servers, and their exchange over federation. */
  readonly thirdPartyInvites: ThirdPartyInvites;
  /** The cache of other servers' users' device lists (absent when federation is disabled). */
  readonly remoteDeviceLists?: RemoteDeviceLists | undefined;
  /** Application services: registrations, identity assertion, event transactions, ping (appservice/appservices.ts). */
  readonly appservices: Appservices;
  /** Aborted when the server begins to stop. */
  readonly shutdownSignal: AbortSignal;
  /** The OpenAPI document of every route this server declares (built on first use). */
  openApiDocument(): OpenApiDocument;
}

export type AccountDeactivatedListener = (event: { userId: string; erase: boolean }) => Promise<void>;
