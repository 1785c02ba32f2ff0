import { expect } from 'chai';
import type { JsonObject } from '../protocol/events.js';
import { type CurrentDevice, planDeviceListUpdates, type SentDeviceList } from './device-list-updates.js';

const ALICE = '@alice:a.example';
const keysOf = (deviceId: string, key = 'k'): JsonObject => ({
  user_id: ALICE,
  device_id: deviceId,
  algorithms: ['m.olm.v1.curve25519-aes-sha2'],
  keys: { [`ed25519:${deviceId}`]: key },
});
const NOTHING_SENT: SentDeviceList = { lastStreamId: 0, hashes: new Map() };

/** Applies a plan to what was sent, as the announcer records it. */
function recorded(sent: SentDeviceList, plan: ReturnType<typeof planDeviceListUpdates>): SentDeviceList {
  const hashes = new Map(sent.hashes);
  for (const [deviceId, hash] of plan.changes) {
    if (hash === null) hashes.delete(deviceId);
    else hashes.set(deviceId, hash);
  }
  return { lastStreamId: plan.lastStreamId, hashes };
}

describe('outbound m.device_list_update (planDeviceListUpdates)', () => {
  it('gives each device its own increasing stream ID, each update naming the one before in prev_id', () => {
    const devices: CurrentDevice[] = [
      { deviceId: 'PHONE', displayName: 'Phone', keys: keysOf('PHONE') },
      { deviceId: 'LAPTOP', displayName: null },
      { deviceId: 'TABLET', displayName: 'Tablet', keys: keysOf('TABLET') },
    ];
    const plan = planDeviceListUpdates(ALICE, NOTHING_SENT, devices);
    expect(plan.updates.map((u) => [u.device_id, u.stream_id, u.prev_id])).to.deep.equal([
      ['PHONE', 1, []],
      ['LAPTOP', 2, [1]],
      ['TABLET', 3, [2]],
    ]);
    expect(plan.lastStreamId).to.equal(3);
    expect(plan.updates[0]).to.deep.include({
      user_id: ALICE,
      device_display_name: 'Phone',
      keys: keysOf('PHONE'),
    });
    expect(plan.updates[1]).to.not.have.property('keys');
    expect(plan.updates[1]).to.not.have.property('device_display_name');
  });

  it('sends only what changed since the last update, continuing its chain', () => {
    const first = planDeviceListUpdates(ALICE, NOTHING_SENT, [
      { deviceId: 'PHONE', displayName: 'Phone', keys: keysOf('PHONE') },
      { deviceId: 'LAPTOP', displayName: 'Laptop', keys: keysOf('LAPTOP') },
    ]);
    const sent = recorded(NOTHING_SENT, first);
    const unchanged = planDeviceListUpdates(ALICE, sent, [
      { deviceId: 'PHONE', displayName: 'Phone', keys: keysOf('PHONE') },
      { deviceId: 'LAPTOP', displayName: 'Laptop', keys: keysOf('LAPTOP') },
    ]);
    expect(unchanged.updates).to.deep.equal([]);
    expect(unchanged.lastStreamId).to.equal(2);

    const renamed = planDeviceListUpdates(ALICE, sent, [
      { deviceId: 'PHONE', displayName: 'Phone', keys: keysOf('PHONE') },
      { deviceId: 'LAPTOP', displayName: 'Work laptop', keys: keysOf('LAPTOP') },
    ]);
    expect(renamed.updates).to.deep.equal([
      {
        user_id: ALICE,
        device_id: 'LAPTOP',
        device_display_name: 'Work laptop',
        keys: keysOf('LAPTOP'),
        prev_id: [2],
        stream_id: 3,
      },
    ]);
  });

  it('announces a deleted device with deleted: true, once', () => {
    const first = planDeviceListUpdates(ALICE, NOTHING_SENT, [
      { deviceId: 'PHONE', displayName: null, keys: keysOf('PHONE') },
      { deviceId: 'LAPTOP', displayName: null, keys: keysOf('LAPTOP') },
      { deviceId: 'OLD', displayName: null },
    ]);
    const sent = recorded(NOTHING_SENT, first);
    const deleted = planDeviceListUpdates(ALICE, sent, [
      { deviceId: 'PHONE', displayName: null, keys: keysOf('PHONE', 'new') },
    ]);
    expect(deleted.updates).to.deep.equal([
      { user_id: ALICE, device_id: 'PHONE', keys: keysOf('PHONE', 'new'), prev_id: [3], stream_id: 4 },
      { user_id: ALICE, device_id: 'LAPTOP', deleted: true, prev_id: [4], stream_id: 5 },
      { user_id: ALICE, device_id: 'OLD', deleted: true, prev_id: [5], stream_id: 6 },
    ]);
    const again = planDeviceListUpdates(ALICE, recorded(sent, deleted), [
      { deviceId: 'PHONE', displayName: null, keys: keysOf('PHONE', 'new') },
    ]);
    expect(again.updates).to.deep.equal([]);
  });

  it('a device seeded with unknown content (before stream IDs were kept) is sent again, or deleted', () => {
    const seeded: SentDeviceList = {
      lastStreamId: 0,
      hashes: new Map([
        ['PHONE', ''],
        ['GONE', ''],
      ]),
    };
    const plan = planDeviceListUpdates(ALICE, seeded, [{ deviceId: 'PHONE', displayName: null }]);
    expect(plan.updates).to.deep.equal([
      { user_id: ALICE, device_id: 'PHONE', prev_id: [], stream_id: 1 },
      { user_id: ALICE, device_id: 'GONE', deleted: true, prev_id: [1], stream_id: 2 },
    ]);
  });
});
