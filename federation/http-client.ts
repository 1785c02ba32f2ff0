/**
 * Outbound federation HTTP over undici: the destination resolved by the
 * server resolver, TLS checked against the system roots plus the configured
 * CA bundle (never skipped), connections pooled per target, a deadline on the
 * whole request and a cap on the response body, X-Matrix signing.
 */
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import type { Agent } from 'undici';
import type { SigningKey } from '../protocol/signing.js';
import { signRequest } from '../protocol/x-matrix.js';
import { undici } from '../server/http/undici.js';
import { type FederationClient, type FederationRequest, FederationRequestError } from './federation.js';
import type { ResolvedServer, ServerResolver, WellKnownResult } from './server-resolver.js';
import { maxAgeOf } from './server-resolver.js';

export interface FederationHttpOptions {
  readonly serverName: string;
  readonly signingKey: SigningKey;
  /** Extra trusted CA certificates (PEM), added to the system roots. */
  readonly extraCa?: string;
  readonly requestTimeoutMs: number;
  readonly maxResponseBytes: number;
  /** Refuses destinations the config does not allow. */
  readonly isServerAllowed?: (serverName: string) => boolean;
}

const WELL_KNOWN_TIMEOUT_MS = 10_000;
const WELL_KNOWN_MAX_BYTES = 50_000;
const WELL_KNOWN_MAX_REDIRECTS = 5;
const AGENT_CACHE_LIMIT = 1000;

/** One pool of TLS connections per (certificate name, CA set): undici pools per origin inside it. */
export class TlsAgents {
  private readonly agents = new Map<string, Agent>();
  private readonly ca: string[] | undefined;

  constructor(extraCa: string | undefined) {
    this.ca = extraCa ? [...rootCertificates, extraCa] : undefined;
  }

  agentFor(tlsName: string): Agent {
    let agent = this.agents.get(tlsName);
    if (!agent) {
      if (this.agents.size >= AGENT_CACHE_LIMIT) {
        const [oldest, oldestAgent] = this.agents.entries().next().value as [string, Agent];
        this.agents.delete(oldest);
        void oldestAgent.close();
      }
      agent = new (undici().Agent)({
        connections: 32,
        keepAliveTimeout: 30_000,
        connect: {
          ...(this.ca ? { ca: this.ca } : {}),
          // The certificate is checked against the server name (not the SRV target); IP literals carry no SNI.
          ...(isIP(tlsName) ? {} : { servername: tlsName }),
          rejectUnauthorized: true,
          timeout: 10_000,
        },
      });
      this.agents.set(tlsName, agent);
    }
    return agent;
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.allSettled(agents.map((agent) => agent.close()));
  }
}

export function createFederationHttpClient(
  options: FederationHttpOptions,
  resolver: ServerResolver,
  agents: TlsAgents,
): FederationClient {
  /** Sends a signed request and resolves with the raw answer (any status). */
  const send = async (req: FederationRequest, accept: string) => {
    if (options.isServerAllowed && !options.isServerAllowed(req.destination)) {
      throw new FederationRequestError(
        req.destination,
        0,
        'M_FORBIDDEN',
        'Federation with this server is not allowed',
      );
    }
    let target: ResolvedServer;
    try {
      target = await resolver.resolve(req.destination);
    } catch (error) {
      throw new FederationRequestError(req.destination, 0, undefined, `Cannot resolve: ${messageOf(error)}`);
    }
    const uri = `${req.path}${queryString(req.query)}`;
    const headers: Record<string, string> = { host: target.hostHeader, accept };
    let body: string | undefined;
    if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers['content-type'] = 'application/json';
    }
    if (req.signed ?? true) {
      headers.authorization = signRequest(
        {
          method: req.method,
          uri,
          origin: options.serverName,
          destination: req.destination,
          ...(req.body !== undefined ? { content: req.body } : {}),
        },
        options.signingKey,
      );
    }
    // SRV may name several targets: the next is tried when no answer came from one (RFC 2782).
    const addresses = [
      { connectHost: target.connectHost, port: target.port },
      ...(target.alternatives ?? []),
    ];
    for (let index = 0; ; index++) {
      const address = addresses[index]!;
      try {
        return await exchange({
          destination: req.destination,
          url: `https://${urlHost(address.connectHost)}:${address.port}${uri}`,
          agent: agents.agentFor(target.tlsName),
          method: req.method,
          headers,
          body,
          timeoutMs: req.timeoutMs ?? options.requestTimeoutMs,
          maxBytes: req.maxResponseBytes ?? options.maxResponseBytes,
          signal: req.signal,
        });
      } catch (error) {
        const unanswered = error instanceof FederationRequestError && error.status === 0;
        if (!unanswered || index + 1 >= addresses.length || req.signal?.aborted === true) throw error;
      }
    }
  };
  const failure = (req: FederationRequest, status: number, json: unknown) => {
    const errcode =
      typeof json === 'object' && json !== null && typeof (json as { errcode?: unknown }).errcode === 'string'
        ? (json as { errcode: string }).errcode
        : undefined;
    const error = (json as { error?: unknown } | undefined)?.error;
    return new FederationRequestError(
      req.destination,
      status,
      errcode,
      `${req.method} ${req.path} answered ${status}${typeof error === 'string' ? `: ${error}` : ''}`,
      json,
    );
  };
  return {
    async request<T>(req: FederationRequest): Promise<T> {
      const { status, json, text } = await send(req, 'application/json');
      if (status < 200 || status >= 300) throw failure(req, status, json);
      if (json === undefined) {
        throw new FederationRequestError(
          req.destination,
          status,
          undefined,
          `Not JSON: ${text.slice(0, 100)}`,
        );
      }
      return json as T;
    },
    async requestBytes(req) {
      const { status, json, bytes, headers } = await send(req, '*/*');
      if (status < 200 || status >= 300) throw failure(req, status, json);
      return { headers, body: bytes };
    },
    close: () => agents.close(),
  };
}

