/**
 * The route table: every endpoint the server declares, gathered from the route
 * files (one per spec module). The app, the router and the OpenAPI document
 * all read this one list.
 */
import type { Route } from '../http/route.js';
import { accountRoutes } from './account.js';
import { accountDataRoutes } from './account-data.js';
import { capabilitiesRoutes } from './capabilities.js';
import { deviceRoutes } from './devices.js';
import { directoryRoutes } from './directory.js';
import { docsRoutes } from './docs.js';
import { federationKeyRoutes } from './federation-keys.js';
import { federationRoomRoutes } from './federation-rooms.js';
import { federationTransactionRoutes } from './federation-transactions.js';
import { filterRoutes } from './filters.js';
import { healthRoutes } from './health.js';
import { loginRoutes } from './login.js';
import { presenceRoutes } from './presence.js';
import { profileRoutes } from './profile.js';
import { readMarkerRoutes } from './read-markers.js';
import { receiptRoutes } from './receipts.js';
import { registerRoutes } from './register.js';
import { relationRoutes } from './relations.js';
import { roomSummaryRoutes } from './room-summary.js';
import { roomCreationRoutes } from './rooms-create.js';
import { roomMembershipRoutes } from './rooms-membership.js';
import { roomsReadRoutes } from './rooms-read.js';
import { roomSendRoutes } from './rooms-send.js';
import { roomUpgradeRoutes } from './rooms-upgrade.js';
import { synapseAdminRoutes } from './synapse-admin.js';
import { syncRoutes } from './sync.js';
import { tagRoutes } from './tags.js';
import { typingRoutes } from './typing.js';
import { userDirectoryRoutes } from './user-directory.js';
import { versionsRoutes } from './versions.js';
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
  ...directoryRoutes,
  ...webSocketRoutes,
  ...syncRoutes,
  ...filterRoutes,
  ...federationKeyRoutes,
  ...federationTransactionRoutes,
  ...federationRoomRoutes,
];
