import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { runMigrations } from '../migrations.js';
import { accountsByUserIdIgnoringCase } from './account-store.js';
import { openSqliteConnection, sqliteMigrationTarget } from './connection.js';
import { sqliteMigrations } from './migrations.js';
import { openSqliteStorage } from './sqlite-storage.js';

describe('SQLite accounts schema (migration 2)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'myelin-accounts-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('upgrades a database at migration 1 to 2, keeping its data', async () => {
    const path = join(dir, 'v1.db');
    const v1 = new Database(path);
    await runMigrations(sqliteMigrationTarget(v1), sqliteMigrations.slice(0, 1));
    v1.exec(`
      INSERT INTO accounts (user_id, password_hash, is_admin, deactivated, created_ts, display_name)
        VALUES ('@Alice:example.org', '$scrypt$x', 1, 0, 10, 'Alice'), ('@gone:example.org', NULL, 0, 1, 11, NULL);
      INSERT INTO devices (user_id, device_id, created_ts) VALUES ('@Alice:example.org', 'PHONE', 12);
      INSERT INTO sessions (session_id, user_id, device_id, created_ts, refresh_token_hash, refresh_token_expires_ts)
        VALUES ('s1', '@Alice:example.org', 'PHONE', 13, 'rt-1', 999);
      INSERT INTO account_data (user_id, room_id, type, content, stream_position)
        VALUES ('@Alice:example.org', '', 'm.direct', '{}', 1);
      UPDATE stream_positions SET position = 1 WHERE stream = 'account_data';
    `);
    v1.close();

    const storage = await openSqliteStorage({ path });
    try {
      // Later migrations run too; this test pins what migration 2 does to version-1 data.
      expect(storage.migrations).to.deep.equal({
        fromVersion: 1,
        toVersion: sqliteMigrations.length,
        applied: sqliteMigrations.slice(1).map((m) => m.version),
      });
      expect(await storage.accounts.getAccount('@Alice:example.org')).to.deep.equal({
        userId: '@Alice:example.org',
        passwordHash: '$scrypt$x',
        isAdmin: true,
        isGuest: false,
        deactivated: false,
        erased: false,
        locked: false,
        suspended: false,
        createdTs: 10,
        displayName: 'Alice',
        avatarUrl: null,
      });
      expect(await storage.accounts.getAccount('@gone:example.org')).to.include({
        deactivated: true,
        erased: false,
      });
      expect(
        (await storage.accounts.findAccountsCaseInsensitive('@alice:EXAMPLE.org')).map((a) => a.userId),
      ).to.deep.equal(['@Alice:example.org']);
      expect(await storage.sessions.findRefreshToken('rt-1')).to.deep.include({ isCurrent: true });
      await storage.sessions.rotateRefreshToken('s1', 'rt-2', 2000, 'rt-1');
      expect(await storage.sessions.findRefreshToken('rt-1')).to.deep.include({ isCurrent: false });
      expect(await storage.accountData.putAccountData('@Alice:example.org', null, 'm.x', {})).to.equal(2);
      expect(await storage.presence.latestPresencePosition()).to.equal(0);
      expect(
        await storage.presence.setPresence({
          userId: '@Alice:example.org',
          state: 'online',
          statusMsg: null,
          lastActiveTs: 1,
          updatedTs: 1,
          currentlyActive: true,
        }),
      ).to.equal(1);
      await storage.accounts.setProfileField('@Alice:example.org', 'm.tz', 'UTC');
      expect(await storage.integrityCheck()).to.deep.equal(['ok']);
    } finally {
      await storage.close();
    }
    const reopened = await openSqliteStorage({ path });
    try {
      expect(reopened.migrations.applied).to.deep.equal([]);
      expect(await reopened.accounts.getProfileFields('@Alice:example.org')).to.deep.equal({ 'm.tz': 'UTC' });
    } finally {
      await reopened.close();
    }
  });

  it('finds accounts ignoring case through the lower(user_id) index, not a table scan', async () => {
    const path = join(dir, 'plan.db');
    await (await openSqliteStorage({ path })).close();
    const { sqlite, db } = openSqliteConnection({ path });
    try {
      const query = accountsByUserIdIgnoringCase(db, '@Alice:example.org').toSQL();
      const plan = sqlite
        .prepare(`EXPLAIN QUERY PLAN ${query.sql}`)
        .all(...query.params)
        .map((row) => (row as { detail: string }).detail);
      expect(plan.join('\n')).to.contain('USING INDEX accounts_by_lower_user_id');
      expect(plan.join('\n')).to.not.match(/SCAN accounts(?! USING)/);
    } finally {
      sqlite.close();
    }
  });

  it('declares in drizzle the same named indexes the migrations create', async () => {
    const path = join(dir, 'indexes.db');
    await (await openSqliteStorage({ path })).close();
    const { getTableConfig } = await import('drizzle-orm/sqlite-core');
    const { sqliteSchema } = await import('./schema.js');
    const db = new Database(path, { readonly: true });
    try {
      const created = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
        .pluck()
        .all() as string[];
      const declared = Object.values(sqliteSchema)
        .flatMap((table) => getTableConfig(table).indexes.map((i) => i.config.name))
        .sort();
      expect(declared).to.deep.equal(created);
    } finally {
      db.close();
    }
  });
});
