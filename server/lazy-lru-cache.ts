/**
 * A least-recently-used cache whose memory follows its contents. lru-cache
 * allocates its index arrays for `max` entries up front (about 17 bytes per slot,
 * more with a TTL): the server's caches sized for busy servers cost some 25 MB
 * before the first request (bench/README.md "Idle memory"). This one is a Map,
 * whose insertion order is the recency order: a hit moves its key to the end,
 * and the first key is the one to evict. Same calls as lru-cache for what the
 * server uses (get, set, has, delete, clear, size), plus an optional TTL.
 */
export interface LazyLruOptions {
  /** Most entries kept; the least recently used goes first. */
  readonly max: number;
  /** Entries older than this many ms are misses (and dropped when met). */
  readonly ttl?: number;
}

interface Entry<V> {
  readonly value: V;
  /** When it stops being served (performance.now() clock); Infinity without a TTL. */
  readonly expires: number;
}

export class LazyLruCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private readonly max: number;
  private readonly ttl: number;
  /** The most recently used key: hitting it again (a hot key) needs no reordering. */
  private newest: K | undefined;

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
    if (key !== this.newest) {
      this.entries.delete(key);
      this.entries.set(key, entry);
      this.newest = key;
    }
    return entry.value;
  }

  /** Whether a live entry is there, without making it recent. */
  has(key: K): boolean {
    const entry = this.entries.get(key);
    return (
      entry !== undefined && (entry.expires === Number.POSITIVE_INFINITY || entry.expires > performance.now())
    );
  }

  set(key: K, value: V): this {
    this.entries.delete(key);
    const expires = this.ttl === Number.POSITIVE_INFINITY ? this.ttl : performance.now() + this.ttl;
    this.entries.set(key, { value, expires });
    this.newest = key;
    if (this.entries.size > this.max) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    return this;
  }

  delete(key: K): boolean {
    if (key === this.newest) this.newest = undefined;
    return this.entries.delete(key);
  }

  clear(): void {
    this.newest = undefined;
    this.entries.clear();
  }
}
