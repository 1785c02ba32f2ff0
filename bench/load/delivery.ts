/**
 * Send-to-delivery latency: N receivers in one room, each syncing (over the
 * io.myelin WebSocket or by /sync long-polls), while one sender sends M
 * messages at a fixed rate over HTTP keep-alive (open loop: a send does not
 * wait for the previous answer). Every message carries its sequence number;
 * each receiver counts what it sees, so the result shows what was lost or
 * duplicated besides the latency from "send issued" to "seen by the receiver"
 * (both clocks are this process's performance.now()).
 *
 * Getting the receivers ready (sockets opened and authenticated, first syncs
 * answered) has a time budget: receivers not ready by then are left out and
 * the table says how many took part.
 */
import { setMaxListeners } from 'node:events';
import WebSocket from 'ws';
import { KeepAliveClient, sendPath } from './http-client.js';
import type { BenchUser, ServerMemory } from './ipc.js';
import { type LatencySummary, monotonicMicros, summarise } from './report.js';
import type { ServerHandle } from './server-handle.js';

const WS_PATH = '/_matrix/client/unstable/io.myelin/ws';
const CONNECT_BATCH = 50;
/** How long after the last send the receivers may take to see everything. */
const DRAIN_MS = 15_000;
/** After the warm-up messages, time for their fan-out to end before the measured ones. */
const WARMUP_SETTLE_MS = 500;
const LONG_POLL_TIMEOUT_MS = 30_000;
/** Timeline events per sync: enough that a receiver a few seconds behind still gets every message. */
const TIMELINE_LIMIT = 50;

export interface DeliveryOptions {
  readonly receivers: number;
  readonly events: number;
  readonly eventsPerSecond: number;
  /**
   * Messages sent at the rate before the measured ones, seen by the receivers but neither
   * timed nor counted, nor in the CPU figure: the first messages a started server fans out
   * run cold code (a p99 over 50 messages is their first one or two).
   */
  readonly warmupEvents: number;
  /** Whether the receivers ask for ephemeral events (typing, read and delivery receipts), as clients do. */
  readonly ephemeral: boolean;
  /** Time allowed to get the receivers ready (connected, first sync answered). */
  readonly connectBudgetMs: number;
}

export interface DeliveryResult {
  readonly transport: 'websocket' | 'long-poll';
  /** Receivers that were ready in time and took part. */
  readonly receivers: number;
  readonly receiversWanted: number;
  readonly events: number;
  readonly eventsPerSecond: number;
  readonly latency: LatencySummary;
  /** (receiver, message) pairs never seen. */
  readonly missing: number;
  /** Sightings beyond the first of a (receiver, message) pair. */
  readonly duplicates: number;
  /** Timelines with limited: true that carried benchmark messages (the receiver fell behind). */
  readonly limitedTimelines: number;
  readonly sendFailures: number;
  /** Long-polls that failed, or sockets closed before the end. */
  readonly receiveErrors: number;
  /** Sync answers or pushed deltas received during the send phase, all receivers together. */
  readonly syncResponses: number;
  readonly connectSeconds: number;
  /** The send phase (first send to end of drain) on the monotonic clock, in microseconds. */
  readonly sendPhase: { readonly fromMicros: number; readonly toMicros: number };
  /**
   * The server's CPU time (all its threads) over the send phase, per message sent: holds up
   * better than latency when other work shares the machine, so compare code versions by it.
   */
  readonly serverCpuPerMessage: number;
  /**
   * This driver's CPU time over the same phase, per message: it shares the two cores with
   * the server, so a driver near a core's worth would delay the receivers' first sight.
   */
  readonly driverCpuPerMessage: number;
  /** WebSocket only: before any socket, with every socket authenticated, with every socket syncing. */
  readonly memory?: {
    /** Sockets opened and authenticated in time. */
    readonly sockets: number;
    readonly before: ServerMemory;
    readonly authenticated: ServerMemory;
    readonly syncing: ServerMemory;
  };
}

/** What each receiver saw, message by message. */
class DeliveryLedger {
  readonly sentAt: number[] = [];
  private readonly sightings: Uint8Array;
  private readonly taking = new Set<number>();
  readonly latencies: number[] = [];
  /** Each message's latencies (the slowest messages are printed: a p99 is a message or two). */
  readonly latenciesBySeq: number[][] = [];
  private firstSightings = 0;
  duplicates = 0;
  limitedTimelines = 0;
  syncResponses = 0;

