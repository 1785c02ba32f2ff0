/**
 * One room of a sliding sync response (MSC4186 "Room results"). A room not yet
 * sent on the connection (or that the user has just joined) is sent whole,
 * `initial`; otherwise only what changed since it was last sent: new timeline
 * events, state entries of the required_state whose event changed (or that the
 * config newly asks for), and name, avatar, heroes and counts when they moved.
 * Invites and knocks carry only their stripped state: the user is not in the room.
 */
import { type JsonObject, type StateMap, splitStateTupleKey, stateTupleKey } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import type { MembershipRecord } from '../../storage/membership-store.js';
import { toClientEvent } from '../rooms/client-event-format.js';
import { tokenBeforeEvent } from '../sync/sync-token.js';
import type { RoomSent } from './connections.js';
import type { CombinedRoomConfig } from './required-state.js';
import { summariseRoom, summaryFor } from './room-summary.js';
import type { SlidingSyncContext } from './sliding-sync-context.js';

const MEMBER = 'm.room.member';
/** What Synapse shares by default (room_prejoin_state), which the spec recommends. */
const STRIPPED_STATE_KEYS = [
  'm.room.create',
  'm.room.join_rules',
  'm.room.canonical_alias',
  'm.room.avatar',
  'm.room.encryption',
  'm.room.name',
  'm.room.topic',
].map((type) => stateTupleKey(type, ''));

export interface RoomInput {
  readonly record: MembershipRecord;
  readonly bumpStamp: number;
  readonly config: CombinedRoomConfig;
  readonly prev: RoomSent | undefined;
  /** Names of the lists that matched the room. */
  readonly lists: readonly string[];
  /** Whether events may have come since `prev.position` (false only when known not to have). */
  readonly mayHaveChanged: boolean;
}

export interface RoomOutcome {
  /** Null when there is nothing new to send. */
  readonly body: JsonObject | null;
  readonly sent: RoomSent;
  /** The newest event of another user handed out (a delivery receipt is recorded for it). */
  readonly lastFromOthers?: { readonly eventId: string; readonly streamOrdering: number };
}

/**
 * What the connection holds of a room it has had and that nothing can have changed for
 * (same membership and config, no event since): its sent state moved up to `upTo`, with
 * nothing to build. Undefined when the room has to be built (buildRoomResult).
 */
export function unchangedRoom(input: RoomInput, upTo: number): RoomSent | undefined {
  const { record, prev, config } = input;
  if (prev === undefined || input.mayHaveChanged) return undefined;
  if (record.membership === 'invite' || record.membership === 'knock') return undefined;
  // Joining a room the connection knew only as an invite (or from before a leave) starts it afresh.
  if (record.membership === 'join' && prev.membership !== 'join') return undefined;
  if (config.timelineLimit > prev.timelineLimit) return undefined;
  if (prev.membershipEventId !== record.eventId || prev.configKey !== config.key) return undefined;
  return prev.position >= upTo ? prev : { ...prev, position: upTo };
}

export async function buildRoomResult(ctx: SlidingSyncContext, input: RoomInput): Promise<RoomOutcome> {
  const { record } = input;
  if (record.membership === 'invite' || record.membership === 'knock') return strippedRoom(ctx, input);
  return memberRoom(ctx, input);
}

async function strippedRoom(ctx: SlidingSyncContext, input: RoomInput): Promise<RoomOutcome> {
  const { record, prev } = input;
  const sent: RoomSent = {
    position: ctx.upTo.events,
    timelineLimit: input.config.timelineLimit,
    state: new Map(),
    membershipEventId: record.eventId,
    membership: record.membership,
    summary: '',
    configKey: input.config.key,
  };
  if (prev?.membershipEventId === record.eventId) return { body: null, sent: { ...prev, ...sent } };
  const event = await ctx.hs.storage.events.getEvent(record.eventId);
  if (event === null) return { body: null, sent };
  const state = (await ctx.hs.storage.state.stateAfterEvent(event.eventId)) ?? new Map();
  const ids = STRIPPED_STATE_KEYS.map((key) => state.get(key)).filter((id): id is string => id !== undefined);
  const events = await ctx.hs.storage.events.getEvents(ids);
  const stripped: JsonObject[] = [...ids.map((id) => events.get(id)), event]
    .filter((stateEvent): stateEvent is StoredEvent => stateEvent !== undefined)
    .map((stateEvent) => ({
      type: stateEvent.pdu.type,
      state_key: stateEvent.pdu.state_key ?? '',
      sender: stateEvent.pdu.sender,
      content: stateEvent.pdu.content,
    }));
  // An invite over federation comes without the room's state: the inviting server's
  // invite_room_state (server-server "Inviting to a room") stands in for it.
  const carried = (event.pdu.unsigned as JsonObject | undefined)?.invite_room_state;
  if (state.size === 0 && Array.isArray(carried))
    stripped.unshift(
      ...carried.filter((entry): entry is JsonObject => entry !== null && typeof entry === 'object'),
    );
  const body: JsonObject = {
    initial: true,
    membership: record.membership,
    bump_stamp: input.bumpStamp,
    // invite_state is what matrix-rust-sdk reads; stripped_state is the MSC's latest name for it.
    invite_state: stripped,
    stripped_state: stripped,
  };
  if (input.lists.length > 0) body.lists = [...input.lists];
  return { body, sent };
}

