/**
 * client-server "Voice over IP" (voip.yaml):
 *   GET /_matrix/client/v3/voip/turnServer
 * With a shared secret, credentials follow the TURN REST API that coturn
 * implements (username `<expiry>:<user ID>`, password base64 HMAC-SHA1 of the
 * username), so they expire on their own; else the configured fixed user.
 * Without TURN configured the answer is `{}`, as Synapse gives and clients
 * (matrix-js-sdk, Element) read as "no TURN server".
 */
import { createHmac } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { MyelinConfig } from '../config/index.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const TurnCredentials = Type.Object({
  username: Type.String({ description: 'The username to use.' }),
  password: Type.String({ description: 'The password to use.' }),
  uris: Type.Array(Type.String(), { description: 'A list of TURN URIs.' }),
  ttl: Type.Integer({ description: 'The time-to-live in seconds.' }),
});

export const getTurnServer = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/voip/turnServer',
  operationId: 'getTurnServer',
  summary: 'Obtain TURN server credentials.',
  description:
    'Credentials for the configured TURN servers; `{}` when the server offers none (as Synapse answers).',
  tags: ['VOIP'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  responses: {
    200: Type.Union([TurnCredentials, Type.Object({}, { additionalProperties: false })], {
      description: 'The TURN server credentials, or `{}` when none are configured.',
    }),
    401: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const credentials = turnCredentials(hs.config.voip, req.requester.userId, Date.now());
    if (credentials === null || (req.requester.isGuest && !hs.config.voip.turn_allow_guests)) {
      return reply(200, {});
    }
    return reply(200, credentials);
  },
});

/** The credentials for `userId` at `now`, or null when no TURN server is configured. */
export function turnCredentials(voip: MyelinConfig['voip'], userId: string, now: number) {
  if (voip.turn_uris.length === 0) return null;
  const ttl = voip.turn_user_lifetime_seconds;
  if (voip.turn_shared_secret !== '') {
    const username = `${Math.floor(now / 1000) + ttl}:${userId}`;
    const password = createHmac('sha1', voip.turn_shared_secret).update(username).digest('base64');
    return { username, password, uris: [...voip.turn_uris], ttl };
  }
  if (voip.turn_username === '') return null;
  return { username: voip.turn_username, password: voip.turn_password, uris: [...voip.turn_uris], ttl };
}

export const voipRoutes = [getTurnServer];
