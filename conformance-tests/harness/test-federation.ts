/**
 * Several real Myelins that federate over TLS on loopback.
 *
 * TLS: a throwaway certificate authority is made per run with the openssl
 * CLI (no extra dependency): a CA key and self-signed CA certificate, and one
 * server certificate for IP 127.0.0.1 (and DNS localhost) signed by it. Each
 * server serves its federation listener with that certificate and trusts
 * the CA through federation.ca_file, so certificate checks run for real:
 * nothing is skipped, and a server without the CA refuses the others.
 *
 * Names: each server is named by its IP literal and federation port,
 * `127.0.0.1:PORT` (server-server "Resolving server names" step 1), so no
 * resolver overrides are needed. The port is picked before the server is
 * built (its name depends on it).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { MyelinConfig } from '../../server/config/index.js';
import { createUser, fastAccounts, type TestUser } from './accounts.js';
import { TestHomeserver, type TestHomeserverOptions } from './test-homeserver.js';

const run = promisify(execFile);

export interface TestCertificates {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A test CA and a server certificate for 127.0.0.1/localhost, in a fresh folder. */
export async function createTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(path.join(tmpdir(), 'myelin-ca-'));
  const file = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=Myelin Test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', [
    'req',
    ...ec,
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
    '-subj',
    '/CN=127.0.0.1',
  ]);
  await writeFile(
    file('server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('server.crt'),
    '-days',
    '2',
    '-extfile',
    file('server.ext'),
  ]);
  return { dir, caFile: file('ca.crt'), certFile: file('server.crt'), keyFile: file('server.key') };
}

/** A port free right now on 127.0.0.1 (a small race with other processes is accepted in tests). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface FederatedServerOptions {
  readonly configure?: (config: MyelinConfig) => void;
  /** Keep this federation port (a restart of the same server). */
  readonly federationPort?: number;
  /** Reuse this data folder (a restart): passed to TestHomeserver. */
  readonly dataDir?: string;
  /** Leave the test CA out of federation.ca_file (TLS refusal tests). */
  readonly untrustingCa?: boolean;
}

/** One server of a TestFederation: the client listener is plain HTTP, the federation listener TLS. */
export class FederatedServer {
  constructor(
    readonly server: TestHomeserver,
    readonly federationPort: number,
  ) {}

  get serverName(): string {
    return this.server.config.server_name;
  }

  get context() {
    return this.server.homeserver.context;
  }

  get federationUrl(): string {
    return `https://127.0.0.1:${this.federationPort}`;
  }
}

export class TestFederation {
  private constructor(
    readonly certificates: TestCertificates,
    readonly servers: FederatedServer[],
  ) {}

  static async start(count: number, options: FederatedServerOptions = {}): Promise<TestFederation> {
    const certificates = await createTestCertificates();
    const federation = new TestFederation(certificates, []);
    try {
      for (let i = 0; i < count; i++) federation.servers.push(await federation.startServer(options));
    } catch (error) {
      await federation.stop();
      throw error;
    }
    return federation;
  }

  /** Starts one more server (or restarts one: same port and data folder) in this federation. */
  async startServer(options: FederatedServerOptions = {}): Promise<FederatedServer> {
    const port = options.federationPort ?? (await freePort());
    const { certificates } = this;
    const serverOptions: TestHomeserverOptions = {
      serverName: `127.0.0.1:${port}`,
      ...(options.dataDir ? { dataDir: options.dataDir } : {}),
      configure: (config) => {
        fastAccounts(config);
        config.listeners.push({
          port,
          bind_addresses: ['127.0.0.1'],
          x_forwarded: false,
          resources: ['federation'],
          tls: { cert_file: certificates.certFile, key_file: certificates.keyFile },
        });
        config.federation.ca_file = options.untrustingCa ? '' : certificates.caFile;
        config.federation.trusted_key_servers = [];
        config.federation.retry_min_backoff_ms = 200;
        config.federation.retry_max_backoff_ms = 2000;
        config.federation.request_timeout_ms = 5000;
        options.configure?.(config);
      },
    };
    const server = await TestHomeserver.start(serverOptions);
    return new FederatedServer(server, port);
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.servers.map((server) => server.server.stop()));
    await rm(this.certificates.dir, { recursive: true, force: true });
  }
}

/** Two federated servers with @alice on the first and @bob on the second: most federation tests start so. */
export async function startAliceAndBob(): Promise<{
  federation: TestFederation;
  a: FederatedServer;
  b: FederatedServer;
  alice: TestUser;
  bob: TestUser;
}> {
  const federation = await TestFederation.start(2);
  const [a, b] = federation.servers as [FederatedServer, FederatedServer];
  return {
    federation,
    a,
    b,
    alice: await createUser(a.server, 'alice'),
    bob: await createUser(b.server, 'bob'),
  };
}
