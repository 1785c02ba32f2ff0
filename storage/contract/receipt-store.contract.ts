import { expect } from 'chai';
import { RECEIPT_TYPE_DELIVERED, type ReceiptUpdate } from '../receipt-store.js';
import { type StorageFactory, useFreshStorage } from './contract-harness.js';
import { TestRoom } from './test-events.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';
const room = '!room:example.org';
const other = '!other:example.org';

function receipt(fields: Partial<ReceiptUpdate> = {}): ReceiptUpdate {
  return {
    roomId: room,
    receiptType: 'm.read',
    userId: alice,
    threadId: null,
    eventId: '$e1',
    data: { ts: 1000 },
    ...fields,
  };
}

export function describeReceiptStoreContract(makeStorage: StorageFactory): void {
  describe('ReceiptStore', () => {
    const storage = useFreshStorage(makeStorage);

    it('stores a receipt and replaces it per (room, type, user, thread) at a new stream position', async () => {
      expect(await storage().receipts.latestReceiptPosition()).to.equal(0);
      const first = await storage().receipts.putReceipt(receipt());
      expect(await storage().receipts.getReceipt(room, 'm.read', alice, null)).to.deep.equal({
        ...receipt(),
        streamPosition: first,
      });
      const second = await storage().receipts.putReceipt(
        receipt({ eventId: '$e2', data: { ts: 2000, 'org.example': ['🧾'] } }),
      );
      expect(second).to.be.greaterThan(first);
      expect(await storage().receipts.getReceipt(room, 'm.read', alice, null)).to.deep.equal({
        ...receipt({ eventId: '$e2', data: { ts: 2000, 'org.example': ['🧾'] } }),
        streamPosition: second,
      });
      expect(await storage().receipts.latestReceiptPosition()).to.equal(second);
      expect(await storage().receipts.receiptsOfRooms([room])).to.have.length(1);
    });

    it('keeps receipts of other types, users, threads and rooms apart', async () => {
      await storage().receipts.putReceipt(receipt());
      await storage().receipts.putReceipt(receipt({ receiptType: 'm.read.private', eventId: '$p' }));
      await storage().receipts.putReceipt(receipt({ userId: bob, eventId: '$b' }));
      await storage().receipts.putReceipt(receipt({ threadId: 'main', eventId: '$main' }));
      await storage().receipts.putReceipt(receipt({ threadId: '$root', eventId: '$thread' }));
      await storage().receipts.putReceipt(receipt({ roomId: other, eventId: '$o' }));

      const get = (type: string, user: string, thread: string | null, roomId = room) =>
        storage()
          .receipts.getReceipt(roomId, type, user, thread)
          .then((r) => r?.eventId ?? null);
      expect(await get('m.read', alice, null)).to.equal('$e1');
      expect(await get('m.read.private', alice, null)).to.equal('$p');
      expect(await get('m.read', bob, null)).to.equal('$b');
      expect(await get('m.read', alice, 'main')).to.equal('$main');
      expect(await get('m.read', alice, '$root')).to.equal('$thread');
      expect(await get('m.read', alice, null, other)).to.equal('$o');
      expect(await get('m.read', bob, 'main')).to.equal(null);
      expect((await storage().receipts.getReceipt(room, 'm.read', alice, '$root'))!.threadId).to.equal(
        '$root',
      );

      const inRoom = await storage().receipts.receiptsOfRooms([room]);
      expect(inRoom.map((r) => r.eventId)).to.deep.equal(['$e1', '$p', '$b', '$main', '$thread']);
      expect(await storage().receipts.receiptsOfRooms([room, other])).to.have.length(6);
      expect(await storage().receipts.receiptsOfRooms([])).to.deep.equal([]);
    });

    it('lists receipts of the given rooms changed in (after, upTo], oldest first', async () => {
      const p1 = await storage().receipts.putReceipt(receipt());
      const p2 = await storage().receipts.putReceipt(receipt({ roomId: other, eventId: '$o' }));
      const p3 = await storage().receipts.putReceipt(receipt({ userId: bob, eventId: '$b' }));
      const p4 = await storage().receipts.putReceipt(receipt({ eventId: '$e2' }));

      const changed = (rooms: string[], after: number, upTo: number) =>
        storage()
          .receipts.receiptsChangedBetween(rooms, after, upTo)
          .then((list) => list.map((r) => [r.eventId, r.streamPosition]));
      expect(await changed([room, other], 0, p4)).to.deep.equal([
        ['$o', p2],
        ['$b', p3],
        ['$e2', p4],
      ]);
      expect(await changed([room], p1, p3)).to.deep.equal([['$b', p3]]);
      expect(await changed([room], p4, p4 + 10)).to.deep.equal([]);
      expect(await changed([], 0, p4)).to.deep.equal([]);
    });

    it('shows delivery receipts only to the sender of the delivered event when asked to', async () => {
      const testRoom = new TestRoom(room);
      const fromAlice = testRoom.event({ sender: alice });
      const fromBob = testRoom.event({ sender: bob });
      await storage().events.persistEvent({ event: fromAlice });
      await storage().events.persistEvent({ event: fromBob });
      const carol = '@carol:example.org';
      await storage().receipts.putReceipt(
        receipt({ receiptType: RECEIPT_TYPE_DELIVERED, userId: bob, eventId: fromAlice.eventId }),
      );
      await storage().receipts.putReceipt(
        receipt({ receiptType: RECEIPT_TYPE_DELIVERED, userId: carol, eventId: fromBob.eventId }),
      );
      await storage().receipts.putReceipt(receipt({ userId: carol, eventId: fromBob.eventId }));
      const describe = (records: ReceiptUpdate[]) =>
        records.map((r) => `${r.receiptType} ${r.userId}`).sort();
      const upTo = await storage().receipts.latestReceiptPosition();
      expect(describe(await storage().receipts.receiptsChangedBetween([room], 0, upTo))).to.deep.equal([
        `${RECEIPT_TYPE_DELIVERED} ${bob}`,
        `${RECEIPT_TYPE_DELIVERED} ${carol}`,
        `m.read ${carol}`,
      ]);
      const forAlice = await storage().receipts.receiptsChangedBetween([room], 0, upTo, {
        deliveredVisibleTo: alice,
      });
      expect(describe(forAlice)).to.deep.equal([`${RECEIPT_TYPE_DELIVERED} ${bob}`, `m.read ${carol}`]);
      const forBob = await storage().receipts.receiptsOfRooms([room], { deliveredVisibleTo: bob });
      expect(describe(forBob)).to.deep.equal([`${RECEIPT_TYPE_DELIVERED} ${carol}`, `m.read ${carol}`]);
      const forCarol = await storage().receipts.receiptsOfRooms([room], { deliveredVisibleTo: carol });
      expect(describe(forCarol)).to.deep.equal([`m.read ${carol}`]);
    });

    it('writes a batch of receipts at consecutive new stream positions, replacing older ones', async () => {
      const before = await storage().receipts.putReceipt(receipt({ userId: bob, eventId: '$old' }));
      const position = await storage().receipts.putReceipts([
        receipt(),
        receipt({ userId: bob, eventId: '$new' }),
        receipt({ roomId: other, eventId: '$o' }),
      ]);
      expect(position).to.equal(before + 3);
      expect(await storage().receipts.latestReceiptPosition()).to.equal(position);
      const changed = await storage().receipts.receiptsChangedBetween([room, other], before, position);
      expect(changed.map((r) => [r.roomId, r.userId, r.eventId, r.streamPosition])).to.deep.equal([
        [room, alice, '$e1', before + 1],
        [room, bob, '$new', before + 2],
        [other, alice, '$o', before + 3],
      ]);
      expect(await storage().receipts.putReceipts([])).to.equal(position);
    });

    it('writes a batch of 150 receipts in order: each at its own position, a later one of a user replacing an earlier', async () => {
      const before = await storage().receipts.latestReceiptPosition();
      // 149 users; the first user comes again last (in another statement of the batch), the
      // second again third (in the same one).
      const users = Array.from({ length: 149 }, (_, i) => `@fan${i}:x`);
      const batch = users.map((userId) => receipt({ userId, eventId: '$first' }));
      batch.splice(2, 0, receipt({ userId: users[1]!, eventId: '$again' }));
      batch.push(receipt({ userId: users[0]!, eventId: '$last' }));
      const position = await storage().receipts.putReceipts(batch);
      expect(position).to.equal(before + 151);
      const changed = await storage().receipts.receiptsChangedBetween([room], before, position);
      const byUser = new Map(changed.map((r) => [r.userId, r]));
      expect(byUser.size).to.equal(149);
      expect([byUser.get(users[0]!)?.eventId, byUser.get(users[0]!)?.streamPosition]).to.deep.equal([
        '$last',
        before + 151,
      ]);
      expect([byUser.get(users[1]!)?.eventId, byUser.get(users[1]!)?.streamPosition]).to.deep.equal([
        '$again',
        before + 3,
      ]);
      expect([byUser.get(users[148]!)?.eventId, byUser.get(users[148]!)?.streamPosition]).to.deep.equal([
        '$first',
        before + 150,
      ]);
    });

    it('assigns distinct positions to receipts written concurrently', async () => {
      const positions = await Promise.all(
        Array.from({ length: 20 }, (_, i) => storage().receipts.putReceipt(receipt({ userId: `@u${i}:x` }))),
      );
      expect(new Set(positions).size).to.equal(20);
      expect(await storage().receipts.latestReceiptPosition()).to.equal(Math.max(...positions));
    });
  });
}