  constructor(
    receivers: number,
    readonly events: number,
    private readonly runTag: string,
    private readonly roomId: string,
  ) {
    this.sightings = new Uint8Array(receivers * events);
  }

  /** The receiver is ready and takes part: what it misses from now on counts. */
  takePart(receiver: number): void {
    this.taking.add(receiver);
  }

  get participants(): number {
    return this.taking.size;
  }

  get complete(): boolean {
    return this.firstSightings === this.taking.size * this.events;
  }

  get missing(): number {
    return this.taking.size * this.events - this.firstSightings;
  }

  /** Reads one sync body (an initial or incremental /sync answer, or a pushed delta). */
  observe(receiver: number, body: Record<string, unknown>): void {
    const now = performance.now();
    this.syncResponses++;
    if (!this.taking.has(receiver)) return;
    const rooms = body.rooms as { join?: Record<string, { timeline?: TimelineShape }> } | undefined;
    const timeline = rooms?.join?.[this.roomId]?.timeline;
    if (timeline?.events === undefined) return;
    let ours = false;
    for (const event of timeline.events) {
      const content = event.content as { bench_run?: unknown; bench_seq?: unknown } | undefined;
      if (content?.bench_run !== this.runTag || typeof content.bench_seq !== 'number') continue;
      ours = true;
      const seq = content.bench_seq;
      const slot = receiver * this.events + seq;
      if (this.sightings[slot]! > 0) {
        this.duplicates++;
      } else {
        this.firstSightings++;
        const sentAt = this.sentAt[seq];
        if (sentAt !== undefined) {
          this.latencies.push(now - sentAt);
          this.latenciesBySeq[seq] ??= [];
          this.latenciesBySeq[seq].push(now - sentAt);
        }
      }
      this.sightings[slot] = Math.min(255, this.sightings[slot]! + 1);
    }
    if (ours && timeline.limited === true) this.limitedTimelines++;
  }
}

interface TimelineShape {
  events?: { content?: unknown }[];
  limited?: boolean;
}

function sleep(msToWait: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, msToWait)));
}

/** Runs `task` for each item, CONNECT_BATCH at a time, until the deadline; returns the indexes that succeeded. */
async function inBatchesUntil(
  count: number,
  deadline: number,
  task: (index: number, signal: AbortSignal) => Promise<void>,
): Promise<number[]> {
  const done: number[] = [];
  for (let start = 0; start < count && performance.now() < deadline; start += CONNECT_BATCH) {
    const signal = AbortSignal.timeout(Math.max(1, Math.ceil(deadline - performance.now())));
    setMaxListeners(CONNECT_BATCH + 10, signal);
    const indexes = Array.from({ length: Math.min(CONNECT_BATCH, count - start) }, (_, i) => start + i);
    const outcomes = await Promise.allSettled(indexes.map((index) => task(index, signal)));
    outcomes.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') done.push(indexes[i]!);
    });
  }
  return done;
}

/** Uploads each receiver's filter: only the bench room, a timeline long enough not to coalesce, lazy members. */
async function uploadFilters(
  server: ServerHandle,
  receivers: readonly BenchUser[],
  roomId: string,
  ephemeral: boolean,
): Promise<string[]> {
  const client = new KeepAliveClient(server.port, 8);
  const filter = {
    room: {
      rooms: [roomId],
      timeline: { limit: TIMELINE_LIMIT },
      state: { lazy_load_members: true },
      ...(ephemeral ? {} : { ephemeral: { not_types: ['*'] } }),
    },
    presence: { not_types: ['*'] },
    account_data: { not_types: ['*'] },
  };
  try {
    const ids: string[] = [];
    for (let start = 0; start < receivers.length; start += CONNECT_BATCH) {
      const batch = receivers.slice(start, start + CONNECT_BATCH);
      const answers = await Promise.all(
        batch.map((user) =>
          client.call(
            'POST',
            `/_matrix/client/v3/user/${encodeURIComponent(user.userId)}/filter`,
            user.accessToken,
            filter,
          ),
        ),
      );
      for (const answer of answers) {
        if (answer.status !== 200)
          throw new Error(`filter upload: ${answer.status} ${JSON.stringify(answer.body)}`);
        ids.push(String(answer.body.filter_id));
      }
    }
    return ids;
  } finally {
    client.close();
  }
}

