import { expect } from 'chai';
import { MatrixError } from '../errors.js';
import { encodeTimelineToken, parseTimelineToken, tryParseTimelineToken } from './pagination-token.js';

describe('Timeline pagination tokens', () => {
  it('round-trips positions', () => {
    for (const position of [0, 1, 42, 9_007_199_254, -1, -250]) {
      expect(parseTimelineToken(encodeTimelineToken(position))).to.equal(position);
    }
  });

  it('reads the events position of a sync token', () => {
    expect(tryParseTimelineToken('s17_3_4_0_9_0_0')).to.equal(17);
  });

  it('refuses anything else with 400 M_INVALID_PARAM', () => {
    for (const token of ['', 't', 't-', 't--1', 't1.5', 'x12', 's1_2', 't1234567890123456', '12']) {
      expect(tryParseTimelineToken(token), token).to.equal(null);
      try {
        parseTimelineToken(token, 'from');
        expect.fail(`accepted ${token}`);
      } catch (error) {
        expect(error).to.be.instanceOf(MatrixError);
        expect((error as MatrixError).errcode).to.equal('M_INVALID_PARAM');
        expect((error as MatrixError).status).to.equal(400);
      }
    }
  });
});
