/**
 * The route table: every endpoint the server declares, gathered from the route
 * files (one per spec module). The app, the router and the OpenAPI document
 * all read this one list.
 */
import type { Route } from '../http/route.js';
import { docsRoutes } from './docs.js';
import { healthRoutes } from './health.js';
import { versionsRoutes } from './versions.js';
import { wellKnownRoutes } from './well-known.js';

export const allRoutes: readonly Route[] = [
  ...versionsRoutes,
  ...wellKnownRoutes,
  ...healthRoutes,
  ...docsRoutes,
];
