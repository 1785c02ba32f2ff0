/**
 * The room event service alone (no HTTP): events/s through RoomEventSender.sendEvent
 * into a SQLite file database, each event built, hashed, signed, authorised and
 * committed. Clients are closed loops: each awaits its send before the next.
 * Prints figures, asserts nothing. Run: node --import tsx bench/room-send.bench.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, type SigningKey } from '../protocol/signing.js';
import { type BuiltEvent, buildRoomEvent } from '../server/rooms/event-builder.js';
import { RoomDraft } from '../server/rooms/room-draft.js';
import { loadRoomHead } from '../server/rooms/room-head.js';
import { createRoomServices, type RoomServices } from '../server/rooms/room-services.js';
import { openSqliteStorage, type SqliteStorage } from '../storage/sqlite/sqlite-storage.js';

type Report = (name: string, opsPerSec: number, note?: string) => void;

const SERVER_NAME = 'bench.test';
const MEASURE_MS = 3000;
const ROUNDS = 3;

interface Scenario {
  readonly name: string;
  readonly clients: number;
  /** Room of client i. */
  readonly roomOf: (client: number) => string;
}

/** Runs `clients` closed loops for about `ms`; returns events per second. */
async function runClients(
  services: RoomServices,
  scenario: Scenario,
  sender: string,
  ms: number,
): Promise<number> {
  let sent = 0;
  const end = performance.now() + ms;
  const start = performance.now();
  const client = async (i: number) => {
    const roomId = scenario.roomOf(i);
    while (performance.now() < end) {
      await services.sender.sendEvent({
        roomId,
        sender,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: `message ${sent} from client ${i} 🧠` },
      });
      sent++;
    }
  };
  await Promise.all(Array.from({ length: scenario.clients }, (_, i) => client(i)));
  return sent / ((performance.now() - start) / 1000);
}

/**
 * Where the time goes: building (hash, sign, authorise) a chain of events in memory,
 * then persisting those same events through storage one per transaction and 50 per transaction.
 */
async function reportBuildAndPersistShares(
  storage: SqliteStorage,
  signingKey: SigningKey,
  roomId: string,
  sender: string,
  report: Report,
): Promise<void> {
  const signer = { serverName: SERVER_NAME, key: signingKey };
  const head = (await loadRoomHead(storage, roomId))!;
  await head.load(storage, [
    ['m.room.power_levels', ''],
    ['m.room.member', sender],
  ]);
  const draft = new RoomDraft(head);
  const built: BuiltEvent[] = [];
  const started = performance.now();
  for (let i = 0; i < 10_000; i++) {
    const content = { msgtype: 'm.text', body: `message ${i} 🧠` };
    const event = buildRoomEvent(draft, { sender, type: 'm.room.message', content }, signer, Date.now());
    draft.accept(event.event);
    built.push(event);
  }
  report(
    '  of which: build, hash, sign, authorise (memory)',
    built.length / ((performance.now() - started) / 1000),
  );

  const stateBefore = { snapshotId: head.stateSnapshotId! };
  const persistFrom = async (from: number, count: number, perTransaction: number): Promise<number> => {
    const t0 = performance.now();
    for (let i = from; i < from + count; i += perTransaction) {
      const writes: Promise<unknown>[] = [];
      await storage.transaction((tx) => {
        for (const { event, json } of built.slice(i, i + perTransaction)) {
          writes.push(tx.events.persistEvent({ event, json, stateBefore }));
        }
      });
      await Promise.all(writes);
    }
    return count / ((performance.now() - t0) / 1000);
  };
  const stored = `into a database of ${(await storage.events.latestStreamOrdering()).toLocaleString('en-US')} events`;
  report('  of which: persist, one event per transaction', await persistFrom(0, 5000, 1), stored);
  report('  of which: persist, 50 events per transaction', await persistFrom(5000, 5000, 50), stored);
}

export async function runRoomSendBench(report: Report): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'myelin-room-send-'));
  const signingKey = generateSigningKey();
  const storage = await openSqliteStorage({ path: join(dir, 'bench.db') });
  const services = createRoomServices({ storage, serverName: SERVER_NAME, signingKey });
  try {
    const sender = `@alice:${SERVER_NAME}`;
    await storage.accounts.createAccount({ userId: sender, createdTs: Date.now(), displayName: 'Alice' });
    const { roomId } = await services.createRoom(sender, { preset: 'public_chat', name: 'Bench' });
    const rooms = await Promise.all(
      Array.from({ length: 50 }, () => services.createRoom(sender, { preset: 'public_chat' })),
    );
    const scenarios: Scenario[] = [
      { name: 'sendEvent: one room, sequential', clients: 1, roomOf: () => roomId },
      { name: 'sendEvent: one room, 50 concurrent senders', clients: 50, roomOf: () => roomId },
      { name: 'sendEvent: 50 rooms, one sender each', clients: 50, roomOf: (i) => rooms[i]!.roomId },
    ];
    await runClients(services, scenarios[0]!, sender, 500); // warm-up
    for (const scenario of scenarios) {
      const rates: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        rates.push(await runClients(services, scenario, sender, MEASURE_MS));
      }
      rates.sort((a, b) => a - b);
      report(
        scenario.name,
        rates.at(-1)!,
        `best of ${ROUNDS}; median ${Math.round(rates[Math.floor(ROUNDS / 2)]!).toLocaleString('en-US')}`,
      );
    }
    await reportBuildAndPersistShares(storage, signingKey, roomId, sender, report);
  } finally {
    await services.close();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain) {
  await runRoomSendBench((name, ops, note) =>
    console.log(
      `${name.padEnd(48)} ${Math.round(ops).toLocaleString('en-US').padStart(10)} events/s  ${note ?? ''}`,
    ),
  );
}
