import { expect } from 'chai';
import { isMatrixError } from '../errors.js';
import { decodePageBound, encodePageBound } from './public-rooms.js';
import { plainTextTopic } from './room-summaries.js';

describe('public room directory tokens', () => {
  it('round-trips a page bound', () => {
    for (const bound of [
      { forward: true, joinedMembers: 0, roomId: '!abc:example.org' },
      { forward: false, joinedMembers: 123456, roomId: '!x_y:ex_ample.org' },
    ]) {
      expect(decodePageBound(encodePageBound(bound))).to.deep.equal(bound);
    }
  });

  it('refuses tokens it did not make with M_INVALID_PARAM', () => {
    for (const token of [
      '',
      'garbage!',
      Buffer.from('x5_!a:b').toString('base64url'),
      Buffer.from('n_!a:b').toString('base64url'),
    ]) {
      try {
        decodePageBound(token);
        expect.fail(`accepted ${JSON.stringify(token)}`);
      } catch (e) {
        expect(isMatrixError(e) && e.errcode).to.equal('M_INVALID_PARAM');
      }
    }
  });
});

describe('plainTextTopic (m.room.topic)', () => {
  it('prefers the text/plain representation of m.topic, then the legacy topic', () => {
    expect(
      plainTextTopic({
        topic: 'legacy',
        'm.topic': { 'm.text': [{ mimetype: 'text/html', body: '<b>rich</b>' }, { body: 'plain' }] },
      }),
    ).to.equal('plain');
    expect(
      plainTextTopic({ topic: 'legacy', 'm.topic': { 'm.text': [{ mimetype: 'text/html', body: 'x' }] } }),
    ).to.equal('legacy');
    expect(plainTextTopic({})).to.equal(undefined);
  });
});
