import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { openSqliteStorage } from './sqlite-storage.js';
import { walFramesInUse } from './wal-index.js';

/** Where the WAL grew to before: the main connection's wal_autocheckpoint, which ran the checkpoint that restarted it. */
const OLD_BACKSTOP_FRAMES = 16_384;

describe('background WAL checkpoints', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'myelin-checkpoint-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('copies committed pages into the database file while the writer keeps committing, and stops with the storage', async () => {
    const path = join(dir, 'db.sqlite');
    const storage = await openSqliteStorage({ path });
    const sizeAtOpen = statSync(path).size;
    // Far below the committing connection's own (backstop) checkpoint threshold: only the worker moves pages.
    for (let i = 0; i < 300; i++) {
      await storage.accounts.createAccount({
        userId: `@user${i}:example.org`,
        createdTs: i,
        displayName: `user ${i} ${'x'.repeat(2000)}`,
      });
    }
    const deadline = Date.now() + 5000;
    while (statSync(path).size <= sizeAtOpen && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(statSync(path).size).to.be.greaterThan(sizeAtOpen);
    await storage.close();

    const reopened = await openSqliteStorage({ path });
    expect((await reopened.accounts.getAccount('@user299:example.org'))?.createdTs).to.equal(299);
    expect(await reopened.integrityCheck()).to.deep.equal(['ok']);
    await reopened.close();
  });

  it('restarts the WAL from its beginning under a steady stream of small commits, long before the backstop', async () => {
    const path = join(dir, 'db.sqlite');
    const storage = await openSqliteStorage({ path });
    let mostFrames = 0;
    let restarted = false;
    const deadline = Date.now() + 15_000;
    for (let i = 0; !restarted && Date.now() < deadline; i++) {
      // One small transaction per commit, each awaited: commits never stop for long.
      await storage.accounts.createAccount({
        userId: `@stream${i}:example.org`,
        createdTs: i,
        displayName: 'x'.repeat(500),
      });
      const frames = walFramesInUse(path);
      restarted = frames < mostFrames;
      mostFrames = Math.max(mostFrames, frames);
    }
    await storage.close();
    expect(restarted, 'the WAL restarted').to.equal(true);
    // Below the old backstop (where the main thread used to checkpoint): a starved worker may lag.
    expect(mostFrames).to.be.below(OLD_BACKSTOP_FRAMES);

    const reopened = await openSqliteStorage({ path });
    expect(await reopened.integrityCheck()).to.deep.equal(['ok']);
    await reopened.close();
  });
});
