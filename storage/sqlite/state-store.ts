import type { Statement } from 'better-sqlite3';
import { and, eq } from 'drizzle-orm';
import {
  type StateMap,
  type StateTupleKey,
  splitStateTupleKey,
  stateTupleKey,
} from '../../protocol/events.js';
import { StorageError } from '../errors.js';
import type { StateDelta, StateSnapshotId, StateStore } from '../state-store.js';
import type { SqliteConnection, SqliteDatabase } from './connection.js';
import { applyMembershipDelta } from './membership-store.js';
import { parameterChunks } from './parameter-chunks.js';
import { currentState, events, forwardExtremities, stateSnapshotEntries, stateSnapshots } from './schema.js';
import { latestStreamPosition } from './stream-positions.js';
import type { EnqueueWrite } from './write-queue.js';

/**
 * A snapshot more than this many deltas away from a full one is stored in
 * full instead, so reading any state walks a bounded chain.
 */
export const MAX_STATE_DELTA_CHAIN = 100;

/** Answers of stateEntriesAtSnapshot kept before the cache starts over (a few MB at most). */
const MAX_ENTRIES_SEEN = 50_000;

export class SqliteStateStore implements StateStore {
  /** (snapshot, key) -> event ID or null (absent), for stateEntriesAtSnapshot. */
  private readonly entriesSeen = new Map<string, string | null>();
  private entryAtSnapshot: Statement<[number, string, string], { event_id: string | null }> | undefined;

  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  async stateAtSnapshot(snapshotId: StateSnapshotId): Promise<StateMap> {
    return loadSnapshotState(this.connection, snapshotId);
  }

  async stateEntriesAtSnapshot(
    snapshotId: StateSnapshotId,
    keys: readonly StateTupleKey[],
  ): Promise<Map<StateTupleKey, string>> {
    const found = new Map<StateTupleKey, string>();
    if (keys.length === 0) return found;
    // Snapshots never change, so answers are kept (a big room's initial syncs ask the same ones).
    if (this.entriesSeen.size > MAX_ENTRIES_SEEN) this.entriesSeen.clear();
    this.entryAtSnapshot ??= this.connection.sqlite.prepare<
      [number, string, string],
      { event_id: string | null }
    >(
      // The nearest delta that mentions the key decides; each hop is one primary-key lookup.
      `WITH RECURSIVE chain (snapshot_id, parent_id, distance) AS (
         SELECT snapshot_id, parent_id, 0 FROM state_snapshots WHERE snapshot_id = ?
         UNION ALL
         SELECT s.snapshot_id, s.parent_id, chain.distance + 1
           FROM state_snapshots s JOIN chain ON s.snapshot_id = chain.parent_id
       )
       SELECT e.event_id FROM chain
         JOIN state_snapshot_entries e
           ON e.snapshot_id = chain.snapshot_id AND e.type = ? AND e.state_key = ?
        ORDER BY chain.distance ASC LIMIT 1`,
    );
    for (const key of new Set(keys)) {
      const seenKey = `${snapshotId}\u0000${key}`;
      let eventId = this.entriesSeen.get(seenKey);
      if (eventId === undefined) {
        const [type, stateKey] = splitStateTupleKey(key);
        eventId = this.entryAtSnapshot.get(snapshotId, type, stateKey)?.event_id ?? null;
        this.entriesSeen.set(seenKey, eventId);
      }
      if (eventId !== null) found.set(key, eventId);
    }
    return found;
  }

  async stateBeforeEvent(eventId: string): Promise<StateMap | null> {
    const row = this.connection.db
      .select({ id: events.stateBeforeSnapshotId })
      .from(events)
      .where(eq(events.eventId, eventId))
      .get();
    return row?.id == null ? null : loadSnapshotState(this.connection, row.id);
  }

  async stateAfterEvent(eventId: string): Promise<StateMap | null> {
    const row = this.connection.db
      .select({ id: events.stateAfterSnapshotId })
      .from(events)
      .where(eq(events.eventId, eventId))
      .get();
    return row?.id == null ? null : loadSnapshotState(this.connection, row.id);
  }

