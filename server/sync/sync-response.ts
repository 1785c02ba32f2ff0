/**
 * One /sync response body (client-server "Syncing"; sync.yaml), computed for a
 * request whose positions are fixed: which rooms to report (from the user's
 * memberships, the rooms changed between the positions, ephemeral and account
 * data changes), then each room in bounded slices that yield to the event loop.
 * Rooms that did not change cost no read on an incremental sync.
 */
import { type JsonObject, stateTupleKey } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import type { MembershipRecord } from '../../storage/membership-store.js';
import { type AccountDataChanges, accountDataChanges } from './account-data.js';
import { deviceKeySections } from './device-keys.js';
import { ephemeralEvents } from './ephemeral.js';
import { formatStateEvents, formatTimelineEvents, type SharedEventFormatting } from './event-format.js';
import { presenceEvents } from './presence.js';
import { stateAfterSection, stateAtPosition, stateAtTimelineStart, stateSection } from './room-state.js';
import { roomSummary } from './room-summary.js';
import { roomTimeline } from './room-timeline.js';
import { strippedStateAt } from './stripped-state.js';
import type { SyncDeps, SyncRequest } from './sync-context.js';
import type { SyncFilter } from './sync-filter.js';
import type { TimelineSlice } from './sync-reads.js';
import { formatSyncToken, type StreamPositions, tokenBeforeEvent } from './sync-token.js';
import { toDeviceMessages } from './to-device.js';
import { passesRoomFilter, type Watched, watchedRoomsIfCached, watchedRoomsOf } from './watched-rooms.js';

/** Rooms built between two yields to the event loop. */
const ROOMS_PER_SLICE = 50;

export interface SyncOutcome {
  readonly body: JsonObject;
  /** An incremental sync with nothing for the user: it may wait for more. */
  readonly isEmpty: boolean;
  readonly next: StreamPositions;
  /** The joined rooms (within the filter) whose changes concern the user: what a wait listens to. */
  readonly roomsToWatch: readonly string[];
  /** The newest event of others handed out per room (delivery receipts). */
  readonly delivered: readonly { roomId: string; eventId: string; streamOrdering: number }[];
}

interface RoomPlan {
  readonly record: MembershipRecord;
  /** Sent whole (initial sync, newly joined, full_state): latest events and full state. */
  readonly full: boolean;
}

