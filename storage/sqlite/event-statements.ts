import type Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import { PendingRedactionGate } from './pending-redaction-gate.js';
import type { events } from './schema.js';

/** An events row as drizzle types it (booleans as booleans). */
type EventRow = typeof events.$inferSelect;

/** The same row as better-sqlite3 returns it from the aliased columns below (booleans as 0/1). */
export type RawEventRow = Omit<EventRow, 'outlier'> & { outlier: number };

const EVENT_COLUMNS = `stream_ordering AS streamOrdering, event_id AS eventId, room_id AS roomId, type,
  state_key AS stateKey, sender, depth, origin_server_ts AS originServerTs, outlier,
  rejection_reason AS rejectionReason, state_before_snapshot_id AS stateBeforeSnapshotId,
  state_after_snapshot_id AS stateAfterSnapshotId, json, txn_device_id AS txnDeviceId, txn_id AS txnId`;

/** A pending_redactions row (sender_may_redact_any as 0/1). */
export interface PendingRedactionRow {
  readonly redactionEventId: string;
  readonly targetEventId: string;
  readonly roomId: string;
  readonly roomVersion: string;
  readonly senderServer: string;
  readonly senderMayRedactAny: number;
}

export interface EventInsert {
  readonly streamOrdering: number;
  readonly eventId: string;
  readonly roomId: string;
  readonly type: string;
  readonly stateKey: string | null;
  readonly sender: string;
  readonly depth: number;
  readonly originServerTs: number;
  readonly outlier: number;
  readonly rejectionReason: string | null;
  readonly stateBeforeSnapshotId: number | null;
  readonly stateAfterSnapshotId: number | null;
  readonly json: string;
  readonly txnDeviceId: string | null;
  readonly txnId: string | null;
}

/**
 * The statements of the event write path (and the send path's transaction-ID
 * lookups), prepared once per connection as plain better-sqlite3 statements:
 * building drizzle queries per call, and even drizzle's prepared-query wrappers,
 * cost more than running the SQL (send-path profiles, bench/README.md).
 */
export function prepareEventStatements(sqlite: Database.Database) {
  return {
    eventById: sqlite.prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE event_id = ?`) as Statement<
      [string],
      RawEventRow
    >,
    outlierFlag: sqlite.prepare('SELECT outlier FROM events WHERE event_id = ?') as Statement<
      [string],
      { outlier: number }
    >,
    nextStreamPosition: sqlite.prepare(
      'UPDATE stream_positions SET position = position + 1 WHERE stream = ? RETURNING position',
    ) as Statement<[string], { position: number }>,
    // Backfilled events count down from 0 (the 'events_backfill' stream): each batch of older
    // history sorts before everything stored so far, and live positions stay untouched.
    nextBackfillPosition: sqlite.prepare(
      "UPDATE stream_positions SET position = position - 1 WHERE stream = 'events_backfill' RETURNING position",
    ) as Statement<[], { position: number }>,
    insertEvent: sqlite.prepare(
      `INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender, depth,
         origin_server_ts, outlier, rejection_reason, state_before_snapshot_id, state_after_snapshot_id, json,
         txn_device_id, txn_id)
       VALUES (@streamOrdering, @eventId, @roomId, @type, @stateKey, @sender, @depth,
         @originServerTs, @outlier, @rejectionReason, @stateBeforeSnapshotId, @stateAfterSnapshotId, @json,
         @txnDeviceId, @txnId)`,
    ) as Statement<[EventInsert], void>,
    insertEdge: sqlite.prepare(
      'INSERT INTO event_edges (event_id, prev_event_id) VALUES (?, ?) ON CONFLICT DO NOTHING',
    ) as Statement<[string, string], void>,
    insertAuthEdge: sqlite.prepare(
      'INSERT INTO event_auth_edges (event_id, auth_event_id) VALUES (?, ?) ON CONFLICT DO NOTHING',
    ) as Statement<[string, string], void>,
    deleteExtremity: sqlite.prepare(
      'DELETE FROM forward_extremities WHERE room_id = ? AND event_id = ?',
    ) as Statement<[string, string], void>,
    insertExtremity: sqlite.prepare(
      'INSERT INTO forward_extremities (room_id, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING',
    ) as Statement<[string, string], void>,
    timelineChild: sqlite.prepare(
      `SELECT ee.event_id FROM event_edges ee JOIN events e ON e.event_id = ee.event_id
        WHERE ee.prev_event_id = ? AND e.outlier = 0 AND e.room_id = ? LIMIT 1`,
    ) as Statement<[string, string], { event_id: string }>,
    redactionOf: sqlite.prepare(
      'SELECT redaction_event_id FROM redactions WHERE redacted_event_id = ?',
    ) as Statement<[string], { redaction_event_id: string }>,
    // Redactions that arrived before their target, looked up as each event is persisted.
    pendingRedactionsOf: sqlite.prepare(
      `SELECT redaction_event_id AS redactionEventId, target_event_id AS targetEventId, room_id AS roomId,
              room_version AS roomVersion, sender_server AS senderServer,
              sender_may_redact_any AS senderMayRedactAny
         FROM pending_redactions WHERE target_event_id = ? ORDER BY redaction_event_id`,
    ) as Statement<[string], PendingRedactionRow>,
    insertPendingRedaction: sqlite.prepare(
      `INSERT INTO pending_redactions (target_event_id, redaction_event_id, room_id, room_version,
         sender_server, sender_may_redact_any)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ) as Statement<[string, string, string, string, string, number], void>,
    deletePendingRedactions: sqlite.prepare(
      'DELETE FROM pending_redactions WHERE target_event_id = ?',
    ) as Statement<[string], void>,
    /** Lets the lookup above be skipped while the table is empty. */
    pendingRedactionGate: new PendingRedactionGate(sqlite),
    // The event row names its transaction; the transaction_ids row must still exist (it goes
    // with its device), so a deleted device's transactions are echoed to no one.
    transactionOfEvent: sqlite.prepare(
      `SELECT t.user_id, t.device_id, t.txn_id FROM events e
         JOIN transaction_ids t ON t.user_id = e.sender AND t.device_id = e.txn_device_id AND t.txn_id = e.txn_id
        WHERE e.event_id = ?`,
    ) as Statement<[string], { user_id: string; device_id: string; txn_id: string }>,
    transactionEvent: sqlite.prepare(
      'SELECT event_id FROM transaction_ids WHERE user_id = ? AND device_id = ? AND txn_id = ?',
    ) as Statement<[string, string, string], { event_id: string }>,
    insertTransaction: sqlite.prepare(
      `INSERT INTO transaction_ids (user_id, device_id, txn_id, event_id, created_ts)
       VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ) as Statement<[string, string, string, string, number], void>,
  };
}

export type EventStatements = ReturnType<typeof prepareEventStatements>;

/** A raw row as drizzle would have typed it. */
export function eventRowOf(raw: RawEventRow): EventRow {
  return { ...raw, outlier: raw.outlier !== 0 };
}
