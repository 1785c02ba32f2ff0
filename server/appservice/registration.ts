/**
 * Application service registrations (application-service "Registration"), read
 * once at start-up from the YAML files named by `app_service_config_files` and
 * checked there: a registration the server cannot honour stops the start with
 * an error naming the file and the field.
 *
 * Namespace regexes match from the start of the string and need not match to
 * its end, as Synapse (Python's re.match) reads them: registrations written for
 * it work here unchanged.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { MAX_IDENTIFIER_BYTES } from '../../protocol/identifiers.js';

export interface Namespace {
  readonly exclusive: boolean;
  /** The regex as written in the registration. */
  readonly source: string;
  readonly regex: RegExp;
}

interface AppserviceNamespaces {
  readonly users: readonly Namespace[];
  readonly aliases: readonly Namespace[];
  readonly rooms: readonly Namespace[];
}

export interface AppserviceRegistration {
  readonly id: string;
  /** Where transactions and pings go, without a trailing slash; null: the service wants no traffic. */
  readonly url: string | null;
  readonly asToken: string;
  readonly hsToken: string;
  readonly senderLocalpart: string;
  /** `@sender_localpart:server_name`. */
  readonly sender: string;
  readonly namespaces: AppserviceNamespaces;
  /** Whether requests made as its users are rate limited (its sender never is). */
  readonly rateLimited: boolean;
  readonly protocols: readonly string[];
  readonly receiveEphemeral: boolean;
}

class AppserviceRegistrationError extends Error {
  override readonly name = 'AppserviceRegistrationError';
}

const NAMESPACE_KINDS = ['users', 'aliases', 'rooms'] as const;
/** appendices "User Identifiers": the localpart grammar, historical characters included. */
const SENDER_LOCALPART = /^[\x21-\x39\x3b-\x7e]+$/;

/** Reads, checks and cross-checks every file; the first problem found is thrown. */
export async function loadAppserviceRegistrations(
  files: readonly string[],
  serverName: string,
): Promise<AppserviceRegistration[]> {
  const registrations: AppserviceRegistration[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new AppserviceRegistrationError(
        `Cannot read application service registration ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`,
      );
    }
    let value: unknown;
    try {
      value = parseYaml(text);
    } catch (error) {
      throw new AppserviceRegistrationError(
        `${file}: invalid YAML: ${(error as Error).message.split('\n')[0]}`,
      );
    }
    registrations.push(parseRegistration(value, file, serverName));
  }
  checkUnique(registrations, files);
  return registrations;
}

/** One registration's fields, checked; `source` names it in errors. */
export function parseRegistration(
  value: unknown,
  source: string,
  serverName: string,
): AppserviceRegistration {
  const fail = (message: string): never => {
    throw new AppserviceRegistrationError(`${source}: ${message}`);
  };
  if (!isObject(value)) return fail('a registration must be a YAML mapping');
  const requiredString = (key: string): string => {
    const field = value[key];
    if (typeof field !== 'string' || field === '') return fail(`'${key}' must be a non-empty string`);
    return field;
  };
  const id = requiredString('id');
  // Synapse's third-party instance IDs are `{id}|{network}`; an id with a bar could not be told apart.
  if (id.includes('|')) fail("'id' must not contain '|'");
  const asToken = requiredString('as_token');
  const hsToken = requiredString('hs_token');
  const senderLocalpart = requiredString('sender_localpart');
  if (!SENDER_LOCALPART.test(senderLocalpart)) fail("'sender_localpart' is not a valid user ID localpart");
  const sender = `@${senderLocalpart}:${serverName}`;
  if (Buffer.byteLength(sender, 'utf8') > MAX_IDENTIFIER_BYTES) fail("'sender_localpart' is too long");

  if (!('url' in value)) fail("'url' is required (null when the service wants no traffic)");
  const url = value.url === null ? null : parseUrl(value.url, fail);

  const namespaces = value.namespaces;
  if (!isObject(namespaces)) return fail("'namespaces' must be a mapping of users, aliases and rooms");
  const parsed: Record<(typeof NAMESPACE_KINDS)[number], Namespace[]> = { users: [], aliases: [], rooms: [] };
  for (const kind of NAMESPACE_KINDS) {
    const list = namespaces[kind];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) return fail(`'namespaces.${kind}' must be a list`);
    for (const [index, entry] of (list as unknown[]).entries()) {
      parsed[kind].push(parseNamespace(entry, `namespaces.${kind}[${index}]`, fail));
    }
  }

  const rateLimited = optionalBoolean(value, 'rate_limited', true, fail);
  const receiveEphemeral = optionalBoolean(value, 'receive_ephemeral', false, fail);
  const protocols = value.protocols ?? [];
  if (!Array.isArray(protocols) || !protocols.every((p): p is string => typeof p === 'string' && p !== '')) {
    return fail("'protocols' must be a list of protocol names");
  }
  return {
    id,
    url,
    asToken,
    hsToken,
    senderLocalpart,
    sender,
    namespaces: parsed,
    rateLimited,
    protocols,
    receiveEphemeral,
  };
}

