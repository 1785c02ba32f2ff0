/**
 * client-server "Third-party networks" (third_party_lookup.yaml):
 *   GET /_matrix/client/v3/thirdparty/protocols
 *   GET /_matrix/client/v3/thirdparty/protocol/{protocol}
 *   GET /_matrix/client/v3/thirdparty/location/{protocol}
 *   GET /_matrix/client/v3/thirdparty/user/{protocol}
 *   GET /_matrix/client/v3/thirdparty/location?alias=
 *   GET /_matrix/client/v3/thirdparty/user?userid=
 * Protocols come from application services (bridges); this server registers
 * none, so it lists no protocol, knows none by name (404) and finds nothing.
 */
import { Type } from '@sinclair/typebox';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const BASE = '/_matrix/client/v3/thirdparty';
const common = {
  tags: ['Application service third-party networks'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
} as const;
const ProtocolParam = Type.Object({ protocol: Type.String({ description: 'The name of the protocol.' }) });
const Matches = Type.Array(Type.Object({}, { additionalProperties: true }), {
  description: 'The matching entries.',
});
const noSuchProtocol = (protocol: string) =>
  MatrixError.notFound(`No bridge on this server provides the protocol ${protocol}`);

export const getProtocols = defineRoute({
  ...common,
  method: 'GET',
  path: `${BASE}/protocols`,
  operationId: 'getProtocols',
  summary: 'Retrieve metadata about all protocols that a homeserver supports.',
  responses: {
    200: Type.Record(Type.String(), Type.Object({}, { additionalProperties: true }), {
      description: 'The protocols supported by the homeserver (none without bridges).',
    }),
    401: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler() {
    return reply(200, {});
  },
});

export const getProtocolMetadata = defineRoute({
  ...common,
  method: 'GET',
  path: `${BASE}/protocol/{protocol}`,
  operationId: 'getProtocolMetadata',
  summary: 'Retrieve metadata about a specific protocol that the homeserver supports.',
  request: { params: ProtocolParam },
  responses: { 401: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req) {
    throw noSuchProtocol(req.params.protocol);
  },
});

export const queryLocationByProtocol = defineRoute({
  ...common,
  method: 'GET',
  path: `${BASE}/location/{protocol}`,
  operationId: 'queryLocationByProtocol',
  summary: 'Retrieve Matrix-side portals rooms leading to a third-party location.',
  request: { params: ProtocolParam },
  responses: { 401: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req) {
    throw noSuchProtocol(req.params.protocol);
  },
});

export const queryUserByProtocol = defineRoute({
  ...common,
  method: 'GET',
  path: `${BASE}/user/{protocol}`,
  operationId: 'queryUserByProtocol',
  summary: 'Retrieve the Matrix User ID of a corresponding third-party user.',
  request: { params: ProtocolParam },
  responses: { 401: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req) {
    throw noSuchProtocol(req.params.protocol);
  },
});

export const queryLocationByAlias = defineRoute({
  ...common,
  method: 'GET',
  path: `${BASE}/location`,
  operationId: 'queryLocationByAlias',
  summary: 'Reverse-lookup third-party locations given a Matrix room alias.',
  request: {
    query: Type.Object({ alias: Type.String({ description: 'The Matrix room alias to look up.' }) }),
  },
  responses: { 200: Matches, 401: MatrixErrorBody, 429: MatrixErrorBody },
  async handler() {
    return reply(200, []);
  },
});

export const queryUserByID = defineRoute({
  ...common,
  method: 'GET',
  path: `${BASE}/user`,
  operationId: 'queryUserByID',
  summary: 'Reverse-lookup third-party users given a Matrix User ID.',
  request: { query: Type.Object({ userid: Type.String({ description: 'The Matrix User ID to look up.' }) }) },
  responses: { 200: Matches, 401: MatrixErrorBody, 429: MatrixErrorBody },
  async handler() {
    return reply(200, []);
  },
});

export const thirdPartyRoutes = [
  getProtocols,
  getProtocolMetadata,
  queryLocationByProtocol,
  queryUserByProtocol,
  queryLocationByAlias,
  queryUserByID,
];
