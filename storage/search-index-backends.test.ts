/**
 * The search index's positions on each backend (SQLite FTS5 and the real PostgreSQL):
 * new events move indexedUpTo up, backfilled history (negative stream orderings) moves
 * indexedDownTo down, neither ever moves back, and documents below 0 are found and
 * removed like any other.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { openPostgresSearchIndex } from './postgres/search-index.js';
import { SEARCH_KEYS, type SearchDocument, type SearchIndex } from './search-index.js';
import { parseSearchTerm, tokenize } from './search-text.js';
import { openSqliteStorage } from './sqlite/sqlite-storage.js';

const POSTGRES_URL = process.env.MYELIN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROOM = '!room:example.test';

function document(streamOrdering: number, body: string): SearchDocument {
  return {
    streamOrdering,
    eventId: `$event${streamOrdering}`,
    roomId: ROOM,
    sender: '@alice:example.test',
    type: 'm.room.message',
    msgtype: 'm.text',
    containsUrl: false,
    originServerTs: 1_700_000_000_000 + streamOrdering,
    tokens: { 'content.body': tokenize(body), 'content.name': [], 'content.topic': [] },
  };
}

interface OpenedIndex {
  readonly index: SearchIndex;
  close(): Promise<void>;
}

const backends: { name: string; open(): Promise<OpenedIndex | null> }[] = [
  {
    name: 'SQLite FTS5',
    async open() {
      const dir = mkdtempSync(path.join(tmpdir(), 'myelin-search-index-'));
      const storage = await openSqliteStorage({ path: path.join(dir, 'homeserver.db') });
      return {
        index: storage.search,
        async close() {
          await storage.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'PostgreSQL tsvector',
    async open() {
      const schema = `search_index_test_${process.pid}_${randomBytes(4).toString('hex')}`;
      let index: SearchIndex;
      try {
        index = await openPostgresSearchIndex({ url: POSTGRES_URL, schema });
      } catch (error) {
        if (process.env.CI) throw error;
        console.warn(`  (skipped: PostgreSQL at ${POSTGRES_URL} is unreachable)`);
        return null;
      }
      return {
        index,
        async close() {
          await index.close();
          const client = new pg.Client({ connectionString: POSTGRES_URL });
          await client.connect();
          await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end());
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`search index positions (${backend.name})`, function () {
    this.timeout(30_000);
    let opened: OpenedIndex | null;

    before(async function () {
      opened = await backend.open();
      if (opened === null) this.skip();
    });
    after(async () => {
      await opened?.close();
    });

    const found = async (term: string) =>
      (
        await opened!.index.search({
          expression: parseSearchTerm(term),
          keys: SEARCH_KEYS,
          roomIds: [ROOM],
          orderBy: 'recent',
          limit: 10,
        })
      ).map((hit) => hit.streamOrdering);

    it('indexes upwards and, for backfilled history, downwards, never moving back', async () => {
      const { index } = opened!;
      expect([await index.indexedUpTo(), await index.indexedDownTo()]).to.deep.equal([0, 0]);
      await index.apply({ add: [document(5, 'quokka live')], remove: [], indexedUpTo: 5 });
      await index.apply({ add: [document(-3, 'quokka backfilled')], remove: [], indexedDownTo: -3 });
      expect([await index.indexedUpTo(), await index.indexedDownTo()]).to.deep.equal([5, -3]);
      expect(await found('quokka')).to.deep.equal([5, -3]);

      await index.apply({ add: [], remove: [], indexedUpTo: 2, indexedDownTo: -1 });
      expect([await index.indexedUpTo(), await index.indexedDownTo()]).to.deep.equal([5, -3]);
    });

    it('removes a backfilled document when it is redacted', async () => {
      await opened!.index.apply({ add: [], remove: [-3], indexedUpTo: 6 });
      expect(await found('quokka')).to.deep.equal([5]);
      expect(await found('backfilled')).to.deep.equal([]);
    });
  });
}
