/**
 * What the HTTP layer costs per request, outside the handlers (Node's parse, the
 * Koa app and its middleware, access log, CORS, rate limit, auth, body read and
 * validation, error rendering, response write). The server runs forked (bench/load's
 * server process, rate limits on as in production, the access log at info into
 * /dev/null unless BENCH_LOG_LEVEL says otherwise); this process is the client, over
 * keep-alive connections. Each phase prints the server's CPU per request, which holds
 * up on a shared machine where requests per second do not:
 *  - GET /account/whoami (auth and nothing else: the closest to pure overhead);
 *  - an unknown endpoint (404 M_UNRECOGNIZED: routing and error rendering, no auth);
 *  - PUT /rooms/{roomId}/send/{type}/{txnId} into a room of one, sequential;
 *  - GET /sync?since=&timeout=0 with nothing new;
 *  - the sliding sync POST with a pos and timeout=0, nothing new.
 * Then the floor: a bare node:http server in the same set-up answering `{}`.
 * Prints figures and the load average, asserts nothing.
 * Run: node --import tsx bench/http-overhead.bench.ts [--requests=N] [--connections=N] [--only=TEXT] [--profile=DIR]
 * (`--profile=DIR`: the server runs its source under --cpu-prof, profile written into DIR on exit,
 * each phase's --from/--to printed for profile-summary.ts; `--only=TEXT`: the phases whose name holds TEXT.)
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { KeepAliveClient, sendPath } from './load/http-client.js';
import { loadAverage, monotonicMicros } from './load/report.js';
import { ServerHandle } from './load/server-handle.js';

const SLIDING = '/_matrix/client/unstable/org.matrix.simplified_msc3575/sync';

interface Phase {
  readonly name: string;
  /** The bytes of request number `i` of the phase (unique transaction IDs). */
  request(i: number): string;
  readonly expect: number;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const option = (name: string) => args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  const requests = Number(option('requests') ?? 10_000);
  const connections = Number(option('connections') ?? 4);
  const profileDir = option('profile');
  const only = option('only');

  process.env.BENCH_RATE_LIMITS ??= 'on';
  process.env.BENCH_LOG_LEVEL ??= 'info';
  process.env.BENCH_LOG_FILE ??= '/dev/null';
  const server = await ServerHandle.start(
    profileDir === undefined ? {} : { cpuProfileDir: profileDir, fromSource: true },
  );
  const setUpClient = new KeepAliveClient(server.port);
  const connectionsOpen: RawConnection[] = [];
  try {
    const [user] = await server.users('overhead', 1);
    const token = user!.accessToken;
    const roomId = await server.room(user!.userId, []);
    const first = await setUpClient.call('GET', '/_matrix/client/v3/sync?timeout=0', token);
    const since = String(first.body.next_batch);
    const slidingBody = { conn_id: 'overhead', lists: { all: { ranges: [[0, 9]], timeline_limit: 1 } } };
    const pos = String((await setUpClient.call('POST', SLIDING, token, slidingBody)).body.pos);
    for (let i = 0; i < connections; i++) connectionsOpen.push(await RawConnection.open(server.port));

    const phases: Phase[] = [
      {
        name: 'GET /account/whoami',
        expect: 200,
        request: () => requestText('GET', '/_matrix/client/v3/account/whoami', token),
      },
      {
        name: 'GET /versions (no auth)',
        expect: 200,
        request: () => requestText('GET', '/_matrix/client/versions', undefined),
      },
      {
        name: 'GET whoami bad token (401)',
        expect: 401,
        request: () => requestText('GET', '/_matrix/client/v3/account/whoami', 'nope'),
      },
      {
        name: 'GET unknown endpoint (404)',
        expect: 404,
        request: () => requestText('GET', '/_matrix/client/v3/no/such/thing', token),
      },
      {
        name: 'PUT /send (room of one)',
        expect: 200,
        request: (i) =>
          requestText('PUT', sendPath(roomId, `txn-${monotonicMicros()}-${i}`), token, {
            msgtype: 'm.text',
            body: `message ${i}`,
          }),
      },
      {
        name: 'GET /sync?since&timeout=0',
        expect: 200,
        request: () => requestText('GET', `/_matrix/client/v3/sync?since=${since}&timeout=0`, token),
      },
      {
        name: 'POST sliding sync ?pos&timeout=0',
        expect: 200,
        request: () => requestText('POST', `${SLIDING}?pos=${pos}&timeout=0`, token, slidingBody),
      },
    ];
    console.log(
      `HTTP overhead, server forked (access log ${process.env.BENCH_LOG_LEVEL}, rate limits ` +
        `${process.env.BENCH_RATE_LIMITS}), ${connections} keep-alive connections, ${requests} requests per phase`,
    );
    for (const phase of phases) {
      if (only !== undefined && !phase.name.includes(only)) continue;
      await runPhase(phase, connectionsOpen, Math.max(2000, Math.ceil(requests / 5))); // warm-up (JIT)
      const from = monotonicMicros();
      const cpuFrom = await server.cpuTimes();
      const wall = await runPhase(phase, connectionsOpen, requests);
      const cpuTo = await server.cpuTimes();
      console.log(
        figures(phase.name, cpuTo.total - cpuFrom.total, cpuTo.user - cpuFrom.user, requests, wall) +
          (profileDir === undefined ? '' : `  (profile --from=${from} --to=${monotonicMicros()})`),
      );
    }
  } finally {
    setUpClient.close();
    for (const connection of connectionsOpen) connection.close();
    await server.stop();
  }
  await floor(connections, requests);
  console.log(`  (load average ${loadAverage()})`);
}

