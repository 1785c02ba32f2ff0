/**
 * What rooms do when an account changes: a new display name or avatar is announced by a
 * fresh join event in every room the user is in (client-server "Profiles": "the server
 * MUST ... send an update for every room the user is joined to"); a deactivated account
 * leaves its rooms and declines its invites and knocks (client-server "Account deactivation").
 */
import type { Logger } from 'pino';
import type { Storage } from '../../storage/storage.js';
import type { ProfileChange } from '../accounts/profile-service.js';
import type { RoomMembership } from './membership.js';

export interface AccountHookDeps {
  readonly storage: Storage;
  readonly membership: RoomMembership;
  readonly log: Pick<Logger, 'warn'>;
}

const MEMBER_EVENT_PROFILE_KEYS: ReadonlySet<string> = new Set(['displayname', 'avatar_url']);

/** The onProfileChanged listener: one failed room does not stop the others. */
export function announceProfileChange(deps: AccountHookDeps): (change: ProfileChange) => Promise<void> {
  return async (change) => {
    if (!MEMBER_EVENT_PROFILE_KEYS.has(change.key)) return;
    const joined = await deps.storage.memberships.membershipsOfUser(change.userId, ['join']);
    await Promise.all(
      joined.map(({ roomId }) =>
        deps.membership.join(roomId, change.userId).catch((error: unknown) => {
          deps.log.warn({ err: error, roomId, userId: change.userId }, 'Could not update a member event');
        }),
      ),
    );
  };
}

/** The onAccountDeactivated listener. */
export function leaveRoomsOnDeactivation(
  deps: AccountHookDeps,
): (event: { userId: string }) => Promise<void> {
  return async ({ userId }) => {
    const rooms = await deps.storage.memberships.membershipsOfUser(userId, ['join', 'invite', 'knock']);
    await Promise.all(
      rooms.map(({ roomId }) =>
        deps.membership.leave(roomId, userId).catch((error: unknown) => {
          deps.log.warn({ err: error, roomId, userId }, 'Could not leave a room of a deactivated account');
        }),
      ),
    );
  };
}