/**
 * Sends the messages open-loop at the given rate; resolves when every send has been
 * answered or at the deadline, with the number of sends that failed or were not answered.
 */
async function sendAtRate(
  server: ServerHandle,
  sender: BenchUser,
  roomId: string,
  ledger: DeliveryLedger,
  runTag: string,
  eventsPerSecond: number,
  deadline: number,
): Promise<number> {
  const client = new KeepAliveClient(server.port, 8);
  const interval = 1000 / eventsPerSecond;
  const started = performance.now();
  const answers: Promise<boolean>[] = [];
  try {
    for (let seq = 0; seq < ledger.events; seq++) {
      await sleep(started + seq * interval - performance.now());
      ledger.sentAt[seq] = performance.now();
      answers.push(
        client
          .call('PUT', sendPath(roomId, `${runTag}-${seq}`), sender.accessToken, {
            msgtype: 'm.text',
            body: `delivery ${seq} 📬`,
            bench_run: runTag,
            bench_seq: seq,
          })
          .then(
            (answer) => answer.status === 200,
            () => false,
          ),
      );
    }
    let answeredOk = 0;
    const counted = answers.map((answer) => answer.then((ok) => void (ok && answeredOk++)));
    await Promise.race([Promise.all(counted), sleep(deadline - performance.now())]);
    return ledger.events - answeredOk;
  } finally {
    client.close();
  }
}

/** The `count` messages with the highest median latency, as "#seq p50/max ms". */
function slowestMessages(ledger: DeliveryLedger, count: number): string {
  const medians = ledger.latenciesBySeq.flatMap((latencies, seq) => {
    if (latencies === undefined || latencies.length === 0) return [];
    const sorted = [...latencies].sort((a, b) => a - b);
    return [{ seq, p50: sorted[Math.floor(sorted.length / 2)]!, max: sorted.at(-1)! }];
  });
  return medians
    .sort((a, b) => b.p50 - a.p50)
    .slice(0, count)
    .map(({ seq, p50, max }) => `#${seq} ${p50.toFixed(0)}/${max.toFixed(0)} ms`)
    .join(', ');
}

/** The send phase: messages at the rate, then up to DRAIN_MS for the answers and for the receivers to see them all. */
/** What a delivery phase reports from its ledger and its send phase (the transport adds its errors and memory). */
function deliveryResult(
  transport: DeliveryResult['transport'],
  ledger: DeliveryLedger,
  receiversWanted: number,
  options: Pick<DeliveryOptions, 'events' | 'eventsPerSecond'>,
  phase: SendPhase,
  connectSeconds: number,
): Omit<DeliveryResult, 'receiveErrors' | 'memory'> {
  return {
    transport,
    receivers: ledger.participants,
    receiversWanted,
    events: options.events,
    eventsPerSecond: options.eventsPerSecond,
    latency: summarise(ledger.latencies),
    missing: ledger.missing,
    duplicates: ledger.duplicates,
    limitedTimelines: ledger.limitedTimelines,
    sendFailures: phase.sendFailures,
    syncResponses: ledger.syncResponses,
    connectSeconds,
    sendPhase: { fromMicros: phase.fromMicros, toMicros: phase.toMicros },
    serverCpuPerMessage: phase.serverCpuPerMessage,
    driverCpuPerMessage: phase.driverCpuPerMessage,
  };
}

interface SendPhase {
  readonly sendFailures: number;
  readonly fromMicros: number;
  readonly toMicros: number;
  readonly serverCpuPerMessage: number;
  readonly driverCpuPerMessage: number;
}

