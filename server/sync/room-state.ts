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
  /** Send state events that are also in the timeline (state_after: the timeline does not count as state). */
  readonly keepTimelineEvents?: boolean;
}

/** The state events to send, filtered, oldest first. */
export async function stateSection(
  deps: SyncDeps,
  request: SyncRequest,
  input: StateSectionInput,
): Promise<StoredEvent[]> {
  const { filter, requester } = request;
  const lazy = filter.lazyLoadMembers;
  const timelineIds = new Set(input.keepTimelineEvents ? [] : input.timeline.map((event) => event.eventId));
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

export interface StateAfterInput {
  readonly roomId: string;
  readonly timeline: readonly StoredEvent[];
  readonly limited: boolean;
  /** The room is sent whole (initial sync, newly joined, full_state). */
  readonly sendAll: boolean;
  /** The stream position the timeline starts after (the client's `since` for an incremental sync). */
  readonly after: number;
  /** The end of the range, for a room whose timeline is empty. */
  readonly upTo: number;
}

/**
 * `state_after` (use_state_after, v1.16): the state at the END of the timeline that the
 * client lacks: all of it for a room sent whole, else what changed since `since`, state
 * events of the timeline included (the client takes state from this list only).
 */
export async function stateAfterSection(
  deps: SyncDeps,
  request: SyncRequest,
  input: StateAfterInput,
): Promise<StoredEvent[]> {
  const { timeline, roomId } = input;
  const timelineHasState = timeline.some((event) => event.pdu.state_key !== undefined);
  // Nothing changed since `since` and no members to load: no reads at all (the common woken sync).
  if (!input.sendAll && !input.limited && !timelineHasState && !request.filter.lazyLoadMembers) return [];
  const last = timeline.at(-1) ?? (await deps.reads.lastEventAtOrBefore(roomId, input.upTo));
  const atEnd = last === null ? new Map() : await deps.reads.stateAfter(last);
  let known: StateMap | null;
  if (input.sendAll) {
    deps.lazyMembers.reset(request.requester.userId, request.requester.deviceId, roomId);
    known = null;
  } else if (input.limited) {
    known = await stateAtPosition(deps, roomId, input.after);
  } else {
    const first = timeline[0];
    known = first === undefined ? atEnd : await deps.reads.stateBefore(first);
  }
  return stateSection(deps, request, { roomId, atStart: atEnd, known, timeline, keepTimelineEvents: true });
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
