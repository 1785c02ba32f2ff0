/**
 * client-server "Capabilities negotiation" (capabilities.yaml):
 *   GET /_matrix/client/v3/capabilities
 * What this server lets the user do: change their password, their profile
 * (every field), log other clients in with /login/get_token; no 3PID
 * changes (there is no way to validate one here); the room versions it runs.
 */
import { Type } from '@sinclair/typebox';
import { DEFAULT_ROOM_VERSION, ROOM_VERSIONS } from '../../protocol/room-versions.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const Flag = (description: string) =>
  Type.Object(
    { enabled: Type.Boolean({ description: 'Whether the capability is available.' }) },
    { description },
  );

const CapabilitiesBody = Type.Object(
  {
    capabilities: Type.Object(
      {
        'm.change_password': Flag('Whether the user can change their password.'),
        'm.set_displayname': Flag(
          'Whether the user can change their display name (deprecated for m.profile_fields).',
        ),
        'm.set_avatar_url': Flag(
          'Whether the user can change their avatar (deprecated for m.profile_fields).',
        ),
        'm.3pid_changes': Flag('Whether the user can change the 3PIDs on their account.'),
        'm.get_login_token': Flag('Whether the user can use /login/get_token to log in another client.'),
        'm.profile_fields': Type.Object(
          {
            enabled: Type.Boolean({ description: 'Whether the user can change profile fields.' }),
            allowed: Type.Optional(Type.Array(Type.String())),
            disallowed: Type.Optional(Type.Array(Type.String())),
          },
          { description: 'Which profile fields the user can change.' },
        ),
        'm.room_versions': Type.Object(
          {
            default: Type.String({ description: 'The default room version the server uses for new rooms.' }),
            available: Type.Record(
              Type.String(),
              Type.Union([Type.Literal('stable'), Type.Literal('unstable')]),
              {
                description: 'Every room version the server supports, with its stability.',
              },
            ),
          },
          { description: 'The room versions the server supports.' },
        ),
      },
      { additionalProperties: true, description: 'The custom capabilities the server supports.' },
    ),
  },
  { description: 'The capabilities of the server.' },
);

export const getCapabilities = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v3/capabilities',
  operationId: 'getCapabilities',
  summary: "Gets information about the server's capabilities.",
  tags: ['Capabilities'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  responses: { 200: CapabilitiesBody, 429: MatrixErrorBody },
  async handler() {
    const available: Record<string, 'stable' | 'unstable'> = {};
    for (const version of ROOM_VERSIONS.keys()) available[version] = 'stable';
    return reply(200, {
      capabilities: {
        'm.change_password': { enabled: true },
        'm.set_displayname': { enabled: true },
        'm.set_avatar_url': { enabled: true },
        'm.3pid_changes': { enabled: false },
        'm.get_login_token': { enabled: true },
        'm.profile_fields': { enabled: true },
        'm.room_versions': { default: DEFAULT_ROOM_VERSION, available },
      },
    });
  },
});

export const capabilitiesRoutes = [getCapabilities];
