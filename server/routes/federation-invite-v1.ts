/**
 * server-server invites-v1.yaml: PUT /_matrix/federation/v1/invite/{roomId}/{eventId}, the
 * older invite for rooms of versions 1 and 2 (the spec: a server receiving it must assume one
 * of those). The body is the invite event itself, its stripped state in
 * `unsigned.invite_room_state`; the answer is `[200, { event }]`, as the v1 API has it.
 * Checked and signed as a v2 invite of room version 1 is.
 */

import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { allowedRoomOfPeer } from './federation-room-access.js';

const PduSchema = Type.Object({}, { additionalProperties: true, description: 'A persistent data unit.' });

/** Room versions 1 and 2 share their event format, which is all the invite needs. */
const ASSUMED_ROOM_VERSION = '1';

export const inviteV1 = defineRoute({
  method: 'PUT',
  path: '/_matrix/federation/v1/invite/{roomId}/{eventId}',
  operationId: 'sendInviteV1',
  summary: 'Invite a user of this server to a room (rooms of version 1 or 2).',
  description:
    'The body is the invite event; its unsigned.invite_room_state is the stripped state shown to the invitee. ' +
    'Answered [200, {event}] with the event signed by this server too. Prefer the v2 API.',
  tags: ['Federation rooms'],
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    params: Type.Object({
      roomId: Type.String({ description: 'The room ID.' }),
      eventId: Type.String({ description: 'The event ID.' }),
    }),
    body: PduSchema,
  },
  responses: {
    200: Type.Tuple([Type.Literal(200), Type.Object({ event: PduSchema })], {
      description: 'The invite, now also signed by this server.',
    }),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    404: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { eventId } = req.params;
    const { roomId, origin } = await allowedRoomOfPeer(req, hs);
    const event = req.body as JsonObject;
    const unsigned = event.unsigned;
    const inviteRoomState =
      typeof unsigned === 'object' &&
      unsigned !== null &&
      !Array.isArray(unsigned) &&
      Array.isArray(unsigned.invite_room_state)
        ? unsigned.invite_room_state
        : [];
    const signed = await hs.roomFederation.handshakes.receiveInvite(origin, roomId, eventId, {
      event,
      room_version: ASSUMED_ROOM_VERSION,
      invite_room_state: inviteRoomState,
    });
    return reply(200, [200, { event: signed as unknown as JsonObject }] as [200, { event: JsonObject }]);
  },
});

export const federationInviteV1Routes = [inviteV1];
