import type Database from 'better-sqlite3';
import type { Pdu } from '../../protocol/events.js';
import type {
  AnnotationCount,
  RelationQuery,
  RelationRecord,
  RelationStore,
  ThreadSummary,
} from '../relation-store.js';
import type { SqliteConnection } from './connection.js';
import { parameterChunks } from './parameter-chunks.js';

const ANNOTATION = 'm.annotation';
const REPLACE = 'm.replace';
const THREAD = 'm.thread';

interface RelationRow {
  event_id: string;
  room_id: string;
  relates_to: string;
  rel_type: string;
  event_type: string;
  sender: string;
  aggregation_key: string | null;
  stream_ordering: number;
  origin_server_ts: number;
}

interface ThreadRow {
  root: string;
  count: number;
  latest_event_id: string;
  latest_ordering: number;
}

const COLUMNS =
  'event_id, room_id, relates_to, rel_type, event_type, sender, aggregation_key, stream_ordering, origin_server_ts';

/** What `m.relates_to` of an event's content says, when it forms a relation (a string rel_type and event_id). */
export interface EventRelation {
  readonly relatesTo: string;
  readonly relType: string;
  readonly aggregationKey: string | null;
}

/** Encrypted events keep `m.relates_to` in cleartext content, so this reads them the same way. */
export function relationOfEvent(pdu: Pdu): EventRelation | null {
  const relatesTo = pdu.content?.['m.relates_to'];
  if (typeof relatesTo !== 'object' || relatesTo === null || Array.isArray(relatesTo)) return null;
  const { rel_type: relType, event_id: eventId, key } = relatesTo;
  if (typeof relType !== 'string' || typeof eventId !== 'string') return null;
  return {
    relatesTo: eventId,
    relType,
    aggregationKey: relType === ANNOTATION && typeof key === 'string' ? key : null,
  };
}

interface RelationStatements {
  readonly insert: Database.Statement<[RelationRow]>;
  readonly remove: Database.Statement<[string]>;
}

const statementsByDatabase = new WeakMap<Database.Database, RelationStatements>();

function relationStatements(sqlite: Database.Database): RelationStatements {
  let statements = statementsByDatabase.get(sqlite);
  if (!statements) {
    statements = {
      insert: sqlite.prepare(
        `INSERT OR REPLACE INTO event_relations (${COLUMNS})
         VALUES (@event_id, @room_id, @relates_to, @rel_type, @event_type, @sender, @aggregation_key,
                 @stream_ordering, @origin_server_ts)`,
      ),
      remove: sqlite.prepare('DELETE FROM event_relations WHERE event_id = ?'),
    };
    statementsByDatabase.set(sqlite, statements);
  }
  return statements;
}

/** Synchronous: runs inside the write transaction that persists the relating event. */
export function insertRelation(
  connection: SqliteConnection,
  relation: EventRelation,
  event: {
    eventId: string;
    roomId: string;
    type: string;
    sender: string;
    streamOrdering: number;
    originServerTs: number;
  },
): void {
  relationStatements(connection.sqlite).insert.run({
    event_id: event.eventId,
    room_id: event.roomId,
    relates_to: relation.relatesTo,
    rel_type: relation.relType,
    event_type: event.type,
    sender: event.sender,
    aggregation_key: relation.aggregationKey,
    stream_ordering: event.streamOrdering,
    origin_server_ts: event.originServerTs,
  });
}

/** Synchronous: runs inside a write transaction (redaction, rejection). */
export function deleteRelation(connection: SqliteConnection, eventId: string): void {
  relationStatements(connection.sqlite).remove.run(eventId);
}

export class SqliteRelationStore implements RelationStore {
  private readonly statements = new Map<string, Database.Statement<[Record<string, unknown>], RelationRow>>();

  constructor(private readonly connection: SqliteConnection) {}

