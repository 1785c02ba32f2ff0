/**
 * Hands the room event stream out to the application services' queues
 * (application-service "Pushing events": "The events sent to the application
 * service should be linearised, as if they were from the event stream").
 * Persisted events only wake it; it then reads the accepted timeline events
 * after its stored position, in stream order, asks which services want each,
 * and queues them with the new position in one write. So nothing is lost or
 * queued twice across a restart, and events sent here and received over
 * federation are treated alike. Backfilled history (below 0) and outliers (the
 * state and auth chain a federated join brings) are never sent. Memberships
 * kept outside the timeline (an invite, knock or rescinding from a room this
 * server is not in) are queued by their handshake (membershipChanged), once.
 */
import type { Logger } from 'pino';
import type { AppserviceOutboxItem, AppserviceStore } from '../../storage/appservice-store.js';
import type { EventStore } from '../../storage/event-store.js';
import type { StateStore } from '../../storage/state-store.js';
import { toClientEvent } from '../rooms/client-event-format.js';
import type { AppserviceInterest } from './interest.js';

/** Events read per step. */
const EVENTS_PER_STEP = 200;
/**
 * A step that queued nothing leaves the position in memory; it is written at most this often
 * (or with the next queued rows). After a crash the few steps since are simply read again.
 */
const POSITION_WRITE_INTERVAL_MS = 5_000;

export interface AppserviceFanOutOptions {
  readonly store: AppserviceStore;
  readonly events: Pick<EventStore, 'getEvents' | 'getEvent' | 'latestStreamOrdering'>;
  readonly state: Pick<StateStore, 'currentStateEventId'>;
  readonly interest: AppserviceInterest;
  /** Services with a URL (the others want no traffic). */
  readonly receivingIds: ReadonlySet<string>;
  /** Told which services got new events. */
  readonly onQueued: (appserviceIds: ReadonlySet<string>) => void;
  readonly log: Pick<Logger, 'warn'>;
  /** The first delay before a failed hand-out is tried again; doubled up to maxRetryDelayMs. */
  readonly initialRetryDelayMs: number;
  readonly maxRetryDelayMs: number;
}

export class AppserviceFanOut {
  private position: number | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
  private closed = false;
  /** The position last written, and when. */
  private writtenPosition: number | undefined;
  private writtenAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = 0;
  /** Out-of-band memberships being queued. */
  private readonly outOfBand = new Set<Promise<void>>();

  constructor(private readonly options: AppserviceFanOutOptions) {}

  /** A listener for rooms.sender.onEventPersisted: one flag check when a hand-out is under way. */
  readonly eventPersisted = (): void => {
    this.kick();
  };

  /**
   * Starts from the stored position; the first start ever begins at the stream's end (a server
   * that adds its first application service does not replay its history to it).
   */
  async start(): Promise<void> {
    const stored = await this.options.store.fanOutPosition();
    if (stored === null) {
      this.position = await this.options.events.latestStreamOrdering();
      await this.options.store.enqueue([], this.position);
    } else {
      this.position = stored;
    }
    this.writtenPosition = this.position;
    this.writtenAt = Date.now();
    this.kick();
  }

  /**
   * A membership handshake (invite received, knock, rescinded invite or knock) changed
   * `userId`'s membership of `roomId`: an event kept outside the timeline is queued for the
   * services of the user it is about and of its sender; a timeline one comes with the stream.
   */
  membershipChanged(roomId: string, userId: string): Promise<void> {
    const queueing = this.queueOutOfBand(roomId, userId).finally(() => {
      this.outOfBand.delete(queueing);
    });
    this.outOfBand.add(queueing);
    return queueing;
  }

  private async queueOutOfBand(roomId: string, userId: string): Promise<void> {
    const { store, events, state, interest, receivingIds } = this.options;
    if (this.closed) return;
    const eventId = await state.currentStateEventId(roomId, 'm.room.member', userId);
    if (eventId === null) return;
    const event = await events.getEvent(eventId);
    if (event === null || !event.outlier || event.rejectionReason !== null) return;
    const json = JSON.stringify(toClientEvent(event, { now: Date.now() }));
    const items = interest
      .servicesForMember(event)
      .filter((service) => receivingIds.has(service.id))
      .map((service) => ({ appserviceId: service.id, json }));
    if (!(await store.enqueueOutOfBand(eventId, items))) return;
    if (items.length > 0) this.options.onQueued(new Set(items.map((item) => item.appserviceId)));
  }

  /** Resolves once everything persisted before the call is queued (tests). */
  async settled(): Promise<void> {
    this.kick();
    while (this.running !== undefined || this.outOfBand.size > 0) {
      await Promise.allSettled([this.running, ...this.outOfBand]);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await Promise.allSettled([this.running, ...this.outOfBand]);
    // What was read but not written is read again at the next start; write it now instead.
    if (this.position !== undefined && this.position !== this.writtenPosition) {
      await this.options.store.enqueue([], this.position).catch(() => {});
    }
  }

  private kick(): void {
    if (this.position === undefined || this.closed) return;
    if (this.running !== undefined) {
      this.dirty = true;
      return;
    }
    this.running = this.run()
      .then(() => {
        this.retryDelayMs = 0;
      })
      .catch((error: unknown) => {
        // The position did not move: tried again from there after a delay (or the next event).
        this.retryLater();
        this.options.log.warn(
          { err: error, retryInMs: this.retryDelayMs },
          'Handing events to application services failed',
        );
      })
      .finally(() => {
        this.running = undefined;
      });
  }

  private retryLater(): void {
    const { initialRetryDelayMs, maxRetryDelayMs } = this.options;
    this.retryDelayMs =
      this.retryDelayMs === 0 ? initialRetryDelayMs : Math.min(this.retryDelayMs * 2, maxRetryDelayMs);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, this.retryDelayMs);
    this.retryTimer.unref();
  }

  private async run(): Promise<void> {
    do {
      this.dirty = false;
      while (!this.closed) {
        const moved = await this.step();
        if (!moved) break;
      }
    } while (this.dirty && !this.closed);
  }

  /** Queues the next events after the position; false when there were none. */
  private async step(): Promise<boolean> {
    const { store, events, interest, receivingIds } = this.options;
    const ids = await store.eventIdsAfter(this.position!, EVENTS_PER_STEP);
    if (ids.length === 0) return false;
    const stored = await events.getEvents(ids.map((entry) => entry.eventId));
    const items: AppserviceOutboxItem[] = [];
    const queuedFor = new Set<string>();
    const now = Date.now();
    const aliasesByRoom = new Map<string, readonly string[]>();
    for (const { eventId } of ids) {
      const event = stored.get(eventId);
      if (event === undefined) continue;
      let json: string | undefined;
      for (const service of await interest.servicesFor(event, aliasesByRoom)) {
        if (!receivingIds.has(service.id)) continue;
        json ??= JSON.stringify(toClientEvent(event, { now }));
        items.push({ appserviceId: service.id, json });
        queuedFor.add(service.id);
      }
    }
    const position = ids[ids.length - 1]!.streamOrdering;
    // The position is durable with the rows it covers; alone, only now and then.
    if (items.length > 0 || now - this.writtenAt >= POSITION_WRITE_INTERVAL_MS) {
      await store.enqueue(items, position);
      this.writtenPosition = position;
      this.writtenAt = now;
    }
    this.position = position;
    if (queuedFor.size > 0) this.options.onQueued(queuedFor);
    return true;
  }
}
