/**
 * The `myelin` command as a shell user runs it: real processes, real files,
 * real HTTP on loopback.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';

const BIN = path.resolve('bin/myelin.mjs');

/** The parts of a generated config these tests read. */
interface GeneratedConfig {
  server_name: string;
  public_baseurl: string;
  listeners: Array<{ port: number }>;
  database: { sqlite: { path: string } };
  registration: { mode: string };
}

function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return spawnSync(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** Starts `myelin start`, resolves once the startup summary names the listening port. */
function startServer(
  args: string[],
  cwd: string,
): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const child = spawn(process.execPath, [BIN, 'start', ...args], {
    cwd,
    // Port 0 through the documented environment override, so tests never collide on 8008.
    env: { ...process.env, MYELIN_LISTENERS__0__PORT: '0', MYELIN_LOGGING__LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), 30_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listener 0:.* port (\d+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]), stderr: () => stderr });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${stderr}`));
    });
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

describe('myelin CLI', function () {
  this.timeout(60_000);
  let workDir: string;

  beforeEach(() => {
    workDir = mkdtempSync(path.join(tmpdir(), 'myelin-cli-'));
  });
  afterEach(() => rmSync(workDir, { recursive: true, force: true }));

  it('generate-config prints a complete config that the server accepts', () => {
    const result = runCli([
      'generate-config',
      '--server-name',
      'chat.example.org',
      '--data-dir',
      workDir,
      '--port',
      '9001',
    ]);
    expect(result.status, result.stderr).to.equal(0);
    const config = parseYaml(result.stdout) as GeneratedConfig;
    expect(config.server_name).to.equal('chat.example.org');
    expect(config.public_baseurl).to.equal('https://chat.example.org/');
    expect(config.listeners[0]!.port).to.equal(9001);
    expect(config.database.sqlite.path).to.equal(path.join(workDir, 'homeserver.db'));
    expect(config.registration.mode).to.equal('closed');
    const open = runCli([
      'generate-config',
      '--server-name',
      'x.org',
      '--data-dir',
      workDir,
      '--open-registration',
    ]);
    expect((parseYaml(open.stdout) as GeneratedConfig).registration.mode).to.equal('open');
  });

  it('answers usage mistakes with exit code 64 and a message naming the problem', () => {
    const missing = runCli(['generate-config', '--server-name', 'x.org']);
    expect(missing.status).to.equal(64);
    expect(missing.stderr).to.contain('needs --server-name and --data-dir');
    const badPort = runCli([
      'generate-config',
      '--server-name',
      'x.org',
      '--data-dir',
      workDir,
      '--port',
      'http',
    ]);
    expect(badPort.status).to.equal(64);
    expect(badPort.stderr).to.contain("--port must be an integer from 0 to 65535, not 'http'");
    const unknown = runCli(['launch']);
    expect(unknown.status).to.equal(64);
    expect(unknown.stderr).to.contain("Unknown command 'launch'");
    const unknownFlag = runCli(['start', '--verbose']);
    expect(unknownFlag.status).to.equal(64);
  });

  it('refuses a broken config with exit code 78 naming the option and line', () => {
    const file = path.join(workDir, 'bad.yaml');
    const generated = runCli(['generate-config', '--server-name', 'x.org', '--data-dir', workDir]).stdout;
    writeFileSync(file, generated.replace('  mode: "closed"', '  mode: "closed"\n  colour: "blue"'));
    const result = runCli(['start', '--config', file]);
    expect(result.status).to.equal(78);
    expect(result.stderr).to.match(/bad\.yaml:\d+: registration\.colour: unknown option 'colour'/);
    const absent = runCli(['start', '--config', path.join(workDir, 'absent.yaml')]);
    expect(absent.status).to.equal(78);
    expect(absent.stderr).to.contain('does not exist');
  });

  it('first start generates a dev config and signing key under ./data, serves, and stops cleanly on SIGTERM', async () => {
    const { child, port, stderr } = await startServer([], workDir);
    const exit = exited(child);
    try {
      const configPath = path.join(workDir, 'data', 'config.yaml');
      expect(existsSync(configPath)).to.equal(true);
      expect(stderr()).to.contain(configPath);
      expect(stderr()).to.contain(path.join(workDir, 'data', 'signing.key'));
      expect(existsSync(path.join(workDir, 'data', 'signing.key'))).to.equal(true);
      expect(readFileSync(path.join(workDir, 'data', 'signing.key'), 'utf8')).to.match(/^ed25519 \S+ \S+/);
      const config = parseYaml(readFileSync(configPath, 'utf8')) as GeneratedConfig;
      expect(config.server_name).to.equal('localhost:8008');
      expect(config.registration.mode).to.equal('open');
      const versions = await fetch(`http://127.0.0.1:${port}/_matrix/client/versions`);
      expect(versions.status).to.equal(200);
      expect(((await versions.json()) as { versions: string[] }).versions).to.include('v1.19');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exit).to.equal(0);
  });

  it('keeps the signing key across restarts', async () => {
    const first = await startServer([], workDir);
    const firstExit = exited(first.child);
    first.child.kill('SIGTERM');
    expect(await firstExit).to.equal(0);
    const key = readFileSync(path.join(workDir, 'data', 'signing.key'), 'utf8');
    const second = await startServer([], workDir);
    const secondExit = exited(second.child);
    second.child.kill('SIGTERM');
    expect(await secondExit).to.equal(0);
    expect(readFileSync(path.join(workDir, 'data', 'signing.key'), 'utf8')).to.equal(key);
  });

  it('register-user creates an account that can log in; create-registration-token prints a usable token', async () => {
    const configPath = path.join(workDir, 'homeserver.yaml');
    const generated = runCli(['generate-config', '--server-name', 'localhost', '--data-dir', workDir]);
    writeFileSync(configPath, generated.stdout.replace('mode: "closed"', 'mode: "token"'));
    const fastHash = { MYELIN_PASSWORD_HASHING__SCRYPT_LOG_N: '10' };
    const created = runCli(
      [
        'register-user',
        '--config',
        configPath,
        '--user',
        'Operator',
        '--password',
        'correct horse',
        '--admin',
      ],
      { env: fastHash },
    );
    expect(created.status, created.stderr).to.equal(0);
    expect(created.stdout.trim()).to.equal('@operator:localhost');
    const again = runCli(['register-user', '--config', configPath, '--user', 'operator', '--password', 'x'], {
      env: fastHash,
    });
    expect(again.status).to.equal(1);
    expect(again.stderr).to.contain('M_USER_IN_USE');
    const missing = runCli(['register-user', '--config', configPath, '--user', 'x']);
    expect(missing.status).to.equal(64);
    const token = runCli(['create-registration-token', '--config', configPath, '--uses', '1']);
    expect(token.status, token.stderr).to.equal(0);
    const registrationToken = token.stdout.trim();
    expect(registrationToken).to.match(/^\S{8,}$/);

    const { child, port } = await startServer(['--config', configPath], workDir);
    const exit = exited(child);
    try {
      const base = `http://127.0.0.1:${port}/_matrix/client/v3`;
      const login = await fetch(`${base}/login`, {
        method: 'POST',
        body: JSON.stringify({
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: 'operator' },
          password: 'correct horse',
        }),
      });
      expect(login.status).to.equal(200);
      const { access_token: accessToken } = (await login.json()) as { access_token: string };
      const whoami = await fetch(`${base}/account/whoami`, {
        headers: { authorization: `Bearer ${accessToken}` },
      });
      expect(((await whoami.json()) as { user_id: string }).user_id).to.equal('@operator:localhost');
      const validity = await fetch(
        `http://127.0.0.1:${port}/_matrix/client/v1/register/m.login.registration_token/validity?token=${encodeURIComponent(registrationToken)}`,
      );
      expect(await validity.json()).to.deep.equal({ valid: true });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exit).to.equal(0);
  });
});
