/**
 * Who this server federates with: the config's allow and deny lists (globs,
 * matched against the server name with and without its port), and each
 * room's m.room.server_acl (protocol/server-acl.ts) read from current state.
 */
import type { JsonObject } from '../protocol/events.js';
import { parseServerName } from '../protocol/identifiers.js';
import { globRegExp, isServerAllowedByAcl } from '../protocol/server-acl.js';
import type { Storage } from '../storage/storage.js';
import type { FederationAccess } from './federation.js';

export function createFederationAccess(options: {
  readonly allowlist: readonly string[];
  readonly denylist: readonly string[];
  readonly storage: Pick<Storage, 'state' | 'events'>;
}): FederationAccess {
  const allow = options.allowlist.map(globRegExp);
  const deny = options.denylist.map(globRegExp);
  const matches = (globs: readonly RegExp[], serverName: string) => {
    let host = serverName;
    try {
      host = parseServerName(serverName).host;
    } catch {}
    return globs.some((glob) => glob.test(serverName) || glob.test(host));
  };
  return {
    isServerAllowed(serverName) {
      if (matches(deny, serverName)) return false;
      return allow.length === 0 || matches(allow, serverName);
    },
    async isAllowedInRoom(serverName, roomId) {
      const eventId = await options.storage.state.currentStateEventId(roomId, 'm.room.server_acl', '');
      if (eventId === null) return true;
      const event = await options.storage.events.getEvent(eventId);
      const content: JsonObject | undefined = event?.pdu.content;
      return content === undefined ? true : isServerAllowedByAcl(serverName, content);
    },
  };
}
