/**
 * A test client of the io.myelin WebSocket (spec/websocket.md): opens the
 * socket, keeps every frame it receives in order, and waits for the frame a
 * test expects. Also starts a homeserver with custom WebSocket limits (short
 * heartbeats, small buffers), which TestHomeserver does not expose.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import WebSocket from 'ws';
import { defaultConfig, type MyelinConfig } from '../../server/config/index.js';
import { createHomeserver, type Homeserver } from '../../server/homeserver.js';
import type { WebSocketLimits } from '../../server/ws/connection.js';
import type { TestHomeserver } from './test-homeserver.js';

export const WS_PATH = '/_matrix/client/unstable/io.myelin/ws';

export type Frame = Record<string, unknown> & { type: string };

export interface WsOpenOptions {
  readonly accessToken?: string;
  /** Send the token in ?access_token= instead of the Authorization header. */
  readonly tokenInQuery?: boolean;
  readonly headers?: Record<string, string>;
  readonly path?: string;
  /** Answer pings automatically (default true); false plays a dead peer. */
  readonly autoPong?: boolean;
}

export class WsClient {
  /** Every parsed frame received, in order. */
  readonly frames: Frame[] = [];
  closeCode: number | undefined;
  closeReason: string | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly closed: Promise<void>;
  private counter = 0;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)) as Frame);
      for (const wake of [...this.waiters]) wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        for (const wake of [...this.waiters]) wake();
        resolve();
      });
    });
    socket.on('error', () => {});
  }

  static open(baseUrl: string, options: WsOpenOptions = {}): Promise<WsClient> {
    const url = new URL(options.path ?? WS_PATH, baseUrl.replace(/^http/, 'ws'));
    const headers: Record<string, string> = { ...options.headers };
    if (options.accessToken !== undefined) {
      if (options.tokenInQuery) url.searchParams.set('access_token', options.accessToken);
      else headers.Authorization = `Bearer ${options.accessToken}`;
    }
    const socket = new WebSocket(url, { headers, autoPong: options.autoPong ?? true });
    const client = new WsClient(socket);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(client));
      socket.once('unexpected-response', (_request, response) => {
        reject(
          Object.assign(new Error(`Upgrade refused: ${response.statusCode}`), {
            status: response.statusCode,
          }),
        );
      });
      socket.once('error', reject);
    });
  }

  /** Opens a socket authenticated by the upgrade header and waits for its `authenticated` frame. */
  static async authenticated(
    hs: TestHomeserver | { baseUrl: string },
    accessToken: string,
  ): Promise<WsClient> {
    const client = await WsClient.open(hs.baseUrl, { accessToken });
    await client.next((frame) => frame.type === 'authenticated');
    return client;
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first frame (after `from`) that matches, waiting up to `timeoutMs` for it. */
  async next(match: (frame: Frame) => boolean, timeoutMs = 5000, from = 0): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.slice(from).find(match);
      if (found) return found;
      if (this.closeCode !== undefined) {
        throw new Error(`Socket closed (${this.closeCode} ${this.closeReason}) before the expected frame`);
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`No matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        const waiters = this.waiters;
        waiters.add(done);
      });
    }
  }

  /** Sends a `request` frame and waits for its response. */
  async call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const id = `c${++this.counter}`;
    this.send({ type: 'request', id, method, path, ...(body !== undefined ? { body } : {}) });
    const frame = await this.next((f) => f.type === 'response' && f.id === id);
    return { status: frame.status as number, body: frame.body as Record<string, unknown> };
  }

  /** Sends a convenience frame (send, typing, receipt...) with a fresh ID and waits for its response. */
  async command(
    type: string,
    fields: Record<string, unknown>,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const id = `c${++this.counter}`;
    this.send({ type, id, ...fields });
    const frame = await this.next((f) => f.type === 'response' && f.id === id);
    return { status: frame.status as number, body: frame.body as Record<string, unknown> };
  }

  /** Resolves with the close code once the socket has closed (or rejects after `timeoutMs`). */
  async closedWith(timeoutMs = 5000): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Socket still open after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return this.closeCode!;
  }

  close(): Promise<void> {
    if (this.closeCode === undefined) this.socket.close();
    return this.closed;
  }
}

/** A homeserver like TestHomeserver, with WebSocket limits of the test's choosing. */
export class LimitedWsHomeserver {
  private constructor(
    readonly homeserver: Homeserver,
    private readonly dataDir: string,
    readonly port: number,
    readonly logLines: string[],
  ) {}

  static async start(
    limits: Partial<WebSocketLimits>,
    configure?: (config: MyelinConfig) => void,
  ): Promise<LimitedWsHomeserver> {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'myelin-ws-test-'));
    const config = defaultConfig({ server_name: 'localhost', data_dir: dataDir, port: 0 });
    config.listeners = [{ ...config.listeners[0]!, port: 0, bind_addresses: ['127.0.0.1'] }];
    configure?.(config);
    const logLines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) });
    const homeserver = await createHomeserver(config, {
      logger,
      validateResponses: true,
      webSocketLimits: limits,
      shutdownTimeoutMs: 3000,
    });
    const { ports } = await homeserver.start();
    config.public_baseurl = `http://127.0.0.1:${ports[0]}/`;
    return new LimitedWsHomeserver(homeserver, dataDir, ports[0]!, logLines);
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get config(): MyelinConfig {
    return this.homeserver.config;
  }

  fetch(pathAndQuery: string, init?: RequestInit): Promise<Response> {
    return fetch(`${this.baseUrl}${pathAndQuery}`, init);
  }

  async stop(): Promise<void> {
    try {
      await this.homeserver.stop();
    } finally {
      await rm(this.dataDir, { recursive: true, force: true });
    }
  }
}