async function memberRoom(ctx: SlidingSyncContext, input: RoomInput): Promise<RoomOutcome> {
  const { record, prev, config } = input;
  const { roomId } = record;
  const joined = record.membership === 'join';
  // A user who left (or was kicked or banned) sees the room up to that event.
  const endPosition = joined ? ctx.upTo.events : Math.min(record.streamOrdering, ctx.upTo.events);
  // Joining a room the connection knew only as an invite (or from before a leave) starts it afresh.
  const initial = prev === undefined || (joined && prev.membership !== 'join');
  const limit = config.timelineLimit;
  const expanded = !initial && limit > prev!.timelineLimit;
  const membershipChanged = prev !== undefined && prev.membershipEventId !== record.eventId;

  const unchanged = unchangedRoom(input, ctx.upTo.events);
  if (unchanged !== undefined) return { body: null, sent: unchanged };

  // Timeline: the newest `limit` events in (after, end], those the user may see.
  const after = initial || expanded ? 0 : prev!.position;
  const newestFirst = endPosition > after ? await ctx.reads.newestEvents(roomId, endPosition, limit + 1) : [];
  const inRange = newestFirst.filter((event) => event.streamOrdering > after);
  const limited = inRange.length > limit;
  const candidates = inRange.slice(0, limit).reverse();
  // Events after the user's join are theirs to see whatever the history visibility; only earlier ones are judged.
  const joinedAt = joined ? record.streamOrdering : Number.POSITIVE_INFINITY;
  const toJudge = candidates.filter((event) => event.streamOrdering <= joinedAt);
  const visible =
    toJudge.length === 0
      ? null
      : new Set(
          (await ctx.hs.historyVisibility.filterVisibleEvents(ctx.userId, roomId, toJudge)).map(
            (e) => e.eventId,
          ),
        );
  const timeline = candidates.filter(
    (event) => event.streamOrdering > joinedAt || visible?.has(event.eventId) === true,
  );
  const newSincePrev =
    prev === undefined ? timeline : timeline.filter((e) => e.streamOrdering > prev.position);

  // Required state: entries asked for whose event the connection has not been sent.
  const state: StateMap =
    (joined
      ? await ctx.reads.currentState(roomId)
      : await ctx.hs.storage.state.stateAfterEvent(record.eventId)) ?? new Map();
  // Copied on its first change: most rooms built on a wake have only a new timeline event.
  let sentState: ReadonlyMap<string, string> = initial ? new Map() : prev!.state;
  let sentStateCopied = initial;
  const lazyWanted = new Set<string>();
  if (config.lazyMembers) {
    for (const event of timeline) {
      lazyWanted.add(event.pdu.sender);
      if (event.pdu.type === MEMBER && typeof event.pdu.state_key === 'string')
        lazyWanted.add(event.pdu.state_key);
    }
  }
  const stateIds: string[] = [];
  const consider = (key: string, eventId: string) => {
    if (sentState.get(key) === eventId) return;
    stateIds.push(eventId);
    if (!sentStateCopied) {
      sentState = new Map(sentState);
      sentStateCopied = true;
    }
    (sentState as Map<string, string>).set(key, eventId);
  };
  const exact = config.exactStateKeys(ctx.userId);
  if (exact !== null) {
    for (const key of exact) {
      const eventId = state.get(key);
      if (eventId !== undefined) consider(key, eventId);
    }
  } else {
    for (const [key, eventId] of state) {
      const [type, stateKey] = splitStateTupleKey(key);
      if (config.wants(type, stateKey, ctx.userId)) consider(key, eventId);
    }
  }
  for (const userId of lazyWanted) {
    const key = stateTupleKey(MEMBER, userId);
    const eventId = state.get(key);
    if (eventId !== undefined) consider(key, eventId);
  }
  const requiredState =
    stateIds.length === 0 ? [] : await stateEventsOutsideTimeline(ctx, stateIds, timeline);

  const summary = summaryFor(
    joined
      ? await ctx.reads.currentSummary(roomId)
      : await summariseRoom(ctx.reads, ctx.hs.storage, roomId, state),
    ctx.userId,
  );
  const isDm = (await ctx.directRooms()).has(roomId);
  const summaryKey = `${summary.key}\u0000${isDm}\u0000${record.membership}`;
  const summaryChanged = prev === undefined || initial || prev.summary !== summaryKey;

  const sent: RoomSent = {
    // Up to now, even for a room left: what follows a leave is not the user's to see.
    position: Math.max(ctx.upTo.events, prev?.position ?? 0),
    timelineLimit: Math.max(limit, expanded || initial ? limit : prev!.timelineLimit),
    state: sentState,
    membershipEventId: record.eventId,
    membership: record.membership,
    summary: summaryKey,
    configKey: config.key,
  };
  if (
    !initial &&
    !expanded &&
    newSincePrev.length === 0 &&
    requiredState.length === 0 &&
    !summaryChanged &&
    !membershipChanged
  ) {
    return { body: null, sent };
  }

  const body: JsonObject = { bump_stamp: input.bumpStamp };
  if (initial) body.initial = true;
  if (expanded) {
    body.expanded_timeline = true;
    body.unstable_expanded_timeline = true;
  }
  if (initial || membershipChanged) body.membership = record.membership;
  if (input.lists.length > 0) body.lists = [...input.lists];
  if (summaryChanged) {
    if (summary.name !== undefined) body.name = summary.name;
    if (summary.avatar !== undefined) body.avatar = summary.avatar;
    if (summary.heroes !== undefined) body.heroes = summary.heroes;
    body.joined_count = summary.joinedCount;
    body.invited_count = summary.invitedCount;
    if (isDm) body.is_dm = true;
    else if (!initial) body.is_dm = false;
  }
  // Filled in for the rooms sent (SlidingSyncService.addUnreadCounts): one read for those only.
  body.notification_count = 0;
  body.highlight_count = 0;

  body.required_state = requiredState.map((event) => {
    const formatted = toClientEvent(event, { now: ctx.now });
    delete formatted.room_id;
    return formatted;
  });
  body.timeline = await ctx.reads.formatTimeline(
    ctx.hs,
    timeline,
    { userId: ctx.userId, deviceId: ctx.deviceId },
    ctx.now,
  );
  if (limit > 0 || timeline.length > 0) body.limited = limited;
  const liveAfter = ctx.baseEvents ?? Number.POSITIVE_INFINITY;
  body.num_live = timeline.filter((event) => event.streamOrdering > liveAfter).length;
  const first = timeline[0] ?? inRange.at(-1);
  body.prev_batch =
    first === undefined
      ? tokenBeforeEvent(ctx.upTo, endPosition + 1)
      : tokenBeforeEvent(ctx.upTo, first.streamOrdering);
  const fromOthers = newSincePrev.filter((event) => event.pdu.sender !== ctx.userId).at(-1);
  return {
    body,
    sent,
    ...(fromOthers === undefined
      ? {}
      : { lastFromOthers: { eventId: fromOthers.eventId, streamOrdering: fromOthers.streamOrdering } }),
  };
}

/** The state events by ID, oldest first, but those the timeline carries already. */
async function stateEventsOutsideTimeline(
  ctx: SlidingSyncContext,
  stateIds: readonly string[],
  timeline: readonly StoredEvent[],
): Promise<StoredEvent[]> {
  const timelineIds = new Set(timeline.map((event) => event.eventId));
  const wanted = stateIds.filter((id) => !timelineIds.has(id));
  const loaded = await ctx.reads.events(wanted);
  return wanted
    .map((id) => loaded.get(id))
    .filter((event): event is StoredEvent => event !== undefined)
    .sort((a, b) => a.streamOrdering - b.streamOrdering);
}
