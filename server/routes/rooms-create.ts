/**
 * client-server "Creation" (create_room.yaml):
 *   POST /_matrix/client/v3/createRoom
 * The room is recorded with its version, creator and directory visibility; its alias,
 * when asked for, goes through the room directory (M_ROOM_IN_USE when taken).
 */

import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { belongsToServer } from '../../protocol/identifiers.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const StateEvent = Type.Object(
  {
    type: Type.String({ description: 'The type of event to send.' }),
    state_key: Type.Optional(
      Type.String({ description: 'The state_key of the state event. Defaults to an empty string.' }),
    ),
    content: Type.Record(Type.String(), Type.Unknown(), { description: 'The content of the event.' }),
  },
  { additionalProperties: true },
);

const CreateRoomBody = Type.Object(
  {
    visibility: Type.Optional(
      Type.Union([Type.Literal('public'), Type.Literal('private')], {
        description: '`public` publishes the room in the room directory. Defaults to `private`.',
      }),
    ),
    room_alias_name: Type.Optional(
      Type.String({
        description:
          'The localpart of an alias for the room (`#localpart:server`), also its canonical alias.',
      }),
    ),
    name: Type.Optional(Type.String({ description: 'The m.room.name of the room.' })),
    topic: Type.Optional(Type.String({ description: 'The m.room.topic of the room.' })),
    invite: Type.Optional(Type.Array(Type.String(), { description: 'User IDs to invite.' })),
    invite_3pid: Type.Optional(
      Type.Array(
        Type.Object(
          {
            id_server: Type.String({ description: 'The identity server (host[:port]).' }),
            id_access_token: Type.String({ description: 'An access token for the identity server.' }),
            medium: Type.String({ description: 'The kind of address, e.g. email.' }),
            address: Type.String({ description: 'The invitee’s address.' }),
          },
          { additionalProperties: true },
        ),
        {
          description:
            'Third-party invites, sent after the other invites: bound addresses invite their user, others an m.room.third_party_invite.',
        },
      ),
    ),
    room_version: Type.Optional(
      Type.String({ description: 'The room version; the server default when absent.' }),
    ),
    creation_content: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Extra keys for the m.room.create content.',
      }),
    ),
    initial_state: Type.Optional(
      Type.Array(StateEvent, { description: 'State events sent after the preset, before name and topic.' }),
    ),
    preset: Type.Optional(
      Type.Union(
        [Type.Literal('private_chat'), Type.Literal('public_chat'), Type.Literal('trusted_private_chat')],
        {
          description: 'Sets join rules, history visibility, guest access and invite power.',
        },
      ),
    ),
    is_direct: Type.Optional(Type.Boolean({ description: 'Flags the invites as direct chats.' })),
    power_level_content_override: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Merged over the default m.room.power_levels content.',
      }),
    ),
  },
  { additionalProperties: true },
);

export const createRoomRoute = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/createRoom',
  operationId: 'createRoom',
  summary: 'Create a new room',
  description:
    'Creates a room as createRoom.yaml lays it out: create event, the creator joins, power levels, canonical alias, ' +
    'the preset, initial_state, name, topic, invites. Errors: 400 M_UNSUPPORTED_ROOM_VERSION, M_ROOM_IN_USE (alias taken), ' +
    'M_INVALID_ROOM_STATE (the events the request implies are refused by the auth rules), M_INVALID_PARAM (a bad invitee, ' +
    'alias or override). Third-party invites (`invite_3pid`) go through the identity server as POST /invite does.',
  tags: ['Room creation'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  refusedWhileSuspended: true,
  request: { body: CreateRoomBody },
  responses: {
    200: Type.Object(
      { room_id: Type.String({ description: "The created room's ID." }) },
      { description: 'Information about the newly created room.', additionalProperties: false },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const {
      invite_3pid: thirdPartyInvites,
      creation_content,
      initial_state,
      power_level_content_override,
      ...rest
    } = req.body;
    if (rest.room_alias_name !== undefined) {
      const registry = hs.appservices.registry;
      const alias = `#${rest.room_alias_name}:${hs.config.server_name}`;
      registry.checkAliasChange(alias, registry.serviceOf(req.requester));
    }
    const created = await hs.rooms.createRoom(req.requester.userId, {
      ...rest,
      ...(creation_content === undefined ? {} : { creation_content: creation_content as JsonObject }),
      ...(power_level_content_override === undefined
        ? {}
        : { power_level_content_override: power_level_content_override as JsonObject }),
      ...(initial_state === undefined
        ? {}
        : {
            initial_state: initial_state.map((event) => ({
              type: event.type,
              ...(event.state_key === undefined ? {} : { state_key: event.state_key }),
              content: event.content as JsonObject,
            })),
          }),
    });
    // Users of other servers: each invite goes through their server, as POST /invite does.
    for (const invitee of new Set(rest.invite ?? [])) {
      if (belongsToServer(invitee, hs.config.server_name)) continue;
      const content: JsonObject = { membership: 'invite' };
      if (rest.is_direct === true) content.is_direct = true;
      await hs.roomFederation.handshakes.inviteRemote(created.roomId, req.requester.userId, invitee, content);
    }
    for (const invite of thirdPartyInvites ?? []) {
      await hs.thirdPartyInvites.inviteThirdParty(
        {
          roomId: created.roomId,
          inviter: req.requester.userId,
          idServer: invite.id_server,
          idAccessToken: invite.id_access_token,
          medium: invite.medium,
          address: invite.address,
        },
        async (invitee) => {
          if (belongsToServer(invitee, hs.config.server_name)) {
            await hs.rooms.membership.invite(created.roomId, req.requester.userId, invitee);
            return;
          }
          const content: JsonObject = { membership: 'invite' };
          await hs.roomFederation.handshakes.inviteRemote(
            created.roomId,
            req.requester.userId,
            invitee,
            content,
          );
        },
      );
    }
    return reply(200, { room_id: created.roomId });
  },
});

export const roomCreationRoutes = [createRoomRoute];
