import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { openSqliteStorage } from './sqlite-storage.js';

const writerScript = fileURLToPath(new URL('./durability-writer.ts', import.meta.url));
const repositoryRoot = join(dirname(writerScript), '..', '..');
const ROOMS = 8;

interface Acknowledged {
  readonly events: Map<number, string[]>;
  readonly accounts: string[];
}

/** Runs the writer until `enough` writes are acknowledged, SIGKILLs it, and returns every acknowledged write. */
function runWriterAndKill(path: string, enough: number): Promise<Acknowledged> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', writerScript, path], {
      cwd: repositoryRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acknowledged: Acknowledged = { events: new Map(), accounts: [] };
    let count = 0;
    let pending = '';
    let stderr = '';
    let killed = false;
    const take = (line: string) => {
      const [kind, first, second] = line.split(' ');
      if (kind === 'event') {
        const room = Number(first);
        acknowledged.events.set(room, [...(acknowledged.events.get(room) ?? []), second!]);
      } else if (kind === 'account') {
        acknowledged.accounts.push(first!);
      } else {
        return;
      }
      count += 1;
    };
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      lines.forEach(take);
      if (!killed && count >= enough) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    // 'close' fires once stdout is drained, so acknowledgements still in the pipe are counted.
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') {
        reject(new Error(`writer ended by itself (code ${code}): ${stderr}`));
        return;
      }
      resolve(acknowledged);
    });
  });
}

describe('SQLite durability across SIGKILL', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'myelin-durability-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged write and an intact database after the writer is killed mid-stream', async function () {
    this.timeout(60_000);
    const path = join(dir, 'durable.db');
    const acknowledged = await runWriterAndKill(path, 3000);
    const acknowledgedEvents = [...acknowledged.events.values()].flat();
    expect(acknowledgedEvents.length).to.be.greaterThan(1000);
    expect(acknowledged.accounts.length).to.be.greaterThan(100);

    const storage = await openSqliteStorage({ path });
    try {
      expect(await storage.integrityCheck()).to.deep.equal(['ok']);
      const stored = await storage.events.getEvents(acknowledgedEvents);
      const missing = acknowledgedEvents.filter((id) => !stored.has(id));
      expect(missing, 'acknowledged events missing after the kill').to.deep.equal([]);
      for (const userId of acknowledged.accounts) {
        expect(await storage.accounts.getAccount(userId), userId).to.not.equal(null);
      }

      // Each room is a chain; whatever got in, its event, edges and extremity were written together.
      for (let i = 0; i < ROOMS; i++) {
        const roomId = `!durable${i}:example.org`;
        const timeline = await storage.events.roomEventsAfter(roomId, 0, 1_000_000);
        const acked = acknowledged.events.get(i) ?? [];
        expect(timeline.length).to.be.at.least(acked.length);
        expect(timeline.slice(0, acked.length).map((e) => e.eventId)).to.deep.equal(acked);
        expect(await storage.state.forwardExtremities(roomId)).to.deep.equal([timeline.at(-1)!.eventId]);
      }
    } finally {
      await storage.close();
    }
  });
});