async function sendAndDrain(
  server: ServerHandle,
  sender: BenchUser,
  roomId: string,
  ledger: DeliveryLedger,
  runTag: string,
  eventsPerSecond: number,
  warmupEvents: number,
): Promise<SendPhase> {
  if (warmupEvents > 0) {
    const warmup = new DeliveryLedger(0, warmupEvents, `${runTag}-warmup`, roomId);
    const end = performance.now() + (warmupEvents / eventsPerSecond) * 1000 + DRAIN_MS;
    await sendAtRate(server, sender, roomId, warmup, `${runTag}-warmup`, eventsPerSecond, end);
    await sleep(WARMUP_SETTLE_MS);
  }
  ledger.syncResponses = 0;
  const cpuAtStart = await server.cpuMicros();
  const driverCpuAtStart = process.cpuUsage();
  const fromMicros = monotonicMicros();
  const deadline = performance.now() + (ledger.events / eventsPerSecond) * 1000 + DRAIN_MS;
  const sendFailures = await sendAtRate(server, sender, roomId, ledger, runTag, eventsPerSecond, deadline);
  while (!ledger.complete && performance.now() < deadline) await sleep(50);
  const toMicros = monotonicMicros();
  const driverCpu = process.cpuUsage(driverCpuAtStart);
  const driverCpuPerMessage = (driverCpu.user + driverCpu.system) / Math.max(1, ledger.events);
  console.log(`slowest messages (#seq p50/max): ${slowestMessages(ledger, 5)}`);
  const serverCpuPerMessage = ((await server.cpuMicros()) - cpuAtStart) / Math.max(1, ledger.events);
  return { sendFailures, fromMicros, toMicros, serverCpuPerMessage, driverCpuPerMessage };
}

/**
 * The parsed frames the receivers got last. The server pushes the same frame to most
 * of the thousand sockets of a wake: each receiver still reads its own bytes, but the
 * same bytes are decoded and parsed once (the ledger only reads what is parsed), so the
 * driver, which shares the machine with the server, spends its CPU on receiving rather
 * than on a thousand parses of one text. What it measures is unchanged.
 */
class ParsedFrames {
  private readonly recent: { readonly bytes: Buffer; readonly parsed: unknown }[] = [];
  private next = 0;

  parse(data: WebSocket.RawData): unknown {
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(String(data));
    for (const known of this.recent) if (known.bytes.equals(bytes)) return known.parsed;
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    this.recent[this.next] = { bytes, parsed };
    this.next = (this.next + 1) % 4;
    return parsed;
  }
}

const sharedFrames = new ParsedFrames();

/** A receiver's socket: opened and authenticated with the Authorization header; sync started on request. */
class ReceiverSocket {
  private constructor(private readonly socket: WebSocket) {}

