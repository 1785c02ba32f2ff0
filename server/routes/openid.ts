/**
 * OpenID (client-server openid.yaml, server-server openid.yaml):
 *   POST /_matrix/client/v3/user/{userId}/openid/request_token
 *   GET  /_matrix/federation/v1/openid/userinfo?access_token=…
 * The second is asked by the third party the token was handed to (no X-Matrix
 * signature: the token is the credential), so it sits on the federation listener.
 */
import { Type } from '@sinclair/typebox';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

export const requestOpenIdToken = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/user/{userId}/openid/request_token',
  operationId: 'requestOpenIdToken',
  summary: "Get an OpenID token object to verify the requester's identity.",
  description:
    'A token a third party can exchange, through /_matrix/federation/v1/openid/userinfo, for the user ID. It proves identity only.',
  tags: ['OpenID'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({ userId: Type.String({ description: 'The user to request an OpenID token for.' }) }),
    body: Type.Object({}, { additionalProperties: true, description: 'An empty object.' }),
  },
  responses: {
    200: Type.Object(
      {
        access_token: Type.String({ description: 'The token to hand to the third party.' }),
        token_type: Type.Literal('Bearer'),
        matrix_server_name: Type.String({ description: 'The server to ask about the token.' }),
        expires_in: Type.Integer({ description: 'Seconds before the token expires.' }),
      },
      { description: 'OpenID token information.' },
    ),
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    if (req.params.userId !== req.requester.userId) {
      throw MatrixError.forbidden('You can only request an OpenID token for yourself');
    }
    const { token, expiresInSeconds } = await hs.openIdTokens.issue(req.requester.userId);
    return reply(200, {
      access_token: token,
      token_type: 'Bearer' as const,
      matrix_server_name: hs.config.server_name,
      expires_in: expiresInSeconds,
    });
  },
});

export const getOpenIdUserInfo = defineRoute({
  method: 'GET',
  path: '/_matrix/federation/v1/openid/userinfo',
  operationId: 'exchangeOpenIdToken',
  summary: 'Exchange an OpenID access token for information about the user who generated the token.',
  tags: ['OpenID'],
  resource: 'federation',
  auth: 'none',
  rateLimit: 'client',
  request: {
    query: Type.Object({
      access_token: Type.String({ description: 'The OpenID access token to get information about.' }),
    }),
  },
  responses: {
    200: Type.Object(
      { sub: Type.String({ description: 'The Matrix User ID who generated the token.' }) },
      { description: 'Information about the user who generated the OpenID access token.' },
    ),
    401: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const userId = await hs.openIdTokens.userOf(req.query.access_token);
    const account = userId === null ? null : await hs.storage.accounts.getAccount(userId);
    if (userId === null || account === null || account.deactivated) {
      throw MatrixError.of('M_UNKNOWN_TOKEN', 'Access token unknown or expired');
    }
    return reply(200, { sub: userId });
  },
});

export const openIdRoutes = [requestOpenIdToken, getOpenIdUserInfo];
