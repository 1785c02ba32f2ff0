/**
 * The long-poll fan-out in closed loop: N receivers in one room, each with a `GET /sync`
 * long-poll (the load bench's filter: that room, timeline limit 50, lazy-loaded members) on
 * its own keep-alive connection. One message is sent only once every receiver has seen the
 * previous one and its next poll is parked again, so every message costs the same work
 * however busy the machine is: N answers written and N new requests served (parse, auth,
 * routing, a sync round that finds nothing and waits). The open-loop load bench
 * (`npm run bench:load -- long-poll`) coalesces answers differently from run to run on a
 * shared machine; this one prints the server's CPU per message and per answer, which compare
 * code versions back to back. Also the time until the median and the last receiver saw each
 * message (closed loop: no queueing behind earlier messages), and the load average.
 * Run: node --import tsx bench/long-poll-cycle.bench.ts [--receivers=1000] [--messages=30]
 *        [--warmup=5] [--source] [--profile=DIR]
 */
import { setMaxListeners } from 'node:events';
import { KeepAliveClient, sendPath } from './load/http-client.js';
import type { BenchUser } from './load/ipc.js';
import { loadAverage, monotonicMicros, percentile } from './load/report.js';
import { ServerHandle } from './load/server-handle.js';

const LONG_POLL_TIMEOUT_MS = 30_000;
const BATCH = 50;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const option = (name: string, fallback: number) =>
    Number(args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback);
  const receiverCount = option('receivers', 1000);
  const messages = option('messages', 30);
  const warmup = option('warmup', 5);
  const profileDir = args.find((arg) => arg.startsWith('--profile='))?.slice('--profile='.length);
  const fromSource = args.includes('--source') || profileDir !== undefined;
  console.log(`load average at start ${loadAverage()}`);

  const server = await ServerHandle.start({
    fromSource,
    ...(profileDir === undefined ? {} : { cpuProfileDir: profileDir }),
  });
  const setUp = new KeepAliveClient(server.port, 8);
  const clients: KeepAliveClient[] = [];
  const stop = new AbortController();
  // Every parked long-poll listens on it.
  setMaxListeners(receiverCount + 10, stop.signal);
  let polls: Promise<void>[] = [];
  try {
    const [sender, ...receivers] = await server.users('cycle', receiverCount + 1);
    const roomId = await server.room(
      sender!.userId,
      receivers.map((user) => user.userId),
    );
    await server.request({ op: 'push-idle' });
    const filterIds = await inBatches(receivers, (user) => uploadFilter(setUp, user, roomId));
    const tokens = await inBatches(receivers, async (user, index) => {
      clients[index] = new KeepAliveClient(server.port);
      const first = await clients[index]!.call('GET', syncPath(filterIds[index]!), user.accessToken);
      if (first.status !== 200) throw new Error(`initial sync: ${first.status}`);
      return String(first.body.next_batch);
    });

    // What each receiver has seen: the highest message number, and answers in all.
    const seen = new Int32Array(receivers.length).fill(-1);
    const seenAt: number[][] = [];
    let answers = 0;
    const poll = async (index: number, since: string) => {
      const user = receivers[index]!;
      while (!stop.signal.aborted) {
        const answer = await clients[index]!.call(
          'GET',
          syncPath(filterIds[index]!, since),
          user.accessToken,
          undefined,
          stop.signal,
        ).catch(() => undefined);
        if (answer === undefined || answer.status !== 200) continue;
        answers++;
        since = String(answer.body.next_batch);
        const at = performance.now();
        for (const seq of benchSeqs(answer.body, roomId)) {
          if (seq > seen[index]!) seen[index] = seq;
          seenAt[seq] ??= [];
          seenAt[seq][index] ??= at;
        }
      }
    };
    polls = tokens.map((since, index) => poll(index, since));

    const parked = async () => {
      while ((await server.request({ op: 'waiting' })).count < receivers.length) await sleep(5);
    };
    const everyoneSaw = async (seq: number) => {
      while (!seen.every((value) => value >= seq)) await sleep(2);
    };
    const sendClient = new KeepAliveClient(server.port);
    clients.push(sendClient);
    const sentAt: number[] = [];
    const send = async (seq: number) => {
      await parked();
      sentAt[seq] = performance.now();
      const answer = await sendClient.call('PUT', sendPath(roomId, `cycle-${seq}`), sender!.accessToken, {
        msgtype: 'm.text',
        body: `cycle ${seq}`,
        bench_seq: seq,
      });
      if (answer.status !== 200) throw new Error(`send ${seq}: ${answer.status}`);
      await everyoneSaw(seq);
    };

    for (let seq = 0; seq < warmup; seq++) await send(seq);
    await parked();
    const answersBefore = answers;
    const cpuBefore = await server.cpuTimes();
    const from = monotonicMicros();
    for (let seq = warmup; seq < warmup + messages; seq++) await send(seq);
    await parked();
    const to = monotonicMicros();
    const cpuAfter = await server.cpuTimes();
    const measuredAnswers = answers - answersBefore;

    const median: number[] = [];
    const last: number[] = [];
    for (let seq = warmup; seq < warmup + messages; seq++) {
      const latencies = seenAt[seq]!.map((at) => at - sentAt[seq]!).sort((a, b) => a - b);
      median.push(percentile(latencies, 50));
      last.push(latencies.at(-1)!);
    }
    median.sort((a, b) => a - b);
    last.sort((a, b) => a - b);
    const cpu = cpuAfter.total - cpuBefore.total;
    const user = cpuAfter.user - cpuBefore.user;
    console.log(
      `long-poll cycle, ${receivers.length} receivers, ${messages} messages in closed loop (after ${warmup}), ` +
        `${fromSource ? 'source' : 'compiled'} server`,
    );
    console.log(
      `  server CPU ${(cpu / messages / 1000).toFixed(1)} ms per message (user ${(user / messages / 1000).toFixed(1)} ms), ` +
        `${(cpu / measuredAnswers).toFixed(1)} µs per answer (user ${(user / measuredAnswers).toFixed(1)} µs); ` +
        `${(measuredAnswers / messages).toFixed(0)} answers per message`,
    );
    console.log(
      `  send to seen, per message: median receiver p50 ${percentile(median, 50).toFixed(1)} ms; ` +
        `last receiver p50 ${percentile(last, 50).toFixed(1)} ms, max ${last.at(-1)!.toFixed(1)} ms`,
    );
    if (profileDir !== undefined) console.log(`  profile: --from=${from} --to=${to}`);
  } finally {
    stop.abort();
    await Promise.all(polls);
    for (const client of clients) client.close();
    setUp.close();
    await server.stop();
  }
  console.log(`load average at end ${loadAverage()}`);
}