  static open(server: ServerHandle, user: BenchUser, signal: AbortSignal): Promise<ReceiverSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${server.port}${WS_PATH}`, {
        headers: { Authorization: `Bearer ${user.accessToken}` },
        perMessageDeflate: false,
      });
      const fail = (error: Error) => {
        signal.removeEventListener('abort', onAbort);
        socket.terminate();
        reject(error);
      };
      const onAbort = () => fail(new Error(`socket of ${user.userId} not authenticated in time`));
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('error', fail);
      socket.once('message', (data) => {
        signal.removeEventListener('abort', onAbort);
        const frame = JSON.parse(String(data)) as { type: string };
        if (frame.type === 'authenticated') resolve(new ReceiverSocket(socket));
        else fail(new Error(`socket of ${user.userId}: ${String(data)}`));
      });
    });
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Starts the sync stream; resolves at the first (initial) delta. Every delta goes to `onSync`. */
  startSync(
    filterId: string,
    onSync: (body: Record<string, unknown>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      let started = false;
      const onAbort = () => reject(new Error('initial sync not pushed in time'));
      signal.addEventListener('abort', onAbort, { once: true });
      this.socket.on('message', (data) => {
        const frame = sharedFrames.parse(data) as { type: string; body?: Record<string, unknown> };
        if (frame.type === 'sync' && frame.body !== undefined) {
          onSync(frame.body);
          if (!started) {
            started = true;
            signal.removeEventListener('abort', onAbort);
            resolve();
          }
        } else if (frame.type === 'error' && !started) {
          signal.removeEventListener('abort', onAbort);
          reject(new Error(String(data)));
        }
      });
      this.socket.send(JSON.stringify({ type: 'sync', filter: filterId }));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.readyState === WebSocket.CLOSED) return resolve();
      const timer = setTimeout(() => {
        this.socket.terminate();
        resolve();
      }, 2000);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.close(1000);
    });
  }
}

export async function runWebSocketDelivery(
  server: ServerHandle,
  sender: BenchUser,
  receivers: readonly BenchUser[],
  roomId: string,
  options: DeliveryOptions,
): Promise<DeliveryResult> {
  const runTag = `ws-${Date.now()}`;
  const ledger = new DeliveryLedger(receivers.length, options.events, runTag, roomId);
  const filterIds = await uploadFilters(server, receivers, roomId, options.ephemeral);
  const before = await server.memory();
  const sockets = new Map<number, ReceiverSocket>();
  const connectStart = performance.now();
  const deadline = connectStart + options.connectBudgetMs;
  try {
    await inBatchesUntil(receivers.length, deadline, async (index, signal) => {
      sockets.set(index, await ReceiverSocket.open(server, receivers[index]!, signal));
    });
    await sleep(500);
    const authenticated = await server.memory();
    const opened = [...sockets.keys()];
    const syncing = await inBatchesUntil(opened.length, deadline, (i, signal) =>
      sockets
        .get(opened[i]!)!
        .startSync(filterIds[opened[i]!]!, (body) => ledger.observe(opened[i]!, body), signal),
    );
    for (const i of syncing) ledger.takePart(opened[i]!);
    const connectSeconds = (performance.now() - connectStart) / 1000;
    await sleep(1000);
    const syncingMemory = await server.memory();
    const phase = await sendAndDrain(
      server,
      sender,
      roomId,
      ledger,
      runTag,
      options.eventsPerSecond,
      options.warmupEvents,
    );
    return {
      ...deliveryResult('websocket', ledger, receivers.length, options, phase, connectSeconds),
      receiveErrors: syncing.filter((i) => !sockets.get(opened[i]!)!.open).length,
      memory: { sockets: opened.length, before, authenticated, syncing: syncingMemory },
    };
  } finally {
    await Promise.all([...sockets.values()].map((socket) => socket.close()));
  }
}

export async function runLongPollDelivery(
  server: ServerHandle,
  sender: BenchUser,
  receivers: readonly BenchUser[],
  roomId: string,
  options: DeliveryOptions,
): Promise<DeliveryResult> {
  const runTag = `lp-${Date.now()}`;
  const ledger = new DeliveryLedger(receivers.length, options.events, runTag, roomId);
  const filterIds = await uploadFilters(server, receivers, roomId, options.ephemeral);
  const clients = receivers.map(() => new KeepAliveClient(server.port));
  const stop = new AbortController();
  // Every parked long-poll listens on it.
  setMaxListeners(receivers.length + 10, stop.signal);
  const syncPath = (filterId: string, since?: string) =>
    `/_matrix/client/v3/sync?filter=${encodeURIComponent(filterId)}` +
    (since === undefined
      ? '&timeout=0'
      : `&timeout=${LONG_POLL_TIMEOUT_MS}&since=${encodeURIComponent(since)}`);

  const connectStart = performance.now();
  const initialTokens = new Map<number, string>();
  await inBatchesUntil(receivers.length, connectStart + options.connectBudgetMs, async (index, signal) => {
    const answer = await clients[index]!.call(
      'GET',
      syncPath(filterIds[index]!),
      receivers[index]!.accessToken,
      undefined,
      signal,
    );
    if (answer.status !== 200)
      throw new Error(`initial sync: ${answer.status} ${JSON.stringify(answer.body)}`);
    initialTokens.set(index, String(answer.body.next_batch));
  });
  const connectSeconds = (performance.now() - connectStart) / 1000;

  let pollErrors = 0;
  const poll = async (index: number, since: string) => {
    const user = receivers[index]!;
    while (!stop.signal.aborted) {
      try {
        const answer = await clients[index]!.call(
          'GET',
          syncPath(filterIds[index]!, since),
          user.accessToken,
          undefined,
          stop.signal,
        );
        if (answer.status !== 200) {
          pollErrors++;
          await sleep(100);
          continue;
        }
        ledger.observe(index, answer.body);
        since = String(answer.body.next_batch);
      } catch {
        if (!stop.signal.aborted) {
          pollErrors++;
          await sleep(100);
        }
      }
    }
  };
  const polls = [...initialTokens].map(([index, since]) => {
    ledger.takePart(index);
    return poll(index, since);
  });
  try {
    // Let every long-poll reach the server and park before the first send.
    await sleep(1000);
    const phase = await sendAndDrain(
      server,
      sender,
      roomId,
      ledger,
      runTag,
      options.eventsPerSecond,
      options.warmupEvents,
    );
    return {
      ...deliveryResult('long-poll', ledger, receivers.length, options, phase, connectSeconds),
      receiveErrors: pollErrors,
    };
  } finally {
    stop.abort();
    await Promise.all(polls);
    for (const client of clients) client.close();
  }
}
