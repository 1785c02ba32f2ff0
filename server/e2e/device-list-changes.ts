/**
 * `device_lists` of a sync, and /keys/changes (client-server "Extensions to
 * /sync", "Tracking the device list for a user"), from the device-list stream:
 *
 * - `changed`: users who share a room with the viewer now and whose devices or
 *   keys changed, or who started sharing a room with the viewer (they joined
 *   one of the viewer's rooms, or the viewer joined theirs), in the range; the
 *   viewer's own changes too (their other devices track them).
 * - `left`: users who stopped being joined to a room the viewer was in (or the
 *   viewer left theirs) and share no room with the viewer any more.
 *
 * Like Synapse, every joined room counts, encrypted or not: clients only track
 * users of encrypted rooms, so a user from an unencrypted room costs one
 * ignored entry, while missing one would break encryption.
 */
import type { Storage } from '../../storage/storage.js';

/** Above this many candidates, whether each shares a room is answered from one set of the viewer's co-members. */
const PER_USER_CHECKS = 32;

export interface DeviceListChanges {
  changed: string[];
  left: string[];
}

export async function deviceListChangesFor(
  storage: Pick<Storage, 'e2eKeys' | 'memberships'>,
  viewer: string,
  afterPosition: number,
  upToPosition: number,
): Promise<DeviceListChanges> {
  const entries = await storage.e2eKeys.deviceListChangesBetween(afterPosition, upToPosition);
  if (entries.length === 0) return { changed: [], left: [] };

  const viewerRooms = new Set(
    (await storage.memberships.membershipsOfUser(viewer, ['join'])).map((record) => record.roomId),
  );
  // Others' leaves count in rooms the viewer left in the range too (the viewer may have left first).
  const roomsViewerLeft = new Set(
    entries
      .filter((entry) => entry.userId === viewer && entry.change === 'left')
      .map((entry) => entry.roomId),
  );
  const changed = new Set<string>();
  /** Candidates known to share a room with the viewer now (members of a room the viewer is in). */
  const sharing = new Set<string>();
  const maybeChanged = new Set<string>();
  const maybeLeft = new Set<string>();
  const membersOf = async (roomId: string) =>
    (await storage.memberships.membersOfRoom(roomId, ['join'])).map((record) => record.userId);

  for (const entry of entries) {
    const { userId, roomId } = entry;
    if (entry.change === 'keys') {
      if (userId === viewer) changed.add(viewer);
      else maybeChanged.add(userId);
    } else if (entry.change === 'joined' && roomId !== null) {
      if (userId === viewer) {
        if (!viewerRooms.has(roomId)) continue;
        for (const member of await membersOf(roomId)) {
          sharing.add(member);
          maybeChanged.add(member);
        }
      } else if (viewerRooms.has(roomId)) {
        maybeChanged.add(userId);
      }
    } else if (entry.change === 'left' && roomId !== null) {
      if (userId === viewer) {
        for (const member of await membersOf(roomId)) maybeLeft.add(member);
      } else if (viewerRooms.has(roomId) || roomsViewerLeft.has(roomId)) {
        maybeLeft.add(userId);
      }
    }
  }
  // Few candidates: ask each one's rooms. Many (a burst of logins elsewhere): read the viewer's
  // rooms' members once instead of one query per candidate.
  let coMembers: Set<string> | undefined;
  if (maybeChanged.size + maybeLeft.size > PER_USER_CHECKS) {
    coMembers = new Set();
    for (const roomId of viewerRooms) for (const member of await membersOf(roomId)) coMembers.add(member);
  }
  const sharesRoom = async (userId: string): Promise<boolean> => {
    if (sharing.has(userId)) return true;
    if (coMembers !== undefined) return coMembers.has(userId);
    const rooms = await storage.memberships.membershipsOfUser(userId, ['join']);
    const shares = rooms.some((record) => viewerRooms.has(record.roomId));
    if (shares) sharing.add(userId);
    return shares;
  };
  for (const userId of maybeChanged) {
    if (userId !== viewer && (await sharesRoom(userId))) changed.add(userId);
  }
  const left: string[] = [];
  for (const userId of maybeLeft) {
    if (userId !== viewer && !(await sharesRoom(userId))) left.push(userId);
  }
  return { changed: [...changed].sort(), left: left.sort() };
}