export async function buildSyncResponse(
  deps: SyncDeps,
  baseRequest: SyncRequest,
  formatting: SharedEventFormatting,
): Promise<SyncOutcome> {
  const { userId } = baseRequest.requester;
  const memberships = await deps.reads.membershipsOf(userId);
  // A membership committed after the positions were read moves the events position up to it,
  // so that everything below (committed in order) is read consistently.
  const eventsUpTo = memberships.reduce(
    (max, record) => Math.max(max, record.streamOrdering),
    baseRequest.upTo.events,
  );
  const request: SyncRequest = { ...baseRequest, upTo: { ...baseRequest.upTo, events: eventsUpTo } };
  const { since, filter } = request;
  const inFilter = await roomFilterOf(deps, userId, filter);
  const changedInRange = (record: MembershipRecord) =>
    since === null || (record.streamOrdering > since.events && record.streamOrdering <= eventsUpTo);

  const allJoinedIds = memberships
    .filter((record) => record.membership === 'join')
    .map((record) => record.roomId);
  const joined = memberships.filter((record) => record.membership === 'join' && inFilter(record.roomId));
  const joinedIds = joined.map((record) => record.roomId);
  const [accountData, ephemeral, changedRooms, presence, toDevice, deviceKeys] = await Promise.all([
    accountDataChanges(deps, request),
    ephemeralEvents(deps, request, joinedIds),
    since === null
      ? Promise.resolve(new Map<string, number>())
      : deps.reads.roomsChangedBetween(since.events, eventsUpTo),
    presenceEvents(deps, request, allJoinedIds, deps.presenceLog),
    toDeviceMessages(deps, request),
    deviceKeySections(deps, request),
  ]);

  const joinPlans: RoomPlan[] = [];
  for (const record of joined) {
    if (since === null) joinPlans.push({ record, full: true });
    else if (changedInRange(record) && !(await wasJoinedAt(deps, record.roomId, userId, since.events))) {
      joinPlans.push({ record, full: true });
    } else if (
      request.fullState ||
      changedRooms.has(record.roomId) ||
      ephemeral.has(record.roomId) ||
      accountData.byRoom.has(record.roomId)
    ) {
      joinPlans.push({ record, full: false });
    }
  }
  const leavePlans: RoomPlan[] = memberships
    .filter(
      (record) =>
        (record.membership === 'leave' || record.membership === 'ban') &&
        !record.forgotten &&
        inFilter(record.roomId) &&
        ((since !== null && changedInRange(record)) ||
          ((since === null || request.fullState) && filter.includeLeave)),
    )
    .map((record) => ({ record, full: since === null || !changedInRange(record) }));

  const join: JsonObject = {};
  const leave: JsonObject = {};
  const delivered: { roomId: string; eventId: string; streamOrdering: number }[] = [];
  await inSlices(joinPlans, async (plans) => {
    const drafts = (
      await Promise.all(plans.map((plan) => joinedRoom(deps, request, plan, ephemeral, accountData)))
    ).filter((draft): draft is JoinedRoomDraft => draft !== null);
    await formatTimelines(deps, request, drafts, formatting);
    await addUnreadCounts(deps, request, drafts);
    for (const draft of drafts) {
      join[draft.roomId] = draft.body;
      const last = draft.lastFromOthers;
      if (last !== null)
        delivered.push({ roomId: draft.roomId, eventId: last.eventId, streamOrdering: last.streamOrdering });
    }
  });
  await inSlices(leavePlans, async (plans) => {
    for (const plan of plans) leave[plan.record.roomId] = await leftRoom(deps, request, plan, accountData);
  });

  const invite: JsonObject = {};
  const knock: JsonObject = {};
  for (const record of memberships) {
    if ((record.membership !== 'invite' && record.membership !== 'knock') || !inFilter(record.roomId))
      continue;
    if (!changedInRange(record) && !(request.fullState && since !== null)) continue;
    const event = (await deps.reads.events([record.eventId])).get(record.eventId);
    if (event === undefined) continue;
    if (record.membership === 'invite') {
      // spec "Ignoring Users": invites from ignored users are not shown.
      if (request.ignoredUsers.has(event.pdu.sender)) continue;
      invite[record.roomId] = { invite_state: { events: await strippedStateAt(deps, event) } };
    } else {
      knock[record.roomId] = { knock_state: { events: await strippedStateAt(deps, event) } };
    }
  }

  const next: StreamPositions = { ...request.upTo, presence: presence.position, toDevice: toDevice.position };
  const isEmpty =
    Object.keys(join).length === 0 &&
    Object.keys(leave).length === 0 &&
    Object.keys(invite).length === 0 &&
    Object.keys(knock).length === 0 &&
    accountData.global.length === 0 &&
    presence.events.length === 0 &&
    toDevice.events.length === 0 &&
    deviceKeys.deviceLists.changed.length === 0 &&
    deviceKeys.deviceLists.left.length === 0;
  const body: JsonObject = {
    next_batch: formatSyncToken(next),
    account_data: { events: accountData.global },
    presence: { events: presence.events },
    rooms: { join, invite, leave, knock },
    to_device: { events: toDevice.events },
    device_lists: { changed: deviceKeys.deviceLists.changed, left: deviceKeys.deviceLists.left },
    device_one_time_keys_count: deviceKeys.oneTimeKeyCounts,
    device_unused_fallback_key_types: deviceKeys.unusedFallbackKeyTypes,
  };
  // Joined rooms only: invites, knocks and their outcomes are membership events about the
  // user, which wake the user directly (notifyOnRoomEvents).
  return { body, isEmpty, next, roomsToWatch: joinedIds, delivered };
}

