/**
 * The route table: every endpoint the server declares, gathered from the route
 * files (one per spec module). The app, the router and the OpenAPI document
 * all read this one list.
 */
import type { Route } from '../http/route.js';
import { accountRoutes } from './account.js';
import { capabilitiesRoutes } from './capabilities.js';
import { deviceRoutes } from './devices.js';
import { docsRoutes } from './docs.js';
import { healthRoutes } from './health.js';
import { loginRoutes } from './login.js';
import { presenceRoutes } from './presence.js';
import { profileRoutes } from './profile.js';
import { registerRoutes } from './register.js';
import { synapseAdminRoutes } from './synapse-admin.js';
import { userDirectoryRoutes } from './user-directory.js';
import { versionsRoutes } from './versions.js';
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
];
