/**
 * Sends bytes exactly as given over a plain TCP connection and reads back the
 * status line: for requests no well-behaved HTTP client would send (bad
 * percent-encoding, odd methods, oversized headers).
 */
import { connect } from 'node:net';

export interface RawResponse {
  /** undefined when the server closed the connection without an HTTP answer. */
  readonly status: number | undefined;
  readonly text: string;
}

export function sendRaw(port: number, request: Uint8Array | string, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`No answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (chunk) => chunks.push(chunk));
    // The server may reset the connection while we still write; what it answered before counts.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: status ? Number(status[1]) : undefined, text });
    });
    socket.write(request);
  });
}
