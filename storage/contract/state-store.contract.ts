import { expect } from 'chai';
import { type StateMap, stateTupleKey } from '../../protocol/events.js';
import type { StateSnapshotId } from '../state-store.js';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';
import { TestRoom } from './test-events.js';

/** Deterministic pseudo-random numbers (mulberry32), so a failing chain can be replayed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const member = (userId: string) => stateTupleKey('m.room.member', userId);

export function describeStateStoreContract(makeStorage: StorageFactory): void {
  describe('StateStore', () => {
    const storage = useFreshStorage(makeStorage);

    it('reconstructs every state along a chain of 150 delta snapshots', async () => {
      const roomId = '!chain:example.org';
      const random = seededRandom(42);
      const expected: StateMap[] = [];
      const ids: StateSnapshotId[] = [];
      let model: StateMap = new Map();
      let parent: StateSnapshotId | null = null;
      for (let step = 0; step < 150; step++) {
        const set: StateMap = new Map();
        const remove: string[] = [];
        const changes = 1 + Math.floor(random() * 4);
        for (let c = 0; c < changes; c++) {
          set.set(member(`@user${Math.floor(random() * 30)}:example.org`), `$event-${step}-${c}`);
        }
        // Every step past the first few also drops a key, so removals cross the full-snapshot boundary too.
        const present = [...model.keys()].filter((key) => !set.has(key));
        if (present.length > 5) remove.push(present[Math.floor(random() * present.length)]!);
        if (step % 10 === 0) set.set(stateTupleKey('m.room.name', ''), `$name-${step}`);
        model = new Map(model);
        for (const key of remove) model.delete(key);
        for (const [key, eventId] of set) model.set(key, eventId);
        const id: StateSnapshotId = await storage().state.createSnapshot(roomId, parent, { set, remove });
        ids.push(id);
        expected.push(model);
        parent = id;
      }
      expect(new Set(ids).size).to.equal(ids.length);
      for (let i = 0; i < ids.length; i++) {
        expect(await storage().state.stateAtSnapshot(ids[i]!), `snapshot ${i}`).to.deep.equal(expected[i]);
      }
      // One key at a time gives what the whole state says, removals and full snapshots included.
      const keys = [...Array.from({ length: 30 }, (_, u) => member(`@user${u}:example.org`))];
      keys.push(stateTupleKey('m.room.name', ''), stateTupleKey('m.room.topic', ''));
      for (const i of [0, 1, 57, 99, 100, 101, 149]) {
        const entries = await storage().state.stateEntriesAtSnapshot(ids[i]!, keys);
        const wanted = new Map(
          keys.flatMap((key) => (expected[i]!.has(key) ? [[key, expected[i]!.get(key)!]] : [])),
        );
        expect(entries, `snapshot ${i}`).to.deep.equal(wanted);
      }
    });

    it('branches snapshots from a shared parent without one branch leaking into another', async () => {
      const roomId = '!branch:example.org';
      const base = await storage().state.createSnapshot(roomId, null, {
        set: new Map([
          [stateTupleKey('m.room.create', ''), '$create'],
          [member('@a:x'), '$a-join'],
        ]),
      });
      const left = await storage().state.createSnapshot(roomId, base, {
        set: new Map([[member('@b:x'), '$b-join']]),
      });
      const right = await storage().state.createSnapshot(roomId, base, { remove: [member('@a:x')] });
      expect(await storage().state.stateAtSnapshot(left)).to.deep.equal(
        new Map([
          [stateTupleKey('m.room.create', ''), '$create'],
          [member('@a:x'), '$a-join'],
          [member('@b:x'), '$b-join'],
        ]),
      );
      expect(await storage().state.stateAtSnapshot(right)).to.deep.equal(
        new Map([[stateTupleKey('m.room.create', ''), '$create']]),
      );
      expect(await storage().state.stateAtSnapshot(base)).to.have.property('size', 2);
      const empty = await storage().state.createSnapshot(roomId, null, {});
      expect(await storage().state.stateAtSnapshot(empty)).to.deep.equal(new Map());
    });

    it('takes a copy of the delta when the write is queued', async () => {
      const set: StateMap = new Map([[member('@a:x'), '$a']]);
      const pending = storage().state.createSnapshot('!copy:example.org', null, { set });
      set.set(member('@b:x'), '$b');
      expect(await storage().state.stateAtSnapshot(await pending)).to.deep.equal(
        new Map([[member('@a:x'), '$a']]),
      );
    });

    it('reports unknown snapshots as NOT_FOUND and unknown parents as MISSING_REFERENCE', async () => {
      await expectStorageError(storage().state.stateAtSnapshot(424_242), 'NOT_FOUND');
      await expectStorageError(storage().state.createSnapshot('!r:x', 424_242, {}), 'MISSING_REFERENCE');
    });

    it('records state before and after each persisted event', async () => {
      const room = new TestRoom('!stateful:example.org');
      const create = room.event({ type: 'm.room.create', stateKey: '' });
      const created = await storage().events.persistEvent({
        event: create,
        stateBefore: { parentSnapshotId: null, delta: {} },
      });
      const join = room.event({
        type: 'm.room.member',
        stateKey: '@alice:example.org',
        prevEvents: [create.eventId],
      });
      const joined = await storage().events.persistEvent({
        event: join,
        stateBefore: { snapshotId: created.stateAfterSnapshotId! },
      });
      const message = room.event({ prevEvents: [join.eventId] });
      const sent = await storage().events.persistEvent({
        event: message,
        stateBefore: { snapshotId: joined.stateAfterSnapshotId! },
      });
      const badName = room.event({ type: 'm.room.name', stateKey: '', prevEvents: [message.eventId] });
      const rejected = await storage().events.persistEvent({
        event: badName,
        rejectionReason: 'sender lacks power',
        stateBefore: { snapshotId: sent.stateAfterSnapshotId! },
      });

      const afterCreate = new Map([[stateTupleKey('m.room.create', ''), create.eventId]]);
      const afterJoin = new Map([...afterCreate, [member('@alice:example.org'), join.eventId]]);
      expect(await storage().state.stateBeforeEvent(create.eventId)).to.deep.equal(new Map());
      expect(await storage().state.stateAfterEvent(create.eventId)).to.deep.equal(afterCreate);
      expect(await storage().state.stateBeforeEvent(join.eventId)).to.deep.equal(afterCreate);
      expect(await storage().state.stateAfterEvent(join.eventId)).to.deep.equal(afterJoin);
      expect(sent.stateAfterSnapshotId).to.equal(sent.stateBeforeSnapshotId);
      expect(await storage().state.stateAfterEvent(message.eventId)).to.deep.equal(afterJoin);
      // A rejected state event changes no state.
      expect(rejected.stateAfterSnapshotId).to.equal(rejected.stateBeforeSnapshotId);
      expect(await storage().state.stateAfterEvent(badName.eventId)).to.deep.equal(afterJoin);
      expect(await storage().state.stateBeforeEvent('$unknown')).to.equal(null);
      expect(await storage().state.stateAfterEvent('$unknown')).to.equal(null);
    });

    it('persists an event whose state before is a new delta (after a fork was resolved)', async () => {
      const room = new TestRoom('!resolved:example.org');
      const base = await storage().state.createSnapshot(room.roomId, null, {
        set: new Map([[stateTupleKey('m.room.create', ''), '$create']]),
      });
      const event = room.event({ type: 'm.room.topic', stateKey: '' });
      const persisted = await storage().events.persistEvent({
        event,
        stateBefore: { parentSnapshotId: base, delta: { set: new Map([[member('@b:x'), '$b']]) } },
      });
      expect(persisted.stateBeforeSnapshotId).to.not.equal(base);
      expect(await storage().state.stateAfterEvent(event.eventId)).to.deep.equal(
        new Map([
          [stateTupleKey('m.room.create', ''), '$create'],
          [member('@b:x'), '$b'],
          [stateTupleKey('m.room.topic', ''), event.eventId],
        ]),
      );
    });

    it('keeps the current state table per room', async () => {
      const roomId = '!current:example.org';
      await storage().state.applyCurrentStateDelta(roomId, {
        set: new Map([
          [stateTupleKey('m.room.create', ''), '$create'],
          [member('@a:x'), '$a1'],
          [member('@b:x'), '$b1'],
        ]),
      });
      await storage().state.applyCurrentStateDelta('!elsewhere:example.org', {
        set: new Map([[member('@a:x'), '$other']]),
      });
      await storage().state.applyCurrentStateDelta(roomId, {
        set: new Map([[member('@a:x'), '$a2']]),
        remove: [member('@b:x')],
      });

      expect(await storage().state.currentState(roomId)).to.deep.equal(
        new Map([
          [stateTupleKey('m.room.create', ''), '$create'],
          [member('@a:x'), '$a2'],
        ]),
      );
      expect(await storage().state.currentStateEventId(roomId, 'm.room.member', '@a:x')).to.equal('$a2');
      expect(await storage().state.currentStateEventId(roomId, 'm.room.member', '@b:x')).to.equal(null);
      expect(await storage().state.currentStateOfType(roomId, 'm.room.member')).to.deep.equal(
        new Map([['@a:x', '$a2']]),
      );
      expect(await storage().state.currentState('!empty:example.org')).to.deep.equal(new Map());
    });

    it('finds every room whose current state holds a given (type, state key)', async () => {
      const key = stateTupleKey('m.room.member', '@a:x');
      await storage().state.applyCurrentStateDelta('!one:x', { set: new Map([[key, '$one']]) });
      await storage().state.applyCurrentStateDelta('!two:x', { set: new Map([[key, '$two']]) });
      await storage().state.applyCurrentStateDelta('!three:x', {
        set: new Map([[stateTupleKey('m.room.member', '@b:x'), '$three']]),
      });
      expect(await storage().state.roomsWithCurrentState('m.room.member', '@a:x')).to.deep.equal(
        new Map([
          ['!one:x', '$one'],
          ['!two:x', '$two'],
        ]),
      );
      await storage().state.applyCurrentStateDelta('!two:x', { remove: [key] });
      expect(await storage().state.roomsWithCurrentState('m.room.member', '@a:x')).to.deep.equal(
        new Map([['!one:x', '$one']]),
      );
      expect(await storage().state.roomsWithCurrentState('m.room.member', '@nobody:x')).to.deep.equal(
        new Map(),
      );
    });

    it('updates the current state in the same write as the event', async () => {
      const room = new TestRoom('!current-event:example.org');
      const name = room.event({ type: 'm.room.name', stateKey: '', content: { name: 'Room 🚀' } });
      await storage().events.persistEvent({
        event: name,
        currentStateDelta: { set: new Map([[stateTupleKey('m.room.name', ''), name.eventId]]) },
      });
      expect(await storage().state.currentStateEventId(room.roomId, 'm.room.name', '')).to.equal(
        name.eventId,
      );
    });

    it('moves forward extremities along a linear chain, across a fork and back to one on a merge', async () => {
      const room = new TestRoom('!dag:example.org');
      const extremities = () => storage().state.forwardExtremities(room.roomId);
      const a = room.event();
      await storage().events.persistEvent({ event: a });
      expect(await extremities()).to.deep.equal([a.eventId]);
      const b = room.event({ prevEvents: [a.eventId] });
      await storage().events.persistEvent({ event: b });
      expect(await extremities()).to.deep.equal([b.eventId]);

      const left = room.event({ prevEvents: [b.eventId] });
      const right = room.event({ prevEvents: [b.eventId] });
      await storage().events.persistEvent({ event: left });
      await storage().events.persistEvent({ event: right });
      expect(await extremities()).to.deep.equal([left.eventId, right.eventId].sort());

      const merge = room.event({ prevEvents: [left.eventId, right.eventId] });
      await storage().events.persistEvent({ event: merge });
      expect(await extremities()).to.deep.equal([merge.eventId]);

      // Rejected events, outliers and explicit opt-outs leave the extremities alone.
      await storage().events.persistEvent({
        event: room.event({ prevEvents: [merge.eventId] }),
        rejectionReason: 'x',
      });
      await storage().events.persistEvent({
        event: room.event({ prevEvents: [merge.eventId] }),
        outlier: true,
      });
      await storage().events.persistEvent({
        event: room.event({ prevEvents: [merge.eventId] }),
        updateForwardExtremities: false,
      });
      expect(await extremities()).to.deep.equal([merge.eventId]);
      expect(await storage().state.forwardExtremities('!other:example.org')).to.deep.equal([]);
    });

    it('does not make an event an extremity when a stored event already builds on it', async () => {
      const room = new TestRoom('!backwards:example.org');
      const parent = room.event();
      const child = room.event({ prevEvents: [parent.eventId] });
      await storage().events.persistEvent({ event: child });
      expect(await storage().state.forwardExtremities(room.roomId)).to.deep.equal([child.eventId]);
      await storage().events.persistEvent({ event: parent });
      expect(await storage().state.forwardExtremities(room.roomId)).to.deep.equal([child.eventId]);
    });

    it('replaces forward extremities on request', async () => {
      const roomId = '!repair:example.org';
      await storage().state.setForwardExtremities(roomId, ['$x', '$y', '$x']);
      expect(await storage().state.forwardExtremities(roomId)).to.deep.equal(['$x', '$y']);
      await storage().state.setForwardExtremities(roomId, ['$z']);
      expect(await storage().state.forwardExtremities(roomId)).to.deep.equal(['$z']);
      await storage().state.setForwardExtremities(roomId, []);
      expect(await storage().state.forwardExtremities(roomId)).to.deep.equal([]);
    });
  });
}
