/**
 * A minimal JSON client over node:http with keep-alive connections, for the
 * load driver: no retries, no redirects, the answer's status, parsed body and
 * size. Each simulated client owns an Agent, so it keeps its own connection(s).
 */
import { Agent, request } from 'node:http';

export interface JsonAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly bytes: number;
}

export class KeepAliveClient {
  readonly agent: Agent;

  constructor(
    private readonly port: number,
    /** Connections this client may open at once (one for a closed-loop client). */
    maxSockets = 1,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  call(
    method: string,
    path: string,
    accessToken: string | undefined,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<JsonAnswer> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = {};
    if (accessToken !== undefined) headers.Authorization = `Bearer ${accessToken}`;
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = payload.length;
    }
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: this.port, method, path, headers, agent: this.agent, signal },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks);
            try {
              const parsed =
                text.length === 0 ? {} : (JSON.parse(text.toString('utf8')) as Record<string, unknown>);
              resolve({ status: res.statusCode ?? 0, body: parsed, bytes: text.length });
            } catch (error) {
              reject(error);
            }
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export function sendPath(roomId: string, txnId: string): string {
  return `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${encodeURIComponent(txnId)}`;
}
