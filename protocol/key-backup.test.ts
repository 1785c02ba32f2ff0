import { expect } from 'chai';
import fc from 'fast-check';
import { type BackedUpKeyRank, incomingKeyReplaces } from './key-backup.js';

const key = (isVerified: boolean, firstMessageIndex: number, forwardedCount: number): BackedUpKeyRank => ({
  isVerified,
  firstMessageIndex,
  forwardedCount,
});

describe('key backup replacement rule (client-server "Server-side key backups")', () => {
  it('keeps the verified key whatever the indexes say', () => {
    expect(incomingKeyReplaces(key(false, 0, 0), key(true, 9, 9))).to.equal(true);
    expect(incomingKeyReplaces(key(true, 9, 9), key(false, 0, 0))).to.equal(false);
  });

  it('then keeps the lower first_message_index, whatever the forwarded counts', () => {
    expect(incomingKeyReplaces(key(true, 5, 0), key(true, 2, 7))).to.equal(true);
    expect(incomingKeyReplaces(key(false, 2, 7), key(false, 5, 0))).to.equal(false);
  });

  it('then keeps the lower forwarded_count; an exact tie keeps the existing key', () => {
    expect(incomingKeyReplaces(key(false, 3, 2), key(false, 3, 1))).to.equal(true);
    expect(incomingKeyReplaces(key(false, 3, 1), key(false, 3, 2))).to.equal(false);
    expect(incomingKeyReplaces(key(true, 3, 1), key(true, 3, 1))).to.equal(false);
  });

  it('is a strict order: of two different keys exactly one direction replaces', () => {
    const rank = fc.record({
      isVerified: fc.boolean(),
      firstMessageIndex: fc.nat(20),
      forwardedCount: fc.nat(5),
    });
    fc.assert(
      fc.property(rank, rank, (a, b) => {
        const same =
          a.isVerified === b.isVerified &&
          a.firstMessageIndex === b.firstMessageIndex &&
          a.forwardedCount === b.forwardedCount;
        const forward = incomingKeyReplaces(a, b);
        const backward = incomingKeyReplaces(b, a);
        return same ? !forward && !backward : forward !== backward;
      }),
    );
  });
});