/** Whether a room passes the filter's room list and archive choice (rooms/not_rooms, io.myelin.archived). */
export async function roomFilterOf(
  deps: SyncDeps,
  userId: string,
  filter: SyncRequest['filter'],
): Promise<(roomId: string) => boolean> {
  const archived = filter.archived === 'include' ? null : await deps.hs.archive.archivedRooms(userId);
  return (roomId) => passesRoomFilter(filter, archived, roomId);
}

/**
 * The rooms an incremental sync from `since` would watch, when it is certain before building
 * anything that the response would be empty; null when it might not be (then build it).
 * Empty because no stream moved past `since` — but for receipts none of which the user can
 * see — and no membership of the user is newer than `since`. A woken member's next sync
 * starts from the token it was just given, so most of them end here and wait at once
 * instead of building an empty response first.
 */
export async function quietSince(
  deps: SyncDeps,
  request: Pick<SyncRequest, 'requester' | 'filter' | 'upTo'> & { readonly since: StreamPositions },
): Promise<readonly string[] | null> {
  if (!onlyReceiptsMoved(request.since, request.upTo)) return null;
  const { userId } = request.requester;
  const watched = await watchedRoomsOf(deps, userId, request.filter);
  return quietAmongRooms(deps, userId, watched, request.since, request.upTo);
}

/**
 * quietSince without a promise when all it reads is cached (the memberships, and a filter
 * that does not depend on archived rooms): what a thousand woken members do at once before
 * they wait again. Undefined when it would have to read.
 */
export function quietSinceIfCached(
  deps: SyncDeps,
  userId: string,
  filter: SyncFilter,
  since: StreamPositions,
  upTo: StreamPositions,
): readonly string[] | null | undefined {
  // Positional arguments: no request object per woken member (most answer `null` here at once).
  if (!onlyReceiptsMoved(since, upTo)) return null;
  const watched = watchedRoomsIfCached(deps, userId, filter);
  return watched === undefined ? undefined : quietAmongRooms(deps, userId, watched, since, upTo);
}

function onlyReceiptsMoved(since: StreamPositions, upTo: StreamPositions): boolean {
  return (
    since.events === upTo.events &&
    since.accountData === upTo.accountData &&
    since.typing === upTo.typing &&
    since.presence === upTo.presence &&
    since.toDevice === upTo.toDevice &&
    since.deviceLists === upTo.deviceLists
  );
}

function quietAmongRooms(
  deps: SyncDeps,
  userId: string,
  watched: Watched,
  since: StreamPositions,
  upTo: StreamPositions,
): readonly string[] | null {
  if (watched.newest > since.events) return null;
  if (!deps.hs.receipts.unchangedFor(userId, watched.rooms, since.receipts, upTo.receipts)) return null;
  return watched.rooms;
}

/** A joined room's section, its timeline not yet formatted (that is done for many rooms at once). */
interface JoinedRoomDraft {
  readonly roomId: string;
  readonly body: JsonObject;
  readonly timeline: JsonObject;
  readonly timelineEvents: readonly StoredEvent[];
  /** The slice the timeline is, when members woken for the same events may share its formatting. */
  readonly shared: TimelineSlice | undefined;
  readonly lastFromOthers: StoredEvent | null;
}

