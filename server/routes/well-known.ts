/**
 * Server discovery:
 *   GET /.well-known/matrix/client   (client-server-api "Well-known URIs", wellknown.yaml)
 *   GET /.well-known/matrix/server   (server-server-api "Resolving server names", step 3)
 *   GET /.well-known/matrix/support  (client-server-api "Getting the support information", support.yaml)
 */
import { Type } from '@sinclair/typebox';
import type { MyelinConfig } from '../config/index.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const BaseUrl = Type.Object({ base_url: Type.String({ format: 'uri' }) }, { additionalProperties: true });

const ClientWellKnown = Type.Object(
  {
    'm.homeserver': BaseUrl,
    'm.identity_server': Type.Optional(BaseUrl),
  },
  { description: 'Server discovery information.', additionalProperties: true },
);

const ServerWellKnown = Type.Object(
  {
    'm.server': Type.String({ description: 'The server name to delegate server-server communications to.' }),
  },
  { description: 'The delegated server name for federation.' },
);

export const getClientWellKnown = defineRoute({
  method: 'GET',
  path: '/.well-known/matrix/client',
  operationId: 'getWellknown',
  summary: 'Gets Matrix server discovery information about the domain.',
  tags: ['Server discovery'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'none',
  responses: { 200: ClientWellKnown },
  async handler(_req, hs) {
    const { client_base_url, identity_server_base_url } = hs.config.well_known;
    return reply(200, {
      'm.homeserver': { base_url: client_base_url || hs.config.public_baseurl },
      ...(identity_server_base_url ? { 'm.identity_server': { base_url: identity_server_base_url } } : {}),
    });
  },
});

export const getServerWellKnown = defineRoute({
  method: 'GET',
  path: '/.well-known/matrix/server',
  operationId: 'getServerWellKnown',
  summary: 'Gets information about the delegated server for server-server communication.',
  tags: ['Server discovery'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'none',
  responses: { 200: ServerWellKnown, 404: MatrixErrorBody },
  async handler(_req, hs) {
    if (!hs.config.federation.enabled) throw MatrixError.notFound('Federation is disabled on this server.');
    return reply(200, { 'm.server': delegatedServerName(hs.config) });
  },
});

/** The configured delegation, else the server name itself, given port 443 when it names none. */
export function delegatedServerName(config: MyelinConfig): string {
  if (config.well_known.server_delegation) return config.well_known.server_delegation;
  const hasPort = /^(\[[^\]]+\]|[^:]+):\d+$/.test(config.server_name);
  return hasPort ? config.server_name : `${config.server_name}:443`;
}

const SupportInformation = Type.Object(
  {
    contacts: Type.Optional(
      Type.Array(
        Type.Object(
          {
            matrix_id: Type.Optional(Type.String()),
            email_address: Type.Optional(Type.String()),
            role: Type.String(),
          },
          { description: 'A way to contact the server administrator.' },
        ),
      ),
    ),
    support_page: Type.Optional(Type.String({ description: 'A page with support information.' })),
  },
  { description: 'Server support information.' },
);

export const getSupportWellKnown = defineRoute({
  method: 'GET',
  path: '/.well-known/matrix/support',
  operationId: 'getWellknownSupport',
  summary: 'Gets homeserver contacts and support details.',
  description: 'The configured administrator contacts and support page; 404 when none are configured.',
  tags: ['Server discovery'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'none',
  responses: { 200: SupportInformation, 404: MatrixErrorBody },
  async handler(_req, hs) {
    const { support_contacts: contacts, support_page: page } = hs.config.well_known;
    if (contacts.length === 0 && page === '') {
      throw MatrixError.notFound('This server publishes no support information.');
    }
    return reply(200, {
      ...(contacts.length > 0 ? { contacts: contacts.map((contact) => ({ ...contact })) } : {}),
      ...(page !== '' ? { support_page: page } : {}),
    });
  },
});

export const wellKnownRoutes = [getClientWellKnown, getServerWellKnown, getSupportWellKnown];
