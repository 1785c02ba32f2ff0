/**
 * Liveness for load balancers and orchestrators (not part of the Matrix spec):
 *   GET /health
 */
import { defineRoute, rawResponse, reply } from '../http/route.js';

export const getHealth = defineRoute({
  method: 'GET',
  path: '/health',
  operationId: 'getHealth',
  summary: 'Answers OK while the server is up.',
  tags: ['Operations'],
  resource: 'health',
  auth: 'none',
  rateLimit: 'none',
  responses: { 200: rawResponse('text/plain', 'The server is up.') },
  async handler() {
    return reply(200, 'OK');
  },
});

export const healthRoutes = [getHealth];