  async relationsOfEach(
    eventIds: readonly string[],
    relType: string,
    limitPerEvent: number,
  ): Promise<Map<string, RelationRecord[]>> {
    const found = new Map<string, RelationRecord[]>();
    const limit = Math.max(0, Math.trunc(limitPerEvent));
    if (limit === 0) return found;
    const statement = this.statement(
      `SELECT ${COLUMNS} FROM event_relations
        WHERE relates_to IN (SELECT value FROM json_each(@eventIds)) AND rel_type = @relType
        ORDER BY relates_to, stream_ordering ASC`,
    );
    for (const chunk of parameterChunks([...new Set(eventIds)])) {
      for (const row of statement.all({ eventIds: JSON.stringify(chunk), relType })) {
        const record = toRecord(row);
        const list = found.get(record.relatesTo);
        if (list === undefined) found.set(record.relatesTo, [record]);
        else if (list.length < limit) list.push(record);
      }
    }
    return found;
  }

  /** Statements prepared once per distinct SQL text (relationsOf builds a few shapes from its query). */
  private statement(sql: string): Database.Statement<[Record<string, unknown>], RelationRow> {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.connection.sqlite.prepare<[Record<string, unknown>], RelationRow>(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  async relationsOf(relatesTo: string, query: RelationQuery): Promise<RelationRecord[]> {
    const conditions = ['relates_to = @relatesTo'];
    const forward = query.direction === 'f';
    if (query.relType !== undefined) conditions.push('rel_type = @relType');
    if (query.eventType !== undefined) conditions.push('event_type = @eventType');
    if (query.from !== undefined) conditions.push(`stream_ordering ${forward ? '>' : '<'} @from`);
    if (query.to !== undefined) conditions.push(`stream_ordering ${forward ? '<' : '>'} @to`);
    return this.statement(
      `SELECT ${COLUMNS} FROM event_relations WHERE ${conditions.join(' AND ')}
          ORDER BY stream_ordering ${forward ? 'ASC' : 'DESC'} LIMIT @limit`,
    )
      .all({
        relatesTo,
        relType: query.relType,
        eventType: query.eventType,
        from: query.from,
        to: query.to,
        limit: Math.max(0, Math.trunc(query.limit)),
      })
      .map(toRecord);
  }

  async annotationCounts(eventIds: readonly string[]): Promise<Map<string, AnnotationCount[]>> {
    const counts = new Map<string, AnnotationCount[]>();
    const statement = this.connection.sqlite.prepare<
      [string],
      { relates_to: string; event_type: string; aggregation_key: string; count: number }
    >(
      `SELECT relates_to, event_type, aggregation_key, count(*) AS count FROM event_relations
        WHERE relates_to IN (SELECT value FROM json_each(?)) AND rel_type = '${ANNOTATION}'
          AND aggregation_key IS NOT NULL
        GROUP BY relates_to, event_type, aggregation_key
        ORDER BY relates_to, count DESC, min(stream_ordering)`,
    );
    for (const chunk of parameterChunks([...new Set(eventIds)])) {
      for (const row of statement.all(JSON.stringify(chunk))) {
        let list = counts.get(row.relates_to);
        if (!list) {
          list = [];
          counts.set(row.relates_to, list);
        }
        list.push({ eventType: row.event_type, key: row.aggregation_key, count: row.count });
      }
    }
    return counts;
  }

  async hasAnnotation(relatesTo: string, sender: string, eventType: string, key: string): Promise<boolean> {
    const row = this.connection.sqlite
      .prepare<[string, string, string, string], { found: number }>(
        `SELECT 1 AS found FROM event_relations
          WHERE relates_to = ? AND rel_type = '${ANNOTATION}' AND event_type = ? AND sender = ?
            AND aggregation_key = ?
          LIMIT 1`,
      )
      .get(relatesTo, eventType, sender, key);
    return row !== undefined;
  }

  async replacementsOf(eventIds: readonly string[]): Promise<Map<string, RelationRecord[]>> {
    const replacements = new Map<string, RelationRecord[]>();
    const statement = this.connection.sqlite.prepare<[string], RelationRow>(
      `SELECT ${COLUMNS} FROM event_relations
        WHERE relates_to IN (SELECT value FROM json_each(?)) AND rel_type = '${REPLACE}'
        ORDER BY stream_ordering`,
    );
    for (const chunk of parameterChunks([...new Set(eventIds)])) {
      for (const row of statement.all(JSON.stringify(chunk))) {
        let list = replacements.get(row.relates_to);
        if (!list) {
          list = [];
          replacements.set(row.relates_to, list);
        }
        list.push(toRecord(row));
      }
    }
    return replacements;
  }

  async threadSummaries(rootEventIds: readonly string[]): Promise<Map<string, ThreadSummary>> {
    const summaries = new Map<string, ThreadSummary>();
    const statement = this.connection.sqlite.prepare<[string], ThreadRow>(
      withLatestEventId(`SELECT relates_to AS root, count(*) AS count, max(stream_ordering) AS latest_ordering
         FROM event_relations
        WHERE relates_to IN (SELECT value FROM json_each(?)) AND rel_type = '${THREAD}'
        GROUP BY relates_to`),
    );
    for (const chunk of parameterChunks([...new Set(rootEventIds)])) {
      for (const row of statement.all(JSON.stringify(chunk))) summaries.set(row.root, toSummary(row));
    }
    return summaries;
  }

  async threadParticipants(rootEventIds: readonly string[]): Promise<Map<string, Set<string>>> {
    const participants = new Map<string, Set<string>>();
    const statement = this.connection.sqlite.prepare<[string], { relates_to: string; sender: string }>(
      `SELECT DISTINCT relates_to, sender FROM event_relations
        WHERE relates_to IN (SELECT value FROM json_each(?)) AND rel_type = '${THREAD}'`,
    );
    for (const chunk of parameterChunks([...new Set(rootEventIds)])) {
      for (const row of statement.all(JSON.stringify(chunk))) {
        let senders = participants.get(row.relates_to);
        if (!senders) {
          senders = new Set();
          participants.set(row.relates_to, senders);
        }
        senders.add(row.sender);
      }
    }
    return participants;
  }

  async threadsOfRoom(
    roomId: string,
    options: { beforeOrdering?: number; limit: number; participant?: string },
  ): Promise<ThreadSummary[]> {
    return this.connection.sqlite
      .prepare<[Record<string, unknown>], ThreadRow>(
        withLatestEventId(`SELECT r.relates_to AS root, count(*) AS count, max(r.stream_ordering) AS latest_ordering
           FROM event_relations r
          WHERE r.room_id = @roomId AND r.rel_type = '${THREAD}'
          GROUP BY r.relates_to
         HAVING (@before IS NULL OR max(r.stream_ordering) < @before)
            AND (@participant IS NULL
                 OR sum(r.sender = @participant) > 0
                 OR EXISTS (SELECT 1 FROM events e WHERE e.event_id = r.relates_to AND e.sender = @participant))
          ORDER BY latest_ordering DESC
          LIMIT @limit`),
      )
      .all({
        roomId,
        before: options.beforeOrdering ?? null,
        participant: options.participant ?? null,
        limit: Math.max(0, Math.trunc(options.limit)),
      })
      .map(toSummary);
  }
}

/** Adds the ID of each thread's latest reply to a query of (root, count, latest_ordering), latest thread first. */
function withLatestEventId(threads: string): string {
  return `SELECT t.root, t.count, t.latest_ordering,
                 (SELECT x.event_id FROM event_relations x
                   WHERE x.relates_to = t.root AND x.rel_type = '${THREAD}' AND x.stream_ordering = t.latest_ordering
                ) AS latest_event_id
            FROM (${threads}) t
           ORDER BY t.latest_ordering DESC`;
}

function toRecord(row: RelationRow): RelationRecord {
  return {
    eventId: row.event_id,
    roomId: row.room_id,
    relatesTo: row.relates_to,
    relType: row.rel_type,
    eventType: row.event_type,
    sender: row.sender,
    aggregationKey: row.aggregation_key,
    streamOrdering: row.stream_ordering,
    originServerTs: row.origin_server_ts,
  };
}

function toSummary(row: ThreadRow): ThreadSummary {
  return {
    rootEventId: row.root,
    count: row.count,
    latestEventId: row.latest_event_id,
    latestStreamOrdering: row.latest_ordering,
  };
}
