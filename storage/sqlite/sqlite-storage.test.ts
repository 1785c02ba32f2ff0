import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { getTableConfig, type SQLiteTable } from 'drizzle-orm/sqlite-core';
import { describeStorageContract } from '../contract/storage-contract.js';
import { TestRoom } from '../contract/test-events.js';
import { sqliteMigrations } from './migrations.js';
import { sqliteSchema } from './schema.js';
import { openSqliteStorage } from './sqlite-storage.js';

describeStorageContract('SQLite in memory', () => openSqliteStorage({ path: ':memory:' }));

describe('SQLite storage', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'myelin-sqlite-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('opens a file database in WAL mode with synchronous=NORMAL, foreign keys and a busy timeout', async () => {
    const path = join(dir, 'myelin.db');
    const storage = await openSqliteStorage({ path, busyTimeoutMs: 1234 });
    expect(storage.migrations).to.deep.equal({
      fromVersion: 0,
      toVersion: sqliteMigrations.length,
      applied: sqliteMigrations.map((m) => m.version),
    });
    await storage.close();

    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).to.equal('wal');
      const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
      expect(versions).to.deep.equal(sqliteMigrations.map((m) => m.version));
    } finally {
      db.close();
    }
  });

  it('sets the connection pragmas', async () => {
    const { openSqliteConnection } = await import('./connection.js');
    const { sqlite } = openSqliteConnection({ path: join(dir, 'pragmas.db'), busyTimeoutMs: 1234 });
    try {
      expect(sqlite.pragma('synchronous', { simple: true })).to.equal(1); // NORMAL
      expect(sqlite.pragma('foreign_keys', { simple: true })).to.equal(1);
      expect(sqlite.pragma('busy_timeout', { simple: true })).to.equal(1234);
      expect(sqlite.pragma('temp_store', { simple: true })).to.equal(2); // MEMORY
    } finally {
      sqlite.close();
    }
  });

  it('keeps data across a close and reopen, including writes still queued at close', async () => {
    const path = join(dir, 'reopen.db');
    const room = new TestRoom('!reopen:example.org');
    const event = room.event({ content: { body: 'still here 🧠' } });
    let storage = await openSqliteStorage({ path });
    await storage.events.persistEvent({ event });
    const queued = storage.accounts.createAccount({ userId: '@late:example.org', createdTs: 7 });
    await storage.close();
    await queued;

    storage = await openSqliteStorage({ path });
    try {
      expect(storage.migrations.applied).to.deep.equal([]);
      expect((await storage.events.getEvent(event.eventId))!.json).to.equal(JSON.stringify(event.pdu));
      expect(await storage.accounts.getAccount('@late:example.org')).to.include({ createdTs: 7 });
      const next = await storage.events.persistEvent({ event: room.event() });
      expect(next.streamOrdering).to.equal(2);
      expect(await storage.integrityCheck()).to.deep.equal(['ok']);
    } finally {
      await storage.close();
    }
  });

  it('applies redactions waiting for their target after a restart, and again once the first were consumed', async () => {
    const path = join(dir, 'pending-redactions.db');
    const room = new TestRoom('!pending:example.org');
    const waiting = (targetEventId: string, redactionEventId: string) => ({
      redactionEventId,
      targetEventId,
      roomId: room.roomId,
      roomVersion: '10',
      senderServer: 'example.org',
      senderMayRedactAny: true,
    });
    const first = room.event({ content: { msgtype: 'm.text', body: 'first' } });
    let storage = await openSqliteStorage({ path });
    await storage.events.redactWhenStored(waiting(first.eventId, '$redacts-first'));
    await storage.close();

    // A fresh connection learns from the table itself that a redaction waits.
    storage = await openSqliteStorage({ path });
    try {
      await storage.events.persistEvent({ event: first });
      expect((await storage.events.getEvent(first.eventId))!.pdu.content).to.deep.equal({});
      // The table is empty again; a redaction arriving later still waits for its target.
      await storage.events.persistEvent({ event: room.event() });
      const second = room.event({ content: { msgtype: 'm.text', body: 'second' } });
      await storage.events.redactWhenStored(waiting(second.eventId, '$redacts-second'));
      await storage.events.persistEvent({ event: second });
      expect((await storage.events.getEvent(second.eventId))!.pdu.content).to.deep.equal({});
      expect(await storage.events.redactionOf(second.eventId)).to.equal('$redacts-second');
    } finally {
      await storage.close();
    }
  });

  it('keeps the outbound device-list stream IDs and hashes across a restart', async () => {
    const path = join(dir, 'device-lists.db');
    const alice = '@alice:example.org';
    let storage = await openSqliteStorage({ path });
    expect(await storage.e2eKeys.outboundDeviceList(alice)).to.deep.equal({
      lastStreamId: 0,
      hashes: new Map(),
    });
    await storage.e2eKeys.recordOutboundDeviceList(
      alice,
      2,
      new Map([
        ['PHONE', 'h1'],
        ['LAPTOP', 'h2'],
      ]),
    );
    await storage.e2eKeys.recordOutboundDeviceList(
      alice,
      4,
      new Map([
        ['PHONE', 'h3'],
        ['LAPTOP', null],
      ]),
    );
    await storage.close();

    storage = await openSqliteStorage({ path });
    try {
      expect(await storage.e2eKeys.outboundDeviceList(alice)).to.deep.equal({
        lastStreamId: 4,
        hashes: new Map([['PHONE', 'h3']]),
      });
      expect((await storage.e2eKeys.outboundDeviceList('@bob:example.org')).lastStreamId).to.equal(0);
    } finally {
      await storage.close();
    }
  });

  it('refuses a database whose applied migration was edited', async () => {
    const path = join(dir, 'edited.db');
    await (await openSqliteStorage({ path })).close();
    const db = new Database(path);
    db.prepare("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1").run();
    db.close();
    try {
      await openSqliteStorage({ path });
      expect.fail('open should have failed');
    } catch (error) {
      expect(error).to.have.property('code', 'SCHEMA_MISMATCH');
    }
  });

  it('declares in drizzle exactly the tables and columns the migrations create', async () => {
    const storage = await openSqliteStorage({ path: join(dir, 'schema.db') });
    await storage.close();
    const db = new Database(join(dir, 'schema.db'), { readonly: true });
    try {
      // Virtual tables (FTS5) and their shadow tables are outside drizzle's model.
      const tables = db
        .prepare(
          "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations' ORDER BY name",
        )
        .pluck()
        .all() as string[];
      const declared = Object.values(sqliteSchema as Record<string, SQLiteTable>).map((t) =>
        getTableConfig(t),
      );
      expect(declared.map((t) => t.name).sort()).to.deep.equal(tables);
      for (const table of declared) {
        const columns = db.prepare(`PRAGMA table_info(${table.name})`).all() as {
          name: string;
          notnull: number;
          pk: number;
        }[];
        const actual = columns.map((c) => `${c.name}${c.notnull || c.pk ? ' not null' : ''}`).sort();
        const expected = table.columns.map((c) => `${c.name}${c.notNull ? ' not null' : ''}`).sort();
        expect(expected, table.name).to.deep.equal(actual);
      }
    } finally {
      db.close();
    }
  });
});
