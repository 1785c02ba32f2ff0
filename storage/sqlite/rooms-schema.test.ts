import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { type JsonObject, stateTupleKey } from '../../protocol/events.js';
import { runMigrations } from '../migrations.js';
import { sqliteMigrationTarget } from './connection.js';
import { sqliteMigrations } from './migrations.js';
import { openSqliteStorage } from './sqlite-storage.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';
const carol = '@carol:example.org';

interface OldEvent {
  readonly eventId: string;
  readonly roomId: string;
  readonly type: string;
  readonly stateKey?: string;
  readonly sender: string;
  readonly content: JsonObject;
  readonly rejected?: boolean;
  /** Part of the room's current state (as migrations 1-2 kept it). */
  readonly current?: boolean;
}

/** Writes events the way migrations 1-2 stored them, straight into the tables. */
function insertOldEvents(db: Database.Database, list: readonly OldEvent[]): void {
  const insertEvent = db.prepare(
    `INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender, depth, origin_server_ts,
                         outlier, rejection_reason, json)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
  );
  const insertState = db.prepare(
    'INSERT OR REPLACE INTO current_state (room_id, type, state_key, event_id) VALUES (?, ?, ?, ?)',
  );
  list.forEach((event, index) => {
    const ordering = index + 1;
    const pdu: JsonObject = {
      type: event.type,
      room_id: event.roomId,
      sender: event.sender,
      origin_server_ts: 1000 + ordering,
      content: event.content,
      depth: ordering,
      prev_events: [],
      auth_events: [],
    };
    if (event.stateKey !== undefined) pdu.state_key = event.stateKey;
    insertEvent.run(
      ordering,
      event.eventId,
      event.roomId,
      event.type,
      event.stateKey ?? null,
      event.sender,
      ordering,
      1000 + ordering,
      event.rejected ? 'auth' : null,
      JSON.stringify(pdu),
    );
    if (event.current) insertState.run(event.roomId, event.type, event.stateKey!, event.eventId);
  });
  db.prepare("UPDATE stream_positions SET position = ? WHERE stream = 'events'").run(list.length);
}

describe('SQLite rooms schema (migration 3)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'myelin-rooms-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('upgrades a database at migration 2, backfilling rooms, memberships and relations', async () => {
    const path = join(dir, 'v2.db');
    const v2 = new Database(path);
    await runMigrations(sqliteMigrationTarget(v2), sqliteMigrations.slice(0, 2));
    v2.exec(`
      INSERT INTO accounts (user_id, password_hash, created_ts) VALUES ('${alice}', '$scrypt$x', 10);
      INSERT INTO devices (user_id, device_id, created_ts) VALUES ('${alice}', 'PHONE', 11);
    `);
    const old = '!old:example.org';
    const v11 = '!v11:example.org';
    insertOldEvents(v2, [
      {
        eventId: '$create',
        roomId: old,
        type: 'm.room.create',
        stateKey: '',
        sender: alice,
        content: { creator: alice, room_version: '10' },
        current: true,
      },
      {
        eventId: '$alice-join',
        roomId: old,
        type: 'm.room.member',
        stateKey: alice,
        sender: alice,
        content: { membership: 'join', displayname: 'Alice' },
        current: true,
      },
      {
        eventId: '$bob-invite',
        roomId: old,
        type: 'm.room.member',
        stateKey: bob,
        sender: alice,
        content: { membership: 'invite' },
        current: true,
      },
      { eventId: '$hello', roomId: old, type: 'm.room.message', sender: alice, content: { body: 'hello' } },
      {
        eventId: '$like',
        roomId: old,
        type: 'm.reaction',
        sender: alice,
        content: { 'm.relates_to': { rel_type: 'm.annotation', event_id: '$hello', key: '👍' } },
      },
      {
        eventId: '$rejected-like',
        roomId: old,
        type: 'm.reaction',
        sender: bob,
        content: { 'm.relates_to': { rel_type: 'm.annotation', event_id: '$hello', key: '👎' } },
        rejected: true,
      },
      {
        eventId: '$bob-leave',
        roomId: old,
        type: 'm.room.member',
        stateKey: bob,
        sender: bob,
        content: { membership: 'leave' },
        current: true,
      },
      {
        eventId: '$carol-odd',
        roomId: old,
        type: 'm.room.member',
        stateKey: carol,
        sender: carol,
        content: { membership: 'dancing' },
        current: true,
      },
      {
        eventId: '$create-11',
        roomId: v11,
        type: 'm.room.create',
        stateKey: '',
        sender: bob,
        content: { room_version: '11' },
        current: true,
      },
      {
        eventId: '$bob-join-11',
        roomId: v11,
        type: 'm.room.member',
        stateKey: bob,
        sender: bob,
        content: { membership: 'join' },
        current: true,
      },
    ]);
    v2.close();

    const storage = await openSqliteStorage({ path });
    try {
      expect(storage.migrations).to.deep.equal({
        fromVersion: 2,
        toVersion: sqliteMigrations.length,
        applied: sqliteMigrations.slice(2).map((m) => m.version),
      });
      expect(await storage.accounts.getAccount(alice)).to.include({ passwordHash: '$scrypt$x' });

      expect(await storage.memberships.getMembership(old, alice)).to.deep.equal({
        roomId: old,
        userId: alice,
        membership: 'join',
        eventId: '$alice-join',
        streamOrdering: 2,
        forgotten: false,
      });
      expect(await storage.memberships.getMembership(old, bob)).to.include({
        membership: 'leave',
        eventId: '$bob-leave',
        streamOrdering: 7,
      });
      expect(await storage.memberships.getMembership(old, carol)).to.equal(null);
      expect(
        (await storage.memberships.membershipsOfUser(bob)).map((m) => [m.roomId, m.membership]),
      ).to.deep.equal([
        [old, 'leave'],
        [v11, 'join'],
      ]);

      expect(await storage.rooms.getRoom(old)).to.deep.equal({
        roomId: old,
        roomVersion: '10',
        creator: alice,
        createdTs: 1001,
        isPublic: false,
      });
      expect(await storage.rooms.getRoom(v11)).to.include({ roomVersion: '11', creator: bob });

      expect(await storage.relations.annotationCounts(['$hello'])).to.deep.equal(
        new Map([['$hello', [{ eventType: 'm.reaction', key: '👍', count: 1 }]]]),
      );
      expect(await storage.receipts.latestReceiptPosition()).to.equal(0);

      // Life goes on: new events keep the stream going and the memberships current.
      const join = {
        eventId: '$carol-join',
        roomId: old,
        pdu: {
          type: 'm.room.member',
          state_key: carol,
          room_id: old,
          sender: carol,
          origin_server_ts: 5000,
          content: { membership: 'join' },
          depth: 20,
          prev_events: [],
          auth_events: [],
          hashes: { sha256: 'aGFzaA' },
          signatures: {},
        },
      };
      const persisted = await storage.events.persistEvent({
        event: join,
        currentStateDelta: { set: new Map([[stateTupleKey('m.room.member', carol), join.eventId]]) },
      });
      expect(persisted.streamOrdering).to.equal(11);
      expect((await storage.memberships.membersOfRoom(old)).map((m) => m.userId)).to.deep.equal([
        alice,
        carol,
      ]);
      expect(await storage.integrityCheck()).to.deep.equal(['ok']);
    } finally {
      await storage.close();
    }
  });

  it("upgrades a database at migration 13, moving each event's client transaction onto its row", async () => {
    const path = join(dir, 'v13.db');
    const v13 = new Database(path);
    await runMigrations(sqliteMigrationTarget(v13), sqliteMigrations.slice(0, 13));
    v13.exec(`
      INSERT INTO accounts (user_id, password_hash, created_ts) VALUES ('${alice}', '$scrypt$x', 10);
      INSERT INTO devices (user_id, device_id, created_ts) VALUES ('${alice}', 'PHONE', 11);
    `);
    const room = '!txn:example.org';
    insertOldEvents(v13, [
      { eventId: '$sent', roomId: room, type: 'm.room.message', sender: alice, content: { body: 'a' } },
      { eventId: '$other', roomId: room, type: 'm.room.message', sender: bob, content: { body: 'b' } },
    ]);
    v13
      .prepare(
        'INSERT INTO transaction_ids (user_id, device_id, txn_id, event_id, created_ts) VALUES (?, ?, ?, ?, ?)',
      )
      .run(alice, 'PHONE', `${room}/m.room.message/t1`, '$sent', 12);
    // An event already moved to cold storage keeps its transaction too.
    v13.exec(`
      INSERT INTO cold_segments (segment_id, room_id, file, event_count, created_ts) VALUES (1, '${room}', 'x.jsonl.gz', 1, 13);
      INSERT INTO cold_events (event_id, room_id, stream_ordering, origin_server_ts, segment_id)
        VALUES ('$archived', '${room}', 100, 13, 1);
      INSERT INTO transaction_ids (user_id, device_id, txn_id, event_id, created_ts)
        VALUES ('${alice}', 'PHONE', 't-old', '$archived', 13);
    `);
    v13.close();

    const storage = await openSqliteStorage({ path });
    try {
      expect(await storage.events.transactionOfEvent('$sent')).to.deep.equal({
        userId: alice,
        deviceId: 'PHONE',
        txnId: `${room}/m.room.message/t1`,
      });
      expect(await storage.events.transactionOfEvent('$other')).to.equal(null);
      expect(await storage.events.transactionOfEvent('$archived')).to.deep.equal({
        userId: alice,
        deviceId: 'PHONE',
        txnId: 't-old',
      });
      expect(
        await storage.transactionIds.eventIdForTransaction(alice, 'PHONE', `${room}/m.room.message/t1`),
      ).to.equal('$sent');
      expect(await storage.integrityCheck()).to.deep.equal(['ok']);
    } finally {
      await storage.close();
    }
  });

  it('serves sync and timestamp lookups from indexes, not scans of all events', async () => {
    const storage = await openSqliteStorage({ path: join(dir, 'plan.db') });
    await storage.close();
    const db = new Database(join(dir, 'plan.db'), { readonly: true });
    try {
      const plan = (sql: string) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[])
          .map((row) => row.detail)
          .join('\n');
      expect(
        plan(
          `SELECT room_id, max(stream_ordering) FROM events
            WHERE stream_ordering > 1 AND stream_ordering <= 9 AND outlier = 0 AND rejection_reason IS NULL
            GROUP BY room_id`,
        ),
      ).to.match(/SEARCH events USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/);
      expect(
        plan(
          "SELECT * FROM events WHERE room_id = '!r' AND origin_server_ts >= 5 ORDER BY origin_server_ts LIMIT 1",
        ),
      ).to.contain('events_by_room_ts');
      // An event's client transaction: the event by its ID, then the transaction by its key.
      const transactionPlan = plan(
        `SELECT t.user_id FROM events e JOIN transaction_ids t
            ON t.user_id = e.sender AND t.device_id = e.txn_device_id AND t.txn_id = e.txn_id
          WHERE e.event_id = '$e'`,
      );
      expect(transactionPlan).to.match(/SEARCH e USING INDEX sqlite_autoindex_events_1 \(event_id=\?\)/);
      expect(transactionPlan).to.match(
        /SEARCH t USING PRIMARY KEY \(user_id=\? AND device_id=\? AND txn_id=\?\)/,
      );
      expect(
        plan(
          "SELECT * FROM memberships WHERE user_id = '@a' AND stream_ordering > 1 AND stream_ordering <= 5",
        ),
      ).to.match(/memberships_by_user/);
      expect(
        plan(
          "SELECT * FROM event_relations WHERE relates_to = '$e' AND rel_type = 'm.thread' ORDER BY stream_ordering",
        ),
      ).to.contain('event_relations_by_target');
    } finally {
      db.close();
    }
  });
});
