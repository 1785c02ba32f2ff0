/**
 * The PostgreSQL search index (scale-out): one row per document with a
 * tsvector under a GIN index, in its own schema. Texts arrive tokenized by
 * search-text.ts; the tsvector and tsquery are written as literals (cast, not
 * parsed by a text search configuration), so PostgreSQL matches exactly the
 * tokens SQLite FTS5 does. Each key is a weight (body A, name B, topic C), so
 * `keys` restrict a query by weight labels; ts_rank ranks.
 */
import type { Pool } from 'pg';
import type {
  SearchDocument,
  SearchHit,
  SearchIndex,
  SearchIndexBatch,
  SearchIndexQuery,
  SearchKey,
} from '../search-index.js';
import type { SearchExpression, SearchTerm } from '../search-text.js';

const WEIGHT_OF_KEY: Record<SearchKey, string> = {
  'content.body': 'A',
  'content.name': 'B',
  'content.topic': 'C',
};
/** PostgreSQL's largest tsvector position. */
const MAX_POSITION = 16_383;

export interface PostgresSearchIndexOptions {
  /** Connection URL, e.g. postgres://user@127.0.0.1:5432/db. */
  readonly url: string;
  /** Schema holding the tables (created if missing). */
  readonly schema: string;
  readonly poolSize?: number;
}

/** Connects, creates the schema and tables if needed, and returns the index. */
export async function openPostgresSearchIndex(options: PostgresSearchIndexOptions): Promise<SearchIndex> {
  // Imported here, not at the top: a bundle hoists a static import of this module's
  // dependencies to start-up, and the client costs ~10 MB of RSS a server on SQLite never uses.
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 4 });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  const schema = quoteIdentifier(options.schema);
  try {
    await pool.query(`
      CREATE SCHEMA IF NOT EXISTS ${schema};
      CREATE TABLE IF NOT EXISTS ${schema}.search_documents (
        stream_ordering bigint PRIMARY KEY,
        event_id text NOT NULL UNIQUE,
        room_id text NOT NULL,
        sender text NOT NULL,
        type text NOT NULL,
        msgtype text,
        contains_url boolean NOT NULL,
        origin_server_ts bigint NOT NULL,
        vector tsvector NOT NULL
      );
      CREATE INDEX IF NOT EXISTS search_documents_vector ON ${schema}.search_documents USING GIN (vector);
      CREATE INDEX IF NOT EXISTS search_documents_by_room ON ${schema}.search_documents (room_id, stream_ordering);
      CREATE INDEX IF NOT EXISTS search_documents_by_sender ON ${schema}.search_documents (sender);
      CREATE TABLE IF NOT EXISTS ${schema}.search_position (
        id integer PRIMARY KEY CHECK (id = 1),
        indexed_up_to bigint NOT NULL
      );
      INSERT INTO ${schema}.search_position (id, indexed_up_to) VALUES (1, 0) ON CONFLICT DO NOTHING;
      ALTER TABLE ${schema}.search_position ADD COLUMN IF NOT EXISTS indexed_down_to bigint NOT NULL DEFAULT 0;
    `);
  } catch (error) {
    await pool.end();
    throw error;
  }
  return new PostgresSearchIndex(pool, schema);
}

class PostgresSearchIndex implements SearchIndex {
  constructor(
    private readonly pool: Pool,
    private readonly schema: string,
  ) {}

  async indexedUpTo(): Promise<number> {
    const result = await this.pool.query<{ indexed_up_to: string }>(
      `SELECT indexed_up_to FROM ${this.schema}.search_position WHERE id = 1`,
    );
    return Number(result.rows[0]?.indexed_up_to ?? 0);
  }

  async indexedDownTo(): Promise<number> {
    const result = await this.pool.query<{ indexed_down_to: string }>(
      `SELECT indexed_down_to FROM ${this.schema}.search_position WHERE id = 1`,
    );
    return Number(result.rows[0]?.indexed_down_to ?? 0);
  }