function syncPath(filterId: string, since?: string): string {
  return (
    `/_matrix/client/v3/sync?filter=${encodeURIComponent(filterId)}` +
    (since === undefined
      ? '&timeout=0'
      : `&timeout=${LONG_POLL_TIMEOUT_MS}&since=${encodeURIComponent(since)}`)
  );
}

async function uploadFilter(client: KeepAliveClient, user: BenchUser, roomId: string): Promise<string> {
  const filter = {
    room: { rooms: [roomId], timeline: { limit: 50 }, state: { lazy_load_members: true } },
    presence: { not_types: ['*'] },
    account_data: { not_types: ['*'] },
  };
  const answer = await client.call(
    'POST',
    `/_matrix/client/v3/user/${encodeURIComponent(user.userId)}/filter`,
    user.accessToken,
    filter,
  );
  if (answer.status !== 200) throw new Error(`filter: ${answer.status}`);
  return String(answer.body.filter_id);
}

function* benchSeqs(body: Record<string, unknown>, roomId: string): Generator<number> {
  const rooms = body.rooms as { join?: Record<string, { timeline?: { events?: { content?: unknown }[] } }> };
  for (const event of rooms?.join?.[roomId]?.timeline?.events ?? []) {
    const seq = (event.content as { bench_seq?: unknown } | undefined)?.bench_seq;
    if (typeof seq === 'number') yield seq;
  }
}

async function inBatches<T, R>(
  items: readonly T[],
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < items.length; start += BATCH) {
    const batch = items.slice(start, start + BATCH);
    const done = await Promise.all(batch.map((item, offset) => task(item, start + offset)));
    done.forEach((result, offset) => {
      results[start + offset] = result;
    });
  }
  return results;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

await main();
