/**
 * A least-recently-used cache whose memory follows its contents. lru-cache
 * allocates its index arrays for `max` entries up front (about 17 bytes per slot,
 * more with a TTL): the server's caches sized for busy servers cost some 25 MB
 * before the first request (bench/README.md "Idle memory"). This one is a Map,
 * whose insertion order is the recency order: a hit moves its key to the end,
 * and the first key is the one to evict. Same calls as lru-cache for what the
 * server uses (get, set, has, delete, clear, size), plus an optional TTL.
 *
 * A hit does not move its key at once (a Map delete and set on every read showed in
 * fan-out profiles: a thousand syncs each read several caches per message): it marks the
 * entry used, and eviction gives a marked entry at the front a second chance, moving it
 * to the end unmarked, before taking the first unmarked one. Each move is paid for by an
 * earlier hit, so eviction stays O(1) amortised.
 */
export interface LazyLruOptions {
  /** Most entries kept; the least recently used goes first. */
  readonly max: number;
  /** Entries older than this many ms are misses (and dropped when met). */
  readonly ttl?: number;
}

interface Entry<V> {
  value: V;
  /** When it stops being served (performance.now() clock); Infinity without a TTL. */
  expires: number;
  /** Read since it was put at the end of the order. */
  used: boolean;
}

export class LazyLruCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private readonly max: number;
  private readonly ttl: number;

  constructor(options: LazyLruOptions) {
    this.max = Math.max(1, Math.floor(options.max));
    this.ttl = options.ttl !== undefined && options.ttl > 0 ? options.ttl : Number.POSITIVE_INFINITY;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires !== Number.POSITIVE_INFINITY && entry.expires <= performance.now()) {
      this.entries.delete(key);
      return undefined;
    }
    entry.used = true;
    return entry.value;
  }

  /** Whether a live entry is there, without making it recent. */
  has(key: K): boolean {
    const entry = this.entries.get(key);
    return (
      entry !== undefined && (entry.expires === Number.POSITIVE_INFINITY || entry.expires > performance.now())
    );
  }

  /** A replaced key keeps its place in the order, marked used. */
  set(key: K, value: V): this {
    const expires = this.ttl === Number.POSITIVE_INFINITY ? this.ttl : performance.now() + this.ttl;
    const replaced = this.entries.get(key);
    if (replaced !== undefined) {
      // Updated in place: no new entry for a key rewritten often (a member's latest delivery).
      replaced.value = value;
      replaced.expires = expires;
      replaced.used = true;
      return this;
    }
    this.entries.set(key, { value, expires, used: false });
    if (this.entries.size > this.max) this.evictOne(key);
    return this;
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  /**
   * Drops the first entry not read since it was last moved to the end (read ones go to the
   * end, unmarked); never the one just added: when every other was read, the oldest of them goes.
   */
  private evictOne(added: K): void {
    for (const [key, entry] of this.entries) {
      if (key === added) break;
      this.entries.delete(key);
      if (!entry.used) return;
      entry.used = false;
      this.entries.set(key, entry);
    }
    for (const key of this.entries.keys()) {
      if (key === added) continue;
      this.entries.delete(key);
      return;
    }
  }
}
