/**
 * server-server "Third-party invites" (third_party_invite.yaml):
 *   PUT /_matrix/federation/v1/exchange_third_party_invite/{roomId}   (X-Matrix)
 *   PUT /_matrix/federation/v1/3pid/onbind                            (identity servers; no auth)
 *   POST /_matrix/federation/v1/3pid/onbind: what identity servers really send (Sydent; the
 *   spec's PUT is a known error, matrix-spec#524), accepted as Synapse and Dendrite do
 */

import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { allowedRoomOfPeer } from './federation-room-access.js';

const TAGS = ['Federation rooms'];
const Empty = Type.Object({}, { description: 'An empty object.' });
const AnyObject = (description: string) => Type.Object({}, { additionalProperties: true, description });

export const exchangeThirdPartyInvite = defineRoute({
  method: 'PUT',
  path: '/_matrix/federation/v1/exchange_third_party_invite/{roomId}',
  operationId: 'exchangeThirdPartyInvite',
  summary: 'Request a server to auth a third-party invite event.',
  description:
    "The partial m.room.member invite of a user of the requesting server, in the name of this server's user who " +
    'made the m.room.third_party_invite with the same token: checked and sent as an invite (the identity ' +
    "server's signature is checked by the auth rules).",
  tags: TAGS,
  resource: 'federation',
  auth: 'x-matrix',
  rateLimit: 'federation',
  request: {
    params: Type.Object({ roomId: Type.String({ description: 'The room ID.' }) }),
    body: Type.Object(
      {
        type: Type.String(),
        room_id: Type.String(),
        sender: Type.String(),
        state_key: Type.String(),
        content: AnyObject('The event content: membership invite and third_party_invite.'),
      },
      { additionalProperties: true },
    ),
  },
  responses: { 200: Empty, 400: MatrixErrorBody, 403: MatrixErrorBody, 404: MatrixErrorBody },
  async handler(req, hs) {
    const { roomId, origin } = await allowedRoomOfPeer(req, hs);
    await hs.thirdPartyInvites.exchange(origin, roomId, req.body as unknown as JsonObject);
    return reply(200, {});
  },
});

export const onBindThirdPartyIdentifier = defineRoute({
  method: 'PUT',
  path: '/_matrix/federation/v1/3pid/onbind',
  operationId: 'onBindThirdPartyIdentifier',
  summary: 'Notifies the server that a third-party identifier has been bound to one of its users.',
  description:
    "Called by identity servers. Each pending invite of the user is exchanged with the inviter's server " +
    '(exchange_third_party_invite), which sends the invite; failures are logged and the others go ahead.',
  tags: TAGS,
  resource: 'federation',
  auth: 'none',
  rateLimit: 'none',
  request: {
    body: Type.Object(
      {
        medium: Type.String(),
        address: Type.String(),
        mxid: Type.String(),
        invites: Type.Array(AnyObject('A pending invite: medium, address, mxid, room_id, sender, signed.')),
      },
      { additionalProperties: true },
    ),
  },
  responses: { 200: Empty, 400: MatrixErrorBody },
  async handler(req, hs) {
    await hs.thirdPartyInvites.onBind(req.body as unknown as JsonObject);
    return reply(200, {});
  },
});

export const onBindThirdPartyIdentifierPost = defineRoute({
  ...onBindThirdPartyIdentifier,
  method: 'POST',
  operationId: 'onBindThirdPartyIdentifierPost',
  summary: `${onBindThirdPartyIdentifier.summary} (POST, as identity servers send it)`,
});

export const federationThirdPartyRoutes = [
  exchangeThirdPartyInvite,
  onBindThirdPartyIdentifier,
  onBindThirdPartyIdentifierPost,
];
