import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { TestRoom } from '../../storage/contract/test-events.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import { openSqliteStorage, type SqliteStorage } from '../../storage/sqlite/sqlite-storage.js';
import { type DeliveredMark, DeliveryRecorder, RECEIPT_DELIVERED } from './delivery-receipts.js';
import { ReceiptService } from './receipts.js';

const alice = '@alice:example.org';
const roomId = '!room:example.org';

describe('Delivery receipts in batches', () => {
  let dir: string;
  let path: string;
  let storage: SqliteStorage;
  let room: TestRoom;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'myelin-delivery-'));
    path = join(dir, 'db.sqlite');
    storage = await openSqliteStorage({ path });
    room = new TestRoom(roomId);
  });

  afterEach(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function message(sender = alice): Promise<{ eventId: string; ordering: number }> {
    const event = room.event({ sender });
    await storage.events.persistEvent({ event });
    const stored = await storage.events.getEvent(event.eventId);
    return { eventId: event.eventId, ordering: stored!.streamOrdering };
  }

  it('records the deliveries of one fan-out in one write and wakes the sender once', async () => {
    const first = await message();
    const woken: string[][] = [];
    const receipts = new ReceiptService({
      storage,
      deliveredAnnounceDelayMs: 0,
      notifier: () => ({ notifyRooms: () => {}, notifyUsers: (users) => woken.push([...users]) }),
    });
    const before = await storage.receipts.latestReceiptPosition();
    const members = Array.from({ length: 200 }, (_, i) => `@m${i}:example.org`);
    await Promise.all(
      members.map((member) => receipts.markDelivered(member, roomId, first.eventId, first.ordering)),
    );
    const after = await storage.receipts.latestReceiptPosition();
    expect(after).to.equal(before + members.length);
    const rows = await storage.receipts.receiptsChangedBetween([roomId], before, after, {
      deliveredVisibleTo: alice,
    });
    expect(rows.map((row) => row.userId).sort()).to.deep.equal([...members].sort());
    expect(rows.every((row) => row.receiptType === RECEIPT_DELIVERED && row.eventId === first.eventId)).to.be
      .true;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(woken).to.deep.equal([[alice]]);
  });

  /** A recorder that notes each write's position, waiting for a pause of `batchDelayMs` (at most `maxBatchDelayMs`). */
  const pausingRecorder = (writes: (number | undefined)[], batchDelayMs: number, maxBatchDelayMs: number) =>
    new DeliveryRecorder({
      storage,
      now: Date.now,
      delivered: new LazyLruCache<string, DeliveredMark>({ max: 1_000 }),
      senderOf: async () => alice,
      begin: () => {},
      end: (_write, position) => writes.push(position),
      recorded: () => {},
      batchDelayMs,
      maxBatchDelayMs,
    });

  it('waits for a pause in a fan-out still recording deliveries (bounded), then writes once', async () => {
    const first = await message();
    const writes: (number | undefined)[] = [];
    const recorder = pausingRecorder(writes, 10, 1_000);
    const recorded: Promise<void>[] = [];
    // Deliveries every 3 ms for ~60 ms: no pause of 10 ms, so nothing is written meanwhile.
    for (let i = 0; i < 20; i++) {
      recorded.push(recorder.record(`@m${i}:example.org`, roomId, first.eventId, first.ordering));
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    expect(writes).to.deep.equal([]);
    await Promise.all(recorded);
    expect(writes).to.have.length(20);
    expect(new Set(writes).size).to.equal(1);

    // A bounded wait: with deliveries never pausing, the batch is written by maxBatchDelayMs.
    const bounded = pausingRecorder(writes, 5, 20);
    writes.length = 0;
    const started = performance.now();
    const firstDone = bounded.record('@x0:example.org', roomId, first.eventId, first.ordering);
    let writtenAt: number | undefined;
    void firstDone.then(() => {
      writtenAt = performance.now();
    });
    for (let i = 1; i < 30 && writtenAt === undefined; i++) {
      void bounded.record(`@x${i}:example.org`, roomId, first.eventId, first.ordering);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await firstDone;
    expect(writtenAt! - started).to.be.below(60);
    await bounded.flushNow();
  });

  it('keeps the newest delivery per user and never moves a stored one back', async () => {
    const first = await message();
    const second = await message();
    const receipts = new ReceiptService({ storage });
    const bob = '@bob:example.org';
    await Promise.all([
      receipts.markDelivered(bob, roomId, second.eventId, second.ordering),
      receipts.markDelivered(bob, roomId, first.eventId, first.ordering),
    ]);
    expect((await storage.receipts.getReceipt(roomId, RECEIPT_DELIVERED, bob, null))?.eventId).to.equal(
      second.eventId,
    );
    const position = await storage.receipts.latestReceiptPosition();
    // A restarted service (nothing cached) reads the stored one and does not step back.
    await new ReceiptService({ storage }).markDelivered(bob, roomId, first.eventId, first.ordering);
    expect(await storage.receipts.latestReceiptPosition()).to.equal(position);
    expect((await storage.receipts.getReceipt(roomId, RECEIPT_DELIVERED, bob, null))?.eventId).to.equal(
      second.eventId,
    );
  });

  describe('when the write fails', () => {
    let side: Database.Database;
    const failInserts = () =>
      side.exec(`CREATE TRIGGER IF NOT EXISTS fail_receipts BEFORE INSERT ON receipts
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
    const allowInserts = () => side.exec('DROP TRIGGER IF EXISTS fail_receipts');

    beforeEach(() => {
      side = new Database(path);
      side.pragma('busy_timeout = 5000');
    });
    afterEach(() => side.close());

    function failingRecorder(options: { onFailure?: () => void; maxAttempts?: number } = {}) {
      const ends: (number | undefined)[] = [];
      const delivered = new LazyLruCache<string, DeliveredMark>({ max: 100 });
      const built = new DeliveryRecorder({
        storage,
        now: Date.now,
        delivered,
        senderOf: async () => alice,
        begin: () => {},
        end: (_write, position) => {
          ends.push(position);
          if (position === undefined) options.onFailure?.();
        },
        recorded: () => {},
        batchDelayMs: 1,
        ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
      });
      return { recorder: built, ends, delivered };
    }

    it('stores nothing, retries, and records each delivery exactly once when a retry succeeds', async () => {
      const first = await message();
      failInserts();
      const { recorder, ends } = failingRecorder({ onFailure: allowInserts });
      const before = await storage.receipts.latestReceiptPosition();
      await Promise.all(
        ['@b:x', '@c:x'].map((user) => recorder.record(user, roomId, first.eventId, first.ordering)),
      );
      expect(ends.filter((end) => end === undefined)).to.have.length(2);
      const after = await storage.receipts.latestReceiptPosition();
      expect(after).to.equal(before + 2);
      const rows = await storage.receipts.receiptsChangedBetween([roomId], before, after);
      expect(rows.map((row) => row.userId).sort()).to.deep.equal(['@b:x', '@c:x']);
    });

    it('tells its callers once the attempts are spent, and a later delivery is recorded', async () => {
      const first = await message();
      failInserts();
      const { recorder, delivered } = failingRecorder({ maxAttempts: 2 });
      const before = await storage.receipts.latestReceiptPosition();
      let failure: unknown;
      await recorder.record('@b:x', roomId, first.eventId, first.ordering).catch((error) => {
        failure = error;
      });
      expect(String(failure)).to.contain('injected failure');
      expect(await storage.receipts.latestReceiptPosition()).to.equal(before);
      expect(delivered.get(`@b:x ${roomId}`)).to.equal(undefined);
      allowInserts();
      await recorder.record('@b:x', roomId, first.eventId, first.ordering);
      expect((await storage.receipts.getReceipt(roomId, RECEIPT_DELIVERED, '@b:x', null))?.eventId).to.equal(
        first.eventId,
      );
    });
  });
});
