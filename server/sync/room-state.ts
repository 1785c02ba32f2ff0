/**
 * A room's `state` section (client-server "Syncing"): the full state at the start
 * of the timeline for initial syncs, newly joined rooms and full_state; otherwise
 * the delta between the state at `since` and at the start of the timeline (empty
 * unless the timeline is limited). The state filter applies; with lazy-loaded
 * members only the membership of the timeline's senders (and the user's own) is
 * kept, and, without include_redundant_members, only what the device lacks.
 */
import { type StateMap, stateTupleKey } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import { matchesRoomEventFilter } from '../rooms/event-filter.js';
import type { SyncDeps, SyncRequest } from './sync-context.js';

const MEMBER = 'm.room.member';

export interface StateAnchor {
  /** The first event of the returned timeline: the state is the state before it. */
  readonly timelineStart: StoredEvent | null;
  /** With an empty timeline: the room's last event at the end of the range (its state after). */
  readonly endEvent: StoredEvent | null;
}

/** The room state at the start of the timeline (keys -> event IDs). */
export function stateAtTimelineStart(deps: SyncDeps, anchor: StateAnchor): Promise<StateMap> {
  if (anchor.timelineStart !== null) return deps.reads.stateBefore(anchor.timelineStart);
  if (anchor.endEvent !== null) return deps.reads.stateAfter(anchor.endEvent);
  return Promise.resolve(new Map());
}

/** The room's state as it was at stream position `position` (after its last event at or before it). */
export async function stateAtPosition(deps: SyncDeps, roomId: string, position: number): Promise<StateMap> {
  const last = await deps.reads.lastEventAtOrBefore(roomId, position);
  return last === null ? new Map() : deps.reads.stateAfter(last);
}

export interface StateSectionInput {
  readonly roomId: string;
  /** State at the start of the timeline. */
  readonly atStart: StateMap;
  /** What the client already has (state at `since`); null: send it all. */
  readonly known: StateMap | null;
  readonly timeline: readonly StoredEvent[];
}

/** The state events to send, filtered, oldest first. */
export async function stateSection(
  deps: SyncDeps,
  request: SyncRequest,
  input: StateSectionInput,
): Promise<StoredEvent[]> {
  const { filter, requester } = request;
  const lazy = filter.lazyLoadMembers;
  const timelineIds = new Set(input.timeline.map((event) => event.eventId));
  const neededMembers = lazy ? membersToLoad(request, input.timeline) : null;

  const wanted: string[] = [];
  const lazyMembersOnly = neededMembers !== null && input.known === input.atStart;
  if (lazyMembersOnly) {
    // An incremental sync whose timeline is not limited: no state changed, only the lazy
    // members may be due. Looked up by key: walking a big room's membership for every
    // member woken by a message made each message cost O(members²).
    for (const userId of neededMembers) {
      const eventId = input.atStart.get(stateTupleKey(MEMBER, userId));
      if (eventId === undefined || timelineIds.has(eventId)) continue;
      const sentBefore = deps.lazyMembers.has(requester.userId, requester.deviceId, input.roomId, eventId);
      if (!sentBefore || filter.includeRedundantMembers) wanted.push(eventId);
    }
  }
  for (const [key, eventId] of lazyMembersOnly ? [] : input.atStart) {
    if (timelineIds.has(eventId)) continue;
    const changed = input.known === null || input.known.get(key) !== eventId;
    if (neededMembers !== null && isMemberKey(key)) {
      if (!neededMembers.has(memberStateKey(key))) continue;
      const sentBefore = deps.lazyMembers.has(requester.userId, requester.deviceId, input.roomId, eventId);
      if (!changed && sentBefore && !filter.includeRedundantMembers) continue;
      wanted.push(eventId);
      continue;
    }
    if (changed) wanted.push(eventId);
  }

  const events = await deps.reads.events(wanted);
  const section = wanted
    .map((eventId) => events.get(eventId))
    .filter(
      (event): event is StoredEvent =>
        event !== undefined &&
        matchesRoomEventFilter(filter.state, {
          type: event.pdu.type,
          sender: event.pdu.sender,
          roomId: input.roomId,
          content: event.pdu.content,
        }),
    )
    .sort((a, b) => a.streamOrdering - b.streamOrdering);
  if (lazy) {
    deps.lazyMembers.record(
      requester.userId,
      requester.deviceId,
      input.roomId,
      [...section, ...input.timeline]
        .filter((event) => event.pdu.type === MEMBER)
        .map((event) => event.eventId),
    );
  }
  return section;
}

/** Senders of the timeline and the user themself (clients want their own membership). */
function membersToLoad(request: SyncRequest, timeline: readonly StoredEvent[]): Set<string> {
  const members = new Set<string>([request.requester.userId]);
  for (const event of timeline) members.add(event.pdu.sender);
  return members;
}

const MEMBER_KEY_PREFIX = stateTupleKey(MEMBER, '');

function isMemberKey(key: string): boolean {
  return key.startsWith(MEMBER_KEY_PREFIX);
}

function memberStateKey(key: string): string {
  return key.slice(MEMBER_KEY_PREFIX.length);
}
