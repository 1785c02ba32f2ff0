/**
 * GET /sync and the WebSocket's pushes share this: parse the token and filter,
 * apply set_presence, read the streams' positions, build the response, and with
 * nothing new wait on the notifier (only for what concerns the user) until the
 * timeout or the signal. Then deliveries are recorded (io.myelin.delivered) for
 * the events handed out, off the response's path.
 */
import type { JsonObject } from '../../protocol/events.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { PresenceRecord } from '../../storage/presence-store.js';
import type { Storage } from '../../storage/storage.js';
import type { AuthenticatedUser } from '../http/auth.js';
import type { PersistedRoomEvent } from '../rooms/room-event-sender.js';
import { SharedEventFormatting } from './event-format.js';
import { FanoutDeltas } from './fanout-delta.js';
import { LazyMembersSent } from './lazy-members.js';
import type { WaitOutcome } from './notifier.js';
import { PresenceChangeLog } from './presence.js';
import type { SyncDeps, SyncServices } from './sync-context.js';
import { SyncFilterResolver } from './sync-filter.js';
import { SyncReads } from './sync-reads.js';
import { buildSyncResponse, quietSince, quietSinceIfCached, type SyncOutcome } from './sync-response.js';
import type { SyncStreamMemo } from './sync-stream-memo.js';
import {
  clampToCurrent,
  formatSyncToken,
  parseSyncToken,
  type StreamPositions,
  tryParseSyncToken,
} from './sync-token.js';

export interface SyncParams {
  readonly since?: string;
  /** A filter ID or a Filter as JSON. */
  readonly filter?: string;
  /** How long to wait for something new (0: answer at once). */
  readonly timeoutMs: number;
  readonly fullState: boolean;
  /** use_state_after (v1.16): `state_after` instead of `state` in each room. */
  readonly useStateAfter?: boolean;
  readonly setPresence?: 'online' | 'offline' | 'unavailable';
  /**
   * Whether `since` confirms the to-device messages handed out before it (default true, as a
   * client sends it back only once it has processed them). The WebSocket's own rounds do not.
   */
  readonly acknowledgeToDevice?: boolean;
  /** Kept by a client's stream of syncs from one round to the next (the WebSocket's); none for a lone /sync. */
  readonly stream?: SyncStreamMemo;
}

/** A sync answer as the transports send it: JSON text, its next_batch, and whether it says anything. */
export interface SyncText {
  readonly json: string;
  readonly nextBatch: string;
  /** False for an answer that only moves the token along (a wait that timed out). */
  readonly hasContent: boolean;
  /** The body, when the answer was built as an object (the general builder). */
  readonly body?: JsonObject;
}

/** An answer asked for as a body only (sync()): no JSON text made. */
interface BodyAnswer {
  readonly body: JsonObject;
  readonly hasContent: boolean;
  readonly json?: undefined;
}

/** Longest a sync waits, whatever the client asks (a proxy would cut it anyway). */
export const MAX_SYNC_TIMEOUT_MS = 5 * 60_000;

export class SyncService {
  /** The reads syncs share (sliding sync reads through them too: one cache of each). */
  readonly reads: SyncReads;
  private readonly lazyMembers = new LazyMembersSent();
  private readonly presenceLog = new PresenceChangeLog();
  private readonly filters: SyncFilterResolver;
  private readonly formatting = new SharedEventFormatting();
  private readonly fanout = new FanoutDeltas();
  /** Answers spliced from shared room deltas (metrics, tests). */
  sharedAnswers = 0;
  /** Per device, the to-device position its syncs last confirmed (the fan-out path confirms only what moved). */
  private readonly toDeviceConfirmed = new LazyLruCache<string, number>({ max: 100_000 });
  private composed: SyncDeps | undefined;
  private positionsRead:
    | { readonly mark: number; readonly reading: Promise<StreamPositions>; value?: StreamPositions }
    | undefined;

  /** `services` is read on first use, so the service can be built before the context that holds it. */
  constructor(
    storage: Storage,
    private readonly services: () => SyncServices,
  ) {
    this.reads = new SyncReads(storage);
    this.filters = new SyncFilterResolver(storage.filters);
  }

  private get hs(): SyncServices {
    return this.deps.hs;
  }

