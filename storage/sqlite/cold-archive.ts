/**
 * Cold storage of old room history (operator retention, spec/retention.md).
 * Old non-state timeline events leave the hot `events` table for compressed
 * segment files on disk (gzip'd JSON lines, one stored row per line, the
 * event JSON kept as the exact text received); `cold_events` indexes which
 * segment holds each. `withColdReads` layers these under an EventStore so
 * that every read (/messages, /context, /search, sync) still finds them,
 * byte for byte.
 *
 * Moving is restartable at any point: the segment file is written and synced
 * under a temporary name and renamed first, then one transaction records it
 * and deletes the hot rows (only if they are unchanged); a file left without
 * its record by a crash is an orphan, removed at the next run.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import { referencedEventIds } from '../../protocol/events.js';
import type { ColdMoveResult, ColdStorage } from '../cold-storage.js';
import { isStorageError, StorageError } from '../errors.js';
import { type EventStore, redactedJsonOf, type StoredEvent, type TimelineContent } from '../event-store.js';
import type { SqliteConnection } from './connection.js';
import type { EnqueueWrite } from './write-queue.js';

/** One `events` row as stored in a segment. */
interface ColdRow {
  readonly stream_ordering: number;
  readonly event_id: string;
  readonly room_id: string;
  readonly type: string;
  readonly state_key: string | null;
  readonly sender: string;
  readonly depth: number;
  readonly origin_server_ts: number;
  readonly outlier: number;
  readonly rejection_reason: string | null;
  readonly state_before_snapshot_id: number | null;
  readonly state_after_snapshot_id: number | null;
  readonly json: string;
}

interface ColdIndexRow {
  readonly event_id: string;
  readonly stream_ordering: number;
  readonly segment_id: number;
}

const ROW_COLUMNS = `stream_ordering, event_id, room_id, type, state_key, sender, depth, origin_server_ts,
  outlier, rejection_reason, state_before_snapshot_id, state_after_snapshot_id, json`;

