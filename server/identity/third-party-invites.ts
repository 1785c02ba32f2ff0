/**
 * Third-party invites (client-server "Third-party invites", server-server "Third-party
 * invites"):
 *
 * - inviting a 3PID (`inviteThirdParty`): the identity server is asked whether the address is
 *   bound; if so the Matrix ID is invited as usual, else the identity server stores the invite
 *   and an m.room.third_party_invite (state key: its token, content: its public keys) is sent;
 * - when the address is bound later, the identity server calls the invitee's server
 *   (`onBind`, PUT /3pid/onbind), which asks the server of the inviter to turn each pending
 *   invite into an m.room.member invite (PUT /exchange_third_party_invite/{roomId});
 * - the inviter's server (`exchange`) checks the partial event against the room's
 *   m.room.third_party_invite and sends the invite, over federation when the invitee is
 *   elsewhere; the auth rules check the identity server's signature on `signed`.
 */
import type { Logger } from 'pino';
import { FederationRequestError } from '../../federation/federation.js';
import type { JsonObject } from '../../protocol/events.js';
import {
  belongsToServer,
  isValidRoomId,
  isValidUserId,
  serverNameOfId as serverOf,
} from '../../protocol/identifiers.js';
import { isSignedByInviteKey } from '../../protocol/third-party-invite-signature.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { IdentityServerClient } from './identity-client.js';

