/**
 * Requests from this server to an application service (application-service
 * "Homeserver -> Application Service API"), with the hs_token in the
 * Authorization header ("Authorisation", v1.4). The operator configures the
 * URLs, so loopback and private addresses are allowed; each request has a
 * time limit, and its outcome is a typed verdict, not an exception.
 */
import type { Agent } from 'undici';
import { undici } from '../http/undici.js';
import type { AppserviceRegistration } from './registration.js';

export type AppserviceResponse =
  | { readonly kind: 'ok'; readonly status: number; readonly body: string }
  | { readonly kind: 'bad-status'; readonly status: number; readonly body: string }
  | { readonly kind: 'timeout'; readonly message: string }
  | { readonly kind: 'connection-failed'; readonly message: string };

/** Longest error body kept (the ping endpoint echoes it to the service). */
const MAX_BODY_CHARS = 4096;

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export class AppserviceClient {
  private agent: Agent | undefined;

  constructor(private readonly timeoutMs: number) {}

  /**
   * `path` starts with /_matrix/app/v1; `signal` aborts it early (the server stopping).
   * The service must have a URL.
   */
  async request(
    service: AppserviceRegistration,
    method: 'PUT' | 'POST' | 'GET',
    path: string,
    body: string | undefined,
    signal?: AbortSignal,
  ): Promise<AppserviceResponse> {
    if (service.url === null) throw new Error(`Application service ${service.id} has no URL`);
    this.agent ??= new (undici().Agent)({
      connect: { timeout: this.timeoutMs },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
    const timeout = AbortSignal.timeout(this.timeoutMs);
    try {
      const response = await undici().request(`${service.url}${path}`, {
        method,
        dispatcher: this.agent,
        headers: {
          authorization: `Bearer ${service.hsToken}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body } : {}),
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      });
      const text = await response.body.text();
      if (response.statusCode >= 200 && response.statusCode < 300) {
        return { kind: 'ok', status: response.statusCode, body: text };
      }
      return { kind: 'bad-status', status: response.statusCode, body: text.slice(0, MAX_BODY_CHARS) };
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (timeout.aborted || (code !== undefined && TIMEOUT_CODES.has(code))) {
        return { kind: 'timeout', message: `No answer within ${this.timeoutMs} ms` };
      }
      return { kind: 'connection-failed', message: (error as Error).message ?? String(error) };
    }
  }

  async close(): Promise<void> {
    await this.agent?.close();
    this.agent = undefined;
  }
}
