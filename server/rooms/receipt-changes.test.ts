import { expect } from 'chai';
import { ReceiptChanges } from './receipt-changes.js';

describe('ReceiptChanges', () => {
  it('answers "unchanged" only for what it tracked, and never while a write is in flight', () => {
    const changes = new ReceiptChanges();
    expect(changes.unchangedSince('@a:x', ['!r:x'], 10)).to.equal(false);
    changes.startAt(10);
    expect(changes.unchangedSince('@a:x', ['!r:x'], 9)).to.equal(false);
    expect(changes.unchangedSince('@a:x', ['!r:x'], 10)).to.equal(true);

    const read = { roomId: '!r:x' };
    changes.begin(read);
    expect(changes.unchangedSince('@a:x', ['!r:x'], 10)).to.equal(false);
    expect(changes.unchangedSince('@a:x', ['!other:x'], 10)).to.equal(true);
    changes.end(read, 11);
    expect(changes.unchangedSince('@a:x', ['!r:x'], 10)).to.equal(false);
    expect(changes.unchangedSince('@a:x', ['!r:x'], 11)).to.equal(true);

    // A delivery receipt concerns the sender of the delivered event only.
    const delivered = { roomId: '!r:x', deliveredTo: '@sender:x' };
    changes.begin(delivered);
    expect(changes.unchangedSince('@sender:x', ['!r:x'], 11)).to.equal(false);
    expect(changes.unchangedSince('@a:x', ['!r:x'], 11)).to.equal(true);
    changes.end(delivered, 12);
    expect(changes.unchangedSince('@sender:x', ['!r:x'], 11)).to.equal(false);
    expect(changes.unchangedSince('@sender:x', ['!r:x'], 12)).to.equal(true);

    // A failed write changes nothing, once it has ended.
    changes.begin(read);
    changes.end(read, undefined);
    expect(changes.unchangedSince('@a:x', ['!r:x'], 11)).to.equal(true);
  });
});
