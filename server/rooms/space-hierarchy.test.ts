import { expect } from 'chai';
import { compareSpaceChildren, type SpaceChildLink } from './space-hierarchy.js';

const link = (stateKey: string, originServerTs: number, order?: unknown): SpaceChildLink => ({
  stateKey,
  originServerTs,
  content: { via: ['example.org'], ...(order === undefined ? {} : { order: order as string }) },
});

describe('compareSpaceChildren (spaces "Ordering of children within a space")', () => {
  it('orders the spec example: valid order keys first, then by timestamp', () => {
    const children = [
      link('!e:example.org', 1640641000000),
      link('!c:example.org', 1640841000000, 'first'),
      link('!d:example.org', 1640741000000),
      link('!a:example.org', 1640141000000, 'aaaa'),
      link('!b:example.org', 1640341000000, ' '),
    ];
    expect(children.sort(compareSpaceChildren).map((child) => child.stateKey)).to.deep.equal([
      '!b:example.org',
      '!a:example.org',
      '!c:example.org',
      '!e:example.org',
      '!d:example.org',
    ]);
  });

  it('ignores invalid order keys and breaks ties by timestamp, then room ID', () => {
    const children = [
      link('!long:x', 1, 'a'.repeat(51)),
      link('!nonascii:x', 1, 'é'),
      link('!number:x', 1, 5),
      link('!same2:x', 0, 'm'),
      link('!same1:x', 0, 'm'),
      link('!sameEarly:x', -1, 'm'),
    ];
    expect(children.sort(compareSpaceChildren).map((child) => child.stateKey)).to.deep.equal([
      '!sameEarly:x',
      '!same1:x',
      '!same2:x',
      '!long:x',
      '!nonascii:x',
      '!number:x',
    ]);
  });
});
