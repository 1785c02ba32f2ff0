/**
 * Each user's total of unread notifications, the `counts.unread` badge of every
 * push (push_notifier.yaml). Reading it from storage for each push would cost a
 * scan of the user's unread rows per notification; it is read once, then kept up
 * to date: +1 per new notification, forgotten (read again next time) whenever
 * the user's read marks move.
 */

import type { NewNotification } from '../../storage/push-store.js';
import type { Storage } from '../../storage/storage.js';
import { LazyLruCache } from '../lazy-lru-cache.js';

export class UnreadBadges {
  private readonly counts: LazyLruCache<string, number>;

  constructor(
    private readonly storage: Storage,
    size = 10_000,
  ) {
    this.counts = new LazyLruCache({ max: size });
  }

  /** The count when it is known without reading storage. */
  cached(userId: string): number | undefined {
    return this.counts.get(userId);
  }

  async count(userId: string): Promise<number> {
    const cached = this.counts.get(userId);
    if (cached !== undefined) return cached;
    const total = await this.storage.push.totalUnread(userId);
    this.counts.set(userId, total);
    return total;
  }

  added(records: readonly NewNotification[]): void {
    for (const record of records) {
      const cached = this.counts.get(record.userId);
      if (cached !== undefined) this.counts.set(record.userId, cached + 1);
    }
  }

  read(userId: string): void {
    this.counts.delete(userId);
  }
}
