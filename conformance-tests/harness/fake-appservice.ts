/**
 * An application service played by an HTTP server on 127.0.0.1 (tests): it
 * records every request the homeserver makes to it and answers as told, per
 * kind of request, in turn.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: Record<string, unknown>;
}

/** A status to answer with, or 'hang' to never answer. */
export type FakeAnswer = number | 'hang';

export class FakeAppservice {
  readonly requests: ReceivedRequest[] = [];
  /** Answers for the next transactions, in order; 200 once used up. */
  readonly transactionAnswers: FakeAnswer[] = [];
  /** While set, every transaction is answered 500 (the queue above is not used). */
  failTransactions = false;
  /** Answers for the next pings, in order; 200 once used up. */
  readonly pingAnswers: FakeAnswer[] = [];
  /** Work done before answering these paths (query included), resolving to the status to answer. */
  readonly handlers = new Map<string, () => Promise<number>>();
  /** JSON answered (200) to GET requests of these paths (query included); other paths are 404. */
  readonly thirdPartyAnswers = new Map<string, unknown>();
  private readonly hanging = new Set<() => void>();

  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakeAppservice> {
    const server = createServer();
    const service = new FakeAppservice(server);
    server.on('request', (request, response) => {
      void service.answer(request).then((answer) => {
        if (answer === 'hang') {
          service.hanging.add(() => response.destroy());
          return;
        }
        response.writeHead(typeof answer === 'number' ? answer : 200, { 'Content-Type': 'application/json' });
        if (typeof answer !== 'number') response.end(JSON.stringify(answer.json));
        else
          response.end(
            answer === 200 ? '{}' : JSON.stringify({ errcode: 'M_FORBIDDEN', error: 'told to fail' }),
          );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return service;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The transactions received, in order (retries included). */
  transactions(): { txnId: string; events: Record<string, unknown>[]; authorization: string | undefined }[] {
    return this.requests
      .filter((request) => request.path.startsWith('/_matrix/app/v1/transactions/'))
      .map((request) => ({
        txnId: decodeURIComponent(request.path.slice('/_matrix/app/v1/transactions/'.length)),
        events: request.body.events as Record<string, unknown>[],
        authorization: request.authorization,
      }));
  }

  async stop(): Promise<void> {
    for (const cut of this.hanging) cut();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async answer(request: IncomingMessage): Promise<FakeAnswer | { json: unknown }> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const path = request.url ?? '';
    this.requests.push({
      method: request.method ?? '',
      path,
      authorization: request.headers.authorization,
      body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
    });
    if (path.startsWith('/_matrix/app/v1/transactions/')) {
      return this.failTransactions ? 500 : (this.transactionAnswers.shift() ?? 200);
    }
    if (path === '/_matrix/app/v1/ping') return this.pingAnswers.shift() ?? 200;
    if (this.thirdPartyAnswers.has(path)) return { json: this.thirdPartyAnswers.get(path) };
    const handler = this.handlers.get(path);
    if (handler !== undefined) return handler();
    return 404;
  }
}
