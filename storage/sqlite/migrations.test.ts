import Database from 'better-sqlite3';
import { expect } from 'chai';
import { StorageError } from '../errors.js';
import { type Migration, runMigrations } from '../migrations.js';
import { sqliteMigrationTarget } from './connection.js';

const createA: Migration = {
  version: 1,
  name: 'create a',
  sql: 'CREATE TABLE a (x INTEGER NOT NULL) STRICT;',
};
const createB: Migration = {
  version: 2,
  name: 'create b',
  sql: "CREATE TABLE b (y TEXT NOT NULL) STRICT; INSERT INTO b (y) VALUES ('seed');",
};
const broken: Migration = {
  version: 3,
  name: 'half works',
  sql: 'CREATE TABLE c (z INTEGER) STRICT; INSERT INTO a (x) VALUES (1); INSERT INTO no_such_table VALUES (1);',
};

function tableNames(db: Database.Database): string[] {
  return db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .pluck()
    .all() as string[];
}

describe('migration runner over SQLite', () => {
  let db: Database.Database;
  beforeEach(() => {
    db = new Database(':memory:');
  });
  afterEach(() => db.close());

  it('applies pending migrations in order and nothing twice', async () => {
    const target = sqliteMigrationTarget(db);
    expect(await runMigrations(target, [createA])).to.deep.equal({
      fromVersion: 0,
      toVersion: 1,
      applied: [1],
    });
    expect(await runMigrations(target, [createA, createB])).to.deep.equal({
      fromVersion: 1,
      toVersion: 2,
      applied: [2],
    });
    expect(await runMigrations(target, [createA, createB])).to.deep.equal({
      fromVersion: 2,
      toVersion: 2,
      applied: [],
    });
    expect(tableNames(db)).to.deep.equal(['a', 'b', 'schema_migrations']);
    expect(db.prepare('SELECT y FROM b').pluck().all()).to.deep.equal(['seed']);
  });

  it('leaves the database at the previous version when a migration fails', async () => {
    const target = sqliteMigrationTarget(db);
    await runMigrations(target, [createA]);
    try {
      await runMigrations(target, [createA, createB, broken]);
      expect.fail('the broken migration should have failed');
    } catch (error) {
      expect(error).to.be.instanceOf(StorageError);
      expect((error as StorageError).code).to.equal('MIGRATION_FAILED');
      expect((error as StorageError).message).to.contain('half works');
    }
    // Migration 2 went through; nothing of migration 3 remains.
    expect(tableNames(db)).to.deep.equal(['a', 'b', 'schema_migrations']);
    expect(db.prepare('SELECT count(*) FROM a').pluck().get()).to.equal(0);
    expect(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).to.equal(2);
  });

  it('refuses a database newer than the migrations it knows', async () => {
    const target = sqliteMigrationTarget(db);
    await runMigrations(target, [createA, createB]);
    try {
      await runMigrations(target, [createA]);
      expect.fail('should refuse');
    } catch (error) {
      expect((error as StorageError).code).to.equal('SCHEMA_MISMATCH');
    }
  });

  it('refuses an edited migration and a list with gaps', async () => {
    const target = sqliteMigrationTarget(db);
    await runMigrations(target, [createA]);
    const edited = { ...createA, sql: 'CREATE TABLE a (x TEXT) STRICT;' };
    for (const list of [[edited], [createA, { ...createB, version: 3 }]]) {
      try {
        await runMigrations(target, list);
        expect.fail('should refuse');
      } catch (error) {
        expect((error as StorageError).code).to.equal('SCHEMA_MISMATCH');
      }
    }
  });
});