async function joinedRoom(
  deps: SyncDeps,
  request: SyncRequest,
  plan: RoomPlan,
  ephemeral: Map<string, JsonObject[]>,
  accountData: AccountDataChanges,
): Promise<JoinedRoomDraft | null> {
  const { roomId } = plan.record;
  const { since, upTo, requester } = request;
  const after = plan.full || since === null ? 0 : since.events;
  const slice = await deps.reads.timelineSlice(roomId, after, upTo.events, request.filter.timelineLimit);
  const timeline = await roomTimeline(deps, request, roomId, {
    after,
    upTo: upTo.events,
    joinedAt: plan.record.streamOrdering,
  });
  const first = timeline.events[0] ?? null;

  let state: StoredEvent[] = [];
  const sendAll = plan.full || request.fullState;
  if (request.useStateAfter) {
    state = await stateAfterSection(deps, request, {
      roomId,
      timeline: timeline.events,
      limited: timeline.limited,
      sendAll,
      after,
      upTo: upTo.events,
    });
  } else if (sendAll || timeline.limited || request.filter.lazyLoadMembers) {
    const endEvent = first === null ? await deps.reads.lastEventAtOrBefore(roomId, upTo.events) : null;
    const atStart = await stateAtTimelineStart(deps, { timelineStart: first, endEvent });
    if (sendAll) deps.lazyMembers.reset(requester.userId, requester.deviceId, roomId);
    const known = sendAll ? null : timeline.limited ? await stateAtPosition(deps, roomId, after) : atStart;
    state = await stateSection(deps, request, { roomId, atStart, known, timeline: timeline.events });
  }

  const roomEphemeral = ephemeral.get(roomId) ?? [];
  const roomAccountData = accountData.byRoom.get(roomId) ?? [];
  if (
    !sendAll &&
    timeline.events.length === 0 &&
    !timeline.limited &&
    state.length === 0 &&
    roomEphemeral.length === 0 &&
    roomAccountData.length === 0
  ) {
    return null;
  }

  const sharedSlice =
    !sendAll && timeline.events.every((event) => slice.events.includes(event)) ? slice : undefined;
  const timelineSection: JsonObject = {
    events: [],
    limited: timeline.limited,
    prev_batch: first === null ? formatSyncToken(upTo) : tokenBeforeEvent(upTo, first.streamOrdering),
  };
  const body: JsonObject = {
    timeline: timelineSection,
    [request.useStateAfter ? 'state_after' : 'state']: { events: formatStateEvents(request, state) },
    ephemeral: { events: roomEphemeral },
    account_data: { events: roomAccountData },
    // unread_notifications (and unread_thread_notifications) are added per slice: addUnreadCounts.
  };
  const membersChanged = [...timeline.events, ...state].some((event) => event.pdu.type === 'm.room.member');
  if (sendAll || membersChanged) body.summary = await roomSummary(deps, roomId, requester.userId);

  let lastFromOthers: StoredEvent | null = null;
  for (const event of timeline.events) if (event.pdu.sender !== requester.userId) lastFromOthers = event;
  return {
    roomId,
    body,
    timeline: timelineSection,
    timelineEvents: timeline.events,
    shared: sharedSlice,
    lastFromOthers,
  };
}

/**
 * Unread counts of a slice of rooms (push.md "Receiving notifications"), read once
 * the push evaluation has caught up with the response's events position. With the
 * timeline filter's `unread_thread_notifications`, threads are counted apart
 * (client-server "Threaded read receipts"): unread_notifications then counts the
 * main timeline only.
 */
async function addUnreadCounts(
  deps: SyncDeps,
  request: SyncRequest,
  drafts: readonly JoinedRoomDraft[],
): Promise<void> {
  if (drafts.length === 0) return;
  const counts = await deps.hs.push.unreadCounts(
    request.requester.userId,
    drafts.map((draft) => draft.roomId),
    request.upTo.events,
  );
  const byThread = request.filter.timeline?.unread_thread_notifications === true;
  for (const draft of drafts) {
    const room = counts.get(draft.roomId);
    if (!byThread) {
      draft.body.unread_notifications = {
        notification_count: room?.notificationCount ?? 0,
        highlight_count: room?.highlightCount ?? 0,
      };
      continue;
    }
    const main = room?.threads.get('main');
    draft.body.unread_notifications = {
      notification_count: main?.notificationCount ?? 0,
      highlight_count: main?.highlightCount ?? 0,
    };
    const threads: JsonObject = {};
    for (const [threadId, thread] of room?.threads ?? []) {
      if (threadId === 'main') continue;
      threads[threadId] = {
        notification_count: thread.notificationCount,
        highlight_count: thread.highlightCount,
      };
    }
    draft.body.unread_thread_notifications = threads;
  }
}

