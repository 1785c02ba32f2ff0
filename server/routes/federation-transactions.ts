/**
 * server-server "Transactions" and "Server implementation":
 *   GET /_matrix/federation/v1/version
 *   PUT /_matrix/federation/v1/send/{txnId}
 */
import { Type } from '@sinclair/typebox';
import { MatrixError } from '../errors.js';
import { defineRoute, reply } from '../http/route.js';

export const getFederationVersion = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/version',
  operationId: 'getFederationVersion',
  summary: 'Gets the implementation name and version of this homeserver.',
  tags: ['Server implementation'],
  resource: 'federation',
  auth: 'none',
  rateLimit: 'none',
  responses: {
    200: Type.Object(
      {
        server: Type.Object(
          {
            name: Type.String({ description: 'The implementation name.' }),
            version: Type.String({ description: 'The implementation version.' }),
          },
          { additionalProperties: true },
        ),
      },
      { description: 'The implementation name and version.' },
    ),
  },
  async handler() {
    return reply(200, { server: { name: 'Myelin', version: '0.1.0' } });
  },
});

export const sendTransaction = defineRoute({
  method: 'PUT',
  path: '/_matrix/federation/v1/send/{txnId}',
  operationId: 'sendTransaction',
  summary: 'Sends a transaction of PDUs and EDUs to this server.',
  description:
    'A transaction ID already received from the same origin is answered as before and not processed again.',
  tags: ['Transactions'],
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    // 50 PDUs and 100 EDUs of up to 64 KiB each, with room to spare.
    maxBodyBytes: 12 * 1024 * 1024,
    params: Type.Object({ txnId: Type.String({ description: 'The transaction ID.' }) }),
    body: Type.Object(
      {
        origin: Type.String({ description: 'The server_name of the sending homeserver.' }),
        origin_server_ts: Type.Integer({ description: 'When the transaction was sent (ms).' }),
        pdus: Type.Array(Type.Unknown(), {
          maxItems: 50,
          description: 'Persistent data units (at most 50).',
        }),
        edus: Type.Optional(
          Type.Array(Type.Unknown(), { maxItems: 100, description: 'Ephemeral data units (at most 100).' }),
        ),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object(
      {
        pdus: Type.Record(
          Type.String(),
          Type.Object({ error: Type.Optional(Type.String()) }, { additionalProperties: true }),
          { description: 'The result of each PDU, by event ID; an error when it was not accepted.' },
        ),
      },
      { description: 'The transaction was processed.' },
    ),
  },
  async handler(req, hs) {
    const origin = req.requester.serverName;
    if (req.body.origin !== origin) {
      throw MatrixError.forbidden('The transaction origin is not the authenticated server.');
    }
    const response = await hs.federation.transactions.receive(origin, req.params.txnId, req.body);
    return reply(200, response);
  },
});

export const federationTransactionRoutes = [getFederationVersion, sendTransaction];
