import { expect } from 'chai';
import { LazyLruCache } from './lazy-lru-cache.js';

describe('LazyLruCache', () => {
  it('evicts the least recently used entry, a read counting as a use', () => {
    const cache = new LazyLruCache<string, number>({ max: 3 });
    cache.set('a', 1).set('b', 2).set('c', 3);
    expect(cache.get('a')).to.equal(1);
    cache.set('d', 4);
    expect(cache.has('b')).to.equal(false);
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).to.deep.equal([1, 3, 4]);
    // Replacing a key does not grow the cache.
    cache.set('a', 10);
    expect(cache.size).to.equal(3);
    expect(cache.get('a')).to.equal(10);
    expect(cache.delete('a')).to.equal(true);
    expect(cache.get('a')).to.equal(undefined);
    cache.clear();
    expect(cache.size).to.equal(0);
  });

  it('keeps a just-added entry and the read ones over the unread, whatever the order of reads', () => {
    const cache = new LazyLruCache<string, number>({ max: 3 });
    cache.set('a', 1).set('b', 2).set('c', 3);
    // Every entry read: the new one stays, the least recently placed goes.
    cache.get('c');
    cache.get('b');
    cache.get('a');
    cache.set('d', 4);
    expect([cache.has('a'), cache.has('b'), cache.has('c'), cache.has('d')]).to.deep.equal([
      false,
      true,
      true,
      true,
    ]);
    // d, not read since, goes before b and c.
    cache.set('e', 5);
    expect(cache.has('d')).to.equal(false);
    expect([cache.get('b'), cache.get('c'), cache.get('e')]).to.deep.equal([2, 3, 5]);
    expect(cache.size).to.equal(3);
  });

  it('serves an entry only until its TTL has passed', async () => {
    const cache = new LazyLruCache<string, string>({ max: 10, ttl: 30 });
    cache.set('k', 'v');
    expect(cache.get('k')).to.equal('v');
    await new Promise((resolve) => setTimeout(resolve, 45));
    expect(cache.has('k')).to.equal(false);
    expect(cache.get('k')).to.equal(undefined);
    expect(cache.size).to.equal(0);
  });

  it('takes memory as entries arrive, not for `max` up front', () => {
    const before = process.memoryUsage().arrayBuffers;
    const caches = Array.from({ length: 20 }, () => new LazyLruCache<string, number>({ max: 1_000_000 }));
    expect(process.memoryUsage().arrayBuffers - before).to.be.lessThan(1_000_000);
    expect(caches).to.have.length(20);
  });
});
