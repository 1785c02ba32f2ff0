/**
 * The media clean-up, on a node-cron schedule (media.retention.schedule):
 * IDs from /create whose upload never came, local media not downloaded for
 * local_media_lifetime_days (when set), then the blobs nothing uses any more
 * (their files too). Blobs used in the last hour are spared: an upload may
 * be about to reuse one.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { Storage } from '../../storage/storage.js';
import type { MyelinConfig } from '../config/index.js';
import type { MediaService } from './media-service.js';

const BATCH = 500;
const BLOB_GRACE_MS = 3_600_000;
const DAY_MS = 86_400_000;

export interface RetentionReport {
  readonly expiredReservations: number;
  readonly deletedMedia: number;
  readonly deletedBlobs: number;
}

export async function runMediaRetention(
  deps: { config: MyelinConfig; storage: Storage; media: MediaService },
  now = Date.now(),
): Promise<RetentionReport> {
  const expiredReservations = await deps.storage.media.deleteExpiredReservations(now);
  let deletedMedia = 0;
  const lifetimeDays = deps.config.media.retention.local_media_lifetime_days;
  if (lifetimeDays > 0) {
    for (;;) {
      const stale = await deps.storage.media.mediaNotAccessedSince(now - lifetimeDays * DAY_MS, BATCH);
      for (const { serverName, mediaId } of stale) await deps.storage.media.deleteMedia(serverName, mediaId);
      deletedMedia += stale.length;
      if (stale.length < BATCH) break;
    }
  }
  let deletedBlobs = 0;
  for (;;) {
    const unused = await deps.storage.media.unreferencedBlobs(now - BLOB_GRACE_MS, BATCH);
    for (const blob of unused) {
      if (await deps.media.removeBlobIfUnreferenced(blob.sha256)) deletedBlobs++;
    }
    if (unused.length < BATCH) break;
  }
  return { expiredReservations, deletedMedia, deletedBlobs };
}

export interface MediaRetentionSchedule {
  destroy(): Promise<void>;
}

/**
 * Schedules the job; undefined when the schedule is empty. While no media is stored
 * there is nothing to clean, and the job is scheduled when the first is (a reservation,
 * an upload, a remote copy, a thumbnail): node-cron works out every run time with
 * Intl.DateTimeFormat, whose ICU data costs a server with no media ~8 MB of RSS.
 */
export async function scheduleMediaRetention(deps: {
  config: MyelinConfig;
  storage: Storage;
  media: MediaService;
  log: Logger;
}): Promise<MediaRetentionSchedule | undefined> {
  const schedule = deps.config.media.retention.schedule;
  if (schedule === '') return undefined;
  if (!cron.validate(schedule))
    throw new Error(`media.retention.schedule: not a cron expression: ${schedule}`);
  let task: ScheduledTask | undefined;
  let destroyed = false;
  const start = () => {
    if (destroyed || task !== undefined) return;
    task = cron.schedule(
      schedule,
      async () => {
        try {
          const report = await runMediaRetention(deps);
          deps.log.info(report, 'Media clean-up done');
        } catch (error) {
          deps.log.error({ err: error }, 'Media clean-up failed');
        }
      },
      { noOverlap: true, name: 'media-retention' },
    );
  };
  // Listening first: media stored while the check below runs still starts the job.
  void deps.media.firstStored.then(start);
  if (await holdsMedia(deps.storage)) start();
  return {
    async destroy() {
      destroyed = true;
      await task?.destroy();
    },
  };
}

/** Whether any media, reservation or blob is stored (one indexed row read when there is). */
async function holdsMedia(storage: Storage): Promise<boolean> {
  const always = Number.MAX_SAFE_INTEGER;
  return (
    (await storage.media.mediaNotAccessedSince(always, 1)).length > 0 ||
    (await storage.media.unreferencedBlobs(always, 1)).length > 0
  );
}