export class ColdArchive implements ColdStorage {
  /** Decoded segments, by ID (segments never change once written). */
  private readonly segments = new LRUCache<number, Map<string, ColdRow>>({ max: 64 });
  /** Whether cold_events has any row (this process is the only writer); null until first asked. */
  private anyCold: boolean | null = null;

  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
    /** Where segment files live; null: no cold storage (in-memory databases). */
    readonly directory: string | null,
  ) {}

  get available(): boolean {
    return this.directory !== null;
  }

  async roomsWithHotEvents(): Promise<string[]> {
    return this.connection.sqlite
      .prepare<[], { room_id: string }>('SELECT DISTINCT room_id FROM events WHERE outlier = 0')
      .all()
      .map((row) => row.room_id);
  }

  /** Whether any event of the room (or of any room) is cold: reads skip the cold path when none is. */
  hasColdEvents(roomId?: string): boolean {
    // Most databases have no cold events: then hot reads pay one memory check, no query.
    this.anyCold ??= this.connection.sqlite.prepare('SELECT 1 FROM cold_events LIMIT 1').get() !== undefined;
    if (!this.anyCold || roomId === undefined) return this.anyCold;
    return (
      this.connection.sqlite.prepare('SELECT 1 FROM cold_events WHERE room_id = ? LIMIT 1').get(roomId) !==
      undefined
    );
  }

  /** Cold events by ID (with any redaction applied after they went cold). */
  eventsByIds(eventIds: readonly string[]): Map<string, StoredEvent> {
    if (eventIds.length === 0 || !this.hasColdEvents()) return new Map();
    const rows = this.connection.sqlite
      .prepare<[string], ColdIndexRow>(
        'SELECT event_id, stream_ordering, segment_id FROM cold_events WHERE event_id IN (SELECT value FROM json_each(?))',
      )
      .all(JSON.stringify([...new Set(eventIds)]));
    return this.load(rows);
  }

  /** Accepted timeline events of a room in a stream range, `limit` from the given end. */
  roomEvents(
    roomId: string,
    after: number,
    before: number,
    limit: number,
    newestFirst: boolean,
  ): StoredEvent[] {
    if (!this.hasColdEvents(roomId)) return [];
    const rows = this.connection.sqlite
      .prepare<[string, number, number, number], ColdIndexRow>(
        `SELECT event_id, stream_ordering, segment_id FROM cold_events
          WHERE room_id = ? AND stream_ordering > ? AND stream_ordering < ?
          ORDER BY stream_ordering ${newestFirst ? 'DESC' : 'ASC'} LIMIT ?`,
      )
      .all(roomId, after, before, limit);
    return this.ordered(rows);
  }

  /** Accepted timeline events of every room in (after, upTo], oldest first. */
  eventsBetween(after: number, upTo: number, limit: number): StoredEvent[] {
    if (!this.hasColdEvents()) return [];
    const rows = this.connection.sqlite
      .prepare<[number, number, number], ColdIndexRow>(
        `SELECT event_id, stream_ordering, segment_id FROM cold_events
          WHERE stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering LIMIT ?`,
      )
      .all(after, upTo, limit);
    return this.ordered(rows);
  }

  closestByTimestamp(roomId: string, ts: number, direction: 'f' | 'b'): StoredEvent | null {
    if (!this.hasColdEvents(roomId)) return null;
    const forward = direction === 'f';
    const row = this.connection.sqlite
      .prepare<[string, number], ColdIndexRow>(
        `SELECT event_id, stream_ordering, segment_id FROM cold_events
          WHERE room_id = ? AND origin_server_ts ${forward ? '>=' : '<='} ?
          ORDER BY origin_server_ts ${forward ? 'ASC' : 'DESC'}, stream_ordering ${forward ? 'ASC' : 'DESC'} LIMIT 1`,
      )
      .get(roomId, ts);
    return row === undefined ? null : (this.ordered([row])[0] ?? null);
  }

  /** The client transaction of a cold event, while its transaction_ids row (it goes with the device) exists. */
  transactionOf(eventId: string): { userId: string; deviceId: string; txnId: string } | null {
    if (!this.hasColdEvents()) return null;
    const row = this.connection.sqlite
      .prepare<[string], { user_id: string; device_id: string; txn_id: string }>(
        `SELECT t.user_id, t.device_id, t.txn_id FROM cold_events c
           JOIN transaction_ids t ON t.user_id = c.txn_user_id AND t.device_id = c.txn_device_id AND t.txn_id = c.txn_id
          WHERE c.event_id = ?`,
      )
      .get(eventId);
    return row === undefined ? null : { userId: row.user_id, deviceId: row.device_id, txnId: row.txn_id };
  }

  isCold(eventId: string): boolean {
    return (
      this.connection.sqlite.prepare('SELECT 1 FROM cold_events WHERE event_id = ?').get(eventId) !==
      undefined
    );
  }

  /**
   * The write recording a redaction of a cold event (run inside a write
   * transaction): reads serve `redactedJson` from then on.
   */
  redactColdWrite(eventId: string, redactedJson: string, redactionEventId: string): () => void {
    return () => {
      if (!this.isCold(eventId)) throw new StorageError('NOT_FOUND', `no event ${eventId}`);
      const { sqlite } = this.connection;
      sqlite
        .prepare('INSERT OR REPLACE INTO cold_redacted (event_id, json) VALUES (?, ?)')
        .run(eventId, redactedJson);
      sqlite
        .prepare(
          'INSERT INTO redactions (redacted_event_id, redaction_event_id) VALUES (?, ?) ON CONFLICT DO NOTHING',
        )
        .run(eventId, redactionEventId);
      // A redacted event loses its content, and with it its relation.
      sqlite.prepare('DELETE FROM event_relations WHERE event_id = ?').run(eventId);
    };
  }

  /**
   * Moves up to `maxEvents` of the room's accepted non-state timeline events
   * older than `cutoffTs` into one new segment. The room's latest event and its
   * forward extremities stay hot (new events build on them).
   */
  async moveToCold(roomId: string, cutoffTs: number, maxEvents: number): Promise<ColdMoveResult> {
    const directory = this.directory;
    if (directory === null) return { moved: 0, segmentId: null };
    const rows = this.connection.sqlite
      .prepare<[string, number, string, string, number], ColdRow>(
        `SELECT ${ROW_COLUMNS} FROM events
          WHERE room_id = ? AND origin_server_ts < ? AND state_key IS NULL AND outlier = 0
            AND rejection_reason IS NULL
            AND event_id NOT IN (SELECT event_id FROM forward_extremities WHERE room_id = ?)
            AND stream_ordering < (SELECT max(stream_ordering) FROM events WHERE room_id = ?)
          ORDER BY stream_ordering LIMIT ?`,
      )
      .all(roomId, cutoffTs, roomId, roomId, maxEvents);
    if (rows.length === 0) return { moved: 0, segmentId: null };

    const segmentId = this.nextSegmentId();
    const file = segmentFileName(segmentId);
    mkdirSync(directory, { recursive: true });
    const temporary = path.join(directory, `${file}.tmp`);
    const text = rows.map((row) => JSON.stringify(row)).join('\n');
    writeFileSync(temporary, gzipSync(Buffer.from(text, 'utf8'), { level: 6 }));
    syncFile(temporary);
    renameSync(temporary, path.join(directory, file));
    syncFile(directory);

    const moved = await this.enqueue(() => {
      const { sqlite } = this.connection;
      const current = sqlite.prepare<[string], { json: string }>(
        'SELECT json FROM events WHERE event_id = ?',
      );
      // An event redacted (or otherwise rewritten) since it was read stays hot until the next run.
      const unchanged = rows.filter((row) => current.get(row.event_id)?.json === row.json);
      if (unchanged.length !== rows.length) throw new ColdMoveConflict();
      sqlite
        .prepare(
          'INSERT INTO cold_segments (segment_id, room_id, file, event_count, created_ts) VALUES (?, ?, ?, ?, ?)',
        )
        .run(segmentId, roomId, file, rows.length, Date.now());
      // The client transaction (sync's transaction_id echo) goes along from the hot row.
      const index = sqlite.prepare(
        `INSERT INTO cold_events (event_id, room_id, stream_ordering, origin_server_ts, segment_id,
                                  txn_user_id, txn_device_id, txn_id)
         SELECT ?, ?, ?, ?, ?, CASE WHEN txn_id IS NULL THEN NULL ELSE sender END, txn_device_id, txn_id
           FROM events WHERE event_id = ?`,
      );
      const remove = sqlite.prepare('DELETE FROM events WHERE event_id = ?');
      for (const row of rows) {
        index.run(
          row.event_id,
          row.room_id,
          row.stream_ordering,
          row.origin_server_ts,
          segmentId,
          row.event_id,
        );
        remove.run(row.event_id);
      }
      this.anyCold = true;
      return rows.length;
    }).catch((error: unknown) => {
      rmSync(path.join(directory, file), { force: true });
      if (error instanceof ColdMoveConflict) return 0;
      throw error;
    });
    return { moved, segmentId: moved === 0 ? null : segmentId };
  }

  /** Deletes segment files that no committed move recorded (a crash between writing and recording). */
  async removeOrphanSegments(): Promise<number> {
    const directory = this.directory;
    if (directory === null) return 0;
    let files: string[];
    try {
      files = readdirSync(directory);
    } catch {
      return 0;
    }
    const known = new Set(
      this.connection.sqlite
        .prepare<[], { file: string }>('SELECT file FROM cold_segments')
        .all()
        .map((row) => row.file),
    );
    let removed = 0;
    for (const file of files) {
      if (known.has(file)) continue;
      rmSync(path.join(directory, file), { force: true });
      removed++;
    }
    return removed;
  }

  private nextSegmentId(): number {
    const row = this.connection.sqlite
      .prepare<[], { id: number | null }>('SELECT max(segment_id) AS id FROM cold_segments')
      .get();
    // A file of an unrecorded move may hold the next ID: go past any file on disk too.
    let next = (row?.id ?? 0) + 1;
    const directory = this.directory!;
    try {
      for (const file of readdirSync(directory)) {
        const id = Number.parseInt(file, 10);
        if (Number.isFinite(id) && id >= next) next = id + 1;
      }
    } catch {
      // No directory yet.
    }
    return next;
  }

  private ordered(rows: readonly ColdIndexRow[]): StoredEvent[] {
    const events = this.load(rows);
    return rows
      .map((row) => events.get(row.event_id))
      .filter((event): event is StoredEvent => event !== undefined);
  }

  private load(rows: readonly ColdIndexRow[]): Map<string, StoredEvent> {
    const found = new Map<string, StoredEvent>();
    if (rows.length === 0) return found;
    const redacted = new Map(
      this.connection.sqlite
        .prepare<[string], { event_id: string; json: string }>(
          'SELECT event_id, json FROM cold_redacted WHERE event_id IN (SELECT value FROM json_each(?))',
        )
        .all(JSON.stringify(rows.map((row) => row.event_id)))
        .map((row) => [row.event_id, row.json]),
    );
    for (const row of rows) {
      const stored = this.segment(row.segment_id).get(row.event_id);
      if (stored === undefined) continue;
      found.set(row.event_id, toStoredEvent(stored, redacted.get(row.event_id)));
    }
    return found;
  }

  private segment(segmentId: number): Map<string, ColdRow> {
    const cached = this.segments.get(segmentId);
    if (cached !== undefined) return cached;
    const record = this.connection.sqlite
      .prepare<[number], { file: string }>('SELECT file FROM cold_segments WHERE segment_id = ?')
      .get(segmentId);
    const rows = new Map<string, ColdRow>();
    if (record !== undefined && this.directory !== null) {
      const text = gunzipSync(readFileSync(path.join(this.directory, record.file))).toString('utf8');
      for (const line of text.split('\n')) {
        const row = JSON.parse(line) as ColdRow;
        rows.set(row.event_id, row);
      }
    }
    this.segments.set(segmentId, rows);
    return rows;
  }
}

