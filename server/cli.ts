/**
 * The `myelin` command. The only place that prints to the terminal or exits
 * the process; everything it runs is ordinary, disposable library code.
 *
 * Exit codes: 0 success, 1 runtime failure, 64 usage error, 78 configuration error.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { pino } from 'pino';
import {
  ConfigError,
  configForNewServer,
  loadConfigFile,
  type MyelinConfig,
  renderConfigYaml,
} from './config/index.js';
import { MatrixError } from './errors.js';

const EXIT_RUNTIME = 1;
const EXIT_USAGE = 64;
const EXIT_CONFIG = 78;
const DEFAULT_CONFIG_PATH = 'data/config.yaml';

class UsageError extends Error {}

const USAGE = `Usage: myelin <command> [options]

Commands:
  start [--config FILE]
      Start the homeserver. Without --config, uses ./${DEFAULT_CONFIG_PATH},
      generating a development config (SQLite under ./data) on first start.
  generate-config --server-name NAME --data-dir DIR [--port N] [--open-registration] [--public-baseurl URL]
                  [--federation-port N --tls-cert FILE --tls-key FILE] [--ca-file FILE] [--resolve NAME=HOST:PORT]...
      Print a complete, commented YAML config to stdout. --federation-port adds a TLS listener
      for the federation API; --ca-file trusts extra CAs for outbound federation; --resolve
      (repeatable) connects to HOST:PORT for server NAME instead of resolving it.
  register-user --config FILE --user NAME --password PW [--admin]
      Create an account directly in the configured database (reserved names allowed).
  create-registration-token --config FILE [--token T] [--uses N] [--expires-in-hours H]
      Create a token for registration mode 'token'; prints it.
  rotate-signing-key --config FILE
      Replace the signing key with a new one; the old key stays published as an old
      verify key so that what it signed still verifies. Restart the server afterwards.
  help
      Show this text.

Every config option can be overridden by an environment variable:
MYELIN_<KEY>, with __ between nested keys, e.g. MYELIN_LISTENERS__0__PORT=8448.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'start':
        return await start(rest);
      case 'generate-config':
        return generateConfig(rest);
      case 'register-user':
        return await registerUser(rest);
      case 'create-registration-token':
        return await createRegistrationToken(rest);
      case 'rotate-signing-key':
        return await rotateSigningKeyCommand(rest);
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return 0;
      default:
        throw new UsageError(command ? `Unknown command '${command}'.` : 'No command given.');
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`myelin: ${e.message}\n\n${USAGE}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof MatrixError) {
      process.stderr.write(`myelin: ${e.message} (${e.errcode})\n`);
      return EXIT_RUNTIME;
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`myelin: ${e.message}\n`);
      return EXIT_CONFIG;
    }
    process.stderr.write(`myelin: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT_RUNTIME;
  }
}

type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

function parse<T extends OptionSpecs>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

async function start(args: string[]): Promise<number> {
  const values = parse(args, { config: { type: 'string', short: 'c' } });
  const configPath = path.resolve(typeof values.config === 'string' ? values.config : DEFAULT_CONFIG_PATH);
  if (!existsSync(configPath)) {
    if (typeof values.config === 'string') {
      throw new ConfigError(
        `Config file ${configPath} does not exist. Create one with:\n  myelin generate-config --server-name example.org --data-dir ./data > ${values.config}`,
      );
    }
    writeDevelopmentConfig(configPath);
  }
  const config = loadConfigFile(configPath);
  const logger = pino({ level: config.logging.level, base: { service: 'myelin' } });
  // Loaded here so generate-config and help stay fast and need no server code.
  const { createHomeserver } = await import('./homeserver.js');
  const homeserver = await createHomeserver(config, { logger });

  // Installed before listening, so a signal that arrives as soon as the port is open still stops cleanly.
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      process.stderr.write(`myelin: ${signal} again, exiting now\n`);
      process.exit(EXIT_RUNTIME);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await homeserver.stop();
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  const { ports } = await homeserver.start();
  printStartupSummary(configPath, config, ports);
  return new Promise<number>(() => {});
}

function writeDevelopmentConfig(configPath: string): void {
  const dataDir = path.dirname(configPath);
  mkdirSync(dataDir, { recursive: true });
  const config = configForNewServer({
    serverName: 'localhost:8008',
    dataDir,
    port: 8008,
    openRegistration: true,
  });
  const header = `Myelin development config, generated on first start.\nEdit freely; every option is documented below with its default.`;
  writeFileSync(configPath, renderConfigYaml(config, header), { mode: 0o600 });
  process.stderr.write(`myelin: generated a development config at ${configPath}\n`);
}

function printStartupSummary(configPath: string, config: MyelinConfig, ports: number[]): void {
  const lines = [
    `Myelin is running as ${config.server_name}`,
    `  client API:   ${config.public_baseurl}`,
    ...ports.map(
      (port, i) => `  listener ${i}:   ${config.listeners[i]?.bind_addresses.join(', ')} port ${port}`,
    ),
    `  config:       ${configPath}`,
    `  signing key:  ${path.resolve(config.signing_key_path)}`,
    `  database:     ${config.database.backend === 'sqlite' ? path.resolve(config.database.sqlite.path) : 'postgres'}`,
    `  API docs:     ${new URL('_matrix/docs', config.public_baseurl).href}`,
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}

function generateConfig(args: string[]): number {
  const values = parse(args, {
    'server-name': { type: 'string' },
    'data-dir': { type: 'string' },
    port: { type: 'string' },
    'open-registration': { type: 'boolean' },
    'public-baseurl': { type: 'string' },
    'federation-port': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'ca-file': { type: 'string' },
    resolve: { type: 'string', multiple: true },
  });
  const serverName = values['server-name'];
  const dataDir = values['data-dir'];
  if (typeof serverName !== 'string' || typeof dataDir !== 'string') {
    throw new UsageError('generate-config needs --server-name and --data-dir.');
  }
  const port = optionalPort(values.port, '--port');
  const federationPort = optionalPort(values['federation-port'], '--federation-port');
  const tlsCert = values['tls-cert'];
  const tlsKey = values['tls-key'];
  if ((typeof tlsCert === 'string') !== (typeof tlsKey === 'string')) {
    throw new UsageError('--tls-cert and --tls-key go together.');
  }
  if (typeof tlsCert === 'string' && federationPort === undefined) {
    throw new UsageError('--tls-cert and --tls-key need --federation-port.');
  }
  const resolverOverrides: Record<string, string> = {};
  for (const entry of (values.resolve as string[] | undefined) ?? []) {
    const equals = entry.indexOf('=');
    if (equals < 1 || equals === entry.length - 1) {
      throw new UsageError(`--resolve takes NAME=HOST:PORT, not '${entry}'.`);
    }
    resolverOverrides[entry.slice(0, equals)] = entry.slice(equals + 1);
  }
  const config = configForNewServer({
    serverName,
    dataDir,
    port,
    openRegistration: values['open-registration'] === true,
    publicBaseUrl: typeof values['public-baseurl'] === 'string' ? values['public-baseurl'] : undefined,
    federation: {
      ...(federationPort !== undefined ? { port: federationPort } : {}),
      ...(typeof tlsCert === 'string' && typeof tlsKey === 'string'
        ? { tlsCertFile: path.resolve(tlsCert), tlsKeyFile: path.resolve(tlsKey) }
        : {}),
      ...(typeof values['ca-file'] === 'string' ? { caFile: path.resolve(values['ca-file']) } : {}),
      resolverOverrides,
    },
  });
  process.stdout.write(renderConfigYaml(config, `Myelin homeserver config for ${serverName}.`));
  return 0;
}

function optionalPort(value: unknown, flag: string): number | undefined {
  if (typeof value !== 'string') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`${flag} must be an integer from 0 to 65535, not '${value}'.`);
  }
  return port;
}

async function rotateSigningKeyCommand(args: string[]): Promise<number> {
  const values = parse(args, { config: { type: 'string' } });
  if (typeof values.config !== 'string') throw new UsageError('rotate-signing-key needs --config.');
  const config = loadConfigFile(path.resolve(values.config));
  const { rotateSigningKey } = await import('../federation/rotate-signing-key.js');
  const rotated = await rotateSigningKey(config);
  process.stdout.write(`${rotated.newKeyId}\n`);
  process.stderr.write(
    `myelin: signing key ${rotated.oldKeyId} replaced by ${rotated.newKeyId}; the old key is kept in ${rotated.oldKeysFile}. Restart the server to use the new key.\n`,
  );
  return 0;
}

async function registerUser(args: string[]): Promise<number> {
  const values = parse(args, {
    config: { type: 'string' },
    user: { type: 'string' },
    password: { type: 'string' },
    admin: { type: 'boolean' },
  });
  if (
    typeof values.config !== 'string' ||
    typeof values.user !== 'string' ||
    typeof values.password !== 'string'
  ) {
    throw new UsageError('register-user needs --config, --user and --password.');
  }
  const config = loadConfigFile(path.resolve(values.config));
  const { registerUserCommand } = await import('./accounts/register-user-command.js');
  const userId = await registerUserCommand({
    config,
    user: values.user,
    password: values.password,
    admin: values.admin === true,
  });
  process.stdout.write(`${userId}\n`);
  process.stderr.write(`myelin: created ${values.admin === true ? 'admin ' : ''}account ${userId}\n`);
  return 0;
}

async function createRegistrationToken(args: string[]): Promise<number> {
  const values = parse(args, {
    config: { type: 'string' },
    token: { type: 'string' },
    uses: { type: 'string' },
    'expires-in-hours': { type: 'string' },
  });
  if (typeof values.config !== 'string') throw new UsageError('create-registration-token needs --config.');
  const uses = optionalPositiveInteger(values.uses, '--uses');
  const hours = optionalPositiveInteger(values['expires-in-hours'], '--expires-in-hours');
  const config = loadConfigFile(path.resolve(values.config));
  const { createRegistrationTokenCommand } = await import('./accounts/register-user-command.js');
  const token = await createRegistrationTokenCommand({
    config,
    token: typeof values.token === 'string' ? values.token : undefined,
    usesAllowed: uses ?? null,
    expiryTs: hours === undefined ? null : Date.now() + hours * 3_600_000,
  });
  process.stdout.write(`${token.token}\n`);
  return 0;
}

function optionalPositiveInteger(value: unknown, flag: string): number | undefined {
  if (typeof value !== 'string') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${flag} must be a positive integer, not '${value}'.`);
  return n;
}
