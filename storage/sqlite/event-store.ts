import type { Statement } from 'better-sqlite3';
import { and, asc, desc, eq, gt, gte, inArray, isNull, lt, lte, type SQL } from 'drizzle-orm';
import { isStateEvent, type Pdu, referencedEventIds, stateTupleKey } from '../../protocol/events.js';
import { StorageError } from '../errors.js';
import {
  type AcceptedRedaction,
  type EventStore,
  type EventToPersist,
  isRejected,
  type PersistedEvent,
  redactedJsonOf,
  type StoredEvent,
  type TimelineContent,
} from '../event-store.js';
import type { StateDelta, StateSnapshotId, StateSnapshotInput } from '../state-store.js';
import type { SqliteConnection } from './connection.js';
import { type EventStatements, eventRowOf } from './event-statements.js';
import { applyMembershipDelta, type PersistingMemberEvent } from './membership-store.js';
import { parameterChunks } from './parameter-chunks.js';
import { deleteRelation, type EventRelation, insertRelation, relationOfEvent } from './relation-store.js';
import { events, redactions } from './schema.js';
import { applyCurrentStateDelta, copyDelta, insertSnapshot } from './state-store.js';
import { latestStreamPosition } from './stream-positions.js';
import type { EnqueueWrite } from './write-queue.js';

type EventRow = typeof events.$inferSelect;
/** A row of timelineContentsBetween's statement, read raw (an array in its column order). */
type TimelineContentTuple = [number, string, string, string, string | null, string, number, string, unknown];

/** Everything a persist needs, computed before the write is queued (no JSON work inside the transaction). */
interface PreparedEvent {
  readonly row: Omit<EventRow, 'streamOrdering' | 'stateBeforeSnapshotId' | 'stateAfterSnapshotId'>;
  readonly prevEventIds: string[];
  readonly authEventIds: string[];
  readonly stateBefore: StateSnapshotInput | undefined;
  readonly currentStateDelta: StateDelta | undefined;
  readonly updateForwardExtremities: boolean;
  /** The event's own membership, when it is an m.room.member event (for the memberships table). */
  readonly member: PersistingMemberEvent | null;
  /** Indexed for accepted timeline events only. */
  readonly relation: EventRelation | null;
  /** Older history: a negative stream ordering (see EventToPersist.backfilled). */
  readonly backfilled: boolean;
  /** A fresh local event (see EventToPersist.builtHere). */
  readonly builtHere: boolean;
}

