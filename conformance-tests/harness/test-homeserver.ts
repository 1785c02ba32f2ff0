/**
 * A real Myelin for black-box tests: boots on 127.0.0.1 port 0 in a fresh
 * temporary folder with defaultConfig and a real SQLite file, checks every JSON
 * response against its schema, keeps the JSON log lines for inspection, and
 * removes the folder on stop.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { defaultConfig, type MyelinConfig } from '../../server/config/index.js';
import { createHomeserver, type Homeserver, type HomeserverOptions } from '../../server/homeserver.js';
import type { Route } from '../../server/http/route.js';
import { allRoutes } from '../../server/routes/index.js';

export interface TestHomeserverOptions {
  readonly serverName?: string;
  /** Adjusts the config before the server is built. */
  readonly configure?: (config: MyelinConfig) => void;
  /** Routes served besides the real route table (probes of the request pipeline). */
  readonly extraRoutes?: readonly Route[];
  readonly authenticator?: HomeserverOptions['authenticator'];
  readonly shutdownTimeoutMs?: number;
  /** Use this data folder (a restart of an earlier server); the caller owns it and removes it. */
  readonly dataDir?: string;
}

export class TestHomeserver {
  private stopped = false;

  private constructor(
    readonly homeserver: Homeserver,
    readonly dataDir: string,
    readonly port: number,
    /** Every JSON log line the server wrote, in order. */
    readonly logLines: string[],
    private readonly ownsDataDir: boolean,
  ) {}

  static async start(options: TestHomeserverOptions = {}): Promise<TestHomeserver> {
    const ownsDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'myelin-test-')));
    const logLines: string[] = [];
    try {
      const config = defaultConfig({
        server_name: options.serverName ?? 'localhost',
        data_dir: dataDir,
        port: 0,
      });
      config.listeners = [{ ...config.listeners[0]!, port: 0, bind_addresses: ['127.0.0.1'] }];
      options.configure?.(config);
      const logger = pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) });
      const homeserver = await createHomeserver(config, {
        logger,
        routes: [...allRoutes, ...(options.extraRoutes ?? [])],
        validateResponses: true,
        ...(options.authenticator ? { authenticator: options.authenticator } : {}),
        ...(options.shutdownTimeoutMs ? { shutdownTimeoutMs: options.shutdownTimeoutMs } : {}),
      });
      const { ports } = await homeserver.start().catch(async (error: unknown) => {
        await homeserver.stop();
        throw error;
      });
      // defaultConfig derived public_baseurl from port 0; point it at the port the listener really got.
      config.public_baseurl = `http://127.0.0.1:${ports[0]}/`;
      return new TestHomeserver(homeserver, dataDir, ports[0]!, logLines, ownsDataDir);
    } catch (error) {
      if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
      throw error;
    }
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

  /** The parsed log lines (pino JSON). */
  logs(): Record<string, unknown>[] {
    return this.logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /**
   * Stops this server (keeping its data folder) and boots a new one over the same
   * folder and options; the new one has another port. Use the returned server.
   */
  async restart(options: Omit<TestHomeserverOptions, 'dataDir'> = {}): Promise<TestHomeserver> {
    if (this.stopped) throw new Error('TestHomeserver already stopped');
    this.stopped = true;
    await this.homeserver.stop();
    return TestHomeserver.start({ ...options, dataDir: this.dataDir });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await this.homeserver.stop();
    } finally {
      if (this.ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
    }
  }
}
