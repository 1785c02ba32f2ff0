/**
 * client-server-api "API Standards" / versions.yaml:
 *   GET /_matrix/client/versions
 */
import { Type } from '@sinclair/typebox';
import { defineRoute, reply } from '../http/route.js';

/** The r0 releases Synapse still advertises, then every v1.x we implement against. */
export const SUPPORTED_SPEC_VERSIONS = [
  'r0.0.1',
  'r0.1.0',
  'r0.2.0',
  'r0.3.0',
  'r0.4.0',
  'r0.5.0',
  'r0.6.0',
  'r0.6.1',
  ...Array.from({ length: 19 }, (_, i) => `v1.${i + 1}`),
];

/** MSC4186 simplified sliding sync (server/routes/sliding-sync.ts), under the flag clients look for. */
const UNSTABLE_FEATURES = { 'org.matrix.simplified_msc3575': true };

const VersionsResponse = Type.Object(
  {
    versions: Type.Array(Type.String(), { description: 'The supported versions.' }),
    unstable_features: Type.Optional(
      Type.Record(Type.String(), Type.Boolean(), {
        description: 'Experimental features the server supports.',
      }),
    ),
  },
  { description: 'The versions supported by the server.' },
);

export const getVersions = defineRoute({
  method: 'GET',
  path: '/_matrix/client/versions',
  operationId: 'getVersions',
  summary: 'Gets the versions of the specification supported by the server.',
  tags: ['Server administration'],
  resource: 'client',
  auth: 'optional',
  rateLimit: 'none',
  responses: { 200: VersionsResponse },
  async handler() {
    return reply(200, { versions: SUPPORTED_SPEC_VERSIONS, unstable_features: UNSTABLE_FEATURES });
  },
});

export const versionsRoutes = [getVersions];
