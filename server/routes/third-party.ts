/**
 * client-server "Third-party networks" (third_party_lookup.yaml):
 *   GET /_matrix/client/v3/thirdparty/protocols
 *   GET /_matrix/client/v3/thirdparty/protocol/{protocol}
 *   GET /_matrix/client/v3/thirdparty/location/{protocol}
 *   GET /_matrix/client/v3/thirdparty/user/{protocol}
 *   GET /_matrix/client/v3/thirdparty/location?alias=
 *   GET /_matrix/client/v3/thirdparty/user?userid=
 * Protocols come from application services (bridges): the services whose
 * registration declares a protocol are asked (appservice/third-party-lookups.ts).
 * A protocol no service declares is 404 M_NOT_FOUND.
 */
import { Type } from '@sinclair/typebox';
import type { HomeserverContext } from '../context.js';
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
const Protocol = Type.Object(
  {},
  { additionalProperties: true, description: 'The protocol, with its instances.' },
);

/** The search fields of a lookup: every query parameter, each once. */
function fieldsOf(query: Record<string, unknown>): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) {
    if (typeof value === 'string') fields[name] = value;
    else if (Array.isArray(value) && typeof value[0] === 'string') fields[name] = value[0];
  }
  return fields;
}

async function lookUp(
  hs: HomeserverContext,
  kind: 'user' | 'location',
  protocol: string,
  query: Record<string, unknown>,
) {
  if (!hs.appservices.thirdParty.isKnownProtocol(protocol)) throw noSuchProtocol(protocol);
  return hs.appservices.thirdParty.query(kind, protocol, fieldsOf(query));
}

export const getProtocols = defineRoute({
  ...common,
  method: 'GET',
  path: `${BASE}/protocols`,
  operationId: 'getProtocols',
  summary: 'Retrieve metadata about all protocols that a homeserver supports.',
  responses: {
    200: Type.Record(Type.String(), Protocol, {
      description: "The protocols supported by the homeserver's application services.",
    }),
    401: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(_req, hs) {
    return reply(200, await hs.appservices.thirdParty.protocols());
  },
});

export const getProtocolMetadata = defineRoute({
  ...common,
  method: 'GET',
  path: `${BASE}/protocol/{protocol}`,
  operationId: 'getProtocolMetadata',
  summary: 'Retrieve metadata about a specific protocol that the homeserver supports.',
  request: { params: ProtocolParam },
  responses: { 200: Protocol, 401: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    const metadata = await hs.appservices.thirdParty.protocol(req.params.protocol);
    if (metadata === null) throw noSuchProtocol(req.params.protocol);
    return reply(200, metadata);
  },
});

export const queryLocationByProtocol = defineRoute({
  ...common,
  method: 'GET',
  path: `${BASE}/location/{protocol}`,
  operationId: 'queryLocationByProtocol',
  summary: 'Retrieve Matrix-side portals rooms leading to a third-party location.',
  description: "Every query parameter is a search field, passed to the protocol's application services.",
  request: { params: ProtocolParam },
  responses: { 200: Matches, 401: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    return reply(
      200,
      await lookUp(hs, 'location', req.params.protocol, req.query as Record<string, unknown>),
    );
  },
});

export const queryUserByProtocol = defineRoute({
  ...common,
  method: 'GET',
  path: `${BASE}/user/{protocol}`,
  operationId: 'queryUserByProtocol',
  summary: 'Retrieve the Matrix User ID of a corresponding third-party user.',
  description: "Every query parameter is a search field, passed to the protocol's application services.",
  request: { params: ProtocolParam },
  responses: { 200: Matches, 401: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody },
  async handler(req, hs) {
    return reply(200, await lookUp(hs, 'user', req.params.protocol, req.query as Record<string, unknown>));
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
  async handler(req, hs) {
    return reply(200, await hs.appservices.thirdParty.reverse('location', req.query.alias));
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
  async handler(req, hs) {
    return reply(200, await hs.appservices.thirdParty.reverse('user', req.query.userid));
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
