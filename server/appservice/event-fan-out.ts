/**
 * Hands the room event stream out to the application services' queues
 * (application-service "Pushing events": "The events sent to the application
 * service should be linearised, as if they were from the event stream").
 * Persisted events only wake it; it then reads the accepted timeline events
 * after its stored position, in stream order (with the membership events kept
 * as outliers, such as an invite from a room this server is not in, for the
 * services of the user they are about), asks which services want each,
 * and queues them with the new position in one write. So nothing is lost or
 * queued twice across a restart, and events sent here and received over
 * federation are treated alike. Backfilled history (below 0) is never sent.
 */
import type { Logger } from 'pino';
import type { AppserviceOutboxItem, AppserviceStore } from '../../storage/appservice-store.js';
import type { EventStore, StoredEvent } from '../../storage/event-store.js';
import { toClientEvent } from '../rooms/client-event-format.js';
import type { AppserviceInterest } from './interest.js';
import type { AppserviceRegistration } from './registration.js';

/** Events read per step. */
const EVENTS_PER_STEP = 200;

export interface AppserviceFanOutOptions {
  readonly store: AppserviceStore;
  readonly events: Pick<EventStore, 'getEvents' | 'latestStreamOrdering'>;
  readonly interest: AppserviceInterest;
  /** Services with a URL (the others want no traffic). */
  readonly receivingIds: ReadonlySet<string>;
  /** Told which services got new events. */
  readonly onQueued: (appserviceIds: ReadonlySet<string>) => void;
  /** Called before an event is queued for a service (the user query of a membership event). */
  readonly beforeQueue?: (service: AppserviceRegistration, event: StoredEvent) => Promise<void>;
  readonly log: Pick<Logger, 'warn'>;
}

export class AppserviceFanOut {
  private position: number | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
  private closed = false;

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
    this.kick();
  }

  /** Resolves once everything persisted before the call is queued (tests). */
  async settled(): Promise<void> {
    this.kick();
    while (this.running !== undefined) await this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.running;
  }

  private kick(): void {
    if (this.position === undefined || this.closed) return;
    if (this.running !== undefined) {
      this.dirty = true;
      return;
    }
    this.running = this.run()
      .catch((error: unknown) => {
        // The position did not move: the next persisted event tries again from there.
        this.options.log.warn({ err: error }, 'Handing events to application services failed');
      })
      .finally(() => {
        this.running = undefined;
      });
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
    for (const { eventId, outlier } of ids) {
      const event = stored.get(eventId);
      if (event === undefined) continue;
      let json: string | undefined;
      const services = outlier
        ? interest.servicesForMember(event)
        : await interest.servicesFor(event, aliasesByRoom);
      for (const service of services) {
        if (!receivingIds.has(service.id)) continue;
        await this.options.beforeQueue?.(service, event);
        json ??= JSON.stringify(toClientEvent(event, { now }));
        items.push({ appserviceId: service.id, json });
        queuedFor.add(service.id);
      }
    }
    const position = ids[ids.length - 1]!.streamOrdering;
    await store.enqueue(items, position);
    this.position = position;
    if (queuedFor.size > 0) this.options.onQueued(queuedFor);
    return true;
  }
}
