/**
 * Reads the YAML config once at start-up: parse, apply MYELIN_* environment
 * overrides, validate against the schema (unknown keys and wrong types are
 * errors naming the key and its line), fill defaults, resolve derived paths.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import { type Document, isMap, isScalar, LineCounter, parseDocument, parse as parseYamlValue } from 'yaml';
import { ConfigSchema, type MyelinConfig } from './schema.js';

export const ENV_PREFIX = 'MYELIN_';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const ajv = new Ajv({ useDefaults: true, allErrors: true, strict: false });
addFormats.default(ajv);
const validateConfig = ajv.compile<MyelinConfig>(ConfigSchema);

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): MyelinConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`Cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  return parseConfig(text, file, env);
}

/** `source` names the file in error messages. */
export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv = {}): MyelinConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const { line, col } = lineCounter.linePos(err.pos[0]);
    throw new ConfigError(`${source}:${line}:${col}: invalid YAML: ${err.message.split('\n')[0]}`);
  }
  const value: unknown = doc.toJS() ?? {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${source}: the config must be a YAML mapping of option names to values`);
  }
  const overridden = applyEnvOverrides(value as Record<string, unknown>, env);
  if (!validateConfig(overridden.config)) {
    const where = (e: ErrorObject) => describeLocation(e, doc, lineCounter, source, overridden.fromEnv);
    const messages = (validateConfig.errors ?? []).map((e) => `${where(e)}: ${describeError(e)}`);
    throw new ConfigError(`Invalid config:\n  ${[...new Set(messages)].join('\n  ')}`);
  }
  return resolveDerivedPaths(overridden.config as MyelinConfig);
}

/**
 * MYELIN_SERVER_NAME=x sets server_name; `__` descends: MYELIN_DATABASE__SQLITE__PATH,
 * MYELIN_LISTENERS__0__PORT. Values are read as YAML scalars/flow values, so
 * numbers, booleans and `[a, b]` lists work.
 */
export function applyEnvOverrides(
  config: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): { config: Record<string, unknown>; fromEnv: Map<string, string> } {
  const fromEnv = new Map<string, string>();
  const result = structuredClone(config);
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const keys = name.slice(ENV_PREFIX.length).toLowerCase().split('__');
    let target: Record<string, unknown> = result;
    for (const [i, key] of keys.entries()) {
      if (i === keys.length - 1) {
        target[key] = parseEnvValue(raw);
      } else {
        const next = target[key];
        if (typeof next !== 'object' || next === null) target[key] = /^\d+$/.test(keys[i + 1]!) ? [] : {};
        target = target[key] as Record<string, unknown>;
      }
    }
    fromEnv.set(`/${keys.join('/')}`, name);
  }
  return { config: result, fromEnv };
}

function parseEnvValue(raw: string): unknown {
  try {
    return parseYamlValue(raw);
  } catch {
    return raw;
  }
}

function resolveDerivedPaths(config: MyelinConfig): MyelinConfig {
  if (config.database.sqlite.path === '')
    config.database.sqlite.path = path.join(config.data_dir, 'homeserver.db');
  if (config.media.store_path === '') config.media.store_path = path.join(config.data_dir, 'media');
  if (config.sessions.secret_path === '')
    config.sessions.secret_path = path.join(config.data_dir, 'session.key');
  if (config.registration.shared_secret_path === '') {
    config.registration.shared_secret_path = path.join(config.data_dir, 'registration_shared_secret');
  }
  return config;
}

function describeError(e: ErrorObject): string {
  switch (e.keyword) {
    case 'additionalProperties':
      return `unknown option '${(e.params as { additionalProperty: string }).additionalProperty}'`;
    case 'required':
      return `missing required option '${(e.params as { missingProperty: string }).missingProperty}'`;
    case 'enum':
      return `must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
    default:
      return e.message ?? e.keyword;
  }
}

/** `file:line: dotted.key`, or the environment variable that set it. */
function describeLocation(
  e: ErrorObject,
  doc: Document,
  lineCounter: LineCounter,
  source: string,
  fromEnv: Map<string, string>,
): string {
  const segments = e.instancePath.split('/').slice(1).map(decodeJsonPointer);
  let keyName = segments.join('.');
  const extra =
    e.keyword === 'additionalProperties'
      ? (e.params as { additionalProperty: string }).additionalProperty
      : undefined;
  if (extra !== undefined) {
    segments.push(extra);
    keyName = segments.join('.');
  }
  const envName = fromEnv.get(`/${segments.join('/')}`);
  if (envName) return `environment variable ${envName} (${keyName})`;
  const line = lineOf(doc, lineCounter, segments);
  return `${source}${line ? `:${line}` : ''}: ${keyName || '(top level)'}`;
}

/** The line of the deepest existing node along the key path (the key itself when present). */
function lineOf(doc: Document, lineCounter: LineCounter, segments: string[]): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined;
  for (const segment of segments) {
    if (!isMap(node) && !(node && typeof node === 'object' && 'items' in node)) break;
    const items = (node as { items: unknown[] }).items;
    const pair = isMap(node)
      ? (node.items.find((p) => isScalar(p.key) && String(p.key.value) === segment) as
          | { key: { range?: [number, number, number] }; value: unknown }
          | undefined)
      : undefined;
    if (pair) {
      if (pair.key.range) line = lineCounter.linePos(pair.key.range[0]).line;
      node = pair.value;
    } else if (/^\d+$/.test(segment) && items[Number(segment)] !== undefined) {
      node = items[Number(segment)];
      const range = (node as { range?: [number, number, number] }).range;
      if (range) line = lineCounter.linePos(range[0]).line;
    } else {
      break;
    }
  }
  return line;
}

function decodeJsonPointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}