/** "each as_token and id MUST be unique per application service ... The homeserver MUST enforce this." */
function checkUnique(registrations: readonly AppserviceRegistration[], files: readonly string[]): void {
  const seen = {
    id: new Map<string, string>(),
    as_token: new Map<string, string>(),
    hs_token: new Map<string, string>(),
    sender: new Map<string, string>(),
  };
  registrations.forEach((registration, index) => {
    const file = files[index]!;
    const values = {
      id: registration.id,
      as_token: registration.asToken,
      hs_token: registration.hsToken,
      sender: registration.sender,
    };
    for (const key of ['id', 'as_token', 'hs_token', 'sender'] as const) {
      const other = seen[key].get(values[key]);
      if (other !== undefined) {
        const what = key === 'sender' ? 'sender_localpart' : key;
        throw new AppserviceRegistrationError(
          `${file}: '${what}' is the same as in ${other}; it must be unique`,
        );
      }
      seen[key].set(values[key], file);
    }
  });
  for (const registration of registrations) {
    if (registration.asToken === registration.hsToken) {
      throw new AppserviceRegistrationError(
        `${files[registrations.indexOf(registration)]}: 'as_token' and 'hs_token' must differ`,
      );
    }
  }
}

function parseUrl(value: unknown, fail: (message: string) => never): string {
  if (typeof value !== 'string' || value === '') return fail("'url' must be an http(s) URL or null");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail(`'url' is not a valid URL: ${value}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail("'url' must use http or https");
  if (url.search !== '' || url.hash !== '') return fail("'url' must not have a query or a fragment");
  return value.replace(/\/+$/, '');
}

function parseNamespace(entry: unknown, where: string, fail: (message: string) => never): Namespace {
  if (!isObject(entry)) return fail(`'${where}' must be a mapping with 'exclusive' and 'regex'`);
  if (typeof entry.exclusive !== 'boolean') return fail(`'${where}.exclusive' must be true or false`);
  if (typeof entry.regex !== 'string' || entry.regex === '') {
    return fail(`'${where}.regex' must be a non-empty string`);
  }
  return { exclusive: entry.exclusive, source: entry.regex, regex: compile(entry.regex, where, fail) };
}

function compile(source: string, where: string, fail: (message: string) => never): RegExp {
  try {
    return new RegExp(`^(?:${source})`);
  } catch (error) {
    return fail(`'${where}.regex' is not a valid regular expression: ${(error as Error).message}`);
  }
}

function optionalBoolean(
  value: Record<string, unknown>,
  key: string,
  fallback: boolean,
  fail: (message: string) => never,
): boolean {
  const field = value[key];
  if (field === undefined || field === null) return fallback;
  if (typeof field !== 'boolean') return fail(`'${key}' must be true or false`);
  return field;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