/**
 * Server CPU per request: in all (what issue figures compare) and in user mode (the process's own
 * code; the rest is mostly the kernel delivering loopback TCP, which varies with how busy the
 * client is and so with throughput).
 */
function figures(name: string, total: number, user: number, requests: number, wallMs: number): string {
  const perRequest = (micros: number) => (micros / requests).toFixed(1).padStart(6);
  return (
    `  ${name.padEnd(36)} ${perRequest(total)} µs server CPU per request (user ${perRequest(user)} µs), ` +
    `${Math.round(requests / (wallMs / 1000))} requests/s`
  );
}

/** Runs `count` requests spread over the connections, each one at a time; returns the wall time (ms). */
async function runPhase(phase: Phase, connections: readonly RawConnection[], count: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    connections.map(async (connection) => {
      while (next < count) {
        const status = await connection.exchange(phase.request(next++));
        if (status !== phase.expect) throw new Error(`${phase.name} answered ${status}`);
      }
    }),
  );
  return performance.now() - started;
}

/** A request as a client sends it (the usual few headers), ready to write. */
function requestText(method: string, path: string, token: string | undefined, body?: unknown): string {
  const payload = body === undefined ? '' : JSON.stringify(body);
  return (
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: myelin-bench/1.0\r\nAccept: application/json\r\n` +
    (token === undefined ? '' : `Authorization: Bearer ${token}\r\n`) +
    (body === undefined
      ? ''
      : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n`) +
    `\r\n${payload}`
  );
}

/**
 * A keep-alive connection that writes prepared request text and reads just the status and
 * Content-Length of each answer: as cheap a client as can be, so the server is what the
 * machine's time goes to.
 */
class RawConnection {
  private received: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (status: number) => void; reject: (error: Error) => void } | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
      this.answerIfWhole();
    });
    socket.on('error', (error) => this.waiting?.reject(error));
    socket.on('close', () => this.waiting?.reject(new Error('connection closed')));
  }

  static async open(port: number): Promise<RawConnection> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new RawConnection(socket);
  }

  exchange(request: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(request);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private answerIfWhole(): void {
    const headerEnd = this.received.indexOf('\r\n\r\n');
    if (headerEnd === -1) return;
    const head = this.received.toString('latin1', 0, headerEnd);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!length) throw new Error(`an answer without Content-Length: ${head}`);
    const end = headerEnd + 4 + Number(length[1]);
    if (this.received.length < end) return;
    this.received = this.received.subarray(end);
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve(Number(head.slice(9, 12)));
  }
}

/** A bare node:http server answering `{}`: what parsing and writing alone cost on this machine. */
const FLOOR_SERVER = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => { res.setHeader('Content-Type', 'application/json'); res.end('{}'); });
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', () => { const u = process.cpuUsage(); process.send({ total: u.user + u.system, user: u.user }); });
process.on('disconnect', () => process.exit(0));
`;

async function floor(connections: number, requests: number): Promise<void> {
  const child = spawn(process.execPath, ['-e', FLOOR_SERVER], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const [{ port }] = (await once(child, 'message')) as [{ port: number }];
    const cpuNow = async () => {
      child.send('cpu');
      return ((await once(child, 'message')) as [{ total: number; user: number }])[0];
    };
    const open: RawConnection[] = [];
    for (let i = 0; i < connections; i++) open.push(await RawConnection.open(port));
    const phase: Phase = {
      name: 'floor: bare node:http answering {}',
      expect: 200,
      request: () => requestText('GET', '/whatever', 'token'),
    };
    await runPhase(phase, open, Math.max(2000, Math.ceil(requests / 5)));
    const cpuFrom = await cpuNow();
    const wall = await runPhase(phase, open, requests);
    const cpuTo = await cpuNow();
    console.log(figures(phase.name, cpuTo.total - cpuFrom.total, cpuTo.user - cpuFrom.user, requests, wall));
    for (const connection of open) connection.close();
  } finally {
    child.disconnect();
  }
}

await main();
