import Database from 'better-sqlite3';
import { expect } from 'chai';
import { SqliteWriteQueue, WriteBatch } from './write-queue.js';

const turns = (count: number) =>
  new Promise<void>((resolve) => {
    const next = (left: number) => (left === 0 ? resolve() : setImmediate(() => next(left - 1)));
    next(count);
  });

describe('SQLite write queue hold', () => {
  let sqlite: Database.Database;
  let queue: SqliteWriteQueue;
  const rows = () => (sqlite.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  const insert = () => {
    const batch = new WriteBatch(false);
    const written = batch.enqueue(() => sqlite.prepare('INSERT INTO t DEFAULT VALUES').run());
    return { written, submitted: queue.submit(batch) };
  };

  beforeEach(() => {
    sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    queue = new SqliteWriteQueue(sqlite, (error) => error);
  });
  afterEach(() => sqlite.close());

  it('keeps writes queued while held and commits them together on release', async () => {
    queue.hold();
    const first = insert();
    const second = insert();
    await turns(5);
    expect(rows()).to.equal(0);
    queue.release();
    await Promise.all([first.submitted, second.submitted]);
    expect(rows()).to.equal(2);
  });

  it('writes everything on an explicit flush (close) even while held', async () => {
    queue.hold();
    const { submitted } = insert();
    queue.flush();
    await submitted;
    expect(rows()).to.equal(1);
  });
});
