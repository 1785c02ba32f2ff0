/**
 * Operator retention (spec/retention.md): messages older than a room's
 * retention period move from the hot tables into cold storage (compressed
 * segments on disk), where /messages, /context, /search and sync still read
 * them byte for byte. The period is the room's `m.room.retention`
 * `max_lifetime` (MSC1763; milliseconds), clamped to the server's bounds, or
 * the server default. A node-cron job runs it; each move is atomic, so a run
 * stopped at any point loses nothing and the next run goes on.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { Storage } from '../../storage/storage.js';
import type { MyelinConfig } from '../config/index.js';

export const RETENTION_EVENT_TYPE = 'm.room.retention';

export interface RetentionRunReport {
  readonly rooms: number;
  readonly moved: number;
  readonly segments: number;
}

export class RetentionService {
  private task: ScheduledTask | null = null;
  private running: Promise<RetentionRunReport> | null = null;

  constructor(
    private readonly storage: Storage,
    private readonly config: MyelinConfig['retention'],
    private readonly log: Pick<Logger, 'info' | 'warn'>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Schedules the job (when enabled). */
  start(): void {
    if (!this.config.enabled || this.task !== null) return;
    this.task = cron.schedule(this.config.schedule, () => {
      this.runOnce().catch((error: unknown) => this.log.warn({ err: error }, 'Retention run failed'));
    });
  }

  /** Stops scheduling and waits for a run in progress. */
  async stop(): Promise<void> {
    await this.task?.stop();
    this.task = null;
    await this.running?.catch(() => {});
  }

  /** One pass over every room; a second call while one runs joins it. */
  runOnce(): Promise<RetentionRunReport> {
    this.running ??= this.run().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** The retention period of a room in milliseconds; null: kept forever. */
  async lifetimeOf(roomId: string): Promise<number | null> {
    const { min_lifetime_ms: min, max_lifetime_ms: max, default_max_lifetime_ms: fallback } = this.config;
    const eventId = await this.storage.state.currentStateEventId(roomId, RETENTION_EVENT_TYPE, '');
    const event = eventId === null ? null : await this.storage.events.getEvent(eventId);
    const value = event?.pdu.content.max_lifetime;
    let lifetime = typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : null;
    if (lifetime === null) return fallback > 0 ? fallback : null;
    lifetime = Math.max(lifetime, min);
    if (max > 0) lifetime = Math.min(lifetime, max);
    return lifetime;
  }

  private async run(): Promise<RetentionRunReport> {
    const cold = this.storage.coldStorage;
    if (!cold.available) return { rooms: 0, moved: 0, segments: 0 };
    const orphans = await cold.removeOrphanSegments();
    if (orphans > 0) this.log.warn({ orphans }, 'Removed cold segments left by an interrupted run');
    let moved = 0;
    let segments = 0;
    let rooms = 0;
    for (const roomId of await cold.roomsWithHotEvents()) {
      const lifetime = await this.lifetimeOf(roomId);
      if (lifetime === null) continue;
      rooms++;
      const cutoff = this.now() - lifetime;
      for (;;) {
        const result = await cold.moveToCold(roomId, cutoff, this.config.segment_max_events);
        if (result.moved === 0) break;
        moved += result.moved;
        segments++;
      }
    }
    if (moved > 0) this.log.info({ rooms, moved, segments }, 'Moved old history to cold storage');
    return { rooms, moved, segments };
  }
}
