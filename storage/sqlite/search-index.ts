/**
 * The SQLite search index: an FTS5 table (contentless, rowid = stream
 * ordering, one column per searchable key) beside `search_documents`, which
 * holds what results are filtered on. Texts arrive already tokenized by
 * search-text.ts and are stored as space-joined tokens; the FTS5 tokenizer
 * (unicode61 over letters, digits and marks) splits them back exactly.
 * bm25 ranks; prefix terms use FTS5's `"token"*`.
 */

import type { Statement } from 'better-sqlite3';
import type {
  SearchDocument,
  SearchHit,
  SearchIndex,
  SearchIndexBatch,
  SearchIndexQuery,
  SearchKey,
} from '../search-index.js';
import type { SearchExpression, SearchTerm } from '../search-text.js';
import type { SqliteConnection } from './connection.js';
import type { EnqueueWrite } from './write-queue.js';

const COLUMN_OF_KEY: Record<SearchKey, string> = {
  'content.body': 'body',
  'content.name': 'name',
  'content.topic': 'topic',
};

type Parameter = string | number;

/** Rank order covers the newest this many matches (all of them for any but the commonest words). */
export const RANK_WINDOW = 1000;

export class SqliteSearchIndex implements SearchIndex {
  private readonly statements = new Map<string, Statement<unknown[]>>();

  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  async indexedUpTo(): Promise<number> {
    const row = this.prepared('SELECT indexed_up_to FROM search_position WHERE id = 1').get() as
      | { indexed_up_to: number }
      | undefined;
    return row?.indexed_up_to ?? 0;
  }

  async indexedDownTo(): Promise<number> {
    const row = this.prepared('SELECT indexed_down_to FROM search_position WHERE id = 1').get() as
      | { indexed_down_to: number }
      | undefined;
    return row?.indexed_down_to ?? 0;
  }

