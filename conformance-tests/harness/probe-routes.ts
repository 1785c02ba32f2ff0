/**
 * Routes that exist only in tests, to drive the request pipeline over real HTTP
 * where the real route table has no endpoint of the needed shape yet (a JSON
 * body, a required token, a slow handler, a crash).
 */
import { Type } from '@sinclair/typebox';
import { ProtocolError } from '../../protocol/errors.js';
import { defineRoute, reply } from '../../server/http/route.js';

export const echoRoute = defineRoute({
  method: 'POST',
  path: '/_test/echo/{word}',
  operationId: 'testEcho',
  summary: 'Echoes its validated input.',
  tags: ['Test'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'none',
  request: {
    params: Type.Object({ word: Type.String({ minLength: 1 }) }),
    query: Type.Object({ times: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 })) }),
    body: Type.Object({
      text: Type.String(),
      nested: Type.Optional(Type.Object({ flag: Type.Boolean() })),
    }),
  },
  responses: {
    200: Type.Object({ word: Type.String(), times: Type.Integer(), text: Type.String() }),
  },
  async handler(req) {
    return reply(200, { word: req.params.word, times: req.query.times ?? 1, text: req.body.text });
  },
});

export const whoamiRoute = defineRoute({
  method: 'GET',
  path: '/_test/whoami',
  operationId: 'testWhoami',
  summary: 'Needs an access token.',
  tags: ['Test'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  responses: { 200: Type.Object({ user_id: Type.String() }) },
  async handler(req) {
    return reply(200, { user_id: req.requester.userId });
  },
});

export const slowRoute = defineRoute({
  method: 'GET',
  path: '/_test/slow',
  operationId: 'testSlow',
  summary: 'Answers after the given delay, ignoring shutdown.',
  tags: ['Test'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'none',
  request: { query: Type.Object({ ms: Type.Integer({ minimum: 0, maximum: 10_000 }) }) },
  responses: { 200: Type.Object({ waited: Type.Integer() }) },
  async handler(req) {
    await new Promise((resolve) => setTimeout(resolve, req.query.ms));
    return reply(200, { waited: req.query.ms });
  },
});

/** A long poll: waits until the delay passes or the request's signal aborts (server stopping, client gone). */
export const longPollRoute = defineRoute({
  method: 'GET',
  path: '/_test/long-poll',
  operationId: 'testLongPoll',
  summary: 'Waits like a sync long poll, ending early on the request signal.',
  tags: ['Test'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'none',
  request: { query: Type.Object({ ms: Type.Integer({ minimum: 0, maximum: 60_000 }) }) },
  responses: { 200: Type.Object({ aborted: Type.Boolean() }) },
  async handler(req) {
    const signal = req.signal;
    await new Promise<void>((resolve) => {
      // The signal is the connection's, shared with its later requests: the listener goes with the wait.
      const stop = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', stop);
        resolve();
      }, req.query.ms);
      signal.addEventListener('abort', stop, { once: true });
    });
    return reply(200, { aborted: signal.aborted });
  },
});

export const crashRoute = defineRoute({
  method: 'GET',
  path: '/_test/crash/{kind}',
  operationId: 'testCrash',
  summary: 'Throws: a plain Error with a secret in its message, or a ProtocolError.',
  tags: ['Test'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'none',
  request: {
    params: Type.Object({ kind: Type.Union([Type.Literal('internal'), Type.Literal('protocol')]) }),
  },
  responses: { 200: Type.Object({}) },
  async handler(req) {
    if (req.params.kind === 'protocol') throw new ProtocolError('BAD_IDENTIFIER', 'not a user ID', 'user_id');
    throw new Error('database password is hunter2');
  },
});

/** A handler that answers off its declared schema: response checking must turn it into a 500. */
export const offSchemaRoute = defineRoute({
  method: 'GET',
  path: '/_test/off-schema',
  operationId: 'testOffSchema',
  summary: 'Replies with a body its schema forbids.',
  tags: ['Test'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'none',
  responses: { 200: Type.Object({ count: Type.Integer() }) },
  async handler() {
    return reply(200, { count: 'many' as unknown as number });
  },
});

export const probeRoutes = [echoRoute, whoamiRoute, slowRoute];
