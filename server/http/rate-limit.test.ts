import { expect } from 'chai';
import { createRateLimiter } from './rate-limit.js';

describe('rate limiter (token bucket)', () => {
  const limits = {
    enabled: true,
    exempt_admins: true,
    client: { per_second: 2, burst: 3 },
    login: { per_second: 0, burst: 1 },
    registration: { per_second: 1, burst: 1 },
    federation: { per_second: 5, burst: 10 },
  };

  it('allows the burst, then asks to wait until a token refills', () => {
    let now = 0;
    const limiter = createRateLimiter(limits, () => now);
    expect([1, 2, 3].map(() => limiter.take('client', 'a'))).to.deep.equal([0, 0, 0]);
    expect(limiter.take('client', 'a')).to.equal(500);
    now = 250;
    expect(limiter.take('client', 'a')).to.equal(250);
    now = 500;
    expect(limiter.take('client', 'a')).to.equal(0);
  });

  it('keeps a bucket per key and per class', () => {
    const limiter = createRateLimiter(limits, () => 0);
    for (let i = 0; i < 3; i++) limiter.take('client', 'a');
    expect(limiter.take('client', 'a')).to.be.greaterThan(0);
    expect(limiter.take('client', 'b')).to.equal(0);
    expect(limiter.take('registration', 'a')).to.equal(0);
  });

  it('a class that never refills gives a long but finite wait', () => {
    const limiter = createRateLimiter(limits, () => 0);
    expect(limiter.take('login', 'a')).to.equal(0);
    const wait = limiter.take('login', 'a');
    expect(wait).to.be.greaterThan(60_000);
    expect(Number.isFinite(wait)).to.equal(true);
  });

  it('never limits when disabled or for the none class', () => {
    const off = createRateLimiter({ ...limits, enabled: false }, () => 0);
    const on = createRateLimiter(limits, () => 0);
    for (let i = 0; i < 10; i++) {
      expect(off.take('client', 'a')).to.equal(0);
      expect(on.take('none', 'a')).to.equal(0);
    }
  });
});