  apply(batch: SearchIndexBatch): Promise<void> {
    const add = batch.add.map(documentRow);
    const remove = [...batch.remove];
    return this.enqueue(() => {
      const insertDocument = this.prepared(
        `INSERT INTO search_documents
           (stream_ordering, event_id, room_id, sender, type, msgtype, contains_url, origin_server_ts)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      const insertFts = this.prepared(
        'INSERT INTO search_fts (rowid, body, name, topic) VALUES (?, ?, ?, ?)',
      );
      const deleteDocument = this.prepared('DELETE FROM search_documents WHERE stream_ordering = ?');
      const deleteFts = this.prepared('DELETE FROM search_fts WHERE rowid = ?');
      for (const row of add) {
        insertDocument.run(
          row.streamOrdering,
          row.eventId,
          row.roomId,
          row.sender,
          row.type,
          row.msgtype,
          row.containsUrl,
          row.originServerTs,
        );
        insertFts.run(row.streamOrdering, row.body, row.name, row.topic);
      }
      for (const streamOrdering of remove) {
        if (deleteDocument.run(streamOrdering).changes > 0) deleteFts.run(streamOrdering);
      }
      if (batch.indexedUpTo !== undefined) {
        this.prepared('UPDATE search_position SET indexed_up_to = max(indexed_up_to, ?) WHERE id = 1').run(
          batch.indexedUpTo,
        );
      }
      if (batch.indexedDownTo !== undefined) {
        this.prepared(
          'UPDATE search_position SET indexed_down_to = min(indexed_down_to, ?) WHERE id = 1',
        ).run(batch.indexedDownTo);
      }
    });
  }

  removeSender(userId: string): Promise<void> {
    return this.enqueue(() => {
      // One scan (erasure is too rare to index documents by sender for), then deletes by key.
      const orderings = this.prepared('SELECT stream_ordering FROM search_documents WHERE sender = ?')
        .raw(true)
        .all(userId) as [number][];
      const deleteDocument = this.prepared('DELETE FROM search_documents WHERE stream_ordering = ?');
      const deleteFts = this.prepared('DELETE FROM search_fts WHERE rowid = ?');
      for (const [streamOrdering] of orderings) {
        deleteDocument.run(streamOrdering);
        deleteFts.run(streamOrdering);
      }
    });
  }

  async search(query: SearchIndexQuery): Promise<SearchHit[]> {
    const { sql, parameters } = this.compile(query, false);
    const rows = this.prepared(sql).all(...parameters) as {
      stream_ordering: number;
      event_id: string;
      room_id: string;
      rank: number;
    }[];
    return rows.map((row) => ({
      streamOrdering: row.stream_ordering,
      eventId: row.event_id,
      roomId: row.room_id,
      // bm25 is lower for better matches.
      rank: -row.rank,
    }));
  }

  async count(query: SearchIndexQuery, cap: number): Promise<number> {
    const { sql, parameters } = this.compile(query, true);
    const row = this.prepared(`SELECT count(*) AS n FROM (${sql} LIMIT ?)`).get(...parameters, cap) as {
      n: number;
    };
    return row.n;
  }

  async close(): Promise<void> {
    // The connection belongs to the storage, which closes it.
  }

  private compile(query: SearchIndexQuery, counting: boolean): { sql: string; parameters: Parameter[] } {
    const parameters: Parameter[] = [];
    const where: string[] = [];
    const match = ftsExpression(query.expression, query.keys);
    if (match !== null) {
      where.push('search_fts MATCH ?');
      parameters.push(match);
    }
    where.push('d.room_id IN (SELECT value FROM json_each(?))');
    parameters.push(JSON.stringify(query.roomIds));
    const list = (column: string, values: readonly string[] | undefined, negate: boolean) => {
      if (values === undefined) return;
      where.push(`d.${column} ${negate ? 'NOT IN' : 'IN'} (SELECT value FROM json_each(?))`);
      parameters.push(JSON.stringify(values));
    };
    list('sender', query.senders, false);
    list('sender', query.notSenders, true);
    list('type', query.types, false);
    list('msgtype', query.msgtypes, false);
    if (query.containsUrl !== undefined) {
      where.push('d.contains_url = ?');
      parameters.push(query.containsUrl ? 1 : 0);
    }
    const recent = query.orderBy === 'recent' || match === null;
    // FTS5 walks its rowids (= stream orderings) newest first without sorting.
    const ordering = match === null ? 'd.stream_ordering' : 'search_fts.rowid';
    if (recent && query.before !== undefined && !counting) {
      where.push(`${ordering} < ?`);
      parameters.push(query.before);
    }
    const from =
      match === null
        ? 'search_documents d'
        : 'search_fts JOIN search_documents d ON d.stream_ordering = search_fts.rowid';
    const rank = match === null ? '0' : 'search_fts.rank';
    const select = `SELECT d.stream_ordering, d.event_id, d.room_id, ${rank} AS rank FROM ${from} WHERE ${where.join(' AND ')} ORDER BY ${ordering} DESC`;
    if (counting) return { sql: select, parameters };
    let sql: string;
    if (recent) {
      sql = `${select} LIMIT ?`;
      parameters.push(query.limit);
    } else {
      // bm25 of every match of a very common word costs more than a page is worth: rank the newest RANK_WINDOW.
      sql = `SELECT * FROM (${select} LIMIT ${RANK_WINDOW}) ORDER BY rank, stream_ordering DESC LIMIT ? OFFSET ?`;
      parameters.push(query.limit, query.offset ?? 0);
    }
    return { sql, parameters };
  }

  private prepared(sql: string): Statement<unknown[]> {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.connection.sqlite.prepare<unknown[]>(sql);
      // Filters make a handful of shapes; a bound keeps a misbehaving caller from growing this.
      if (this.statements.size > 256) this.statements.clear();
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

function documentRow(document: SearchDocument) {
  return {
    streamOrdering: document.streamOrdering,
    eventId: document.eventId,
    roomId: document.roomId,
    sender: document.sender,
    type: document.type,
    msgtype: document.msgtype,
    containsUrl: document.containsUrl ? 1 : 0,
    originServerTs: document.originServerTs,
    body: document.tokens['content.body'].join(' '),
    name: document.tokens['content.name'].join(' '),
    topic: document.tokens['content.topic'].join(' '),
  };
}

/** The FTS5 MATCH string of an expression, restricted to the keys' columns; null: match everything. */
export function ftsExpression(expression: SearchExpression, keys: readonly SearchKey[]): string | null {
  if (expression.length === 0) return null;
  const groups = expression.map((group) => {
    const all = group.all.map(ftsTerm).join(' AND ');
    if (group.none.length === 0) return `(${all})`;
    return `((${all}) NOT (${group.none.map(ftsTerm).join(' OR ')}))`;
  });
  const columns = [...new Set(keys.map((key) => COLUMN_OF_KEY[key]))].join(' ');
  return `{${columns}} : (${groups.join(' OR ')})`;
}

function ftsTerm(term: SearchTerm): string {
  const phrase = `"${term.tokens.join(' ').replaceAll('"', '""')}"`;
  return term.prefix ? `${phrase}*` : phrase;
}
