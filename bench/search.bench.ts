/**
 * Search: (1) first-page latency of /search's service (index query, history
 * visibility, client formatting; no HTTP) over a corpus of N messages (default
 * 1,000,000) in 100 rooms, persisted directly through the storage layer and
 * indexed by the real indexer; (2) what indexing costs the send path, through
 * RoomEventSender.sendEvent: the CPU time (whole process, every thread) of
 * indexing a round's events against that of sending them, and live, events/s
 * and CPU per event with and without the indexer listening, in alternating
 * rounds. CPU time is the load-independent figure; wall-time figures beside it
 * move with whatever else the machine runs. Prints figures, asserts nothing.
 * Run: node --import tsx bench/search.bench.ts   (SEARCH_BENCH_MESSAGES=200000 for a smaller corpus;
 *      SEARCH_BENCH_SKIP_QUERIES=1 or SEARCH_BENCH_SKIP_SEND=1 for one half only)
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Pdu } from '../protocol/events.js';
import { generateSigningKey } from '../protocol/signing.js';
import { defaultConfig } from '../server/config/index.js';
import { createHomeserver } from '../server/homeserver.js';
import { loadRoomHead } from '../server/rooms/room-head.js';
import { createRoomServices, type RoomServices } from '../server/rooms/room-services.js';
import { SearchIndexer } from '../server/search/search-indexer.js';
import { SEARCH_KEYS } from '../storage/search-index.js';
import { parseSearchTerm } from '../storage/search-text.js';
import { openSqliteStorage } from '../storage/sqlite/sqlite-storage.js';

const SERVER_NAME = 'bench.test';
const MESSAGES = Number(process.env.SEARCH_BENCH_MESSAGES ?? 1_000_000);
const ROOMS = 100;
const PER_TRANSACTION = 1000;
const VOCABULARY = 20_000;
const RUNS = 30;
/** Rounds of the send-vs-index work measure, and alternating rounds of the live comparison. */
const ROUNDS_OF_SHARE = 5;
const ROUNDS_LIVE = 8;

/** A deterministic pseudo-random sequence (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Pronounceable words; word i is drawn with Zipf-like frequency ~ 1/(i+1). */
function vocabulary(): string[] {
  const syllables = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vo', 'shi', 'der', 'pan', 'gul', 'tre', 'zo', 'bi'];
  const next = random(7);
  const words = new Set<string>();
  while (words.size < VOCABULARY) {
    const n = 2 + Math.floor(next() * 3);
    words.add(Array.from({ length: n }, () => syllables[Math.floor(next() * syllables.length)]).join(''));
  }
  return [...words];
}

