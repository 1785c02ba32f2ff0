/**
 * The driver's handle on the forked server process: starts it, waits for its
 * port, and turns IPC requests into promises.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  BenchUser,
  FromServer,
  ServerCommand,
  ServerGc,
  ServerMemory,
  ServerReply,
  ToServer,
} from './ipc.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SERVER_SCRIPT = path.join(ROOT, 'bench', 'load', 'server-process.ts');
/** Inside node_modules so that the compiled files' bare imports resolve to the project's packages. */
const COMPILED = path.join(ROOT, 'node_modules', '.cache', 'myelin-bench-load');
const COMPILED_FOLDERS = ['protocol', 'storage', 'server', 'federation', path.join('bench', 'load')];
const START_TIMEOUT_MS = 60_000;

function sourcesIn(folder: string): string[] {
  return readdirSync(path.join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'))
    .map((file) => path.join(ROOT, folder, file));
}

/**
 * Compiles the server as `npm run build` does: one JavaScript file per source file
 * (esbuild, no bundling), so the process loads modules as production does and its
 * worker threads (push delivery) find their files beside their callers.
 */
async function compileServerScript(): Promise<string> {
  const { build } = await import('esbuild');
  await build({
    entryPoints: COMPILED_FOLDERS.flatMap(sourcesIn),
    outdir: COMPILED,
    outbase: ROOT,
    bundle: false,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  });
  return path.join(COMPILED, 'bench', 'load', 'server-process.js');
}

type ReplyOf<Op extends ServerCommand['op']> = Extract<ServerReply, { op: Op }>;

export class ServerHandle {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (reply: ServerReply) => void; reject: (e: Error) => void }
  >();

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    /** Memory right after start, before any traffic or set-up. */
    readonly startMemory: ServerMemory,
  ) {
    child.on('message', (message: FromServer) => {
      if (message.kind === 'ready') return;
      const waiter = this.pending.get(message.id);
      if (waiter === undefined) return;
      this.pending.delete(message.id);
      if (message.kind === 'reply') waiter.resolve(message.reply);
      else waiter.reject(new Error(`server: ${message.error}`));
    });
    child.on('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`server exited with ${code}`));
      this.pending.clear();
    });
  }

  /**
   * By default the server runs as production does, from JavaScript compiled file by file
   * (see compileServerScript), so no TypeScript loader sits in the process and its memory. `fromSource` runs the .ts through tsx instead (profiles then
   * name the source files). `cpuProfileDir`: run under `--cpu-prof`, profile written there on exit.
   */
  static async start(options: { cpuProfileDir?: string; fromSource?: boolean } = {}): Promise<ServerHandle> {
    // As bin/myelin.mjs launches the server: a 4 MB young generation (BENCH_SEMI_SPACE_MB=16
    // measures V8's default instead: fewer scavenges under bursts, more idle RSS).
    const semiSpaceMb = Number(process.env.BENCH_SEMI_SPACE_MB ?? 4);
    const execArgv = ['--expose-gc', `--max-semi-space-size=${semiSpaceMb}`];
    // Extra V8/Node flags for the server alone, e.g. BENCH_SERVER_FLAGS=--trace-gc.
    execArgv.push(...(process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean));
    if (options.fromSource === true) execArgv.push('--import', 'tsx');
    if (options.cpuProfileDir !== undefined)
      execArgv.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`);
    const script = options.fromSource === true ? SERVER_SCRIPT : await compileServerScript();
    const child = fork(script, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill();
        reject(new Error('server did not start in time'));
      }, START_TIMEOUT_MS);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited during start (${code})`));
      });
      child.on('message', (message: FromServer) => {
        if (message.kind !== 'ready') return;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(new ServerHandle(child, message.port, message.memory));
      });
    });
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  request<Op extends ServerCommand['op']>(command: Extract<ServerCommand, { op: Op }>): Promise<ReplyOf<Op>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: (reply) => resolve(reply as ReplyOf<Op>), reject });
      this.child.send({ id, command } satisfies ToServer);
    });
  }

  async users(prefix: string, count: number): Promise<BenchUser[]> {
    return (await this.request({ op: 'users', prefix, count })).users;
  }

  async room(creator: string, members: readonly string[]): Promise<string> {
    return (await this.request({ op: 'room', creator, members })).roomId;
  }

  /** The server's CPU time so far (µs, all threads): CPU per event holds up better than events/s on a busy machine. */
  /** Garbage collections so far (see ServerGc). */
  async gc(): Promise<ServerGc> {
    return (await this.request({ op: 'gc' })).gc;
  }

  async cpuMicros(): Promise<number> {
    return (await this.usage()).micros;
  }

  /** CPU time (as cpuMicros) and storage commits so far. */
  async usage(): Promise<{ micros: number; commits: number }> {
    const { micros, commits } = await this.request({ op: 'cpu' });
    return { micros, commits };
  }

  /** The server's CPU time so far split: user (its own code) and total (with the kernel's socket work). */
  async cpuTimes(): Promise<{ total: number; user: number }> {
    const reply = await this.request({ op: 'cpu' });
    return { total: reply.micros, user: reply.user };
  }

  async memory(): Promise<ServerMemory> {
    return (await this.request({ op: 'memory' })).memory;
  }

  /** Stops the server (it removes its data folder) and waits for the process to end. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.request({ op: 'stop' }).catch(() => {});
    await exited;
    clearTimeout(killer);
  }
}
