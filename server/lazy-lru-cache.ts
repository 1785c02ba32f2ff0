/** The server's LRU cache lives with storage (the lower layer), so storage can use it too: one implementation. */
export { LazyLruCache, type LazyLruOptions } from '../storage/lazy-lru-cache.js';
