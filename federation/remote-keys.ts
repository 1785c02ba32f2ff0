/**
 * Our side of server-server "End-to-End Encryption": /user/keys/query and
 * /user/keys/claim of another server's users, through the signed federation
 * client (hs.deviceKeys groups users per server and applies the timeout).
 * Only what the answering server says about its own users is kept.
 */

import type { JsonObject } from '../protocol/events.js';
import { belongsToServer } from '../protocol/identifiers.js';
import type { RemoteKeyQueries } from '../server/e2e/device-keys.js';
import type { FederationClient } from './federation.js';

export function createRemoteKeyQueries(client: FederationClient): RemoteKeyQueries {
  return {
    async queryKeys(serverName, deviceKeys, timeoutMs) {
      const answer = await client.request<Record<string, unknown>>({
        destination: serverName,
        method: 'POST',
        path: '/_matrix/federation/v1/user/keys/query',
        body: { device_keys: deviceKeys },
        timeoutMs,
      });
      return {
        device_keys: ownUsers(serverName, answer.device_keys) as Record<string, Record<string, JsonObject>>,
        master_keys: ownUsers(serverName, answer.master_keys) as Record<string, JsonObject>,
        self_signing_keys: ownUsers(serverName, answer.self_signing_keys) as Record<string, JsonObject>,
      };
    },
    async claimKeys(serverName, oneTimeKeys, timeoutMs) {
      const answer = await client.request<Record<string, unknown>>({
        destination: serverName,
        method: 'POST',
        path: '/_matrix/federation/v1/user/keys/claim',
        body: { one_time_keys: oneTimeKeys },
        timeoutMs,
      });
      return {
        one_time_keys: ownUsers(serverName, answer.one_time_keys) as Record<
          string,
          Record<string, Record<string, string | JsonObject>>
        >,
      };
    },
  };
}

/** The entries of a by-user map that are objects and name users of `serverName`. */
function ownUsers(serverName: string, byUser: unknown): Record<string, JsonObject> {
  if (typeof byUser !== 'object' || byUser === null || Array.isArray(byUser)) return {};
  const kept: Record<string, JsonObject> = {};
  for (const [userId, value] of Object.entries(byUser)) {
    if (!belongsToServer(userId, serverName)) continue;
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      kept[userId] = value as JsonObject;
  }
  return kept;
}