  async currentState(roomId: string): Promise<StateMap> {
    const rows = this.connection.db
      .select({ type: currentState.type, stateKey: currentState.stateKey, eventId: currentState.eventId })
      .from(currentState)
      .where(eq(currentState.roomId, roomId))
      .all();
    return new Map(rows.map((row) => [stateTupleKey(row.type, row.stateKey), row.eventId]));
  }

  async currentStateEventId(roomId: string, type: string, stateKey: string): Promise<string | null> {
    return (
      this.connection.db
        .select({ eventId: currentState.eventId })
        .from(currentState)
        .where(
          and(
            eq(currentState.roomId, roomId),
            eq(currentState.type, type),
            eq(currentState.stateKey, stateKey),
          ),
        )
        .get()?.eventId ?? null
    );
  }

  async currentStateOfType(roomId: string, type: string): Promise<Map<string, string>> {
    const rows = this.connection.db
      .select({ stateKey: currentState.stateKey, eventId: currentState.eventId })
      .from(currentState)
      .where(and(eq(currentState.roomId, roomId), eq(currentState.type, type)))
      .all();
    return new Map(rows.map((row) => [row.stateKey, row.eventId]));
  }

  async roomsWithCurrentState(type: string, stateKey: string): Promise<Map<string, string>> {
    const rows = this.connection.db
      .select({ roomId: currentState.roomId, eventId: currentState.eventId })
      .from(currentState)
      .where(and(eq(currentState.type, type), eq(currentState.stateKey, stateKey)))
      .all();
    return new Map(rows.map((row) => [row.roomId, row.eventId]));
  }

  async forwardExtremities(roomId: string): Promise<string[]> {
    return this.connection.db
      .select({ eventId: forwardExtremities.eventId })
      .from(forwardExtremities)
      .where(eq(forwardExtremities.roomId, roomId))
      .orderBy(forwardExtremities.eventId)
      .all()
      .map((row) => row.eventId);
  }

  createSnapshot(
    roomId: string,
    parentSnapshotId: StateSnapshotId | null,
    delta: StateDelta,
  ): Promise<number> {
    const copy = copyDelta(delta);
    return this.enqueue(() => insertSnapshot(this.connection, roomId, parentSnapshotId, copy));
  }

  applyCurrentStateDelta(roomId: string, delta: StateDelta): Promise<void> {
    const copy = copyDelta(delta);
    return this.enqueue(() => {
      applyCurrentStateDelta(this.connection.db, roomId, copy);
      // Outside persistEvent the change takes effect at the stream's current position.
      const ordering = latestStreamPosition(this.connection.db, 'events');
      applyMembershipDelta(this.connection, roomId, copy, ordering, null);
    });
  }

  setForwardExtremities(roomId: string, eventIds: readonly string[]): Promise<void> {
    const ids = [...new Set(eventIds)];
    return this.enqueue(() => {
      const { db } = this.connection;
      db.delete(forwardExtremities).where(eq(forwardExtremities.roomId, roomId)).run();
      for (const chunk of parameterChunks(ids)) {
        db.insert(forwardExtremities)
          .values(chunk.map((eventId) => ({ roomId, eventId })))
          .run();
      }
    });
  }
}

/** Writers queue work for later; copying now keeps a caller's later edits of its Map out of the write. */
export function copyDelta(delta: StateDelta): StateDelta {
  return { set: new Map(delta.set ?? []), remove: [...(delta.remove ?? [])] };
}

function deltaEntries(delta: StateDelta): Map<string, string | null> {
  const entries = new Map<string, string | null>();
  for (const key of delta.remove ?? []) entries.set(key, null);
  for (const [key, eventId] of delta.set ?? []) entries.set(key, eventId);
  return entries;
}

