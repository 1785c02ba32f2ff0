/**
 * Writes a complete, commented YAML config from the schema: every option with
 * its description and default, so config.sample.yaml and `myelin
 * generate-config` can never drift from what the loader accepts.
 */
import path from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { ConfigSchema, type MyelinConfig } from './schema.js';

export interface GenerateConfigOptions {
  serverName: string;
  dataDir: string;
  port?: number;
  openRegistration?: boolean;
  publicBaseUrl?: string;
  /** A TLS federation listener, extra CAs and resolver overrides (generate-config flags). */
  federation?: {
    port?: number;
    tlsCertFile?: string;
    tlsKeyFile?: string;
    caFile?: string;
    resolverOverrides?: Record<string, string>;
  };
}

/** A complete config for a new server; paths are made absolute so the server can start from any folder. */
export function configForNewServer(options: GenerateConfigOptions): MyelinConfig {
  const dataDir = path.resolve(options.dataDir);
  const port = options.port ?? 8008;
  const localHost = /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/.test(options.serverName);
  const publicBaseUrl =
    options.publicBaseUrl ?? (localHost ? `http://localhost:${port}/` : `https://${options.serverName}/`);
  const config = withDefaults(ConfigSchema, {
    server_name: options.serverName,
    public_baseurl: publicBaseUrl,
    data_dir: dataDir,
    signing_key_path: path.join(dataDir, 'signing.key'),
    listeners: [{ port }],
    database: { sqlite: { path: path.join(dataDir, 'homeserver.db') } },
    media: { store_path: path.join(dataDir, 'media') },
    registration: {
      mode: options.openRegistration ? 'open' : 'closed',
      shared_secret_path: path.join(dataDir, 'registration_shared_secret'),
    },
    sessions: { secret_path: path.join(dataDir, 'session.key') },
    federation: {
      ca_file: options.federation?.caFile ?? '',
      resolver_overrides: options.federation?.resolverOverrides ?? {},
    },
  }) as MyelinConfig;
  const federationPort = options.federation?.port;
  if (federationPort !== undefined) {
    // The federation API moves to its own (TLS) listener.
    const client = config.listeners[0]!;
    client.resources = client.resources.filter((resource) => resource !== 'federation');
    config.listeners.push(
      withDefaults(ConfigSchema.properties.listeners.items, {
        port: federationPort,
        bind_addresses: ['0.0.0.0'],
        resources: ['federation'],
        tls: {
          cert_file: options.federation?.tlsCertFile ?? '',
          key_file: options.federation?.tlsKeyFile ?? '',
        },
      }) as MyelinConfig['listeners'][number],
    );
  }
  return config;
}

export function renderConfigYaml(config: MyelinConfig, header?: string): string {
  const lines: string[] = [];
  if (header) lines.push(...header.split('\n').map((l) => (l ? `# ${l}` : '#')), '');
  renderProperties(ConfigSchema, config as unknown as Record<string, unknown>, 0, lines);
  return `${lines.join('\n')}\n`;
}

function renderProperties(
  schema: TSchema,
  value: Record<string, unknown>,
  depth: number,
  out: string[],
): void {
  const indent = '  '.repeat(depth);
  const properties = (schema.properties ?? {}) as Record<string, TSchema>;
  for (const [key, child] of Object.entries(properties)) {
    const childValue = value[key];
    if (depth === 0 && out.length > 0 && out[out.length - 1] !== '') out.push('');
    const comment = describe(child);
    for (const line of comment) out.push(`${indent}# ${line}`);
    if (isObjectSchema(child)) {
      out.push(`${indent}${key}:`);
      renderProperties(child, (childValue ?? {}) as Record<string, unknown>, depth + 1, out);
    } else if (child.type === 'array' && isObjectSchema(child.items as TSchema)) {
      const items = (childValue ?? []) as unknown[];
      // An empty list of objects is written as `[]`: a bare `key:` would read back as null.
      out.push(items.length === 0 ? `${indent}${key}: []` : `${indent}${key}:`);
      for (const item of (childValue ?? []) as Record<string, unknown>[]) {
        const itemLines: string[] = [];
        renderProperties(child.items as TSchema, item, depth + 2, itemLines);
        const first = itemLines.findIndex((l) => !l.trimStart().startsWith('#'));
        itemLines[first] = `${indent}  - ${itemLines[first]!.trimStart()}`;
        out.push(...itemLines);
      }
    } else {
      out.push(`${indent}${key}: ${formatScalar(childValue)}`);
    }
  }
}

function describe(schema: TSchema): string[] {
  const lines: string[] = [];
  if (typeof schema.description === 'string') lines.push(schema.description);
  if (!isObjectSchema(schema) && schema.default !== undefined && !Array.isArray(schema.items)) {
    const isObjectList = schema.type === 'array' && isObjectSchema(schema.items as TSchema);
    if (!isObjectList) lines.push(`Default: ${formatScalar(schema.default)}`);
  } else if (!isObjectSchema(schema) && schema.default === undefined) {
    lines.push('Required.');
  }
  return lines;
}

function isObjectSchema(schema: TSchema | undefined): boolean {
  return schema?.type === 'object' && schema.properties !== undefined;
}

/** JSON scalars and flow lists are valid YAML and unambiguous (no `yes`/`no` or octal surprises). */
function formatScalar(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return '""';
  return JSON.stringify(value);
}

/** Fills schema defaults into a partial value (what the loader does on read). */
function withDefaults(schema: TSchema, value: unknown): unknown {
  if (isObjectSchema(schema)) {
    const source = (value ?? {}) as Record<string, unknown>;
    const result: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(schema.properties as Record<string, TSchema>)) {
      const given = source[key] ?? (child.default !== undefined ? structuredClone(child.default) : undefined);
      if (given !== undefined) result[key] = withDefaults(child, given);
    }
    return result;
  }
  if (schema.type === 'array' && isObjectSchema(schema.items as TSchema) && Array.isArray(value)) {
    return value.map((item) => withDefaults(schema.items as TSchema, item));
  }
  return value;
}
