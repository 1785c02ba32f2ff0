/**
 * Client-server extensions for application services (application-service
 * "Client-Server API Extensions"; appservice_ping.yaml,
 * appservice_room_directory.yaml), callable only with an as_token:
 *   POST /_matrix/client/v1/appservice/{appserviceId}/ping
 *   PUT  /_matrix/client/v3/directory/list/appservice/{networkId}/{roomId}
 */
import { Type } from '@sinclair/typebox';
import type { AppserviceRegistration } from '../appservice/registration.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { EmptyResponse } from './shared-schemas.js';

/** The service whose as_token authenticated the request; 403 M_FORBIDDEN for anyone else. */
function requestingService(hs: HomeserverContext, requester: AuthenticatedUser): AppserviceRegistration {
  const service = hs.appservices.registry.serviceOf(requester);
  if (service === undefined) {
    throw MatrixError.forbidden('Only an application service (with its as_token) may call this endpoint');
  }
  return service;
}

const BadStatusBody = Type.Object(
  {
    errcode: Type.String({ description: 'M_BAD_STATUS or M_CONNECTION_FAILED.' }),
    error: Type.String({ description: 'A human-readable error message.' }),
    status: Type.Optional(Type.Integer({ description: 'The HTTP status code returned by the appservice.' })),
    body: Type.Optional(Type.String({ description: 'The HTTP response body returned by the appservice.' })),
  },
  {
    description: 'The application service returned a bad status, or the connection failed.',
    additionalProperties: true,
  },
);

export const pingAppservice = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v1/appservice/{appserviceId}/ping',
  operationId: 'pingAppservice',
  summary: 'Ask the homeserver to ping the application service to ensure the connection works.',
  description:
    "Calls the service's POST /_matrix/app/v1/ping with its hs_token and the given transaction_id. Only the " +
    'service named in the path may ask, with its own as_token. A service without a URL is 400 M_URL_NOT_SET; ' +
    'an answer other than 2xx is 502 M_BAD_STATUS (with its status and body), no connection 502 ' +
    'M_CONNECTION_FAILED, no answer in time (appservice.request_timeout_ms) 504 M_CONNECTION_TIMEOUT.',
  tags: ['Application service'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      appserviceId: Type.String({ description: 'The ID of the application service to ping: the caller.' }),
    }),
    body: Type.Object(
      {
        transaction_id: Type.Optional(
          Type.String({ description: 'A transaction ID passed through to the /_matrix/app/v1/ping call.' }),
        ),
      },
      { additionalProperties: true },
    ),
    allowEmptyBody: true,
  },
  responses: {
    200: Type.Object(
      {
        duration_ms: Type.Integer({
          description: 'How long the /_matrix/app/v1/ping request took, in milliseconds.',
        }),
      },
      { description: 'The ping was successful.' },
    ),
    400: MatrixErrorBody,
    401: MatrixErrorBody,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
    502: BadStatusBody,
    504: MatrixErrorBody,
  },
  async handler(req, hs) {
    const service = requestingService(hs, req.requester);
    if (service.id !== req.params.appserviceId) {
      throw MatrixError.forbidden("Provided access token is not the appservice's as_token");
    }
    return reply(200, { duration_ms: await hs.appservices.ping(service, req.body.transaction_id) });
  },
});

export const updateAppserviceRoomDirectoryVisibility = defineRoute({
  method: 'PUT',
  path: '/_matrix/client/v3/directory/list/appservice/{networkId}/{roomId}',
  operationId: 'updateAppserviceRoomDirectoryVisibility',
  summary: "Updates a room's visibility in the application service's published room directory.",
  description:
    "Lists the room (public) or takes it out (private) of the calling service's directory for the network; " +
    'POST /publicRooms shows it with third_party_instance_id `{appserviceId}|{networkId}` or ' +
    'include_all_networks. Only with an as_token.',
  tags: ['Application service'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      networkId: Type.String({
        minLength: 1,
        description: 'The protocol (network) ID to update the room list for.',
      }),
      roomId: Type.String({ description: 'The room ID to add to the directory.' }),
    }),
    body: Type.Object(
      {
        visibility: Type.Union([Type.Literal('public'), Type.Literal('private')], {
          description: 'Whether the room should be visible (public) in the directory or not (private).',
        }),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: EmptyResponse,
    400: MatrixErrorBody,
    401: MatrixErrorBody,
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const service = requestingService(hs, req.requester);
    const { networkId, roomId } = req.params;
    if ((await hs.storage.rooms.getRoom(roomId)) === null)
      throw MatrixError.notFound(`Room ${roomId} not found`);
    await hs.storage.appservices.setRoomListed(
      service.id,
      networkId,
      roomId,
      req.body.visibility === 'public',
    );
    return reply(200, {});
  },
});

export const appserviceRoutes = [pingAppservice, updateAppserviceRoomDirectoryVisibility];
