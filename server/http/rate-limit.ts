/**
 * Token buckets per (rate-limit class, requester): client-server "Rate limiting".
 * A bucket holds `burst` tokens and refills `per_second`; a request takes one.
 * Buckets live in a bounded LRU so a flood of distinct addresses cannot grow memory.
 */

import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { MyelinConfig } from '../config/index.js';
import type { RateLimitClass } from './route.js';

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** per_second 0 means the burst is all there is; tell the client to come back much later. */
const NEVER_REFILLS_RETRY_MS = 3_600_000;

export interface RateLimiter {
  /** Takes a token; returns 0 when allowed, else the milliseconds until one is available. */
  take(limitClass: RateLimitClass, key: string): number;
}

export function createRateLimiter(
  config: MyelinConfig['rate_limits'],
  now: () => number = () => performance.now(),
): RateLimiter {
  const buckets = new LazyLruCache<string, Bucket>({ max: 100_000 });
  return {
    take(limitClass, key) {
      if (!config.enabled || limitClass === 'none') return 0;
      const { per_second: perSecond, burst } = config[limitClass];
      const bucketKey = `${limitClass}\u0000${key}`;
      const at = now();
      let bucket = buckets.get(bucketKey);
      if (bucket === undefined) {
        bucket = { tokens: burst, updatedAt: at };
        buckets.set(bucketKey, bucket);
      }
      // A bucket is updated in place: get() has already made it the most recent.
      bucket.tokens = Math.min(burst, bucket.tokens + ((at - bucket.updatedAt) / 1000) * perSecond);
      bucket.updatedAt = at;
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return 0;
      }
      if (perSecond <= 0) return NEVER_REFILLS_RETRY_MS;
      return ((1 - bucket.tokens) / perSecond) * 1000;
    },
  };
}
