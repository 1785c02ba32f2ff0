/**
 * Push evaluation off the send path (push.md "Server behaviour"): each persisted
 * event is queued, and a single worker evaluates the queue in stream order. For
 * each event it reads the room's facts once (cached until the room's state
 * changes), evaluates the compiled rules of the local joined members except the
 * sender (and of a local invitee) whose rules could notify for the event's type
 * at all, stores a notification for every `notify`
 * outcome, and hands those to delivery. A user sending in a room has read it up
 * to their own event. Sync waits for `settled(position)` so that a new event's
 * notification count appears in the same response as the event (push.md
 * "Server behaviour").
 */
import type { JsonObject, RoomEvent } from '../../protocol/events.js';
import { PushEventView, type PushOutcome } from '../../protocol/push-rules/index.js';
import type { NewNotification, ReadMark } from '../../storage/push-store.js';
import type { Storage } from '../../storage/storage.js';
import type { PersistedRoomEvent } from '../rooms/room-event-sender.js';
import type { PushRuleStore } from './push-rule-store.js';
import type { RoomPushFacts, RoomPushFactsCache } from './room-push-facts.js';

/** A notification produced for one user, ready for their pushers. */
export interface ProducedNotification {
  readonly userId: string;
  readonly event: RoomEvent;
  readonly streamOrdering: number;
  readonly outcome: PushOutcome;
  readonly room: RoomPushFacts;
}

export interface PushEvaluatorOptions {
  readonly storage: Storage;
  readonly rules: PushRuleStore;
  readonly rooms: RoomPushFactsCache;
  readonly isLocalUser: (userId: string) => boolean;
  readonly onNotified: (notifications: readonly ProducedNotification[]) => void;
  readonly onError: (error: unknown, eventId: string) => void;
  /** Notifications were stored, or a user's read mark moved (`records` empty, `reader` set). */
  readonly onStored?: (records: readonly NewNotification[], reader?: string) => void;
}

/** spec push.md "Marking notifications as read": follow relations at most this far to find a thread. */
const MAX_THREAD_HOPS = 3;
/** Events evaluated together, at most (their writes share commits). */
const MAX_BATCH_EVENTS = 64;
/** Members evaluated per batch, at most: a batch of events in big rooms stays short. */
const MAX_BATCH_MEMBERS = 4_000;
/** How long a sync waits for evaluation to catch up before answering anyway. */
const DEFAULT_SETTLE_TIMEOUT_MS = 2_000;

/** What a batch of evaluations writes and delivers. */
interface Evaluated {
  readonly marks: ReadMark[];
  readonly records: NewNotification[];
  readonly produced: ProducedNotification[];
}

interface SettleWaiter {
  readonly upTo: number;
  readonly roomIds: ReadonlySet<string> | undefined;
  readonly resolve: () => void;
}

export class PushEvaluator {
  private readonly queue: PersistedRoomEvent[] = [];
  /** Stream ordering -> room of each event heard and not yet evaluated. */
  private readonly pending = new Map<number, string>();
  private waiters: SettleWaiter[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly options: PushEvaluatorOptions) {}

  /** Hears of a persisted event; returns at once. */
  observe(persisted: PersistedRoomEvent): void {
    this.queue.push(persisted);
    this.pending.set(persisted.streamOrdering, persisted.event.roomId);
    this.running ??= this.drain();
  }

