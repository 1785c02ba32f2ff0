import { expect } from 'chai';
import { DeviceKeyCountsCache } from './device-key-counts.js';

describe('DeviceKeyCountsCache', () => {
  it('keeps the counts of devices read recently when the bound is passed, dropping the least recent', () => {
    const cache = new DeviceKeyCountsCache(3);
    cache.entry('@a:x', 'A').oneTimeKeys = { signed_curve25519: 5 };
    cache.entry('@b:x', 'B').oneTimeKeys = { signed_curve25519: 6 };
    cache.entry('@c:x', 'C').oneTimeKeys = { signed_curve25519: 7 };
    // A syncing device reads its counts at every wake: it stays when a new device comes.
    expect(cache.entry('@a:x', 'A').oneTimeKeys).to.deep.equal({ signed_curve25519: 5 });
    cache.entry('@d:x', 'D');
    expect(cache.size).to.equal(3);
    expect(cache.entry('@a:x', 'A').oneTimeKeys).to.deep.equal({ signed_curve25519: 5 });
    expect(cache.entry('@c:x', 'C').oneTimeKeys).to.deep.equal({ signed_curve25519: 7 });
    // The least recently used one went: its entry starts empty again (read from storage).
    expect(cache.entry('@b:x', 'B').oneTimeKeys).to.equal(undefined);
  });

  it('forgets a device whose keys changed', () => {
    const cache = new DeviceKeyCountsCache();
    cache.entry('@a:x', 'A').fallbackTypes = ['signed_curve25519'];
    cache.forget('@a:x', 'A');
    expect(cache.entry('@a:x', 'A').fallbackTypes).to.equal(undefined);
  });
});
