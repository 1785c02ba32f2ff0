/**
 * Membership changes of local users (client-server "Room membership"): each is an
 * `m.room.member` event through the send path, so the auth rules alone decide who may
 * do what. A restricted join names its local authoriser (restricted-join.ts). Joins over
 * federation (rooms this server is not in) are not handled here yet.
 */
import { encodeCanonicalJson } from '../../protocol/canonical-json.js';
import type { JsonObject } from '../../protocol/events.js';
import type { Storage } from '../../storage/storage.js';
import { MatrixError } from '../errors.js';
import { restrictedJoinAuthoriser } from './restricted-join.js';
import type { RoomEventSender, SentEvent } from './room-event-sender.js';
import type { RoomReads } from './room-reads.js';

/** displayname and avatar_url of a local account, for the content of its membership events. */
export async function memberProfile(storage: Storage, userId: string): Promise<JsonObject> {
  const account = await storage.accounts.getAccount(userId);
  const profile: JsonObject = {};
  if (account?.displayName != null) profile.displayname = account.displayName;
  if (account?.avatarUrl != null) profile.avatar_url = account.avatarUrl;
  return profile;
}

export interface MembershipOptions {
  readonly reason?: string;
}

export interface InviteOptions extends MembershipOptions {
  readonly isDirect?: boolean;
}

export class RoomMembership {
  constructor(
    private readonly storage: Storage,
    private readonly sender: RoomEventSender,
    private readonly reads: RoomReads,
    private readonly serverName: string,
  ) {}

  /**
   * The user joins (or re-announces a join with a fresh profile); an invite, if any, is what
   * lets them in, or in a restricted room their membership of a room its join rule allows.
   */
  async join(roomId: string, userId: string, options: MembershipOptions = {}): Promise<SentEvent> {
    const content: JsonObject = { membership: 'join', ...(await memberProfile(this.storage, userId)) };
    const authoriser = await restrictedJoinAuthoriser(this.reads, this.serverName, roomId, userId);
    if (authoriser !== undefined) content.join_authorised_via_users_server = authoriser;
    return this.send(roomId, userId, userId, withReason(content, options));
  }

  async invite(
    roomId: string,
    inviter: string,
    invitee: string,
    options: InviteOptions = {},
  ): Promise<SentEvent> {
    const content: JsonObject = { membership: 'invite', ...(await memberProfile(this.storage, invitee)) };
    if (options.isDirect === true) content.is_direct = true;
    return this.send(roomId, inviter, invitee, withReason(content, options));
  }

  /** Leaving, declining an invite or withdrawing a knock. */
  leave(roomId: string, userId: string, options: MembershipOptions = {}): Promise<SentEvent> {
    return this.send(roomId, userId, userId, withReason({ membership: 'leave' }, options));
  }

  kick(roomId: string, kicker: string, target: string, options: MembershipOptions = {}): Promise<SentEvent> {
    if (kicker === target) return Promise.reject(MatrixError.forbidden('Use leave to leave a room'));
    return this.send(roomId, kicker, target, withReason({ membership: 'leave' }, options));
  }

  ban(roomId: string, banner: string, target: string, options: MembershipOptions = {}): Promise<SentEvent> {
    return this.send(roomId, banner, target, withReason({ membership: 'ban' }, options));
  }

  /** Lifts a ban (membership becomes leave); refused when the target is not banned, lest it turn into a kick. */
  async unban(
    roomId: string,
    unbanner: string,
    target: string,
    options: MembershipOptions = {},
  ): Promise<SentEvent> {
    const eventId = await this.storage.state.currentStateEventId(roomId, 'm.room.member', target);
    const current = eventId === null ? null : await this.storage.events.getEvent(eventId);
    if (current?.pdu.content.membership !== 'ban') throw MatrixError.forbidden(`${target} is not banned`);
    return this.send(roomId, unbanner, target, withReason({ membership: 'leave' }, options));
  }

  async knock(roomId: string, userId: string, options: MembershipOptions = {}): Promise<SentEvent> {
    const content = { membership: 'knock', ...(await memberProfile(this.storage, userId)) };
    return this.send(roomId, userId, userId, withReason(content, options));
  }

  /**
   * As Synapse: a change identical to the current member event (same sender, same content)
   * is answered with that event instead of a new one, so repeated joins or leaves succeed
   * without noise.
   */
  private async send(
    roomId: string,
    sender: string,
    target: string,
    content: JsonObject,
  ): Promise<SentEvent> {
    const eventId = await this.storage.state.currentStateEventId(roomId, 'm.room.member', target);
    const current = eventId === null ? null : await this.storage.events.getEvent(eventId);
    if (
      current !== null &&
      current.pdu.sender === sender &&
      encodeCanonicalJson(current.pdu.content) === encodeCanonicalJson(content)
    ) {
      return { eventId: current.eventId, streamOrdering: current.streamOrdering };
    }
    return this.sender.sendEvent({ roomId, sender, type: 'm.room.member', stateKey: target, content });
  }
}

function withReason(content: JsonObject, options: MembershipOptions): JsonObject {
  if (options.reason !== undefined) content.reason = options.reason;
  return content;
}
