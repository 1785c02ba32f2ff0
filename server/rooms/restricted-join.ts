/**
 * Restricted joins (client-server "Restricted rooms"; room versions 8+, and
 * `knock_restricted` from 10): a user who is neither invited nor joined may join
 * when they are joined to one of the rooms the join rule's `allow` list names. The
 * join then names, in `join_authorised_via_users_server`, a local member able to
 * invite, whose server (this one) signs it — auth rule 4.3.5 checks exactly that.
 */
import { belongsToServer } from '../../protocol/identifiers.js';
import { MatrixError } from '../errors.js';
import type { RoomReads } from './room-reads.js';
import { allowedRoomIds } from './room-summaries.js';

/**
 * The user ID to put in `join_authorised_via_users_server` for this join, or
 * undefined when the join needs none (not a restricted room, or the user is
 * already invited or joined: the auth rules let those in as they are).
 * @throws MatrixError 403 M_FORBIDDEN when the user meets none of the allow conditions;
 *   400 M_UNABLE_TO_GRANT_JOIN when no local member may authorise it.
 */
export async function restrictedJoinAuthoriser(
  reads: RoomReads,
  serverName: string,
  roomId: string,
  userId: string,
): Promise<string | undefined> {
  const rules = await reads.roomRules(roomId);
  if (rules === null) return undefined;
  const joinRules = (await reads.stateEvent(roomId, 'm.room.join_rules', ''))?.pdu.content;
  const joinRule = joinRules?.join_rule;
  const restricted =
    (rules.restrictedJoinAllowed && joinRule === 'restricted') ||
    (rules.knockRestrictedJoinAllowed && joinRule === 'knock_restricted');
  if (!restricted || joinRules === undefined) return undefined;
  const current = await reads.membership(roomId, userId);
  if (current === 'join' || current === 'invite' || current === 'ban') return undefined;

  let satisfied = false;
  for (const allowedRoom of allowedRoomIds(joinRules)) {
    if ((await reads.membership(allowedRoom, userId)) === 'join') {
      satisfied = true;
      break;
    }
  }
  if (!satisfied) {
    throw MatrixError.forbidden('You are not joined to any of the rooms this room allows members of');
  }

  const powers = await reads.powers(roomId);
  if (powers === null) return undefined;
  // The most powerful local member able to invite: creators and admins before moderators.
  let best: { userId: string; level: number } | undefined;
  for (const member of (await reads.joinedMembers(roomId)).keys()) {
    if (!belongsToServer(member, serverName)) continue;
    const level = powers.levelOf(member);
    if (level >= powers.levels.invite && (best === undefined || level > best.level)) {
      best = { userId: member, level };
    }
  }
  if (best === undefined) {
    throw MatrixError.of(
      'M_UNABLE_TO_GRANT_JOIN',
      'No member of this room on this server can authorise the join',
    );
  }
  return best.userId;
}
