/**
 * Where to connect for a server name (server-server "Resolving server names"),
 * following the spec's steps in order. DNS SRV lookups and the well-known
 * fetch are passed in, so the steps are tested with stubs.
 */
import { parseServerName } from '../protocol/identifiers.js';

export const DEFAULT_FEDERATION_PORT = 8448;

export interface ResolvedServer {
  /** The IP literal or host name to open a connection to. */
  readonly connectHost: string;
  readonly port: number;
  /** The Host header of requests. */
  readonly hostHeader: string;
  /** The name the TLS certificate must be valid for (and SNI, unless an IP literal). */
  readonly tlsName: string;
  /**
   * Further SRV targets, in the order to try them (RFC 2782) when the connection to
   * connectHost:port fails. Same Host header and TLS name.
   */
  readonly alternatives?: readonly { readonly connectHost: string; readonly port: number }[];
}

export interface SrvRecord {
  readonly name: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

export type WellKnownResult =
  /** A 200 answer: its JSON body and how long it may be cached (Cache-Control), when it says. */
  | { readonly ok: true; readonly body: unknown; readonly maxAgeMs: number | undefined }
  | { readonly ok: false };

export interface ServerResolverOptions {
  /** SRV records of a name; empty when there are none (NXDOMAIN, NODATA). */
  resolveSrv(name: string): Promise<SrvRecord[]>;
  /** GET https://<hostname>/.well-known/matrix/server (port 443, TLS checked). */
  fetchWellKnown(hostname: string): Promise<WellKnownResult>;
  /** Server name -> host:port, skipping discovery (config federation.resolver_overrides). */
  readonly overrides?: Readonly<Record<string, string>>;
  readonly now?: () => number;
  readonly random?: () => number;
}

/** Cache of a good well-known answer without Cache-Control (spec: 24 hours), and the most we keep one. */
const WELL_KNOWN_DEFAULT_TTL_MS = 24 * 3600_000;
const WELL_KNOWN_MAX_TTL_MS = 48 * 3600_000;
/** A failed well-known fetch is remembered for a while, longer after each consecutive failure. */
const WELL_KNOWN_FAILURE_MIN_MS = 60_000;
const WELL_KNOWN_FAILURE_MAX_MS = 3600_000;
const WELL_KNOWN_CACHE_LIMIT = 10_000;

interface WellKnownEntry {
  readonly delegated: string | undefined;
  readonly expiresAt: number;
  readonly failures: number;
}

export interface ServerResolver {
  resolve(serverName: string): Promise<ResolvedServer>;
}

export function createServerResolver(options: ServerResolverOptions): ServerResolver {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const wellKnownCache = new Map<string, WellKnownEntry>();

  const delegationOf = async (hostname: string): Promise<string | undefined> => {
    const cached = wellKnownCache.get(hostname);
    if (cached && cached.expiresAt > now()) return cached.delegated;
    const result = await options.fetchWellKnown(hostname).catch((): WellKnownResult => ({ ok: false }));
    const delegated = result.ok ? delegatedServerOf(result.body) : undefined;
    let entry: WellKnownEntry;
    if (delegated !== undefined) {
      const ttl = Math.min(
        result.ok ? (result.maxAgeMs ?? WELL_KNOWN_DEFAULT_TTL_MS) : 0,
        WELL_KNOWN_MAX_TTL_MS,
      );
      entry = { delegated, expiresAt: now() + ttl, failures: 0 };
    } else {
      const failures = (cached?.failures ?? 0) + 1;
      const backoff = Math.min(WELL_KNOWN_FAILURE_MIN_MS * 2 ** (failures - 1), WELL_KNOWN_FAILURE_MAX_MS);
      entry = { delegated: undefined, expiresAt: now() + backoff, failures };
    }
    if (wellKnownCache.size >= WELL_KNOWN_CACHE_LIMIT) wellKnownCache.clear();
    wellKnownCache.set(hostname, entry);
    return entry.delegated;
  };

  /** Steps 3.3-3.5 and 4-6: SRV _matrix-fed._tcp, then the deprecated _matrix._tcp, then port 8448. */
  const viaSrv = async (hostname: string, hostHeader: string): Promise<ResolvedServer> => {
    for (const service of ['_matrix-fed._tcp', '_matrix._tcp']) {
      const records = await options.resolveSrv(`${service}.${hostname}`).catch(() => []);
      const [chosen, ...rest] = orderSrvTargets(records, random);
      if (chosen) {
        const resolved = { connectHost: chosen.name, port: chosen.port, hostHeader, tlsName: hostname };
        if (rest.length === 0) return resolved;
        return {
          ...resolved,
          alternatives: rest.map((record) => ({ connectHost: record.name, port: record.port })),
        };
      }
    }
    return { connectHost: hostname, port: DEFAULT_FEDERATION_PORT, hostHeader, tlsName: hostname };
  };

  return {
    async resolve(serverName) {
      const override = options.overrides?.[serverName];
      const parsed = parseServerName(serverName);
      if (override !== undefined) {
        const target = parseServerName(override);
        return {
          connectHost: target.host,
          port: target.port ?? DEFAULT_FEDERATION_PORT,
          hostHeader: serverName,
          tlsName: parsed.host,
        };
      }
      // 1. An IP literal: that address, the given port or 8448.
      if (parsed.kind !== 'dns') {
        return {
          connectHost: parsed.host,
          port: parsed.port ?? DEFAULT_FEDERATION_PORT,
          hostHeader: serverName,
          tlsName: parsed.host,
        };
      }
      // 2. A host name with an explicit port: that host and port.
      if (parsed.port !== undefined) {
        return { connectHost: parsed.host, port: parsed.port, hostHeader: serverName, tlsName: parsed.host };
      }
      // 3. /.well-known/matrix/server names a delegated server.
      const delegated = await delegationOf(parsed.host);
      if (delegated !== undefined) {
        const target = parseServerName(delegated);
        // 3.1 An IP literal; 3.2 a host name with a port.
        if (target.kind !== 'dns' || target.port !== undefined) {
          return {
            connectHost: target.host,
            port: target.port ?? DEFAULT_FEDERATION_PORT,
            hostHeader: delegated,
            tlsName: target.host,
          };
        }
        // 3.3-3.5 SRV of the delegated name, else its port 8448.
        return viaSrv(target.host, delegated);
      }
      // 4-6. SRV of the server name, else port 8448.
      return viaSrv(parsed.host, parsed.host);
    },
  };
}

/** `m.server` of a well-known body when it is a valid server name. */
export function delegatedServerOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const server = (body as Record<string, unknown>)['m.server'];
  if (typeof server !== 'string') return undefined;
  try {
    parseServerName(server);
    return server;
  } catch {
    return undefined;
  }
}

