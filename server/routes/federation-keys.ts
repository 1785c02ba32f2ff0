/**
 * server-server "Retrieving server keys" / server-keys.yaml, key query:
 *   GET  /_matrix/key/v2/server
 *   GET  /_matrix/key/v2/server/{keyId}   (deprecated form, still requested by Synapse up to 1.7x)
 *   GET  /_matrix/key/v2/query/{serverName}
 *   POST /_matrix/key/v2/query
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { isValidServerName } from '../../protocol/identifiers.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, reply } from '../http/route.js';

const ServerKeys = Type.Object(
  {
    server_name: Type.String({ description: "The homeserver's server name." }),
    valid_until_ts: Type.Integer({
      description: 'When these keys should be refreshed (ms since the epoch).',
    }),
    verify_keys: Type.Record(
      Type.String(),
      Type.Object({ key: Type.String() }, { additionalProperties: true }),
      {
        description: 'Public keys of the homeserver, by key ID.',
      },
    ),
    old_verify_keys: Type.Optional(
      Type.Record(
        Type.String(),
        Type.Object({ key: Type.String(), expired_ts: Type.Integer() }, { additionalProperties: true }),
        { description: 'Keys the homeserver used to sign with, and when they stopped.' },
      ),
    ),
    signatures: Type.Record(Type.String(), Type.Record(Type.String(), Type.String()), {
      description:
        'Signatures of this object (by the server itself, and by the notary when queried through one).',
    }),
  },
  { description: "The homeserver's keys.", additionalProperties: true },
);

const QueryResponse = Type.Object(
  { server_keys: Type.Array(ServerKeys, { description: 'The keys found, notary-signed.' }) },
  { description: 'The keys of the queried servers.' },
);

export const getServerKeys = defineRoute({
  method: 'GET',
  path: '/_matrix/key/v2/server',
  operationId: 'getServerKey',
  summary: "Gets the homeserver's published signing keys.",
  tags: ['Server keys'],
  resource: 'federation',
  auth: 'none',
  rateLimit: 'none',
  responses: { 200: ServerKeys },
  async handler(_req, hs) {
    return reply(200, hs.federation.ownServerKeys() as unknown as JsonObject as never);
  },
});

/**
 * The deprecated form with a key ID: older Synapse releases still fetch keys
 * this way, and refuse every request we sign if it 404s. Like Synapse, the
 * key ID is ignored and every key is returned.
 */
export const getServerKeysByKeyId = defineRoute({
  method: 'GET',
  path: '/_matrix/key/v2/server/{keyId}',
  operationId: 'getServerKeyByKeyId',
  summary: "Gets the homeserver's published signing keys (deprecated form with a key ID).",
  description:
    'The key ID is ignored: every current and old key is returned, as by GET /_matrix/key/v2/server.',
  tags: ['Server keys'],
  resource: 'federation',
  auth: 'none',
  rateLimit: 'none',
  request: {
    params: Type.Object({ keyId: Type.String({ description: 'Ignored (deprecated parameter).' }) }),
  },
  responses: { 200: ServerKeys },
  async handler(_req, hs) {
    return reply(200, hs.federation.ownServerKeys() as unknown as JsonObject as never);
  },
});

async function notarised(
  hs: HomeserverContext,
  queries: Iterable<[serverName: string, minimumValidUntilTs: number]>,
): Promise<JsonObject[]> {
  const found = await Promise.all(
    [...queries]
      .filter(([serverName]) => isValidServerName(serverName))
      .map(([serverName, minimum]) => hs.federation.notarise(serverName, minimum).catch(() => undefined)),
  );
  return found.filter((keys): keys is JsonObject => keys !== undefined);
}

export const getKeysThroughNotary = defineRoute({
  method: 'GET',
  path: '/_matrix/key/v2/query/{serverName}',
  operationId: 'getServerKeysThroughNotary',
  summary: "Queries a server's keys through this notary.",
  description: 'Keys are fetched from the server when none are cached that are valid long enough.',
  tags: ['Server keys'],
  resource: 'federation',
  auth: 'none',
  rateLimit: 'client',
  request: {
    params: Type.Object({ serverName: Type.String({ description: 'The server whose keys are wanted.' }) }),
    query: Type.Object({
      minimum_valid_until_ts: Type.Optional(
        Type.Integer({ description: 'Keys must be valid at least until this time (ms); default now.' }),
      ),
    }),
  },
  responses: { 200: QueryResponse },
  async handler(req, hs) {
    if (!isValidServerName(req.params.serverName)) throw MatrixError.invalidParam('Invalid server name.');
    const keys = await notarised(hs, [
      [req.params.serverName, req.query.minimum_valid_until_ts ?? Date.now()],
    ]);
    return reply(200, { server_keys: keys as never });
  },
});

const MAX_SERVERS_PER_QUERY = 100;

export const postKeysThroughNotary = defineRoute({
  method: 'POST',
  path: '/_matrix/key/v2/query',
  operationId: 'queryServerKeysThroughNotary',
  summary: "Queries several servers' keys through this notary.",
  tags: ['Server keys'],
  resource: 'federation',
  auth: 'none',
  rateLimit: 'client',
  request: {
    body: Type.Object({
      server_keys: Type.Record(
        Type.String(),
        Type.Record(
          Type.String(),
          Type.Object(
            {
              minimum_valid_until_ts: Type.Optional(
                Type.Integer({ description: 'Keys must be valid at least until this time (ms).' }),
              ),
            },
            { additionalProperties: true },
          ),
        ),
        { description: 'Server name -> key ID -> criteria (key IDs may be omitted: all keys).' },
      ),
    }),
  },
  responses: { 200: QueryResponse },
  async handler(req, hs) {
    const entries = Object.entries(req.body.server_keys);
    if (entries.length > MAX_SERVERS_PER_QUERY) {
      throw MatrixError.invalidParam(`At most ${MAX_SERVERS_PER_QUERY} servers per query.`);
    }
    const queries = entries.map(([serverName, byKey]): [string, number] => {
      const minimums = Object.values(byKey).map((criteria) => criteria.minimum_valid_until_ts ?? 0);
      return [serverName, minimums.length > 0 ? Math.max(...minimums) : Date.now()];
    });
    return reply(200, { server_keys: (await notarised(hs, queries)) as never });
  },
});

export const federationKeyRoutes = [
  getServerKeys,
  getServerKeysByKeyId,
  getKeysThroughNotary,
  postKeysThroughNotary,
];