/** Synchronous: runs inside a write transaction. */
export function insertSnapshot(
  connection: SqliteConnection,
  roomId: string,
  parentSnapshotId: StateSnapshotId | null,
  delta: StateDelta,
): StateSnapshotId {
  const { db } = connection;
  let parentId = parentSnapshotId;
  let chainLength = 0;
  let entries = deltaEntries(delta);
  if (parentId !== null) {
    const parent = db
      .select({ chainLength: stateSnapshots.chainLength })
      .from(stateSnapshots)
      .where(eq(stateSnapshots.snapshotId, parentId))
      .get();
    if (!parent) throw new StorageError('MISSING_REFERENCE', `no state snapshot ${parentId}`);
    chainLength = parent.chainLength + 1;
    if (chainLength > MAX_STATE_DELTA_CHAIN) {
      const full = loadSnapshotState(connection, parentId);
      for (const [key, eventId] of entries) {
        if (eventId === null) full.delete(key);
        else full.set(key, eventId);
      }
      entries = full;
      parentId = null;
      chainLength = 0;
    }
  }
  if (parentId === null) {
    // A full snapshot records only present keys.
    for (const [key, eventId] of entries) if (eventId === null) entries.delete(key);
  }

  const inserted = db
    .insert(stateSnapshots)
    .values({ roomId, parentId, chainLength })
    .returning({ snapshotId: stateSnapshots.snapshotId })
    .get();
  const rows = [...entries].map(([key, eventId]) => {
    const [type, stateKey] = splitStateTupleKey(key);
    return { snapshotId: inserted.snapshotId, type, stateKey, eventId };
  });
  for (const chunk of parameterChunks(rows, 200)) db.insert(stateSnapshotEntries).values(chunk).run();
  return inserted.snapshotId;
}

export function loadSnapshotState(connection: SqliteConnection, snapshotId: StateSnapshotId): StateMap {
  const rows = connection.sqlite
    .prepare<[number], { type: string; state_key: string; event_id: string | null }>(
      `WITH RECURSIVE chain (snapshot_id, parent_id, distance) AS (
         SELECT snapshot_id, parent_id, 0 FROM state_snapshots WHERE snapshot_id = ?
         UNION ALL
         SELECT s.snapshot_id, s.parent_id, chain.distance + 1
           FROM state_snapshots s JOIN chain ON s.snapshot_id = chain.parent_id
       )
       SELECT e.type, e.state_key, e.event_id
         FROM chain JOIN state_snapshot_entries e ON e.snapshot_id = chain.snapshot_id
        ORDER BY chain.distance DESC`,
    )
    .all(snapshotId);
  if (rows.length === 0 && !snapshotExists(connection.db, snapshotId)) {
    throw new StorageError('NOT_FOUND', `no state snapshot ${snapshotId}`);
  }
  // Oldest delta first, so nearer snapshots override.
  const state: StateMap = new Map();
  for (const row of rows) {
    const key = stateTupleKey(row.type, row.state_key);
    if (row.event_id === null) state.delete(key);
    else state.set(key, row.event_id);
  }
  return state;
}

function snapshotExists(db: SqliteDatabase, snapshotId: StateSnapshotId): boolean {
  return (
    db
      .select({ id: stateSnapshots.snapshotId })
      .from(stateSnapshots)
      .where(eq(stateSnapshots.snapshotId, snapshotId))
      .get() !== undefined
  );
}

export function applyCurrentStateDelta(db: SqliteDatabase, roomId: string, delta: StateDelta): void {
  for (const key of delta.remove ?? []) {
    const [type, stateKey] = splitStateTupleKey(key);
    db.delete(currentState)
      .where(
        and(
          eq(currentState.roomId, roomId),
          eq(currentState.type, type),
          eq(currentState.stateKey, stateKey),
        ),
      )
      .run();
  }
  for (const [key, eventId] of delta.set ?? []) {
    const [type, stateKey] = splitStateTupleKey(key);
    db.insert(currentState)
      .values({ roomId, type, stateKey, eventId })
      .onConflictDoUpdate({
        target: [currentState.roomId, currentState.type, currentState.stateKey],
        set: { eventId },
      })
      .run();
  }
}