/**
 * RFC 2782: the lowest priority wins; among equals, a weighted random pick.
 * A single record with target "." means the service is not offered.
 */
export function chooseSrvTarget(records: readonly SrvRecord[], random: () => number): SrvRecord | undefined {
  return orderSrvTargets(records, random)[0];
}

/**
 * Every target in the order RFC 2782 tries them: by priority, lowest first; within a
 * priority, repeated weighted random picks among those left (weight 0 entries last-ish, as
 * the RFC's running sum makes them). Empty when the service is not offered (a lone ".").
 */
export function orderSrvTargets(records: readonly SrvRecord[], random: () => number): SrvRecord[] {
  if (records.length === 1 && (records[0]!.name === '.' || records[0]!.name === '')) return [];
  const usable = records.filter((record) => record.name !== '.' && record.name !== '');
  const priorities = [...new Set(usable.map((record) => record.priority))].sort((a, b) => a - b);
  const ordered: SrvRecord[] = [];
  for (const priority of priorities) {
    const left = usable.filter((record) => record.priority === priority);
    while (left.length > 0) {
      const total = left.reduce((sum, record) => sum + record.weight, 0);
      let index = 0;
      if (total > 0) {
        let pick = random() * total;
        index = left.findIndex((record) => {
          pick -= record.weight;
          return pick < 0;
        });
        if (index < 0) index = left.length - 1;
      }
      ordered.push(left.splice(index, 1)[0]!);
    }
  }
  return ordered;
}

/** Cache-Control max-age in ms, when the header gives one. */
export function maxAgeOf(cacheControl: string | undefined): number | undefined {
  if (!cacheControl) return undefined;
  if (/\bno-store\b|\bno-cache\b/i.test(cacheControl)) return 0;
  const match = /\bmax-age=(\d+)/i.exec(cacheControl);
  return match ? Number(match[1]) * 1000 : undefined;
}