export interface ThirdPartyInviteRequest {
  readonly roomId: string;
  readonly inviter: string;
  readonly idServer: string;
  readonly idAccessToken: string;
  readonly medium: string;
  readonly address: string;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class ThirdPartyInvites {
  readonly identity: IdentityServerClient;

  constructor(
    private readonly hs: () => HomeserverContext,
    config: HomeserverContext['config'],
    private readonly log: Logger,
  ) {
    this.identity = new IdentityServerClient(config.identity, log);
  }

  /**
   * POST /rooms/{roomId}/invite with a 3PID: the bound Matrix ID, or null when an
   * m.room.third_party_invite was sent instead.
   * @param invite invites a Matrix ID the usual way (local or over federation).
   */
  async inviteThirdParty(
    request: ThirdPartyInviteRequest,
    invite: (userId: string) => Promise<void>,
  ): Promise<string | null> {
    const hs = this.hs();
    const { roomId, inviter, idServer, idAccessToken, medium, address } = request;
    IdentityServerClient.checkServerName(idServer);
    // Only members may invite: checked before the identity server hears of the room.
    const membership = await hs.storage.memberships.getMembership(roomId, inviter);
    if (membership?.membership !== 'join') throw MatrixError.forbidden(`${inviter} is not in the room`);

    const bound = await this.identity.lookup(idServer, idAccessToken, medium, address);
    if (bound !== null) {
      if (!isValidUserId(bound, { historical: true })) {
        throw new MatrixError(502, 'M_UNKNOWN', 'The identity server answered with an invalid user ID');
      }
      await invite(bound);
      return bound;
    }

    const summary = await hs.directory.summaries.summary(roomId);
    const profile = await hs.profiles.getProfile(inviter).catch(() => ({}) as JsonObject);
    const body: JsonObject = { medium, address, room_id: roomId, sender: inviter };
    if (summary?.name !== undefined) body.room_name = summary.name;
    if (summary?.canonicalAlias !== undefined) body.room_alias = summary.canonicalAlias;
    if (summary?.avatarUrl !== undefined) body.room_avatar_url = summary.avatarUrl;
    if (summary?.joinRule !== undefined) body.room_join_rules = summary.joinRule;
    if (summary?.roomType !== undefined) body.room_type = summary.roomType;
    if (typeof profile.displayname === 'string') body.sender_display_name = profile.displayname;
    if (typeof profile.avatar_url === 'string') body.sender_avatar_url = profile.avatar_url;
    const stored = await this.identity.storeInvite(idServer, idAccessToken, body);
    const [first] = stored.publicKeys;
    await hs.rooms.sender.sendEvent({
      roomId,
      sender: inviter,
      type: 'm.room.third_party_invite',
      stateKey: stored.token,
      content: {
        display_name: stored.displayName,
        key_validity_url: first!.key_validity_url,
        public_key: first!.public_key,
        public_keys: stored.publicKeys,
      },
    });
    return null;
  }

  /**
   * PUT /exchange_third_party_invite/{roomId} from `origin` (or this server, for its own
   * users): the partial m.room.member invite of a user of `origin`, sent in the name of the
   * local user who made the m.room.third_party_invite.
   */
  async exchange(origin: string, roomId: string, partial: JsonObject): Promise<void> {
    const hs = this.hs();
    if (!isValidRoomId(roomId) || partial.room_id !== roomId) {
      throw MatrixError.invalidParam('room_id must match the room of the path');
    }
    const { type, sender, state_key: invitee, content } = partial;
    if (type !== 'm.room.member') throw MatrixError.invalidParam('type must be m.room.member');
    if (typeof sender !== 'string' || !isValidUserId(sender, { historical: true })) {
      throw MatrixError.invalidParam('sender must be a user ID');
    }
    if (typeof invitee !== 'string' || !isValidUserId(invitee, { historical: true })) {
      throw MatrixError.invalidParam('state_key must be a user ID');
    }
    if (!belongsToServer(sender, hs.config.server_name)) {
      throw MatrixError.forbidden(`${sender} is not a user of this server`);
    }
    if (!belongsToServer(invitee, origin))
      throw MatrixError.forbidden(`${invitee} is not a user of ${origin}`);
    if (!isObject(content) || content.membership !== 'invite') {
      throw MatrixError.invalidParam('content.membership must be invite');
    }
    const thirdParty = content.third_party_invite;
    const signed = isObject(thirdParty) ? thirdParty.signed : undefined;
    if (!isObject(signed) || typeof signed.token !== 'string' || signed.mxid !== invitee) {
      throw MatrixError.invalidParam('content.third_party_invite.signed must name the invitee and a token');
    }
    const inviteEventId = await hs.storage.state.currentStateEventId(
      roomId,
      'm.room.third_party_invite',
      signed.token,
    );
    const inviteEvent = inviteEventId === null ? null : await hs.storage.events.getEvent(inviteEventId);
    if (inviteEvent === null) throw MatrixError.notFound('No third-party invite with this token in the room');
    if (inviteEvent.pdu.sender !== sender) {
      throw MatrixError.forbidden('The sender did not make this third-party invite');
    }
    // Checked here too (the auth rules will again): a forged invite must not reach the invitee's server.
    if (!isSignedByInviteKey(signed, inviteEvent.pdu.content)) {
      throw MatrixError.forbidden("No signature in signed matches the third-party invite's public keys");
    }
    const displayName = inviteEvent.pdu.content.display_name;
    const memberContent: JsonObject = {
      membership: 'invite',
      third_party_invite: { display_name: typeof displayName === 'string' ? displayName : '', signed },
    };
    // The auth rules check the identity server's signature against the invite's public keys.
    if (belongsToServer(invitee, hs.config.server_name)) {
      await hs.rooms.sender.sendEvent({
        roomId,
        sender,
        type: 'm.room.member',
        stateKey: invitee,
        content: memberContent,
      });
    } else {
      await hs.roomFederation.handshakes.inviteRemote(roomId, sender, invitee, memberContent);
    }
  }

  /**
   * PUT /3pid/onbind from an identity server: each pending invite of the now bound local user
   * is exchanged with the inviter's server. Failures are logged; the others still go ahead.
   */
  async onBind(body: JsonObject): Promise<void> {
    const hs = this.hs();
    const { mxid, invites } = body;
    if (typeof mxid !== 'string' || !isValidUserId(mxid, { historical: true })) {
      throw MatrixError.invalidParam('mxid must be a user ID');
    }
    if (!belongsToServer(mxid, hs.config.server_name)) {
      throw MatrixError.invalidParam(`${mxid} is not a user of this server`);
    }
    if (!Array.isArray(invites)) return;
    for (const invite of invites) {
      if (!isObject(invite) || invite.mxid !== mxid) continue;
      const { room_id: roomId, sender, signed } = invite;
      if (typeof roomId !== 'string' || typeof sender !== 'string' || !isObject(signed)) continue;
      if (!isValidUserId(sender, { historical: true })) continue;
      const partial: JsonObject = {
        type: 'm.room.member',
        room_id: roomId,
        sender,
        state_key: mxid,
        content: {
          membership: 'invite',
          third_party_invite: {
            display_name: typeof invite.display_name === 'string' ? invite.display_name : '',
            signed,
          },
        },
      };
      try {
        if (belongsToServer(sender, hs.config.server_name)) {
          await this.exchange(hs.config.server_name, roomId, partial);
        } else {
          await hs.federation.client.request({
            destination: serverOf(sender),
            method: 'PUT',
            path: `/_matrix/federation/v1/exchange_third_party_invite/${encodeURIComponent(roomId)}`,
            body: partial,
          });
        }
      } catch (error) {
        const status = error instanceof FederationRequestError ? error.status : undefined;
        this.log.warn({ err: error, roomId, mxid, status }, 'Exchanging a third-party invite failed');
      }
    }
  }

  close(): Promise<void> {
    return this.identity.close();
  }
}
