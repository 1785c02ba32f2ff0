/**
 * The full-text index of room events behind /search, one interface for every
 * backend: SQLite FTS5 (storage/sqlite/search-index.ts, the default) and
 * PostgreSQL tsvector + GIN (storage/postgres/search-index.ts). A further
 * engine (Meilisearch, ...) implements the same few calls.
 *
 * The index holds documents derived from events (tokens come from
 * search-text.ts, so every backend matches alike) and the stream ordering it
 * has indexed up to (and down to, for history backfilled below 0), written
 * atomically with the documents so an indexer can resume after a restart
 * without loss or repeats. It answers with hits only;
 * who may see them is decided above it.
 */
import type { SearchExpression } from './search-text.js';

/** The searchable keys of client-server "Search" (`keys`). */
export type SearchKey = 'content.body' | 'content.name' | 'content.topic';
export const SEARCH_KEYS: readonly SearchKey[] = ['content.body', 'content.name', 'content.topic'];

export interface SearchDocument {
  readonly streamOrdering: number;
  readonly eventId: string;
  readonly roomId: string;
  readonly sender: string;
  readonly type: string;
  /** content.msgtype of m.room.message events; null otherwise. */
  readonly msgtype: string | null;
  /** Whether content.url is a string (contains_url filters). */
  readonly containsUrl: boolean;
  readonly originServerTs: number;
  /** Tokens of each key, in order (search-text.ts tokenize). */
  readonly tokens: { readonly [K in SearchKey]: readonly string[] };
}

/**
 * Changes to apply atomically, with the new position: new events move indexedUpTo up,
 * backfilled history (negative stream orderings) moves indexedDownTo down.
 */
export interface SearchIndexBatch {
  readonly add: readonly SearchDocument[];
  /** Stream orderings of documents to remove (redacted events). */
  readonly remove: readonly number[];
  readonly indexedUpTo?: number;
  readonly indexedDownTo?: number;
}

export interface SearchIndexQuery {
  /** Empty: every document that passes the filters (media listings). */
  readonly expression: SearchExpression;
  readonly keys: readonly SearchKey[];
  /** Only documents of these rooms (never empty; the caller answers an empty list itself). */
  readonly roomIds: readonly string[];
  readonly senders?: readonly string[];
  readonly notSenders?: readonly string[];
  /** Concrete event types (wildcards resolved by the caller). */
  readonly types?: readonly string[];
  readonly msgtypes?: readonly string[];
  readonly containsUrl?: boolean;
  readonly orderBy: 'rank' | 'recent';
  readonly limit: number;
  /** rank: how many best hits to skip. */
  readonly offset?: number;
  /** recent: only hits with a lower stream ordering. */
  readonly before?: number;
}

export interface SearchHit {
  readonly streamOrdering: number;
  readonly eventId: string;
  readonly roomId: string;
  /** Higher is better; comparable only within one answer. */
  readonly rank: number;
}

export interface SearchIndex {
  /** The stream ordering up to which events have been indexed (0 at first). */
  indexedUpTo(): Promise<number>;
  /** The lowest (backfilled, negative) stream ordering from which events have been indexed (0 at first). */
  indexedDownTo(): Promise<number>;
  /** Applies one batch atomically (documents already indexed are replaced). */
  apply(batch: SearchIndexBatch): Promise<void>;
  /** Removes every document sent by the user (GDPR erasure). */
  removeSender(userId: string): Promise<void>;
  search(query: SearchIndexQuery): Promise<SearchHit[]>;
  /** How many documents match (the `count` of a response); may stop counting at `cap`. */
  count(query: SearchIndexQuery, cap: number): Promise<number>;
  close(): Promise<void>;
}
