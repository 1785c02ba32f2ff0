/**
 * Account data in sync (client-server "Client Config", "Ignoring Users"): the
 * global and per-room entries changed since the token (all of them initially),
 * filtered.
 */
import type { JsonObject } from '../../protocol/events.js';
import { PUSH_RULES_ACCOUNT_DATA } from '../push/push-rule-store.js';
import { matchesEventFilter, matchesRoomEventFilter } from '../rooms/event-filter.js';
import type { SyncDeps, SyncRequest } from './sync-context.js';

export interface AccountDataChanges {
  readonly global: JsonObject[];
  readonly byRoom: Map<string, JsonObject[]>;
}

export async function accountDataChanges(
  deps: SyncDeps,
  request: Pick<SyncRequest, 'requester' | 'since' | 'upTo' | 'filter'>,
): Promise<AccountDataChanges> {
  const changes: AccountDataChanges = { global: [], byRoom: new Map() };
  const after = request.since?.accountData ?? 0;
  if (request.since !== null && after >= request.upTo.accountData) return changes;
  const entries = await deps.hs.storage.accountData.accountDataChangedSince(request.requester.userId, after);
  const { filter } = request;
  for (const entry of entries) {
    if (entry.streamPosition > request.upTo.accountData) continue; // the next sync's
    const event = { type: entry.type, content: entry.content };
    if (entry.roomId === null) {
      if (matchesEventFilter(filter.accountData, { type: entry.type })) changes.global.push(event);
      continue;
    }
    if (!matchesRoomEventFilter(filter.roomAccountData, { type: entry.type, roomId: entry.roomId })) continue;
    let events = changes.byRoom.get(entry.roomId);
    if (events === undefined) {
      events = [];
      changes.byRoom.set(entry.roomId, events);
    }
    events.push(event);
  }
  // push.md "Push Rules: Events": clients learn the rules from m.push_rules; a user who
  // never changed a rule has none stored, so an initial sync shows the defaults.
  if (
    request.since === null &&
    !entries.some((entry) => entry.roomId === null && entry.type === PUSH_RULES_ACCOUNT_DATA) &&
    matchesEventFilter(filter.accountData, { type: PUSH_RULES_ACCOUNT_DATA })
  ) {
    const global = deps.hs.push.rules.defaultRuleSet(request.requester.userId);
    changes.global.push({
      type: PUSH_RULES_ACCOUNT_DATA,
      content: { global: global as unknown as JsonObject },
    });
  }
  applyLimit(changes.global, filter.accountData?.limit);
  for (const events of changes.byRoom.values()) applyLimit(events, filter.roomAccountData?.limit);
  return changes;
}

function applyLimit(events: JsonObject[], limit: number | undefined): void {
  if (limit !== undefined && events.length > limit) events.splice(0, events.length - limit);
}
