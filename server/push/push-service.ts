/**
 * Push notifications for the homeserver (client-server "Push Notifications"):
 * push rules per user, pushers, evaluation of persisted events off the send
 * path, unread counts for sync and /notifications, delivery to push gateways.
 */

import type { Logger } from 'pino';
import { belongsToServer } from '../../protocol/identifiers.js';
import type { PusherRecord, RoomUnreadCounts } from '../../storage/push-store.js';
import type { Storage } from '../../storage/storage.js';
import type { MyelinConfig } from '../config/index.js';
import { MatrixError } from '../errors.js';
import type { PersistedRoomEvent } from '../rooms/room-event-sender.js';
import type { RoomReads } from '../rooms/room-reads.js';
import { type GatewayPolicy, gatewayUrlProblem } from './gateway-address.js';
import { PushDelivery } from './push-delivery.js';
import { PushEvaluator } from './push-evaluator.js';
import { PushRuleStore } from './push-rule-store.js';
import { RoomPushFactsCache } from './room-push-facts.js';

export interface PushServiceOptions {
  readonly config: MyelinConfig;
  readonly storage: Storage;
  readonly reads: RoomReads;
  readonly log: Logger;
  /** Wakes the user's syncs (their m.push_rules changed). */
  readonly notifyUsers: (userIds: readonly string[]) => void;
}

/** pusher.yaml: pushkey at most 512 bytes, app_id at most 64 characters. */
const MAX_PUSHKEY_BYTES = 512;
const MAX_APP_ID_LENGTH = 64;

export interface PusherInput {
  readonly kind: string;
  readonly appId: string;
  readonly pushkey: string;
  readonly appDisplayName?: string;
  readonly deviceDisplayName?: string;
  readonly profileTag?: string;
  readonly lang?: string;
  readonly data?: Record<string, unknown>;
  readonly append?: boolean;
}

export class PushService {
  readonly rules: PushRuleStore;
  private readonly evaluator: PushEvaluator;
  private readonly delivery: PushDelivery;
  private readonly policy: GatewayPolicy;
  private readonly storage: Storage;
  private readonly isLocalUser: (userId: string) => boolean;

  constructor(options: PushServiceOptions) {
    const { config, storage, log } = options;
    this.storage = storage;
    const isLocalUser = (userId: string) => belongsToServer(userId, config.server_name);
    this.isLocalUser = isLocalUser;
    this.policy = {
      allowPrivate: config.push.allow_private_gateways,
      allowedHosts: config.push.allowed_gateway_hosts.map((host) => host.toLowerCase()),
    };
    this.rules = new PushRuleStore({ storage, onChanged: (userId) => options.notifyUsers([userId]) });
    this.delivery = new PushDelivery({
      storage,
      policy: this.policy,
      requestTimeoutMs: config.push.request_timeout_ms,
      initialRetryDelayMs: config.push.initial_retry_delay_ms,
      maxRetryDelayMs: config.push.max_retry_delay_ms,
      maxAttempts: config.push.max_attempts,
      maxPendingPushes: config.push.max_pending_pushes,
      deliveryQuietMs: config.push.delivery_quiet_ms,
      deliveryMaxHoldMs: config.push.delivery_max_hold_ms,
      log,
    });
    this.evaluator = new PushEvaluator({
      storage,
      rules: this.rules,
      rooms: new RoomPushFactsCache(storage, options.reads, isLocalUser),
      isLocalUser,
      onNotified: (notifications) => {
        if (!config.push.enabled) return;
        try {
          this.delivery.deliver(notifications);
        } catch (error) {
          log.warn({ err: error }, 'Queueing push notifications failed');
        }
      },
      // Badges count on in the delivery worker; a read mark that moves makes it read them again.
      onStored: (_records, reader) => {
        if (reader !== undefined) this.delivery.readMoved(reader);
      },
      onError: (error, eventId) => log.error({ err: error, eventId }, 'Push evaluation failed'),
    });
  }

  /** Hears of every persisted event (rooms.sender.onEventPersisted); never blocks the send. */
  observe(persisted: PersistedRoomEvent): void {
    // Gateway requests yield to this server's own sends (send-yield.ts): one atomic add. Events
    // arriving over federation do not hold pushes back (a busy federated room would keep every
    // push at the maximum hold).
    if (this.isLocalUser(persisted.event.pdu.sender)) this.delivery.noteSend();
    this.evaluator.observe(persisted);
  }

  /**
   * Unread notification counts per room (and per thread) for the user: what sync's
   * `unread_notifications` shows. Waits (briefly, bounded) for events up to
   * `upTo` to be evaluated, so a new event and its count travel together.
   */
  async unreadCounts(
    userId: string,
    roomIds: readonly string[],
    upTo?: number,
  ): Promise<Map<string, RoomUnreadCounts>> {
    // Only events of these rooms matter: a burst elsewhere does not hold this answer.
    await this.evaluator.settled(upTo, new Set(roomIds));
    return this.storage.push.unreadCounts(userId, roomIds);
  }

