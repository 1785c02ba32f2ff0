import { expect } from 'chai';
import { MatrixError } from '../errors.js';
import {
  clampToCurrent,
  formatSyncToken,
  parseSyncToken,
  type StreamPositions,
  tokenBeforeEvent,
  tryParseSyncToken,
} from './sync-token.js';

const positions: StreamPositions = {
  events: 120,
  accountData: 7,
  receipts: 33,
  typing: 4,
  presence: 19,
  toDevice: 0,
  deviceLists: 0,
};

describe('sync tokens', () => {
  it('round-trip every stream position', () => {
    const token = formatSyncToken(positions);
    expect(token).to.equal('s120_7_33_4_19_0_0');
    expect(parseSyncToken(token)).to.deep.equal(positions);
  });

  it('refuse anything that is not one of ours with M_INVALID_PARAM', () => {
    for (const bad of [
      '',
      's',
      't12',
      's1_2_3',
      's1_2_3_4_5_6_7_8',
      's1_2_x_4_5_6_7',
      's-1_2_3_4_5_6_7',
      's1__3_4_5_6_7',
    ]) {
      expect(tryParseSyncToken(bad), bad).to.equal(null);
      expect(() => parseSyncToken(bad))
        .to.throw(MatrixError)
        .with.property('errcode', 'M_INVALID_PARAM');
    }
  });

  it('clamp positions from the future; a typing position from an earlier run restarts at 0', () => {
    const future = { ...positions, events: 500, receipts: 1, typing: 9 };
    expect(clampToCurrent(future, positions)).to.deep.equal({ ...positions, receipts: 1, typing: 0 });
  });

  it('gives /messages the position just before a timeline event', () => {
    expect(parseSyncToken(tokenBeforeEvent(positions, 100)).events).to.equal(99);
  });
});