/**
 * GET https://hostname/.well-known/matrix/server, for the resolver (step 3),
 * following up to 5 redirects (to https URLs only, each checked by TLS).
 */
export function wellKnownFetcher(
  agents: TlsAgents,
  /** 443 but in tests. */
  port = 443,
): (hostname: string) => Promise<WellKnownResult> {
  return async (hostname) => {
    let url = new URL(`https://${urlHost(hostname)}:${port}/.well-known/matrix/server`);
    try {
      for (let hops = 0; hops <= WELL_KNOWN_MAX_REDIRECTS; hops++) {
        const { status, json, headers } = await exchange({
          destination: hostname,
          url: url.href,
          agent: agents.agentFor(url.hostname.replace(/^\[|\]$/g, '')),
          method: 'GET',
          headers: { accept: 'application/json' },
          body: undefined,
          timeoutMs: WELL_KNOWN_TIMEOUT_MS,
          maxBytes: WELL_KNOWN_MAX_BYTES,
          signal: undefined,
        });
        const location = headers.location;
        if (status >= 300 && status < 400 && typeof location === 'string') {
          url = new URL(location, url);
          if (url.protocol !== 'https:') return { ok: false };
          continue;
        }
        if (status !== 200 || json === undefined) return { ok: false };
        const cacheControl = headers['cache-control'];
        return {
          ok: true,
          body: json,
          maxAgeMs: maxAgeOf(Array.isArray(cacheControl) ? cacheControl.join(',') : cacheControl),
        };
      }
      return { ok: false };
    } catch {
      return { ok: false };
    }
  };
}

interface Exchange {
  readonly destination: string;
  readonly url: string;
  readonly agent: Agent;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly signal: AbortSignal | undefined;
}

async function exchange(ex: Exchange): Promise<{
  status: number;
  json: unknown;
  text: string;
  bytes: Buffer;
  headers: Record<string, string | string[] | undefined>;
}> {
  const timeout = AbortSignal.timeout(ex.timeoutMs);
  const signal = ex.signal ? AbortSignal.any([timeout, ex.signal]) : timeout;
  try {
    const response = await undici().request(ex.url, {
      dispatcher: ex.agent,
      method: ex.method as 'GET',
      headers: ex.headers,
      body: ex.body,
      signal,
      headersTimeout: ex.timeoutMs,
      bodyTimeout: ex.timeoutMs,
    });
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > ex.maxBytes) {
      response.body.destroy();
      throw new FederationRequestError(
        ex.destination,
        0,
        undefined,
        `Response larger than ${ex.maxBytes} bytes`,
      );
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > ex.maxBytes) {
        response.body.destroy();
        throw new FederationRequestError(
          ex.destination,
          0,
          undefined,
          `Response larger than ${ex.maxBytes} bytes`,
        );
      }
      chunks.push(chunk as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    const text = bytes.toString('utf8');
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.statusCode, json, text, bytes, headers: response.headers };
  } catch (error) {
    if (error instanceof FederationRequestError) throw error;
    const reason = timeout.aborted ? `timed out after ${ex.timeoutMs} ms` : messageOf(error);
    throw new FederationRequestError(
      ex.destination,
      0,
      undefined,
      `${ex.method} ${ex.url} failed: ${reason}`,
    );
  }
}

function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function queryString(query: FederationRequest['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) params.append(key, item);
    else params.append(key, String(value));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

function messageOf(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}
