/**
 * A minimal JSON client for the load driver: undici's dispatch over keep-alive
 * connections with a bare handler (no response stream, no promise per chunk); no
 * retries, no redirects; the answer's status, parsed body and size. Each simulated
 * client owns its connection(s). On a 2-core machine the driver shares the CPUs with
 * the server, and node:http's client cost about three times as much per request,
 * which the closed loops and the long-poll fan-out paid in their figures.
 */
import { Client, type Dispatcher, Pool } from 'undici';

export interface JsonAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly bytes: number;
}

export class KeepAliveClient {
  private readonly dispatcher: Dispatcher;
  private readonly origin: string;

  constructor(
    port: number,
    /** Connections this client may open at once (one for a closed-loop client). */
    maxSockets = 1,
  ) {
    this.origin = `http://127.0.0.1:${port}`;
    this.dispatcher =
      maxSockets === 1
        ? new Client(this.origin, { keepAliveTimeout: 60_000 })
        : new Pool(this.origin, { connections: maxSockets, keepAliveTimeout: 60_000 });
  }

  call(
    method: string,
    path: string,
    accessToken: string | undefined,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<JsonAnswer> {
    const headers: Record<string, string> = {};
    if (accessToken !== undefined) headers.authorization = `Bearer ${accessToken}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const exchange = new JsonExchange(resolve, reject, signal);
      this.dispatcher.dispatch(
        { origin: this.origin, path, method: method as Dispatcher.HttpMethod, headers, body: payload },
        exchange,
      );
    });
  }

  close(): void {
    void this.dispatcher.destroy().catch(() => {});
  }
}

/** One request's answer, gathered as it arrives. */
class JsonExchange {
  private status = 0;
  private readonly chunks: Buffer[] = [];
  private abort: ((reason: Error) => void) | undefined;
  private readonly onAbort = () => this.abort?.(this.signal!.reason as Error);

  constructor(
    private readonly resolve: (answer: JsonAnswer) => void,
    private readonly reject: (error: unknown) => void,
    private readonly signal: AbortSignal | undefined,
  ) {
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  onConnect(abort: (reason: Error) => void): void {
    this.abort = abort;
    if (this.signal?.aborted) abort(this.signal.reason as Error);
  }

  onHeaders(statusCode: number): boolean {
    this.status = statusCode;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    const text = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    try {
      const body = text.length === 0 ? {} : (JSON.parse(text.toString('utf8')) as Record<string, unknown>);
      this.resolve({ status: this.status, body, bytes: text.length });
    } catch (error) {
      this.reject(error);
    }
  }

  onError(error: Error): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.reject(error);
  }
}

export function sendPath(roomId: string, txnId: string): string {
  return `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${encodeURIComponent(txnId)}`;
}