class ColdMoveConflict extends Error {}

function segmentFileName(segmentId: number): string {
  return `${String(segmentId).padStart(10, '0')}.jsonl.gz`;
}

function syncFile(file: string): void {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function toStoredEvent(row: ColdRow, redactedJson: string | undefined): StoredEvent {
  const json = redactedJson ?? row.json;
  return {
    eventId: row.event_id,
    roomId: row.room_id,
    pdu: JSON.parse(json),
    json,
    streamOrdering: row.stream_ordering,
    outlier: row.outlier === 1,
    rejectionReason: row.rejection_reason,
    stateBeforeSnapshotId: row.state_before_snapshot_id,
    stateAfterSnapshotId: row.state_after_snapshot_id,
  };
}

/**
 * The event store with cold events folded into every read. Writes go to the
 * hot store, but for a redaction of a cold event, which is recorded beside it.
 */
export function withColdReads(hot: EventStore, cold: ColdArchive, enqueue: EnqueueWrite): EventStore {
  const merge = (a: StoredEvent[], b: StoredEvent[], newestFirst: boolean, limit: number) =>
    [...a, ...b]
      .sort((x, y) =>
        newestFirst ? y.streamOrdering - x.streamOrdering : x.streamOrdering - y.streamOrdering,
      )
      .slice(0, limit);
  return {
    async getEvent(eventId) {
      return (await hot.getEvent(eventId)) ?? cold.eventsByIds([eventId]).get(eventId) ?? null;
    },
    async getEvents(eventIds) {
      const found = await hot.getEvents(eventIds);
      if (found.size < new Set(eventIds).size) {
        for (const [id, event] of cold.eventsByIds(eventIds.filter((id) => !found.has(id))))
          found.set(id, event);
      }
      return found;
    },
    async haveEvents(eventIds) {
      const found = await hot.haveEvents(eventIds);
      for (const id of cold.eventsByIds(eventIds.filter((id) => !found.has(id))).keys()) found.add(id);
      return found;
    },
    latestStreamOrdering: () => hot.latestStreamOrdering(),
    async roomEventsAfter(roomId, afterOrdering, limit) {
      const hotEvents = await hot.roomEventsAfter(roomId, afterOrdering, limit);
      const coldEvents = cold.roomEvents(roomId, afterOrdering, Number.MAX_SAFE_INTEGER, limit, false);
      return coldEvents.length === 0 ? hotEvents : merge(hotEvents, coldEvents, false, limit);
    },
    async roomEventsBefore(roomId, beforeOrdering, limit) {
      const hotEvents = await hot.roomEventsBefore(roomId, beforeOrdering, limit);
      const coldEvents = cold.roomEvents(roomId, -1, beforeOrdering, limit, true);
      return coldEvents.length === 0 ? hotEvents : merge(hotEvents, coldEvents, true, limit);
    },
    async authChainEventIds(eventIds) {
      const chain = await hot.authChainEventIds(eventIds);
      // A cold event left the hot tables with its edges: its chain starts from its own
      // auth_events, which are state events (never cold), and goes on through the hot tables.
      const coldStarts = [...cold.eventsByIds(eventIds).values()].flatMap((event) =>
        referencedEventIds(event.pdu.auth_events),
      );
      if (coldStarts.length === 0) return chain;
      for (const id of coldStarts) chain.add(id);
      for (const id of await hot.authChainEventIds(coldStarts)) chain.add(id);
      return chain;
    },
    roomsChangedBetween: (after, upTo) => hot.roomsChangedBetween(after, upTo),
    // Bump stamps: the latest events of a room are never cold (the latest event stays hot).
    latestOrderingOfTypes: (roomIds, types) => hot.latestOrderingOfTypes(roomIds, types),
    earliestStreamOrdering: () => hot.earliestStreamOrdering(),
    async timelineContentsBetween(afterOrdering, upToOrdering, types) {
      const hotEvents = await hot.timelineContentsBetween(afterOrdering, upToOrdering, types);
      const wanted = new Set(types);
      const coldEvents = cold
        .eventsBetween(afterOrdering, upToOrdering, Number.MAX_SAFE_INTEGER)
        .filter((event) => wanted.has(event.pdu.type))
        .map(timelineContentOf);
      if (coldEvents.length === 0) return hotEvents;
      return [...hotEvents, ...coldEvents].sort((x, y) => x.streamOrdering - y.streamOrdering);
    },
    async closestEventByTimestamp(roomId, ts, direction) {
      const hotEvent = await hot.closestEventByTimestamp(roomId, ts, direction);
      const coldEvent = cold.closestByTimestamp(roomId, ts, direction);
      if (hotEvent === null || coldEvent === null) return hotEvent ?? coldEvent;
      const distance = (event: StoredEvent) => Math.abs(event.pdu.origin_server_ts - ts);
      return distance(coldEvent) < distance(hotEvent) ? coldEvent : hotEvent;
    },
    async transactionOfEvent(eventId) {
      return (await hot.transactionOfEvent(eventId)) ?? cold.transactionOf(eventId);
    },
    redactionOf: (eventId) => hot.redactionOf(eventId),
    persistEvent: (input) => hot.persistEvent(input),
    setRejectionReason: (eventId, reason) => hot.setRejectionReason(eventId, reason),
    applyRedaction(redactedEventId, redactedJson, redactionEventId) {
      const coldWrite = () => enqueue(cold.redactColdWrite(redactedEventId, redactedJson, redactionEventId));
      // Decided when queued, so that inside a transaction the write joins it.
      if (cold.isCold(redactedEventId)) return coldWrite();
      return hot.applyRedaction(redactedEventId, redactedJson, redactionEventId).catch((error: unknown) => {
        // Moved to cold storage between the check and the write.
        if (isStorageError(error) && error.code === 'NOT_FOUND' && cold.isCold(redactedEventId))
          return coldWrite();
        throw error;
      });
    },
    async redactWhenStored(redaction) {
      const { targetEventId } = redaction;
      if (!cold.isCold(targetEventId)) return hot.redactWhenStored(redaction);
      // A cold event is never persisted again: its redaction applies now or never.
      if ((await hot.redactionOf(targetEventId)) !== null) return;
      const target = cold.eventsByIds([targetEventId]).get(targetEventId);
      const json = target === undefined ? null : redactedJsonOf(redaction, target);
      if (json !== null) await enqueue(cold.redactColdWrite(targetEventId, json, redaction.redactionEventId));
    },
  };
}

function timelineContentOf(event: StoredEvent): TimelineContent {
  const { pdu } = event;
  return {
    streamOrdering: event.streamOrdering,
    eventId: event.eventId,
    roomId: event.roomId,
    type: pdu.type,
    stateKey: typeof pdu.state_key === 'string' ? pdu.state_key : null,
    sender: pdu.sender,
    originServerTs: pdu.origin_server_ts,
    contentJson: JSON.stringify(pdu.content),
    redacts: typeof pdu.redacts === 'string' ? pdu.redacts : null,
  };
}
