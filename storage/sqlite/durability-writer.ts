/**
 * Child process of durability.test.ts: writes to a real database file as fast
 * as it can and prints one line per write once that write has committed
 * ("event <roomIndex> <eventId>" or "account <userId>"), until it is killed.
 * Usage: node --import tsx storage/sqlite/durability-writer.ts <database path>
 */
import { TestRoom } from '../contract/test-events.js';
import { openSqliteStorage } from './sqlite-storage.js';

const DURABILITY_ROOMS = 8;

async function writeUntilKilled(path: string): Promise<void> {
  const storage = await openSqliteStorage({ path });
  const rooms = Array.from({ length: DURABILITY_ROOMS }, (_, i) => new TestRoom(`!durable${i}:example.org`));
  const lastEventOf: (string | undefined)[] = [];
  for (let round = 0; ; round++) {
    // One round: a write per room plus an account, all in flight together so they share group commits.
    const writes = rooms.map(async (room, i) => {
      const prev = lastEventOf[i];
      const event = room.event({ prevEvents: prev ? [prev] : [], content: { body: `round ${round} 💾` } });
      lastEventOf[i] = event.eventId;
      await storage.events.persistEvent({ event });
      process.stdout.write(`event ${i} ${event.eventId}\n`);
    });
    const userId = `@user${round}:example.org`;
    writes.push(
      storage.accounts.createAccount({ userId, createdTs: round }).then(() => {
        process.stdout.write(`account ${userId}\n`);
      }),
    );
    await Promise.all(writes);
  }
}

const path = process.argv[2];
if (!path) throw new Error('usage: durability-writer.ts <database path>');
await writeUntilKilled(path);