  /**
   * unreadCounts without a promise, when the events up to `upTo` in these rooms are evaluated
   * already and the store reads synchronously (a thousand members woken by one message ask at
   * once); undefined otherwise.
   */
  unreadCountsIfSettled(
    userId: string,
    roomIds: readonly string[],
    upTo: number,
  ): Map<string, RoomUnreadCounts> | undefined {
    const { push } = this.storage;
    if (push.unreadCountsNow === undefined || !this.evaluator.settledIn(upTo, roomIds)) return undefined;
    return push.unreadCountsNow(userId, roomIds);
  }

  /** A read receipt (m.read / m.read.private, maybe threaded) moved: notifications up to it are read. */
  async receiptMoved(
    userId: string,
    roomId: string,
    threadId: string | null,
    eventId: string,
  ): Promise<void> {
    const event = await this.storage.events.getEvent(eventId);
    if (event === null || event.roomId !== roomId) return;
    await this.storage.push.advanceReadMark({
      userId,
      roomId,
      threadId,
      streamOrdering: event.streamOrdering,
    });
    this.delivery.readMoved(userId);
  }

  pushers(userId: string): Promise<PusherRecord[]> {
    return this.storage.push.pushersOfUser(userId);
  }

  /**
   * POST /pushers/set (pusher.yaml): creates, updates or (kind null) deletes a pusher.
   * @throws MatrixError 400 for missing or invalid fields, email pushers, refused gateway URLs.
   */
  async setPusher(
    userId: string,
    deviceId: string | null,
    input: PusherInput | { kind: null; appId: string; pushkey: string },
  ): Promise<void> {
    if (input.kind === null) {
      await this.storage.push.deletePusher(userId, input.appId, input.pushkey);
      this.delivery.pushersChanged(userId);
      return;
    }
    const pusher = input as PusherInput;
    if (Buffer.byteLength(pusher.pushkey, 'utf8') > MAX_PUSHKEY_BYTES) {
      throw MatrixError.invalidParam(`pushkey must be at most ${MAX_PUSHKEY_BYTES} bytes`);
    }
    if (pusher.appId.length > MAX_APP_ID_LENGTH) {
      throw MatrixError.invalidParam(`app_id must be at most ${MAX_APP_ID_LENGTH} characters`);
    }
    const missing = (['appDisplayName', 'deviceDisplayName', 'lang', 'data'] as const)
      .filter((field) => pusher[field] === undefined)
      .map(
        (field) =>
          ({
            appDisplayName: 'app_display_name',
            deviceDisplayName: 'device_display_name',
            lang: 'lang',
            data: 'data',
          })[field],
      );
    if (missing.length > 0) throw MatrixError.missingParam(`Missing parameters: ${missing.join(', ')}`);
    if (pusher.kind === 'email') {
      throw new MatrixError(
        400,
        'M_INVALID_PARAM',
        'Email pushers are not available: this server has no email sending configured',
      );
    }
    if (pusher.kind !== 'http') throw MatrixError.invalidParam(`Unknown pusher kind: ${pusher.kind}`);
    const data = pusher.data!;
    if (typeof data.url !== 'string') throw MatrixError.missingParam('data.url is required for http pushers');
    if (data.format !== undefined && data.format !== 'event_id_only') {
      throw MatrixError.invalidParam('data.format must be event_id_only when given');
    }
    const problem = gatewayUrlProblem(data.url, this.policy);
    if (problem !== null) throw MatrixError.invalidParam(problem);
    await this.storage.push.setPusher(
      {
        userId,
        deviceId,
        kind: pusher.kind,
        appId: pusher.appId,
        pushkey: pusher.pushkey,
        appDisplayName: pusher.appDisplayName!,
        deviceDisplayName: pusher.deviceDisplayName!,
        profileTag: pusher.profileTag ?? null,
        lang: pusher.lang!,
        data: data as PusherRecord['data'],
        createdTs: Date.now(),
      },
      pusher.append === true,
    );
    this.delivery.pushersChanged(userId);
    // Without append, other users lose this pushkey too: every user is read again.
    if (pusher.append !== true) this.delivery.pushersChanged();
  }

  /** A deactivated account gets no more pushes. */
  async removePushersOf(userId: string): Promise<void> {
    for (const pusher of await this.storage.push.pushersOfUser(userId)) {
      await this.storage.push.deletePusher(userId, pusher.appId, pusher.pushkey);
    }
    this.delivery.pushersChanged(userId);
  }

  /** Waits for queued evaluations and deliveries (tests, benches). */
  async idle(): Promise<void> {
    await this.evaluator.idle();
    await this.delivery.idle();
  }

  async stop(): Promise<void> {
    await this.evaluator.idle();
    await this.delivery.stop();
  }
}
