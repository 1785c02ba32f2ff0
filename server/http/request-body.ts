/**
 * Reads a request body under a byte limit, counting as it streams: a body over
 * the limit is refused with 413 M_TOO_LARGE as soon as it crosses it, and what
 * follows is discarded rather than kept. Then JSON: not JSON is M_NOT_JSON.
 */
import type { IncomingMessage } from 'node:http';
import { MatrixError } from '../errors.js';

/** A Content-Length over the limit is refused before a byte is read. */
export function declaredLengthExceeds(req: IncomingMessage, limit: number): boolean {
  const declared = req.headers['content-length'];
  return declared !== undefined && /^\d+$/.test(declared) && Number(declared) > limit;
}

export function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (declaredLengthExceeds(req, limit)) return Promise.reject(tooLarge(limit));
  if (req.destroyed) return Promise.reject(new RequestAbortedError());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) {
        cleanup();
        // Keep the stream flowing into nothing so the client can finish sending and read our answer.
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, received));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onAborted = () => {
      cleanup();
      reject(new RequestAbortedError());
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onAborted);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onAborted);
  });
}

/** The client went away mid-body: nobody is left to answer. */
export class RequestAbortedError extends Error {
  override readonly name = 'RequestAbortedError';
  constructor() {
    super('Client closed the request before its body was read');
  }
}

function tooLarge(limit: number): MatrixError {
  return MatrixError.tooLarge(`Request body too large (limit ${limit} bytes)`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** client-server "API Standards": bodies are UTF-8 JSON; anything else is M_NOT_JSON. */
export function parseJsonBody(raw: Buffer, allowEmpty: boolean): unknown {
  if (raw.length === 0) {
    if (allowEmpty) return {};
    throw MatrixError.notJson('Request body is empty; expected a JSON object.');
  }
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw MatrixError.notJson('Request body is not valid UTF-8.');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw MatrixError.notJson('Content not JSON.');
  }
}