export class SqliteEventStore implements EventStore {
  private timelineContents: Statement<[number, number, string], TimelineContentTuple> | undefined;
  private earliestOrdering: Statement<[], { position: number }> | undefined;
  private authChain: Statement<[string], { event_id: string }> | undefined;
  /** Sliding sync's bump stamps, asked on every request: prepared once. */
  private latestOfTypes: Statement<[string, string], { latest: number }> | undefined;

  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
    private readonly statements: EventStatements,
  ) {}

  async getEvent(eventId: string): Promise<StoredEvent | null> {
    const row = this.statements.eventById.get(eventId);
    return row ? toStoredEvent(eventRowOf(row)) : null;
  }

  async getEvents(eventIds: readonly string[]): Promise<Map<string, StoredEvent>> {
    const found = new Map<string, StoredEvent>();
    for (const chunk of parameterChunks([...new Set(eventIds)])) {
      for (const row of this.connection.db
        .select()
        .from(events)
        .where(inArray(events.eventId, chunk))
        .all()) {
        found.set(row.eventId, toStoredEvent(row));
      }
    }
    return found;
  }

  async haveEvents(eventIds: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const chunk of parameterChunks([...new Set(eventIds)])) {
      const rows = this.connection.db
        .select({ eventId: events.eventId })
        .from(events)
        .where(inArray(events.eventId, chunk))
        .all();
      for (const row of rows) found.add(row.eventId);
    }
    return found;
  }

  async latestStreamOrdering(): Promise<number> {
    return latestStreamPosition(this.connection.db, 'events');
  }

  async earliestStreamOrdering(): Promise<number> {
    // Backfill counts down from 0 (migration 13).
    this.earliestOrdering ??= this.connection.sqlite.prepare(
      "SELECT position FROM stream_positions WHERE stream = 'events_backfill'",
    );
    return this.earliestOrdering.get()?.position ?? 0;
  }

  async roomEventsAfter(roomId: string, afterOrdering: number, limit: number): Promise<StoredEvent[]> {
    return this.timelineEvents(roomId, gt(events.streamOrdering, afterOrdering), asc, limit);
  }

  async roomEventsBefore(roomId: string, beforeOrdering: number, limit: number): Promise<StoredEvent[]> {
    return this.timelineEvents(roomId, lt(events.streamOrdering, beforeOrdering), desc, limit);
  }

  /** The room's accepted timeline events (no outliers, none rejected) past a stream ordering. */
  private timelineEvents(
    roomId: string,
    past: SQL,
    order: typeof asc | typeof desc,
    limit: number,
  ): StoredEvent[] {
    return this.connection.db
      .select()
      .from(events)
      .where(and(eq(events.roomId, roomId), past, eq(events.outlier, false), isNull(events.rejectionReason)))
      .orderBy(order(events.streamOrdering))
      .limit(limit)
      .all()
      .map(toStoredEvent);
  }

  async authChainEventIds(eventIds: readonly string[]): Promise<Set<string>> {
    const ids = [...new Set(eventIds)];
    if (ids.length === 0) return new Set();
    // The first step reads the auth events from the event itself when it has no edges (a
    // message built here, see writeEvent); every later step is through auth events, which
    // are state events, whose edges are always stored.
    this.authChain ??= this.connection.sqlite.prepare<[string], { event_id: string }>(
      `WITH RECURSIVE
         start (event_id) AS (SELECT value FROM json_each(?)),
         chain (event_id) AS (
           SELECT a.auth_event_id FROM event_auth_edges a WHERE a.event_id IN (SELECT event_id FROM start)
           UNION
           SELECT CASE j.type WHEN 'array' THEN j.value ->> 0 ELSE j.value END
             FROM start s JOIN events e ON e.event_id = s.event_id, json_each(e.json, '$.auth_events') j
            WHERE NOT EXISTS (SELECT 1 FROM event_auth_edges a WHERE a.event_id = s.event_id)
           UNION
           SELECT a.auth_event_id FROM event_auth_edges a JOIN chain ON a.event_id = chain.event_id
         )
       SELECT event_id FROM chain WHERE event_id IS NOT NULL`,
    );
    const rows = this.authChain.all(JSON.stringify(ids));
    return new Set(rows.map((row) => row.event_id));
  }

  async roomsChangedBetween(afterOrdering: number, upToOrdering: number): Promise<Map<string, number>> {
    // A range scan of the stream-ordering primary key: reads only the events in the range.
    const rows = this.connection.sqlite
      .prepare<[number, number], { room_id: string; latest: number }>(
        `SELECT room_id, max(stream_ordering) AS latest FROM events
          WHERE stream_ordering > ? AND stream_ordering <= ? AND outlier = 0 AND rejection_reason IS NULL
          GROUP BY room_id`,
      )
      .all(afterOrdering, upToOrdering);
    return new Map(rows.map((row) => [row.room_id, row.latest]));
  }

  async timelineContentsBetween(
    afterOrdering: number,
    upToOrdering: number,
    types: readonly string[],
  ): Promise<TimelineContent[]> {
    // A range scan of the stream-ordering primary key, raw rows. SQLite's JSON reader hands back
    // only the content: the indexer then parses and keeps a fraction of each signed event.
    this.timelineContents ??= this.connection.sqlite
      .prepare<[number, number, string], TimelineContentTuple>(
        `SELECT stream_ordering, event_id, room_id, type, state_key, sender, origin_server_ts,
                coalesce(json -> '$.content', '{}'), json ->> '$.redacts'
           FROM events
          WHERE stream_ordering > ? AND stream_ordering <= ? AND outlier = 0 AND rejection_reason IS NULL
            AND type IN (SELECT value FROM json_each(?))
          ORDER BY stream_ordering`,
      )
      .raw(true);
    const rows = this.timelineContents.all(afterOrdering, upToOrdering, JSON.stringify(types));
    return rows.map(
      ([streamOrdering, eventId, roomId, type, stateKey, sender, originServerTs, contentJson, redacts]) => ({
        streamOrdering,
        eventId,
        roomId,
        type,
        stateKey,
        sender,
        originServerTs,
        contentJson,
        redacts: typeof redacts === 'string' ? redacts : null,
      }),
    );
  }

  async latestOrderingOfTypes(
    roomIds: readonly string[],
    types: readonly string[],
  ): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    if (roomIds.length === 0 || types.length === 0) return found;
    // One backward walk of the (room_id, stream_ordering) index per room: it stops at the
    // first event of a wanted type, which for a lively room is among its last few.
    this.latestOfTypes ??= this.connection.sqlite.prepare<[string, string], { latest: number }>(
      `SELECT stream_ordering AS latest FROM events
        WHERE room_id = ? AND type IN (SELECT value FROM json_each(?)) AND outlier = 0 AND rejection_reason IS NULL
        ORDER BY stream_ordering DESC LIMIT 1`,
    );
    const latest = this.latestOfTypes;
    const typeList = JSON.stringify(types);
    for (const roomId of new Set(roomIds)) {
      const row = latest.get(roomId, typeList);
      if (row !== undefined) found.set(roomId, row.latest);
    }
    return found;
  }

  async closestEventByTimestamp(
    roomId: string,
    ts: number,
    direction: 'f' | 'b',
  ): Promise<StoredEvent | null> {
    const forward = direction === 'f';
    const row = this.connection.db
      .select()
      .from(events)
      .where(
        and(
          eq(events.roomId, roomId),
          forward ? gte(events.originServerTs, ts) : lte(events.originServerTs, ts),
          eq(events.outlier, false),
          isNull(events.rejectionReason),
        ),
      )
      .orderBy(
        ...(forward
          ? [asc(events.originServerTs), asc(events.streamOrdering)]
          : [desc(events.originServerTs), desc(events.streamOrdering)]),
      )
      .limit(1)
      .get();
    return row ? toStoredEvent(row) : null;
  }

  async transactionOfEvent(
    eventId: string,
  ): Promise<{ userId: string; deviceId: string; txnId: string } | null> {
    const row = this.statements.transactionOfEvent.get(eventId);
    return row ? { userId: row.user_id, deviceId: row.device_id, txnId: row.txn_id } : null;
  }

  async redactionOf(eventId: string): Promise<string | null> {
    return this.statements.redactionOf.get(eventId)?.redaction_event_id ?? null;
  }

  applyRedaction(redactedEventId: string, redactedJson: string, redactionEventId: string): Promise<void> {
    return this.enqueue(() => this.redactRow(redactedEventId, redactedJson, redactionEventId));
  }

  redactWhenStored(redaction: AcceptedRedaction): Promise<void> {
    return this.enqueue(() => {
      const { statements } = this;
      const raw = statements.eventById.get(redaction.targetEventId);
      if (raw === undefined) {
        statements.pendingRedactionGate.opened();
        statements.insertPendingRedaction.run(
          redaction.targetEventId,
          redaction.redactionEventId,
          redaction.roomId,
          redaction.roomVersion,
          redaction.senderServer,
          redaction.senderMayRedactAny ? 1 : 0,
        );
        return;
      }
      if (this.isRedacted(redaction.targetEventId)) return;
      const json = redactedJsonOf(redaction, { roomId: raw.roomId, pdu: JSON.parse(raw.json) as Pdu });
      if (json !== null) this.redactRow(redaction.targetEventId, json, redaction.redactionEventId);
    });
  }

  /** Synchronous: runs inside the write transaction. */
  private redactRow(redactedEventId: string, redactedJson: string, redactionEventId: string): void {
    const { db } = this.connection;
    const result = db
      .update(events)
      .set({ json: redactedJson })
      .where(eq(events.eventId, redactedEventId))
      .run();
    if (result.changes === 0) throw new StorageError('NOT_FOUND', `no event ${redactedEventId}`);
    // The first redaction applied stays the one served as redacted_because.
    db.insert(redactions).values({ redactedEventId, redactionEventId }).onConflictDoNothing().run();
    // A redacted event loses its content, and with it its relation.
    deleteRelation(this.connection, redactedEventId);
  }

  /**
   * The redaction waiting for this event, if one may strip it: the redacted JSON and the
   * redaction's ID. The waiting rows are consumed either way (their verdict cannot change).
   * Synchronous: runs inside the write transaction, before the event's row is written.
   */
  private takePendingRedaction(
    eventId: string,
    roomId: string,
    json: string,
  ): { json: string; redactionEventId: string } | null {
    const { statements } = this;
    if (!statements.pendingRedactionGate.mayHoldRows) return null;
    const pending = statements.pendingRedactionsOf.all(eventId);
    if (pending.length === 0) return null;
    statements.deletePendingRedactions.run(eventId);
    const target = { roomId, pdu: JSON.parse(json) as Pdu };
    for (const row of pending) {
      const redacted = redactedJsonOf({ ...row, senderMayRedactAny: row.senderMayRedactAny !== 0 }, target);
      if (redacted !== null) return { json: redacted, redactionEventId: row.redactionEventId };
    }
    return null;
  }

  persistEvent(input: EventToPersist): Promise<PersistedEvent> {
    const prepared = prepareEvent(input);
    const written = this.enqueue(() => this.writeEvent(prepared));
    const gate = this.statements.pendingRedactionGate;
    // The write may consume the last waiting redaction: once committed, see whether any are left.
    return gate.mayHoldRows ? written.finally(() => gate.recheck()) : written;
  }

  setRejectionReason(eventId: string, reason: string | null): Promise<void> {
    return this.enqueue(() => {
      const row = this.connection.db
        .update(events)
        .set({ rejectionReason: reason })
        .where(eq(events.eventId, eventId))
        .returning()
        .get();
      if (!row) throw new StorageError('NOT_FOUND', `no event ${eventId}`);
      // Only accepted timeline events count as relations.
      const relation = reason === null && !row.outlier ? relationOfEvent(JSON.parse(row.json) as Pdu) : null;
      if (relation && !this.isRedacted(eventId)) insertRelation(this.connection, relation, row);
      else deleteRelation(this.connection, eventId);
    });
  }

  /** Synchronous: runs inside the write transaction. */
  private writeEvent(prepared: PreparedEvent): PersistedEvent {
    const { db } = this.connection;
    const { statements } = this;
    const { row } = prepared;
    const existing = prepared.builtHere ? undefined : statements.outlierFlag.get(row.eventId);
    // An outlier seen again as part of the timeline is promoted; any other repeat is a conflict.
    const promoting = existing !== undefined && existing.outlier !== 0 && !row.outlier;
    if (existing && !promoting) throw new StorageError('CONFLICT', `event ${row.eventId} is already stored`);

    const streamOrdering = prepared.backfilled
      ? statements.nextBackfillPosition.get()!.position
      : statements.nextStreamPosition.get('events')!.position;
    let stateBeforeSnapshotId: StateSnapshotId | null = null;
    let stateAfterSnapshotId: StateSnapshotId | null = null;
    if (!row.outlier && prepared.stateBefore) {
      stateBeforeSnapshotId =
        'snapshotId' in prepared.stateBefore
          ? prepared.stateBefore.snapshotId
          : insertSnapshot(
              this.connection,
              row.roomId,
              prepared.stateBefore.parentSnapshotId,
              prepared.stateBefore.delta,
            );
      stateAfterSnapshotId =
        row.stateKey !== null && !isRejected(row)
          ? insertSnapshot(this.connection, row.roomId, stateBeforeSnapshotId, {
              set: new Map([[stateTupleKey(row.type, row.stateKey), row.eventId]]),
            })
          : stateBeforeSnapshotId;
    }

    // A redaction that arrived first is applied in this write: the event is never readable unredacted.
    const late =
      promoting || prepared.builtHere ? null : this.takePendingRedaction(row.eventId, row.roomId, row.json);
    const values = {
      ...row,
      json: late?.json ?? row.json,
      streamOrdering,
      stateBeforeSnapshotId,
      stateAfterSnapshotId,
    };
    // A redaction applied while the event was an outlier stays applied.
    const redacted = late !== null || (promoting && this.isRedacted(row.eventId));
    if (late !== null) {
      db.insert(redactions)
        .values({ redactedEventId: row.eventId, redactionEventId: late.redactionEventId })
        .onConflictDoNothing()
        .run();
    }
    if (promoting) {
      const { json: _original, ...promoted } = values;
      db.update(events)
        .set(redacted ? promoted : values)
        .where(eq(events.eventId, row.eventId))
        .run();
    } else {
      statements.insertEvent.run({ ...values, outlier: values.outlier ? 1 : 0 });
      // Edges are read only to find a stored event naming an arriving one as its prev
      // (timelineChild). A local event's prevs are timeline events already stored, which are
      // never persisted again, so its edges would never be read: two B-tree pages (edges and
      // their by-prev index, random keys) per send not written.
      if (!prepared.builtHere) {
        for (const prevEventId of prepared.prevEventIds) statements.insertEdge.run(row.eventId, prevEventId);
      }
      // Auth edges are followed through auth events, which are state events; the chain of a
      // message built here starts from its own auth_events (authChainEventIds): one random-key
      // B-tree page per send not written.
      if (!prepared.builtHere || row.stateKey !== null) {
        for (const authEventId of prepared.authEventIds)
          statements.insertAuthEdge.run(row.eventId, authEventId);
      }
    }

    if (prepared.updateForwardExtremities)
      this.advanceForwardExtremities(row.roomId, row.eventId, prepared.prevEventIds, prepared.builtHere);
    if (prepared.currentStateDelta) {
      applyCurrentStateDelta(db, row.roomId, prepared.currentStateDelta);
      applyMembershipDelta(
        this.connection,
        row.roomId,
        prepared.currentStateDelta,
        streamOrdering,
        prepared.member,
      );
    }
    if (prepared.relation && !row.outlier && row.rejectionReason === null && !redacted) {
      insertRelation(this.connection, prepared.relation, { ...row, streamOrdering });
    }
    const persisted = { eventId: row.eventId, streamOrdering, stateBeforeSnapshotId, stateAfterSnapshotId };
    return late === null ? persisted : { ...persisted, redactedJson: late.json };
  }

  private isRedacted(eventId: string): boolean {
    return (
      this.connection.db
        .select({ id: redactions.redactedEventId })
        .from(redactions)
        .where(eq(redactions.redactedEventId, eventId))
        .get() !== undefined
    );
  }

  private advanceForwardExtremities(
    roomId: string,
    eventId: string,
    prevEventIds: readonly string[],
    builtHere: boolean,
  ): void {
    const { statements } = this;
    for (const prevEventId of prevEventIds) statements.deleteExtremity.run(roomId, prevEventId);
    // An event that a stored timeline event already builds on (we got them out of order) is no extremity.
    const child = builtHere ? undefined : statements.timelineChild.get(eventId, roomId);
    if (!child) statements.insertExtremity.run(roomId, eventId);
  }
}

