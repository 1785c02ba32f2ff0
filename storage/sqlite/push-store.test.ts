/**
 * The SQLite push store writes notification rows in batches a little after they are
 * added (push-store.ts), and the read marks moved by sending likewise:
 * counts and lists must be the same before and after the write, and a clean close must
 * keep every row and mark.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { TestRoom } from '../contract/test-events.js';
import type { NewNotification } from '../push-store.js';
import { sqliteMigrations } from './migrations.js';
import { openSqliteStorage, type SqliteStorage } from './sqlite-storage.js';

const alice = '@alice:example.org';
const room = '!room:example.org';

function notification(streamOrdering: number, fields: Partial<NewNotification> = {}): NewNotification {
  return {
    userId: alice,
    roomId: room,
    streamOrdering,
    threadId: 'main',
    actions: ['notify'],
    highlight: false,
    ...fields,
  };
}

/** Rows on disk (read through a connection of its own), whatever the store still holds in memory. */
function writtenRows(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM push_notifications').pluck().get() as number;
  } finally {
    db.close();
  }
}

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('SQLite push store: batched notification writes', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'myelin-push-store-'));
    path = join(dir, 'myelin.db');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  async function storeEvents(storage: SqliteStorage, count: number): Promise<number[]> {
    const testRoom = new TestRoom(room);
    const orderings: number[] = [];
    for (let i = 0; i < count; i++) {
      orderings.push((await storage.events.persistEvent({ event: testRoom.event() })).streamOrdering);
    }
    return orderings;
  }

  it('counts and lists the same before and after the rows reach the disk, and an event evaluated again counts once', async () => {
    const storage = await openSqliteStorage({ path });
    try {
      const [first, second, third, fourth] = await storeEvents(storage, 4);
      await storage.push.addNotifications([notification(first!), notification(second!, { highlight: true })]);
      const before = (await storage.push.unreadCounts(alice, [room])).get(room);
      expect(before).to.deep.include({ notificationCount: 2, highlightCount: 1 });
      expect(writtenRows(path)).to.equal(0);

      await until(() => writtenRows(path) === 2);
      expect((await storage.push.unreadCounts(alice, [room])).get(room)).to.deep.equal(before);

      // Written rows, added again (unwritten) with a different outcome: the new one replaces the old.
      await storage.push.addNotifications([notification(second!), notification(third!)]);
      const counts = (await storage.push.unreadCounts(alice, [room])).get(room);
      expect(counts).to.deep.include({ notificationCount: 3, highlightCount: 0 });
      const listed = await storage.push.notificationsOf(alice, { limit: 10, onlyHighlight: false });
      expect(listed.map((n) => [n.streamOrdering, n.highlight])).to.deep.equal([
        [third, false],
        [second, false],
        [first, false],
      ]);
      expect(await storage.push.totalUnread(alice)).to.equal(3);

      // Counts handed out earlier stay what they were (the store counts on in its own copy).
      expect(before).to.deep.include({ notificationCount: 2, highlightCount: 1 });
      await storage.push.addNotifications([notification(fourth!, { threadId: '$later', highlight: true })]);
      expect(counts?.threads.has('$later')).to.equal(false);
      const added = (await storage.push.unreadCounts(alice, [room])).get(room);
      expect(added).to.deep.include({ notificationCount: 4, highlightCount: 1 });
      expect(added?.threads.get('$later')).to.deep.equal({ notificationCount: 1, highlightCount: 1 });
    } finally {
      await storage.close();
    }
  });

  it('writes every row still in memory when it closes', async () => {
    let storage = await openSqliteStorage({ path });
    const orderings = await storeEvents(storage, 5);
    await storage.push.addNotifications(orderings.map((ordering) => notification(ordering)));
    await storage.close();
    storage = await openSqliteStorage({ path });
    try {
      expect(writtenRows(path)).to.equal(5);
      expect((await storage.push.unreadCounts(alice, [room])).get(room)?.notificationCount).to.equal(5);
    } finally {
      await storage.close();
    }
  });

  it('after a restart counts, lists and totals the same (rows name users, rooms and actions by ID)', async () => {
    const bob = '@bob:example.org';
    let storage = await openSqliteStorage({ path });
    const [first, second, third, fourth] = await storeEvents(storage, 4);
    const rows = [
      notification(first!),
      notification(second!, { highlight: true, actions: ['notify', { set_tweak: 'highlight' }] }),
      notification(third!, { threadId: '$root' }),
      notification(fourth!, { userId: bob }),
    ];
    await storage.push.addNotifications(rows);
    const seen = async () => ({
      counts: (await storage.push.unreadCounts(alice, [room])).get(room),
      bobCounts: (await storage.push.unreadCounts(bob, [room])).get(room),
      listed: await storage.push.notificationsOf(alice, { limit: 10, onlyHighlight: false }),
      highlights: await storage.push.notificationsOf(alice, { limit: 10, onlyHighlight: true }),
      paged: await storage.push.notificationsOf(alice, { limit: 1, before: third!, onlyHighlight: false }),
      total: await storage.push.totalUnread(alice),
    });
    const before = await seen();
    expect(before.counts).to.deep.include({ notificationCount: 3, highlightCount: 1 });
    expect(before.counts?.threads.get('$root')).to.deep.equal({ notificationCount: 1, highlightCount: 0 });
    expect(before.highlights.map((n) => [n.streamOrdering, n.actions])).to.deep.equal([
      [second, ['notify', { set_tweak: 'highlight' }]],
    ]);
    expect(before.paged.map((n) => n.streamOrdering)).to.deep.equal([second]);
    await storage.close();

    storage = await openSqliteStorage({ path });
    try {
      expect(writtenRows(path)).to.equal(4);
      expect(await seen()).to.deep.equal(before);
      // A read mark after the restart clears what it covers.
      await storage.push.advanceReadMark({
        userId: alice,
        roomId: room,
        threadId: null,
        streamOrdering: second!,
      });
      expect((await storage.push.unreadCounts(alice, [room])).get(room)).to.deep.include({
        notificationCount: 1,
        highlightCount: 0,
      });
    } finally {
      await storage.close();
    }
  });

  it('a database from before integer IDs keeps its notifications through the migration', async () => {
    const version = sqliteMigrations.find((m) => m.name.startsWith('push notification rows name'))!.version;
    let storage = await openSqliteStorage({ path });
    const [first, second] = await storeEvents(storage, 2);
    await storage.close();
    // Back to the text layout of version 18, rows and all.
    const db = new Database(path);
    try {
      db.exec(`
        DROP TABLE push_notifications; DROP TABLE push_names;
        DELETE FROM schema_migrations WHERE version >= ${version};
        CREATE TABLE push_notifications (
          user_id TEXT NOT NULL, room_id TEXT NOT NULL, stream_ordering INTEGER NOT NULL,
          thread_id TEXT NOT NULL, actions TEXT NOT NULL, highlight INTEGER NOT NULL,
          PRIMARY KEY (user_id, room_id, stream_ordering)
        ) STRICT, WITHOUT ROWID;`);
      const insert = db.prepare('INSERT INTO push_notifications VALUES (?, ?, ?, ?, ?, ?)');
      insert.run(alice, room, first, 'main', '["notify"]', 0);
      insert.run(alice, room, second, 'main', '["notify",{"set_tweak":"highlight"}]', 1);
    } finally {
      db.close();
    }
    storage = await openSqliteStorage({ path });
    try {
      // Later migrations (none of them about push) run again too.
      expect(storage.migrations.applied).to.deep.equal(
        sqliteMigrations.filter((m) => m.version >= version).map((m) => m.version),
      );
      expect((await storage.push.unreadCounts(alice, [room])).get(room)).to.deep.include({
        notificationCount: 2,
        highlightCount: 1,
      });
      const listed = await storage.push.notificationsOf(alice, { limit: 10, onlyHighlight: false });
      expect(listed.map((n) => [n.streamOrdering, n.roomId, n.actions, n.highlight])).to.deep.equal([
        [second, room, ['notify', { set_tweak: 'highlight' }], true],
        [first, room, ['notify'], false],
      ]);
    } finally {
      await storage.close();
    }
  });

  it('writes many recipients of many events, each row under its own user', async () => {
    const storage = await openSqliteStorage({ path });
    try {
      const orderings = await storeEvents(storage, 7);
      const users = Array.from({ length: 9 }, (_, i) => `@user${i}:example.org`);
      // 63 rows: a multi-row insert and single rows; each event's recipients share their outcome.
      for (const ordering of orderings) {
        await storage.push.addNotifications(
          users.map((userId, i) => notification(ordering, { userId, highlight: i === 0 })),
        );
      }
      await until(() => writtenRows(path) === 63);
      const db = new Database(path, { readonly: true });
      try {
        const perUser = db
          .prepare(
            `SELECT u.name AS user_id, count(*) AS n, sum(n.highlight) AS h
               FROM push_notifications n JOIN push_names u ON u.id = n.user_name_id
              GROUP BY u.name ORDER BY u.name`,
          )
          .all() as { user_id: string; n: number; h: number }[];
        expect(perUser).to.deep.equal(
          users.map((userId, i) => ({ user_id: userId, n: 7, h: i === 0 ? 7 : 0 })),
        );
      } finally {
        db.close();
      }
      expect((await storage.push.unreadCounts(users[0]!, [room])).get(room)).to.deep.include({
        notificationCount: 7,
        highlightCount: 7,
      });
    } finally {
      await storage.close();
    }
  });

  describe('read marks moved by sending', () => {
    function writtenMark(): number | undefined {
      const db = new Database(path, { readonly: true });
      try {
        return db
          .prepare(
            "SELECT stream_ordering FROM push_read_marks WHERE user_id = ? AND room_id = ? AND thread_id = ''",
          )
          .pluck()
          .get(alice, room) as number | undefined;
      } finally {
        db.close();
      }
    }

    it('count at once, and many moves make one write within 100 ms, not a commit each', async () => {
      const storage = await openSqliteStorage({ path });
      try {
        const [first] = await storeEvents(storage, 1);
        await storage.push.addNotifications([notification(first!)]);
        const commits = storage.commits;
        let last = 0;
        for (let i = 0; i < 3; i++) {
          const [sent] = await storeEvents(storage, 1);
          last = sent!;
          storage.push.advanceReadMarkSoon({
            userId: alice,
            roomId: room,
            threadId: null,
            streamOrdering: last,
          });
          expect((await storage.push.unreadCounts(alice, [room])).has(room)).to.equal(false);
        }
        expect(storage.commits).to.equal(commits + 3);
        expect(writtenMark()).to.equal(undefined);
        await until(() => writtenMark() === last, 500);
        expect(storage.commits).to.be.at.most(commits + 5);
        expect((await storage.push.unreadCounts(alice, [room])).has(room)).to.equal(false);
      } finally {
        await storage.close();
      }
    });

    it('go with the notification rows of the same moment, in one commit', async () => {
      const storage = await openSqliteStorage({ path });
      try {
        const [first, second, third] = await storeEvents(storage, 3);
        const commits = storage.commits;
        await storage.push.addNotifications([notification(first!), notification(third!)]);
        storage.push.advanceReadMarkSoon({
          userId: alice,
          roomId: room,
          threadId: null,
          streamOrdering: second!,
        });
        await until(() => writtenRows(path) === 2, 500);
        expect(writtenMark()).to.equal(second);
        expect(storage.commits).to.equal(commits + 1);
        expect((await storage.push.unreadCounts(alice, [room])).get(room)?.notificationCount).to.equal(1);
      } finally {
        await storage.close();
      }
    });

    it('are written while the rows of the same moment keep failing, which are kept and written later', async () => {
      const storage = await openSqliteStorage({ path });
      const failRows = (fail: boolean) => {
        const db = new Database(path);
        try {
          db.exec(
            fail
              ? "CREATE TRIGGER fail_rows BEFORE INSERT ON push_notifications BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
              : 'DROP TRIGGER fail_rows',
          );
        } finally {
          db.close();
        }
      };
      try {
        const [first, second, third] = await storeEvents(storage, 3);
        failRows(true);
        await storage.push.addNotifications([notification(first!), notification(third!)]);
        storage.push.advanceReadMarkSoon({
          userId: alice,
          roomId: room,
          threadId: null,
          streamOrdering: second!,
        });
        await until(() => writtenMark() === second, 1_000);
        // The rows' write failed (more than once by now) and is tried again later.
        await new Promise((resolve) => setTimeout(resolve, 250));
        expect(writtenRows(path)).to.equal(0);
        expect((await storage.push.unreadCounts(alice, [room])).get(room)?.notificationCount).to.equal(1);
        failRows(false);
        await until(() => writtenRows(path) === 2, 1_000);
        expect((await storage.push.unreadCounts(alice, [room])).get(room)?.notificationCount).to.equal(1);
      } finally {
        await storage.close();
      }
    });

    it('of a thread count the same before and after they are written', async () => {
      const storage = await openSqliteStorage({ path });
      try {
        const [first, second, third, fourth] = await storeEvents(storage, 4);
        await storage.push.addNotifications([
          notification(first!, { threadId: '$thread' }),
          notification(second!, { threadId: '$thread', highlight: true }),
          notification(third!, { threadId: '$thread' }),
          notification(fourth!),
        ]);
        await until(() => writtenRows(path) === 4, 500);
        storage.push.advanceReadMarkSoon({
          userId: alice,
          roomId: room,
          threadId: '$thread',
          streamOrdering: second!,
        });
        const expected = {
          notificationCount: 2,
          highlightCount: 0,
          threads: new Map([
            ['$thread', { notificationCount: 1, highlightCount: 0 }],
            ['main', { notificationCount: 1, highlightCount: 0 }],
          ]),
        };
        expect((await storage.push.unreadCounts(alice, [room])).get(room)).to.deep.equal(expected);
        await until(() => {
          const db = new Database(path, { readonly: true });
          try {
            return db.prepare('SELECT count(*) FROM push_read_marks').pluck().get() === 1;
          } finally {
            db.close();
          }
        }, 500);
        await storage.close();
        const reopened = await openSqliteStorage({ path });
        try {
          expect((await reopened.push.unreadCounts(alice, [room])).get(room)).to.deep.equal(expected);
        } finally {
          await reopened.close();
        }
      } finally {
        await storage.close();
      }
    });

    it('are written when it closes', async () => {
      let storage = await openSqliteStorage({ path });
      const [first, second, third] = await storeEvents(storage, 3);
      await storage.push.addNotifications([notification(first!), notification(third!)]);
      storage.push.advanceReadMarkSoon({
        userId: alice,
        roomId: room,
        threadId: null,
        streamOrdering: second!,
      });
      expect(writtenMark()).to.equal(undefined);
      await until(() => writtenMark() === second, 500);
      storage.push.advanceReadMarkSoon({
        userId: alice,
        roomId: room,
        threadId: null,
        streamOrdering: third!,
      });
      await storage.close();
      expect(writtenMark()).to.equal(third);
      storage = await openSqliteStorage({ path });
      try {
        expect((await storage.push.unreadCounts(alice, [room])).has(room)).to.equal(false);
      } finally {
        await storage.close();
      }
    });
  });
});