  async apply(batch: SearchIndexBatch): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      if (batch.remove.length > 0) {
        await client.query(
          `DELETE FROM ${this.schema}.search_documents WHERE stream_ordering = ANY($1::bigint[])`,
          [batch.remove],
        );
      }
      // An event indexed before under another stream ordering is replaced.
      if (batch.add.length > 0) {
        await client.query(`DELETE FROM ${this.schema}.search_documents WHERE event_id = ANY($1::text[])`, [
          batch.add.map((document) => document.eventId),
        ]);
      }
      if (batch.add.length > 0) {
        const rows = batch.add.map(documentRow);
        // One statement for the whole batch: arrays unnested into rows.
        await client.query(
          `INSERT INTO ${this.schema}.search_documents
             (stream_ordering, event_id, room_id, sender, type, msgtype, contains_url, origin_server_ts, vector)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                $7::boolean[], $8::bigint[], $9::tsvector[])
           ON CONFLICT (stream_ordering) DO UPDATE SET event_id = excluded.event_id, room_id = excluded.room_id,
             sender = excluded.sender, type = excluded.type, msgtype = excluded.msgtype,
             contains_url = excluded.contains_url, origin_server_ts = excluded.origin_server_ts,
             vector = excluded.vector`,
          [
            rows.map((row) => row.streamOrdering),
            rows.map((row) => row.eventId),
            rows.map((row) => row.roomId),
            rows.map((row) => row.sender),
            rows.map((row) => row.type),
            rows.map((row) => row.msgtype),
            rows.map((row) => row.containsUrl),
            rows.map((row) => row.originServerTs),
            rows.map((row) => row.vector),
          ],
        );
      }
      if (batch.indexedUpTo !== undefined) {
        await client.query(
          `UPDATE ${this.schema}.search_position SET indexed_up_to = greatest(indexed_up_to, $1) WHERE id = 1`,
          [batch.indexedUpTo],
        );
      }
      if (batch.indexedDownTo !== undefined) {
        await client.query(
          `UPDATE ${this.schema}.search_position SET indexed_down_to = least(indexed_down_to, $1) WHERE id = 1`,
          [batch.indexedDownTo],
        );
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async removeSender(userId: string): Promise<void> {
    await this.pool.query(`DELETE FROM ${this.schema}.search_documents WHERE sender = $1`, [userId]);
  }

  async search(query: SearchIndexQuery): Promise<SearchHit[]> {
    const { sql, parameters } = this.compile(query, false);
    const result = await this.pool.query<{
      stream_ordering: string;
      event_id: string;
      room_id: string;
      rank: number;
    }>(sql, parameters);
    return result.rows.map((row) => ({
      streamOrdering: Number(row.stream_ordering),
      eventId: row.event_id,
      roomId: row.room_id,
      rank: Number(row.rank),
    }));
  }

  async count(query: SearchIndexQuery, cap: number): Promise<number> {
    const { sql, parameters } = this.compile(query, true);
    const result = await this.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM (${sql} LIMIT $${parameters.length + 1}) AS matches`,
      [...parameters, cap],
    );
    return Number(result.rows[0]?.n ?? 0);
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  private compile(query: SearchIndexQuery, counting: boolean): { sql: string; parameters: unknown[] } {
    const parameters: unknown[] = [];
    const parameter = (value: unknown) => {
      parameters.push(value);
      return `$${parameters.length}`;
    };
    const where: string[] = [];
    const tsquery = tsqueryOf(query.expression, query.keys);
    if (tsquery !== null) where.push(`vector @@ ${parameter(tsquery)}::tsquery`);
    where.push(`room_id = ANY(${parameter(query.roomIds)}::text[])`);
    if (query.senders !== undefined) where.push(`sender = ANY(${parameter(query.senders)}::text[])`);
    if (query.notSenders !== undefined) where.push(`sender <> ALL(${parameter(query.notSenders)}::text[])`);
    if (query.types !== undefined) where.push(`type = ANY(${parameter(query.types)}::text[])`);
    if (query.msgtypes !== undefined) where.push(`msgtype = ANY(${parameter(query.msgtypes)}::text[])`);
    if (query.containsUrl !== undefined) where.push(`contains_url = ${parameter(query.containsUrl)}`);
    const recent = query.orderBy === 'recent' || tsquery === null;
    if (recent && query.before !== undefined && !counting) {
      where.push(`stream_ordering < ${parameter(query.before)}`);
    }
    const rank = tsquery === null ? '0' : `ts_rank(vector, $1::tsquery)`;
    let sql = `SELECT stream_ordering, event_id, room_id, ${rank} AS rank
                 FROM ${this.schema}.search_documents WHERE ${where.join(' AND ')}`;
    if (counting) return { sql, parameters };
    sql += recent ? ' ORDER BY stream_ordering DESC' : ' ORDER BY rank DESC, stream_ordering DESC';
    sql += ` LIMIT ${parameter(query.limit)} OFFSET ${parameter(recent ? 0 : (query.offset ?? 0))}`;
    return { sql, parameters };
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
    containsUrl: document.containsUrl,
    originServerTs: document.originServerTs,
    vector: tsvectorLiteral(document),
  };
}

/** `'token':position+weight ...`; keys follow one another with a gap, so phrases never span two keys. */
export function tsvectorLiteral(document: SearchDocument): string {
  const parts: string[] = [];
  let position = 1;
  for (const key of Object.keys(WEIGHT_OF_KEY) as SearchKey[]) {
    const weight = WEIGHT_OF_KEY[key];
    for (const token of document.tokens[key]) {
      parts.push(`${quoteLexeme(token)}:${Math.min(position, MAX_POSITION)}${weight}`);
      position++;
    }
    position += 2;
  }
  return parts.join(' ');
}

/** The tsquery literal of an expression, restricted to the keys' weights; null: match everything. */
export function tsqueryOf(expression: SearchExpression, keys: readonly SearchKey[]): string | null {
  if (expression.length === 0) return null;
  const weights = [...new Set(keys.map((key) => WEIGHT_OF_KEY[key]))].join('');
  const term = (t: SearchTerm) => {
    const lexemes = t.tokens.map((token, i) => {
      const prefix = t.prefix && i === t.tokens.length - 1 ? '*' : '';
      return `${quoteLexeme(token)}:${prefix}${weights}`;
    });
    return lexemes.length === 1 ? lexemes[0]! : `(${lexemes.join(' <-> ')})`;
  };
  return expression
    .map((group) => `(${[...group.all.map(term), ...group.none.map((t) => `!${term(t)}`)].join(' & ')})`)
    .join(' | ');
}

function quoteLexeme(token: string): string {
  return `'${token.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
