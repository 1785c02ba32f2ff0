import { expect } from 'chai';
import { pino } from 'pino';
import type { LastSeenUpdate } from '../../storage/device-store.js';
import { createLastSeenRecorder } from './last-seen-recorder.js';

describe('last seen recorder', () => {
  const log = pino({ level: 'silent' });

  it('batches many sightings into one write, keeping the newest per device', async () => {
    const writes: (readonly LastSeenUpdate[])[] = [];
    let now = 1000;
    const recorder = createLastSeenRecorder({
      devices: { recordLastSeen: async (updates) => void writes.push(updates) },
      log,
      flushIntervalMs: 60_000,
      now: () => now++,
    });
    for (let i = 0; i < 1000; i++) recorder.record('@a:x', 'PHONE', `10.0.0.${i % 5}`, 'ua');
    recorder.record('@a:x', 'LAPTOP', '10.0.1.1', null);
    recorder.record('@b:x', null, '10.0.2.2', null);
    expect(writes).to.have.length(0);
    await recorder.flush();
    expect(writes).to.have.length(1);
    expect(writes[0]).to.have.length(2);
    expect(writes[0]!.find((u) => u.deviceId === 'PHONE')).to.include({ ip: '10.0.0.4', ts: 1999 });
    await recorder.flush();
    expect(writes, 'nothing new, nothing written').to.have.length(1);
    await recorder.close();
  });

  it('flushes on a timer and at close; forgets deleted devices', async () => {
    const writes: (readonly LastSeenUpdate[])[] = [];
    const recorder = createLastSeenRecorder({
      devices: { recordLastSeen: async (updates) => void writes.push(updates) },
      log,
      flushIntervalMs: 20,
    });
    recorder.record('@a:x', 'D1', '1.1.1.1', null);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(writes).to.have.length(1);
    recorder.record('@a:x', 'D2', '1.1.1.1', null);
    recorder.record('@a:x', 'D3', '1.1.1.1', null);
    recorder.forgetDevices('@a:x', ['D3']);
    await recorder.close();
    expect(writes.at(-1)!.map((u) => u.deviceId)).to.deep.equal(['D2']);
  });

  it('a failed write is logged, not thrown, and later flushes still run', async () => {
    let calls = 0;
    const recorder = createLastSeenRecorder({
      devices: {
        recordLastSeen: async () => {
          calls++;
          if (calls === 1) throw new Error('disk full');
        },
      },
      log,
      flushIntervalMs: 60_000,
    });
    recorder.record('@a:x', 'D', null, null);
    await recorder.flush();
    recorder.record('@a:x', 'D', null, null);
    await recorder.flush();
    expect(calls).to.equal(2);
    await recorder.close();
  });

  it('tells activity listeners, even for requests without a device', () => {
    const recorder = createLastSeenRecorder({ devices: { recordLastSeen: async () => {} }, log });
    const seen: string[] = [];
    const stop = recorder.onActivity((userId) => seen.push(userId));
    recorder.onActivity(() => {
      throw new Error('a broken listener does not stop the others');
    });
    recorder.record('@a:x', 'D', null, null);
    recorder.record('@b:x', null, null, null);
    stop();
    recorder.record('@c:x', 'D', null, null);
    expect(seen).to.deep.equal(['@a:x', '@b:x']);
    void recorder.close();
  });
});
