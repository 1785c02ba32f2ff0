/**
 * The published room directories application services keep for their
 * third-party networks (application-service "Published room directories"):
 * PUT /directory/list/appservice/{networkId}/{roomId} lists a room under the
 * service and network; POST /publicRooms shows a network's rooms for its
 * `third_party_instance_id` (`{appserviceId}|{networkId}`, the instance IDs
 * /thirdparty/protocols gives, as Synapse spells them), and the server's own
 * directory plus every network's for `include_all_networks`.
 */
import type { Storage } from '../../storage/storage.js';
import { publishedRoomIds } from '../rooms/public-rooms.js';

/** The instance ID of one service's network. */
export function thirdPartyInstanceId(appserviceId: string, networkId: string): string {
  return `${appserviceId}|${networkId}`;
}

/** Which rooms POST /publicRooms lists for its network options; undefined: the server's own directory. */
export function networkRoomSource(
  storage: Storage,
  options: { includeAllNetworks?: boolean | undefined; thirdPartyInstanceId?: string | undefined },
): (() => Promise<readonly string[]>) | undefined {
  const instanceId = options.thirdPartyInstanceId;
  if (instanceId !== undefined) {
    const bar = instanceId.indexOf('|');
    // An instance this server never handed out lists nothing.
    if (bar <= 0) return async () => [];
    const network = { appserviceId: instanceId.slice(0, bar), networkId: instanceId.slice(bar + 1) };
    return () => storage.appservices.listedRoomIds(network);
  }
  if (options.includeAllNetworks !== true) return undefined;
  return async () => {
    const [own, networks] = await Promise.all([
      publishedRoomIds(storage),
      storage.appservices.listedRoomIds(),
    ]);
    return [...new Set([...own, ...networks])];
  };
}