  private get deps(): SyncDeps {
    this.composed ??= {
      hs: this.services(),
      reads: this.reads,
      lazyMembers: this.lazyMembers,
      presenceLog: this.presenceLog,
    };
    return this.composed;
  }

  /** Hears of every persisted event (transaction IDs for the sender's device, cache evictions). */
  observe(persisted: PersistedRoomEvent): void {
    this.reads.observe(persisted);
    if (persisted.event.pdu.type === 'm.room.redaction') this.fanout.clear();
  }

  /** Hears of every stored presence change (incremental syncs read them from memory). */
  observePresence(record: PresenceRecord): void {
    this.presenceLog.observe(record);
  }

  /**
   * A membership changed without passing through the local send path (an event from
   * federation, a /forget): drops what sync cached about it.
   */
  membershipChanged(roomId: string, userId: string): void {
    this.reads.forgetMembers(roomId);
    this.reads.forgetMembershipsOf(userId);
  }

  /** A stored event was rewritten outside the send path (e.g. a redaction applied later). */
  forgetEvent(eventId: string): void {
    this.reads.forgetEvent(eventId);
    this.fanout.clear();
  }

  /**
   * The /sync response body, next_batch included.
   * @throws MatrixError 400 M_INVALID_PARAM (bad since token or filter ID), M_NOT_JSON / M_BAD_JSON (bad inline filter).
   */
  async sync(
    requester: Pick<AuthenticatedUser, 'userId' | 'deviceId'>,
    params: SyncParams,
    signal: AbortSignal,
  ): Promise<JsonObject> {
    const answer = await this.run(requester, params, signal, false);
    return answer.body ?? (JSON.parse(answer.json!) as JsonObject);
  }

  /**
   * The same answer as JSON text, what /sync and the WebSocket send. A member woken with
   * many others for the same new events gets it spliced from their shared room delta
   * (fanout-delta.ts) when that gives the same answer.
   */
  syncText(
    requester: Pick<AuthenticatedUser, 'userId' | 'deviceId'>,
    params: SyncParams,
    signal: AbortSignal,
  ): Promise<SyncText> {
    // No async wrapper: the answer comes straight from the round (one promise less per woken member).
    return this.run(requester, params, signal, true);
  }

