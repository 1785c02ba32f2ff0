import { expect } from 'chai';
import { PairKeys } from './pair-keys.js';

describe('PairKeys', () => {
  it('gives the two strings joined by the separator, before and after its bounds forget keys', () => {
    const keys = new PairKeys(' ', { firsts: 2, secondsEach: 2 });
    expect(keys.of('@a:x', '!r:x')).to.equal('@a:x !r:x');
    expect(keys.of('@a:x', '!r:x')).to.equal('@a:x !r:x');
    expect(keys.of('@a:x', '!s:x')).to.equal('@a:x !s:x');
    // A third second part of @a:x and a third first part: both past the bounds.
    expect(keys.of('@a:x', '!t:x')).to.equal('@a:x !t:x');
    expect(keys.of('@b:x', '!r:x')).to.equal('@b:x !r:x');
    expect(keys.of('@c:x', '!r:x')).to.equal('@c:x !r:x');
    expect(keys.of('@a:x', '!r:x')).to.equal('@a:x !r:x');
  });
});