function prepareEvent(input: EventToPersist): PreparedEvent {
  const { event } = input;
  const { pdu } = event;
  const outlier = input.outlier ?? false;
  const rejectionReason = input.rejectionReason ?? null;
  const stateBefore = input.stateBefore;
  return {
    row: {
      eventId: event.eventId,
      roomId: event.roomId,
      type: pdu.type,
      stateKey: isStateEvent(pdu) ? (pdu.state_key ?? null) : null,
      sender: pdu.sender,
      depth: pdu.depth,
      originServerTs: pdu.origin_server_ts,
      outlier,
      rejectionReason,
      json: input.json ?? JSON.stringify(pdu),
      txnDeviceId: input.transaction?.deviceId ?? null,
      txnId: input.transaction?.txnId ?? null,
    },
    prevEventIds: [...new Set(referencedEventIds(pdu.prev_events))],
    authEventIds: [...new Set(referencedEventIds(pdu.auth_events))],
    stateBefore:
      stateBefore === undefined || 'snapshotId' in stateBefore
        ? stateBefore
        : { parentSnapshotId: stateBefore.parentSnapshotId, delta: copyDelta(stateBefore.delta) },
    currentStateDelta: input.currentStateDelta ? copyDelta(input.currentStateDelta) : undefined,
    updateForwardExtremities:
      !outlier && rejectionReason === null && !input.backfilled && (input.updateForwardExtremities ?? true),
    member:
      pdu.type === 'm.room.member'
        ? {
            eventId: event.eventId,
            membership: typeof pdu.content?.membership === 'string' ? pdu.content.membership : null,
          }
        : null,
    relation: relationOfEvent(pdu),
    backfilled: input.backfilled ?? false,
    builtHere: input.builtHere ?? false,
  };
}

function toStoredEvent(row: EventRow): StoredEvent {
  return {
    eventId: row.eventId,
    roomId: row.roomId,
    pdu: JSON.parse(row.json),
    json: row.json,
    streamOrdering: row.streamOrdering,
    outlier: row.outlier,
    rejectionReason: row.rejectionReason,
    stateBeforeSnapshotId: row.stateBeforeSnapshotId,
    stateAfterSnapshotId: row.stateAfterSnapshotId,
  };
}
