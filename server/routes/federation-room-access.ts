/**
 * The room check every federation room endpoint starts with: a valid room ID in the path, and
 * the asking server not denied by the room's server ACL.
 */
import { isValidRoomId } from '../../protocol/identifiers.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';

export function checkedRoomId(roomId: string): string {
  if (!isValidRoomId(roomId)) throw MatrixError.invalidParam(`Invalid room ID: ${JSON.stringify(roomId)}`);
  return roomId;
}

/** spec: server-server "Server Access Control Lists": denied servers get 403 on room endpoints. */
export async function assertAllowedInRoom(
  hs: HomeserverContext,
  server: string,
  roomId: string,
): Promise<void> {
  if (!(await hs.federation.access.isAllowedInRoom(server, roomId))) {
    throw MatrixError.forbidden(`${server} is denied by the room's server ACL`);
  }
}

/** The checked room of the path and the asking server, refused when the room's ACL denies it. */
export async function allowedRoomOfPeer(
  req: { readonly params: { readonly roomId: string }; readonly requester: { readonly serverName: string } },
  hs: HomeserverContext,
): Promise<{ roomId: string; origin: string }> {
  const roomId = checkedRoomId(req.params.roomId);
  const origin = req.requester.serverName;
  await assertAllowedInRoom(hs, origin, roomId);
  return { roomId, origin };
}