/**
 * Formats the timelines of a slice of rooms: shared slices through the shared
 * formatting, the others in one batch (one set of reads for all their events).
 */
async function formatTimelines(
  deps: SyncDeps,
  request: SyncRequest,
  drafts: readonly JoinedRoomDraft[],
  formatting: SharedEventFormatting,
): Promise<void> {
  const batched = drafts.filter((draft) => draft.shared === undefined);
  const formatted = await formatTimelineEvents(
    deps,
    request,
    batched.flatMap((draft) => draft.timelineEvents),
  );
  let at = 0;
  for (const draft of batched) {
    draft.timeline.events = formatted.slice(at, at + draft.timelineEvents.length);
    at += draft.timelineEvents.length;
  }
  await Promise.all(
    drafts
      .filter((draft) => draft.shared !== undefined)
      .map(async (draft) => {
        draft.timeline.events = await formatTimelineEvents(deps, request, draft.timelineEvents, {
          slice: draft.shared!,
          formatting,
        });
      }),
  );
}

async function leftRoom(
  deps: SyncDeps,
  request: SyncRequest,
  plan: RoomPlan,
  accountData: AccountDataChanges,
): Promise<JsonObject> {
  const { roomId, streamOrdering: leftAt } = plan.record;
  const after = plan.full || request.since === null ? 0 : Math.min(request.since.events, leftAt);
  const timeline = await roomTimeline(deps, request, roomId, { after, upTo: leftAt, joinedAt: null });
  const first = timeline.events[0] ?? null;
  let state: StoredEvent[] = [];
  if (request.useStateAfter) {
    state = await stateAfterSection(deps, request, {
      roomId,
      timeline: timeline.events,
      limited: timeline.limited,
      sendAll: plan.full,
      after,
      upTo: leftAt,
    });
  } else if (plan.full || timeline.limited) {
    const endEvent = first === null ? await deps.reads.lastEventAtOrBefore(roomId, leftAt) : null;
    const atStart = await stateAtTimelineStart(deps, { timelineStart: first, endEvent });
    const known = plan.full ? null : await stateAtPosition(deps, roomId, after);
    state = await stateSection(deps, request, { roomId, atStart, known, timeline: timeline.events });
  }
  return {
    timeline: {
      events: await formatTimelineEvents(deps, request, timeline.events),
      limited: timeline.limited,
      prev_batch:
        first === null
          ? formatSyncToken({ ...request.upTo, events: leftAt })
          : tokenBeforeEvent(request.upTo, first.streamOrdering),
    },
    [request.useStateAfter ? 'state_after' : 'state']: { events: formatStateEvents(request, state) },
    account_data: { events: accountData.byRoom.get(roomId) ?? [] },
  };
}

/** Whether the user was joined to the room at stream position `position`. */
async function wasJoinedAt(
  deps: SyncDeps,
  roomId: string,
  userId: string,
  position: number,
): Promise<boolean> {
  const state = await stateAtPosition(deps, roomId, position);
  const memberEventId = state.get(stateTupleKey('m.room.member', userId));
  if (memberEventId === undefined) return false;
  const member = (await deps.reads.events([memberEventId])).get(memberEventId);
  return member?.pdu.content.membership === 'join';
}

/** Runs `work` on the items a slice at a time, yielding to the event loop between slices. */
async function inSlices<T>(items: readonly T[], work: (slice: T[]) => Promise<void>): Promise<void> {
  for (let start = 0; start < items.length; start += ROOMS_PER_SLICE) {
    if (start > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    await work(items.slice(start, start + ROOMS_PER_SLICE));
  }
}