  /**
   * The wait a sync from `since` would begin with, begun without building anything: a promise
   * when nothing concerns the user past `since` yet (it settles once something may, at the
   * timeout, or on abort), undefined when the sync should run now (something is new, or
   * telling would need a read: the sync then waits itself if it must). A client's stream of
   * syncs (the WebSocket) waits here between rounds, so that a thousand waiting members each
   * keep a waiter alive rather than a whole sync computation, which outlives young-generation
   * collections and is promoted (then collected by a full one). Race-free as the sync's own
   * wait is: the mark is taken before the positions it compares were read.
   */
  waitBeforeSync(
    requester: Pick<AuthenticatedUser, 'userId'>,
    since: string,
    filterParam: string | undefined,
    stream: SyncStreamMemo,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<WaitOutcome> | undefined {
    if (timeoutMs <= 0 || signal.aborted) return undefined;
    const parsed = tryParseSyncToken(since);
    const filter = stream.filterFor(filterParam);
    if (parsed === null || filter === undefined) return undefined;
    const { notifier } = this.hs;
    const mark = notifier.mark();
    const current = this.positionsIfRead(mark);
    if (current === undefined) return undefined;
    const quiet = quietSinceIfCached(
      this.deps,
      requester.userId,
      filter,
      clampToCurrent(parsed, current),
      current,
    );
    if (quiet === null || quiet === undefined) return undefined;
    return notifier.waitForChange({
      userId: requester.userId,
      roomIds: quiet,
      sinceMark: mark,
      timeoutMs: Math.min(timeoutMs, MAX_SYNC_TIMEOUT_MS),
      signal,
    });
  }

  /** A body as an answer: with its JSON text when asked for text, else the body alone. */
  private answerOf(body: JsonObject, hasContent: boolean, asText: boolean): SyncText | BodyAnswer {
    if (!asText) return { body, hasContent };
    return { json: JSON.stringify(body), nextBatch: body.next_batch as string, hasContent, body };
  }

  private run(
    requester: Pick<AuthenticatedUser, 'userId' | 'deviceId'>,
    params: SyncParams,
    signal: AbortSignal,
    asText: true,
  ): Promise<SyncText>;
  private run(
    requester: Pick<AuthenticatedUser, 'userId' | 'deviceId'>,
    params: SyncParams,
    signal: AbortSignal,
    asText: false,
  ): Promise<SyncText | BodyAnswer>;
  private async run(
    requester: Pick<AuthenticatedUser, 'userId' | 'deviceId'>,
    params: SyncParams,
    signal: AbortSignal,
    asText: boolean,
  ): Promise<SyncText | BodyAnswer> {
    const parsedSince = params.since === undefined ? null : parseSyncToken(params.since);
    const { stream } = params;
    let filter = stream?.filterFor(params.filter);
    if (filter === undefined) {
      filter =
        this.filters.cached(requester.userId, params.filter) ??
        (await this.filters.resolve(requester.userId, params.filter));
      stream?.rememberFilter(params.filter, filter);
    }
    const settingPresence = this.applySetPresence(requester.userId, params.setPresence);
    if (settingPresence !== undefined) await settingPresence;
    const deadline = Date.now() + Math.min(Math.max(0, params.timeoutMs), MAX_SYNC_TIMEOUT_MS);
    const { notifier } = this.hs;

    for (;;) {
      const mark = notifier.mark();
      const current = this.positionsIfRead(mark) ?? (await this.currentPositions());
      const since = parsedSince === null ? null : clampToCurrent(parsedSince, current);
      if (since !== null && !params.fullState && deadline > Date.now() && !signal.aborted) {
        // Null (not quiet) and undefined (not known without reading) differ here: no `??`.
        let quiet = quietSinceIfCached(this.deps, requester.userId, filter, since, current);
        if (quiet === undefined)
          quiet = await quietSince(this.deps, { requester, filter, since, upTo: current });
        if (quiet !== null) {
          // Nothing to say yet: wait first. Whatever ends the wait, the next round builds
          // (and answers, once the deadline has passed or the request is gone).
          await notifier.waitForChange({
            userId: requester.userId,
            roomIds: quiet,
            sinceMark: mark,
            timeoutMs: deadline - Date.now(),
            signal,
          });
          continue;
        }
      }
      const request = {
        requester,
        filter,
        since,
        upTo: current,
        fullState: params.fullState,
        useStateAfter: params.useStateAfter === true,
        ignoredUsers:
          this.reads.cachedIgnoredUsers(requester.userId, current.accountData) ??
          (await this.reads.ignoredUsers(requester.userId, current.accountData)),
        now: Date.now(),
        acknowledgeToDevice: params.acknowledgeToDevice ?? true,
        stream,
      };
      if (asText && since !== null) {
        // `since` is not null here: the same object, typed so (no copy per woken member).
        const withSince = request as typeof request & { readonly since: StreamPositions };
        const shared = await this.fanout.answer(this.deps, withSince, this.formatting);
        if (shared !== null) {
          const confirming = this.confirmToDevice(requester, since, request.acknowledgeToDevice);
          if (confirming !== undefined) await confirming;
          this.recordDeliveries(requester.userId, shared.delivered);
          this.sharedAnswers++;
          return shared;
        }
      }
      const outcome = await buildSyncResponse(this.deps, request, this.formatting);
      if (requester.deviceId !== null && since !== null && request.acknowledgeToDevice) {
        this.toDeviceConfirmed.set(`${requester.userId}\u0000${requester.deviceId}`, since.toDevice);
      }
      if (since === null || params.fullState || !outcome.isEmpty)
        return this.answerOf(this.handOut(requester.userId, outcome), true, asText);

      const remaining = deadline - Date.now();
      if (remaining <= 0 || signal.aborted) return this.answerOf(outcome.body, false, asText);
      const woken = await notifier.waitForChange({
        userId: requester.userId,
        roomIds: outcome.roomsToWatch,
        sinceMark: mark,
        timeoutMs: remaining,
        signal,
      });
      // Nothing for the user in (since, next]: its next_batch says the same as `since`, and keeps
      // the next sync's range short.
      if (woken !== 'changed') return this.answerOf(outcome.body, false, asText);
    }
  }

  /**
   * The positions of every stream now (a token for "everything so far"). Syncs woken
   * together share one read: a read is reused only while nothing has been notified
   * since it began, so a sync that took its mark before it cannot miss a change.
   */
  currentPositions(): Promise<StreamPositions> {
    const mark = this.hs.notifier.mark();
    if (this.positionsRead?.mark !== mark) {
      const reading = this.readPositions();
      const read: { mark: number; reading: Promise<StreamPositions>; value?: StreamPositions } = {
        mark,
        reading,
      };
      this.positionsRead = read;
      reading.then(
        (value) => {
          read.value = value;
        },
        () => {},
      );
      reading.catch(() => {
        if (this.positionsRead?.reading === reading) this.positionsRead = undefined;
      });
    }
    return this.positionsRead.reading;
  }

  /** The positions read since `mark` was taken, once the read has finished; no promise to await. */
  private positionsIfRead(mark: number): StreamPositions | undefined {
    const read = this.positionsRead;
    return read?.mark === mark ? read.value : undefined;
  }

  private async readPositions(): Promise<StreamPositions> {
    const { storage, typing } = this.hs;
    const [events, accountData, receipts, presence, toDevice, deviceLists] = await Promise.all([
      storage.events.latestStreamOrdering(),
      storage.accountData.latestAccountDataPosition(),
      storage.receipts.latestReceiptPosition(),
      storage.presence.latestPresencePosition(),
      this.hs.toDevice.latestPosition(),
      this.hs.deviceKeys.latestDeviceListPosition(),
    ]);
    return {
      events,
      accountData,
      receipts,
      typing: typing.position(),
      presence,
      toDevice,
      deviceLists,
    };
  }

  /** A token for the current positions. */
  async currentToken(): Promise<string> {
    return formatSyncToken(await this.currentPositions());
  }

  private handOut(userId: string, outcome: SyncOutcome): JsonObject {
    this.recordDeliveries(userId, outcome.delivered);
    return outcome.body;
  }

  private recordDeliveries(
    userId: string,
    delivered: readonly { roomId: string; eventId: string; streamOrdering: number }[],
  ): void {
    for (const { roomId, eventId, streamOrdering } of delivered) {
      this.hs.receipts.noteDelivered(userId, roomId, eventId, streamOrdering, this.deliveryLogger);
    }
  }

  /** Hears every delivery sync records: only failures are of interest (the write is retried first). */
  private readonly deliveryLogger = {
    resolve: () => {},
    reject: (error: unknown) => this.hs.log.warn({ err: error }, 'Recording a delivery failed'),
  };

  /**
   * What the general builder does first (sync/to-device.ts): a `since` confirms the to-device
   * messages up to its position. The fan-out path runs only when no message is pending past
   * it, so this only deletes what was handed out before, and only when that position moved.
   */
  private confirmToDevice(
    requester: Pick<AuthenticatedUser, 'userId' | 'deviceId'>,
    since: StreamPositions,
    acknowledge: boolean,
  ): Promise<void> | undefined {
    // No promise when there is nothing to do (most woken members): one less await per answer.
    if (!acknowledge || requester.deviceId === null || since.toDevice <= 0) return undefined;
    const key = `${requester.userId}\u0000${requester.deviceId}`;
    if ((this.toDeviceConfirmed.get(key) ?? -1) >= since.toDevice) return undefined;
    return this.hs.toDevice.acknowledge(requester.userId, requester.deviceId, since.toDevice).then(() => {
      this.toDeviceConfirmed.set(key, since.toDevice);
    });
  }

  /** client-server "Syncing" set_presence: online marks activity, unavailable sets it, offline changes nothing; a promise only when there is something to wait for. */
  private applySetPresence(
    userId: string,
    setPresence: SyncParams['setPresence'],
  ): Promise<void> | undefined {
    const { presence } = this.hs;
    if (!presence.enabled || setPresence === undefined || setPresence === 'offline') return undefined;
    if (setPresence === 'online') {
      presence.markActive(userId);
      return undefined;
    }
    return this.markUnavailable(userId);
  }

  private async markUnavailable(userId: string): Promise<void> {
    const { presence } = this.hs;
    const current = await presence.getPresence(userId);
    if (current?.state !== 'unavailable') await presence.setPresence(userId, 'unavailable');
  }
}
