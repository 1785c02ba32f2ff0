/**
 * The route table: every endpoint the server declares, gathered from the route
 * files (one per spec module). The app, the router and the OpenAPI document
 * all read this one list.
 */
import type { Route } from '../http/route.js';
import { accountRoutes } from './account.js';
import { accountDataRoutes } from './account-data.js';
import { adminRoutes } from './admin.js';
import { appserviceRoutes } from './appservice.js';
import { archiveRoutes } from './archive.js';
import { capabilitiesRoutes } from './capabilities.js';
import { deviceRoutes } from './devices.js';
import { directoryRoutes } from './directory.js';
import { docsRoutes } from './docs.js';
import { federationE2eRoutes } from './federation-e2e.js';
import { federationInviteV1Routes } from './federation-invite-v1.js';
import { federationKeyRoutes } from './federation-keys.js';
import { federationMediaRoutes } from './federation-media.js';
import { federationQueryRoutes } from './federation-queries.js';
import { federationRoomRoutes } from './federation-rooms.js';
import { federationThirdPartyRoutes } from './federation-third-party.js';
import { federationTransactionRoutes } from './federation-transactions.js';
import { filterRoutes } from './filters.js';
import { healthRoutes } from './health.js';
import { keysRoutes } from './keys.js';
import { legacySyncRoutes } from './legacy-sync.js';
import { loginRoutes } from './login.js';
import { mediaRoutes } from './media.js';
import { mediaAdminRoutes } from './media-admin.js';
import { mutualRoomsRoutes } from './mutual-rooms.js';
import { openIdRoutes } from './openid.js';
import { presenceRoutes } from './presence.js';
import { profileRoutes } from './profile.js';
import { pushRuleRoutes } from './push-rules.js';
import { pusherRoutes } from './pushers.js';
import { readMarkerRoutes } from './read-markers.js';
import { receiptRoutes } from './receipts.js';
import { registerRoutes } from './register.js';
import { relationRoutes } from './relations.js';
import { roomKeysRoutes } from './room-keys.js';
import { roomSummaryRoutes } from './room-summary.js';
import { roomCreationRoutes } from './rooms-create.js';
import { roomMembershipRoutes } from './rooms-membership.js';
import { roomsReadRoutes } from './rooms-read.js';
import { roomSendRoutes } from './rooms-send.js';
import { roomUpgradeRoutes } from './rooms-upgrade.js';
import { searchRoutes } from './search.js';
import { slidingSyncRoutes } from './sliding-sync.js';
import { synapseAdminRoutes } from './synapse-admin.js';
import { syncRoutes } from './sync.js';
import { tagRoutes } from './tags.js';
import { thirdPartyRoutes } from './third-party.js';
import { toDeviceRoutes } from './to-device.js';
import { typingRoutes } from './typing.js';
import { userDirectoryRoutes } from './user-directory.js';
import { versionsRoutes } from './versions.js';
import { voipRoutes } from './voip.js';
import { webSocketRoutes } from './websocket.js';
import { wellKnownRoutes } from './well-known.js';

export const allRoutes: readonly Route[] = [
  ...versionsRoutes,
  ...wellKnownRoutes,
  ...healthRoutes,
  ...docsRoutes,
  ...loginRoutes,
  ...registerRoutes,
  ...accountRoutes,
  ...synapseAdminRoutes,
  ...deviceRoutes,
  ...profileRoutes,
  ...presenceRoutes,
  ...userDirectoryRoutes,
  ...capabilitiesRoutes,
  ...roomsReadRoutes,
  ...roomSummaryRoutes,
  ...relationRoutes,
  ...roomCreationRoutes,
  ...roomMembershipRoutes,
  ...roomSendRoutes,
  ...roomUpgradeRoutes,
  ...typingRoutes,
  ...receiptRoutes,
  ...readMarkerRoutes,
  ...accountDataRoutes,
  ...tagRoutes,
  ...archiveRoutes,
  ...directoryRoutes,
  ...appserviceRoutes,
  ...webSocketRoutes,
  ...syncRoutes,
  ...slidingSyncRoutes,
  ...keysRoutes,
  ...filterRoutes,
  ...mutualRoomsRoutes,
  ...voipRoutes,
  ...thirdPartyRoutes,
  ...openIdRoutes,
  ...adminRoutes,
  ...legacySyncRoutes,
  ...toDeviceRoutes,
  ...roomKeysRoutes,
  ...mediaRoutes,
  ...mediaAdminRoutes,
  ...searchRoutes,
  ...pushRuleRoutes,
  ...pusherRoutes,
  ...federationKeyRoutes,
  ...federationTransactionRoutes,
  ...federationRoomRoutes,
  ...federationE2eRoutes,
  ...federationMediaRoutes,
  ...federationQueryRoutes,
  ...federationThirdPartyRoutes,
  ...federationInviteV1Routes,
];