  /**
   * Resolves once every event heard at or below `upTo` (in `roomIds`, when given) is
   * evaluated, or after `timeoutMs`.
   */
  settled(
    upTo = Number.POSITIVE_INFINITY,
    roomIds?: ReadonlySet<string>,
    timeoutMs = DEFAULT_SETTLE_TIMEOUT_MS,
  ): Promise<void> {
    if (this.isSettled(upTo, roomIds)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      const waiter: SettleWaiter = { upTo, roomIds, resolve: done };
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(waiter);
    });
  }

  /** Waits for the queue to empty (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  /** Whether every event heard at or below `upTo` in these rooms is evaluated (what settled waits for). */
  settledIn(upTo: number, roomIds: readonly string[]): boolean {
    for (const [ordering, roomId] of this.pending) {
      if (ordering <= upTo && roomIds.includes(roomId)) return false;
    }
    return true;
  }

  private isSettled(upTo: number, roomIds: ReadonlySet<string> | undefined): boolean {
    for (const [ordering, roomId] of this.pending) {
      if (ordering <= upTo && (roomIds === undefined || roomIds.has(roomId))) return false;
    }
    return true;
  }

  /**
   * Evaluates the queue in batches: every event queued so far (bounded) is evaluated,
   * then all their read marks and notifications are written together and handed to
   * delivery at once. A burst of sends thus costs one write per batch, not two
   * commits per event, and the backlog a sync may wait for drains quickly.
   */
  private async drain(): Promise<void> {
    // Let observe() record this drain as running before anything else happens.
    await null;
    try {
      for (;;) {
        const batch = this.takeBatch();
        // `finally` clears `running` in this same step: an event observed after it starts a new drain.
        if (batch.length === 0) return;
        await this.evaluateBatch(batch);
      }
    } finally {
      this.running = undefined;
    }
  }

  private async evaluateBatch(batch: readonly PersistedRoomEvent[]): Promise<void> {
    const evaluated: Evaluated = { marks: [], records: [], produced: [] };
    for (const persisted of batch) {
      try {
        await this.evaluate(persisted, evaluated);
      } catch (error) {
        this.options.onError(error, persisted.event.eventId);
      }
    }
    try {
      await this.store(evaluated);
    } catch (error) {
      this.options.onError(error, batch[0]!.event.eventId);
    }
    for (const persisted of batch) this.pending.delete(persisted.streamOrdering);
    if (this.waiters.length > 0) {
      const waiting = this.waiters;
      this.waiters = [];
      for (const waiter of waiting) {
        if (this.isSettled(waiter.upTo, waiter.roomIds)) waiter.resolve();
        else this.waiters.push(waiter);
      }
    }
  }

  /** The next events to evaluate together: in stream order, bounded in count and in members to evaluate. */
  private takeBatch(): PersistedRoomEvent[] {
    const batch: PersistedRoomEvent[] = [];
    let members = 0;
    while (batch.length < MAX_BATCH_EVENTS && members < MAX_BATCH_MEMBERS) {
      const persisted = this.queue.shift();
      if (persisted === undefined) break;
      batch.push(persisted);
      members += this.options.rooms.cachedMemberCount(persisted.event.roomId);
    }
    return batch;
  }

  /**
   * One batch's results: read marks first, then notifications. Both count at once and reach
   * the disk in later batched writes, not in a commit of their own after each send (see
   * SqlitePushStore.advanceReadMarkSoon for what a crash loses).
   */
  private async store({ marks, records, produced }: Evaluated): Promise<void> {
    const { storage } = this.options;
    for (const mark of marks) storage.push.advanceReadMarkSoon(mark);
    for (const mark of marks) this.options.onStored?.([], mark.userId);
    // Counted at once; storage writes the rows in its own batches.
    await storage.push.addNotifications(records);
    if (records.length > 0) this.options.onStored?.(records);
    if (produced.length > 0) this.options.onNotified(produced);
  }

  private async evaluate(persisted: PersistedRoomEvent, out: Evaluated): Promise<void> {
    const { event, streamOrdering } = persisted;
    const { pdu } = event;
    const { rules, rooms, isLocalUser } = this.options;
    if (typeof pdu.state_key === 'string') rooms.forget(event.roomId);
    const room = await rooms.facts(event.roomId);
    const recipients = room.localJoined.filter((userId) => userId !== pdu.sender);
    const invitee =
      pdu.type === 'm.room.member' && pdu.content.membership === 'invite' ? pdu.state_key : undefined;
    if (
      typeof invitee === 'string' &&
      invitee !== pdu.sender &&
      isLocalUser(invitee) &&
      !room.joined.has(invitee)
    ) {
      recipients.push(invitee);
    }
    const threadId = await this.threadOf(pdu.content);
    if (isLocalUser(pdu.sender)) {
      // Sending is reading (push.md "Marking notifications as read": "by sending an event").
      out.marks.push({
        userId: pdu.sender,
        roomId: event.roomId,
        threadId: threadId === 'main' ? null : threadId,
        streamOrdering,
      });
    }
    if (recipients.length === 0) return;

    const compiled = await rules.compiledMany(recipients);
    const view = new PushEventView({
      event: { ...(pdu as unknown as JsonObject), event_id: event.eventId, room_id: event.roomId },
      roomMemberCount: room.joined.size,
      senderMayNotify: (key) => room.senderMayNotify(pdu.sender, key),
    });
    // Members on the server defaults whom the event does not name all get the same outcome:
    // evaluated once, for the first of them.
    const named = namedUsers(pdu);
    let shared: PushOutcome | null = null;
    // A flag, not `??=`: a null outcome (no rule matched) is a result too, not a reason to evaluate again.
    let sharedDone = false;
    for (let i = 0; i < recipients.length; i++) {
      const userId = recipients[i]!;
      const own = compiled[i]!;
      let outcome: PushOutcome | null;
      if (rules.usesServerDefaults(own) && (named === undefined || !named.has(userId.toLowerCase()))) {
        if (!sharedDone) {
          shared = own.couldNotify(pdu.type) ? own.evaluate(view) : null;
          sharedDone = true;
        }
        outcome = shared;
      } else {
        // Members whose rules cannot notify for this type (a muted account, muted reactions) are skipped.
        if (!own.couldNotify(pdu.type)) continue;
        outcome = own.evaluate(view, { displayName: room.joined.get(userId) });
      }
      if (outcome === null || !outcome.notify) continue;
      // One object is both the row to store and the notification to deliver: one allocation per member.
      const notified: NewNotification & ProducedNotification = {
        userId,
        roomId: event.roomId,
        streamOrdering,
        threadId,
        actions: outcome.actions,
        highlight: outcome.highlight,
        event,
        outcome,
        room,
      };
      out.records.push(notified);
      out.produced.push(notified);
    }
  }

  /** 'main', or the root of the thread the event belongs to, following relations up to 3 hops. */
  private async threadOf(content: JsonObject): Promise<string> {
    let relation = content['m.relates_to'];
    for (let hop = 0; hop < MAX_THREAD_HOPS; hop++) {
      if (relation === null || typeof relation !== 'object' || Array.isArray(relation)) return 'main';
      const target = relation.event_id;
      if (typeof target !== 'string') return 'main';
      if (relation.rel_type === 'm.thread') return target;
      const parent = await this.options.storage.events.getEvent(target);
      if (parent === null) return 'main';
      relation = parent.pdu.content['m.relates_to'];
    }
    return 'main';
  }
}

/**
 * The users an event names where the server-default rules look at user IDs (invite_for_me:
 * `state_key`; is_user_mention: `content["m.mentions"].user_ids`), lower-cased since glob
 * matching ignores case; undefined when it names none. Default-rule members not named here
 * all evaluate alike: those rules read nothing else of the member (v1.17 removed the
 * display name and user name content rules).
 */
function namedUsers(pdu: PersistedRoomEvent['event']['pdu']): Set<string> | undefined {
  const named = new Set<string>();
  if (typeof pdu.state_key === 'string') named.add(pdu.state_key.toLowerCase());
  const mentions = pdu.content['m.mentions'];
  if (mentions !== null && typeof mentions === 'object' && !Array.isArray(mentions)) {
    const userIds = mentions.user_ids;
    if (Array.isArray(userIds)) {
      for (const userId of userIds) if (typeof userId === 'string') named.add(userId.toLowerCase());
    }
  }
  return named.size > 0 ? named : undefined;
}
