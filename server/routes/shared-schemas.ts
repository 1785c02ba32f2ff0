/**
 * Schemas that several client route modules declare alike: the empty answer, and the
 * request and response parts of endpoints behind user-interactive authentication
 * (client-server "User-interactive authentication API").
 */
import { type TSchema, Type } from '@sinclair/typebox';
import { MatrixErrorBody } from '../http/route.js';

export const EmptyResponse = Type.Object({}, { description: 'Done.', additionalProperties: false });

/** The `auth` field of a request body. */
export const AuthData = Type.Object(
  {
    type: Type.Optional(Type.String({ description: 'The authentication type being attempted.' })),
    session: Type.Optional(Type.String({ description: 'The UIA session ID given by the server.' })),
  },
  { additionalProperties: true, description: 'User-interactive authentication data.' },
);

export const UserInteractiveAuthResponse = Type.Object(
  {
    flows: Type.Array(Type.Object({ stages: Type.Array(Type.String()) })),
    params: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    session: Type.Optional(Type.String()),
    completed: Type.Optional(Type.Array(Type.String())),
    errcode: Type.Optional(Type.String()),
    error: Type.Optional(Type.String()),
  },
  { description: 'Authentication is needed: the user-interactive authentication flows and the session.' },
);

/** The answers of an endpoint behind user-interactive auth: `ok`, 401 with the flows, the usual errors. */
export function userInteractiveAuthResponses<T extends TSchema>(ok: T) {
  return {
    200: ok,
    400: MatrixErrorBody,
    401: UserInteractiveAuthResponse,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  };
}
