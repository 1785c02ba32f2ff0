/**
 * `invite_state` / `knock_state` (client-server "Stripped state"): a few state
 * events, stripped to type, state_key, sender and content, so the user can show
 * a room they are not in; taken at the membership event, which is included.
 */
import { type JsonObject, stateTupleKey } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import type { SyncDeps } from './sync-context.js';

/** What Synapse shares by default (room_prejoin_state), which the spec recommends. */
const PREJOIN_STATE_KEYS = [
  stateTupleKey('m.room.create', ''),
  stateTupleKey('m.room.join_rules', ''),
  stateTupleKey('m.room.canonical_alias', ''),
  stateTupleKey('m.room.avatar', ''),
  stateTupleKey('m.room.encryption', ''),
  stateTupleKey('m.room.name', ''),
  stateTupleKey('m.room.topic', ''),
];

export async function strippedStateAt(deps: SyncDeps, membershipEvent: StoredEvent): Promise<JsonObject[]> {
  // An invite received (or a knock made) over federation for a room this server is not in
  // carries its stripped state.
  const unsigned = membershipEvent.outlier ? membershipEvent.pdu.unsigned : undefined;
  const carried = unsigned?.invite_room_state ?? unsigned?.knock_room_state;
  if (Array.isArray(carried)) {
    const stripped = carried.filter(
      (item): item is JsonObject => typeof item === 'object' && item !== null && !Array.isArray(item),
    );
    return [...stripped, strip(membershipEvent)];
  }
  const state = await deps.reads.stateAfter(membershipEvent);
  const ids = PREJOIN_STATE_KEYS.map((key) => state.get(key)).filter((id): id is string => id !== undefined);
  const events = await deps.reads.events(ids);
  const stripped = ids
    .map((id) => events.get(id))
    .filter((event): event is StoredEvent => event !== undefined)
    .map(strip);
  stripped.push(strip(membershipEvent));
  return stripped;
}

function strip(event: StoredEvent): JsonObject {
  return {
    type: event.pdu.type,
    state_key: event.pdu.state_key ?? '',
    sender: event.pdu.sender,
    content: event.pdu.content,
  };
}
