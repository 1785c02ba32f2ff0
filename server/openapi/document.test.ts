import { readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import { expect } from 'chai';
import { defineRoute, MatrixErrorBody, type Route, rawResponse, reply } from '../http/route.js';
import { allRoutes } from '../routes/index.js';
import { buildOpenApiDocument } from './document.js';

const sendEvent = defineRoute({
  method: 'PUT',
  path: '/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}',
  operationId: 'sendMessage',
  summary: 'Send a message event to the given room.',
  tags: ['Room participation'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      roomId: Type.String({ description: 'The room to send the event to.' }),
      eventType: Type.String(),
      txnId: Type.String(),
    }),
    query: Type.Object({ ts: Type.Optional(Type.Integer()), must: Type.String() }),
    body: Type.Object({ body: Type.String() }),
  },
  responses: {
    200: Type.Object({ event_id: Type.String() }, { description: 'The event was sent.' }),
    403: MatrixErrorBody,
  },
  async handler(req) {
    return reply(200, { event_id: `$${req.params.txnId}` });
  },
});

const hiddenAsset = defineRoute({
  method: 'GET',
  path: '/asset',
  operationId: 'asset',
  summary: 'x',
  tags: [],
  resource: 'docs',
  auth: 'none',
  rateLimit: 'none',
  hidden: true,
  responses: { 200: rawResponse('text/css', 'css') },
  async handler() {
    return reply(200, '');
  },
});

describe('OpenAPI document from the route table', () => {
  const doc = buildOpenApiDocument([sendEvent, hiddenAsset] as Route[]);
  const operation = doc.paths['/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}']!.put!;

  it('describes path and query parameters from their schemas', () => {
    expect(operation.parameters).to.deep.equal([
      {
        name: 'roomId',
        in: 'path',
        required: true,
        description: 'The room to send the event to.',
        schema: { type: 'string' },
      },
      { name: 'eventType', in: 'path', required: true, schema: { type: 'string' } },
      { name: 'txnId', in: 'path', required: true, schema: { type: 'string' } },
      { name: 'ts', in: 'query', required: false, schema: { type: 'integer' } },
      { name: 'must', in: 'query', required: true, schema: { type: 'string' } },
    ]);
  });

  it('describes the JSON body, the declared responses and the errors every such route can give', () => {
    expect(operation.requestBody).to.deep.equal({
      required: true,
      content: {
        'application/json': {
          schema: { type: 'object', properties: { body: { type: 'string' } }, required: ['body'] },
        },
      },
    });
    expect(operation.responses['200']).to.deep.include({ description: 'The event was sent.' });
    expect(Object.keys(operation.responses).sort()).to.deep.equal(['200', '400', '401', '403', '413', '429']);
    expect(operation.responses['403']).to.deep.equal({
      description: 'An error.',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/MatrixError' } } },
    });
    expect(operation.security).to.deep.equal([{ accessTokenBearer: [] }, { accessTokenQuery: [] }]);
  });

  it('leaves hidden routes out', () => {
    expect(doc.paths['/asset']).to.equal(undefined);
  });

  it('spec/openapi.json is the document of the current route table (regenerate: node --import tsx server/openapi/write.ts)', () => {
    const written = JSON.parse(readFileSync(new URL('../../spec/openapi.json', import.meta.url), 'utf8'));
    expect(written).to.deep.equal(JSON.parse(JSON.stringify(buildOpenApiDocument(allRoutes))));
  });
});
