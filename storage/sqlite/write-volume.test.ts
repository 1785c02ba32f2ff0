import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { stateTupleKey } from '../../protocol/events.js';
import { TestRoom } from '../contract/test-events.js';
import { openSqliteStorage, type SqliteStorage } from './sqlite-storage.js';

const EVENTS = 10_000;

/**
 * Correctness at volume (every event stored, in order, extremities right); the speed of
 * these writes is measured by bench/room-send.bench.ts, never asserted here (timed tests
 * fail on a busy machine and prove nothing on an idle one).
 */
describe('SQLite writes at volume (10,000 events, file database)', function () {
  this.timeout(60_000);
  let dir: string;
  let storage: SqliteStorage;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'myelin-throughput-'));
    storage = await openSqliteStorage({ path: join(dir, 'throughput.db') });
  });
  afterEach(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('persists events one after another, each awaited', async () => {
    const room = new TestRoom('!sequential:example.org');
    let prev: string[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const event = room.event({ prevEvents: prev });
      await storage.events.persistEvent({ event });
      prev = [event.eventId];
    }
    expect(await storage.events.latestStreamOrdering()).to.equal(EVENTS);
    expect(await storage.state.forwardExtremities(room.roomId)).to.deep.equal(prev);
  });

  it('persists events issued together, group-committed, with state snapshots', async () => {
    const rooms = Array.from({ length: 100 }, (_, i) => new TestRoom(`!room${i}:example.org`));
    const base = await storage.state.createSnapshot('!room0:example.org', null, {
      set: new Map([[stateTupleKey('m.room.create', ''), '$create']]),
    });
    await Promise.all(
      Array.from({ length: EVENTS }, (_, i) => {
        const room = rooms[i % rooms.length]!;
        const event =
          i % 10 === 0 ? room.event({ type: 'm.room.member', stateKey: `@u${i}:example.org` }) : room.event();
        return storage.events.persistEvent({ event, stateBefore: { snapshotId: base } });
      }),
    );
    expect(await storage.events.latestStreamOrdering()).to.equal(EVENTS);
  });
});