async function buildCorpus(dir: string, words: string[]): Promise<{ user: string; rooms: string[] }> {
  const storage = await openSqliteStorage({ path: join(dir, 'homeserver.db') });
  const services: RoomServices = createRoomServices({
    storage,
    serverName: SERVER_NAME,
    signingKey: generateSigningKey(),
  });
  const user = `@alice:${SERVER_NAME}`;
  const rooms: string[] = [];
  for (let i = 0; i < ROOMS; i++)
    rooms.push((await services.createRoom(user, { preset: 'private_chat' })).roomId);
  const snapshots = new Map<string, number>();
  for (const roomId of rooms) snapshots.set(roomId, (await loadRoomHead(storage, roomId))!.stateSnapshotId!);

  const next = random(42);
  const logWords = Math.log(words.length + 1);
  const word = () => words[Math.floor(Math.exp(next() * logWords)) - 1] ?? words[0]!;
  const started = performance.now();
  for (let done = 0; done < MESSAGES; done += PER_TRANSACTION) {
    const writes: Promise<unknown>[] = [];
    await storage.transaction((tx) => {
      for (let i = done; i < Math.min(done + PER_TRANSACTION, MESSAGES); i++) {
        const roomId = rooms[i % ROOMS]!;
        const length = 6 + Math.floor(next() * 12);
        const body = Array.from({ length }, word).join(' ');
        const pdu = {
          type: 'm.room.message',
          room_id: roomId,
          sender: user,
          origin_server_ts: 1_700_000_000_000 + i,
          depth: 10 + i,
          prev_events: [],
          auth_events: [],
          content: { msgtype: 'm.text', body },
        } as unknown as Pdu;
        writes.push(
          tx.events.persistEvent({
            event: { eventId: `$bench${i}`, roomId, pdu },
            stateBefore: { snapshotId: snapshots.get(roomId)! },
            updateForwardExtremities: false,
          }),
        );
      }
    });
    await Promise.all(writes);
  }
  console.log(
    `corpus: ${MESSAGES.toLocaleString('en-US')} messages in ${ROOMS} rooms persisted in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  await services.close();
  await storage.close();
  return { user, rooms };
}

async function measureQueries(dir: string, user: string, words: string[]): Promise<void> {
  const config = defaultConfig({ server_name: SERVER_NAME, data_dir: dir, port: 0 });
  const hs = await createHomeserver(config, { logger: pino({ level: 'silent' }) });
  const search = hs.context.search;
  const indexStart = performance.now();
  await search.waitForIndex();
  const indexSeconds = (performance.now() - indexStart) / 1000;
  console.log(
    `indexing: ${MESSAGES.toLocaleString('en-US')} messages in ${indexSeconds.toFixed(1)} s (${Math.round(MESSAGES / indexSeconds).toLocaleString('en-US')} messages/s)`,
  );
  const cases: { name: string; term: string; order: 'rank' | 'recent' }[] = [
    { name: 'common word (rank)', term: words[2]!, order: 'rank' },
    { name: 'common word (recent)', term: words[2]!, order: 'recent' },
    { name: 'common word as a prefix (recent)', term: `${words[2]}*`, order: 'recent' },
    { name: 'mid-frequency word (rank)', term: words[300]!, order: 'rank' },
    { name: 'rare word (rank)', term: words[15_000]!, order: 'rank' },
    { name: 'two words (rank)', term: `${words[10]} ${words[40]}`, order: 'rank' },
    { name: 'prefix of 3 letters (recent)', term: `${words[5]!.slice(0, 3)}*`, order: 'recent' },
    { name: 'prefix of 3 letters (rank)', term: `${words[5]!.slice(0, 3)}*`, order: 'rank' },
  ];
  for (const { name, term, order } of cases) {
    const times: number[] = [];
    let count = 0;
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const page = await search.searchRoomEvents(
        { userId: user },
        { search_term: term, order_by: order },
        undefined,
      );
      times.push(performance.now() - t0);
      count = page.count as number;
    }
    times.sort((a, b) => a - b);
    const index = hs.context.storage.search;
    const rooms = (await hs.context.storage.memberships.membershipsOfUser(user, ['join'])).map(
      (r) => r.roomId,
    );
    const query = {
      expression: parseSearchTerm(term),
      keys: SEARCH_KEYS,
      roomIds: rooms,
      orderBy: order,
      limit: 20,
    };
    const part = async (run: () => Promise<unknown>) => {
      const list: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        await run();
        list.push(performance.now() - t0);
      }
      return list.sort((a, b) => a - b)[5]!.toFixed(1);
    };
    const searchMs = await part(() => index.search(query));
    const countMs = await part(() => index.count(query, 1000));
    console.log(`  index alone: search p50 ${searchMs} ms, count p50 ${countMs} ms`);
    console.log(
      `first page, ${name.padEnd(30)} p50 ${times[Math.floor(RUNS / 2)]!.toFixed(1).padStart(7)} ms  p95 ${times[Math.floor(RUNS * 0.95)]!.toFixed(1).padStart(7)} ms  (${count.toLocaleString('en-US')} matches)`,
    );
  }
  await hs.stop();
}

/** events/s of 20 closed-loop senders in 20 rooms for `ms`. */
async function sendRate(services: RoomServices, user: string, rooms: string[], ms: number): Promise<number> {
  let sent = 0;
  const end = performance.now() + ms;
  const start = performance.now();
  await Promise.all(
    rooms.map(async (roomId, i) => {
      while (performance.now() < end) {
        await services.sender.sendEvent({
          roomId,
          sender: user,
          type: 'm.room.message',
          content: { msgtype: 'm.text', body: `message ${sent} from sender ${i} about turnips 🥕` },
        });
        sent++;
      }
    }),
  );
  return sent / ((performance.now() - start) / 1000);
}

/** CPU time of the whole process (every thread: the main one and SQLite's checkpointer), in µs. */
function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

const median = (list: readonly number[]) => {
  const sorted = [...list].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

async function measureSendCost(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'myelin-search-send-'));
  const storage = await openSqliteStorage({ path: join(dir, 'bench.db') });
  const services = createRoomServices({ storage, serverName: SERVER_NAME, signingKey: generateSigningKey() });
  try {
    const user = `@alice:${SERVER_NAME}`;
    const rooms: string[] = [];
    for (let i = 0; i < 20; i++)
      rooms.push((await services.createRoom(user, { preset: 'public_chat' })).roomId);
    const indexer = new SearchIndexer({ storage, index: storage.search, log: pino({ level: 'silent' }) });
    await sendRate(services, user, rooms, 1000); // warm-up
    await indexer.catchUp();
    // Work per event, measured apart: sending (build, sign, authorise, persist) vs indexing the same
    // events. CPU time (all threads) is the figure: it does not grow with other load on the machine
    // the way wall time does; wall time is shown beside it.
    const cpuShares: number[] = [];
    const wallShares: number[] = [];
    for (let round = 0; round < ROUNDS_OF_SHARE; round++) {
      const from = await storage.events.latestStreamOrdering();
      const sendCpu = cpuMicros();
      const sendStart = performance.now();
      const rate = await sendRate(services, user, rooms, 2000);
      const sendMs = performance.now() - sendStart;
      const sendUs = cpuMicros() - sendCpu;
      const sent = (await storage.events.latestStreamOrdering()) - from;
      const indexCpu = cpuMicros();
      const indexStart = performance.now();
      await indexer.catchUp();
      const indexMs = performance.now() - indexStart;
      const indexUs = cpuMicros() - indexCpu;
      cpuShares.push(indexUs / (sendUs + indexUs));
      wallShares.push(indexMs / (sendMs + indexMs));
      console.log(
        `send path, round ${round + 1}: ${sent} events at ${Math.round(rate)} events/s; CPU per event: send ${(sendUs / sent).toFixed(0)} us, index ${(indexUs / sent).toFixed(1)} us; wall: send ${((sendMs * 1000) / sent).toFixed(0)} us, index ${((indexMs * 1000) / sent).toFixed(1)} us`,
      );
    }
    console.log(
      `indexing share of send-path work: ${(median(cpuShares) * 100).toFixed(1)}% of CPU time (median of ${ROUNDS_OF_SHARE}; range ${(Math.min(...cpuShares) * 100).toFixed(1)}-${(Math.max(...cpuShares) * 100).toFixed(1)}%), ${(median(wallShares) * 100).toFixed(1)}% of wall time`,
    );
    // The same live: senders with and without the indexer listening, rounds alternating. Per round:
    // throughput, and CPU per sent event; a "with" round's CPU includes indexing what it left pending.
    let unsubscribe: (() => void) | null = null;
    const rates: Record<'without' | 'with', number[]> = { without: [], with: [] };
    const cpuPerEvent: Record<'without' | 'with', number[]> = { without: [], with: [] };
    for (let round = 0; round < ROUNDS_LIVE; round++) {
      // Which mode goes first alternates too, so a trend in the machine's load favours neither.
      const order = round % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const);
      for (const mode of order) {
        await indexer.catchUp();
        if (mode === 'with') unsubscribe = services.sender.onEventPersisted(indexer.eventPersisted);
        const from = await storage.events.latestStreamOrdering();
        const cpu = cpuMicros();
        rates[mode].push(await sendRate(services, user, rooms, 2000));
        unsubscribe?.();
        unsubscribe = null;
        if (mode === 'with') await indexer.catchUp();
        const used = cpuMicros() - cpu;
        cpuPerEvent[mode].push(used / ((await storage.events.latestStreamOrdering()) - from));
      }
    }
    // Each round's pair ran back to back: comparing within pairs cancels drifts of the machine's load.
    const pairs = rates.with.map((_, i) => i);
    const throughputCosts = pairs.map((i) => 1 - rates.with[i]! / rates.without[i]!);
    const liveShares = pairs.map((i) => 1 - cpuPerEvent.without[i]! / cpuPerEvent.with[i]!);
    const percent = (share: number) => `${(share * 100).toFixed(1)}%`;
    console.log(
      `send path live, 20 rooms x 1 sender, ${ROUNDS_LIVE} alternating pairs of rounds: without indexer ${Math.round(median(rates.without))} events/s, with ${Math.round(median(rates.with))} events/s (medians); ${percent(median(throughputCosts))} fewer (median of the pairs)`,
    );
    console.log(
      `  CPU per event (all threads): without ${median(cpuPerEvent.without).toFixed(0)} us, with ${median(cpuPerEvent.with).toFixed(0)} us; indexing's share of the work with it: ${percent(median(liveShares))} (median of the pairs; range ${percent(Math.min(...liveShares))} to ${percent(Math.max(...liveShares))})`,
    );
    await indexer.close();
  } finally {
    await services.close();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// SEARCH_BENCH_DIR keeps the corpus there and reuses it on the next run.
const keptDir = process.env.SEARCH_BENCH_DIR;
const dir = keptDir ?? mkdtempSync(join(tmpdir(), 'myelin-search-bench-'));
try {
  const words = vocabulary();
  const user = `@alice:${SERVER_NAME}`;
  const corpusWanted = !process.env.SEARCH_BENCH_SKIP_QUERIES;
  if (corpusWanted && (keptDir === undefined || !existsSync(join(dir, 'homeserver.db')))) {
    mkdirSync(dir, { recursive: true });
    await buildCorpus(dir, words);
  }
  if (!process.env.SEARCH_BENCH_SKIP_QUERIES) await measureQueries(dir, user, words);
  if (!process.env.SEARCH_BENCH_SKIP_SEND) await measureSendCost();
} finally {
  if (keptDir === undefined) rmSync(dir, { recursive: true, force: true });
}
