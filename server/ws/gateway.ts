/**
 * The WebSocket endpoint `GET /_matrix/client/unstable/io.myelin/ws` on one
 * HTTP listener (spec/websocket.md): takes the server's 'upgrade' events,
 * accepts the endpoint's (other paths are answered 404 M_UNRECOGNIZED), and
 * keeps the open connections: one heartbeat sweep and one session check sweep
 * for all of them (no timers per idle socket), and a clean 1001 close at stop.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocketServer } from 'ws';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import type { RouteDispatcher } from '../http/app.js';
import type { Authenticator } from '../http/auth.js';
import { lazyRequire } from '../lazy-require.js';
import { type SyncEngine, WebSocketConnection, type WebSocketLimits } from './connection.js';
import { checkPreparedFrames } from './prepared-frame.js';

/** ws is required on the first upgrade (see lazy-require.ts: its files are ~130 KB of CommonJS). */
const ws = lazyRequire<typeof import('ws')>('ws');

export const WEBSOCKET_PATH = '/_matrix/client/unstable/io.myelin/ws';

/** Room for the frame's own fields around a request body of the largest size the HTTP API accepts. */
const FRAME_ENVELOPE_BYTES = 64 * 1024;

export function defaultWebSocketLimits(maxRequestBodyBytes: number): WebSocketLimits {
  return {
    heartbeatIntervalMs: 30_000,
    authTimeoutMs: 10_000,
    sessionCheckIntervalMs: 5_000,
    maxBufferedBytes: 4 * 1024 * 1024,
    maxFrameBytes: maxRequestBodyBytes + FRAME_ENVELOPE_BYTES,
    maxRequestsInFlight: 64,
    syncWaitMs: 30_000,
  };
}

export interface WebSocketGatewayOptions {
  /** The listener's route table: what frames may call. */
  readonly dispatcher: RouteDispatcher;
  readonly authenticator: Authenticator;
  readonly context: HomeserverContext;
  /** The /sync computation (hs.sync) the socket pushes the results of. */
  readonly sync: SyncEngine;
  /** This listener serves the client API: without it the endpoint is 404 too. */
  readonly servesClientApi: boolean;
  /** Trust X-Forwarded-For for the client's address (as the listener's HTTP app does). */
  readonly trustProxy: boolean;
  readonly limits?: Partial<WebSocketLimits>;
  readonly log: Logger;
}

export interface WebSocketGateway {
  /** The HTTP server's 'upgrade' listener. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** How many sockets are open. */
  connectionCount(): number;
  /**
   * Closes every socket with 1001 once its running calls have answered; what
   * is still open at the deadline is cut. Idempotent.
   */
  close(deadlineMs: number): Promise<void>;
}

export function createWebSocketGateway(options: WebSocketGatewayOptions): WebSocketGateway {
  const { context, log } = options;
  checkPreparedFrames(log);
  const limits: WebSocketLimits = {
    ...defaultWebSocketLimits(context.config.limits.max_request_body_bytes),
    ...options.limits,
  };
  let server: WebSocketServer | undefined;
  const webSocketServer = () => {
    server ??= new (ws().WebSocketServer)({
      noServer: true,
      clientTracking: false,
      // Compression costs hundreds of kilobytes per socket; idle sockets must stay small.
      perMessageDeflate: false,
      maxPayload: limits.maxFrameBytes,
    });
    return server;
  };
  const connections = new Set<WebSocketConnection>();
  let allClosed: (() => void) | undefined;
  const deps = {
    dispatcher: options.dispatcher,
    authenticator: options.authenticator,
    context,
    sync: options.sync,
    limits,
    log,
    forget(connection: WebSocketConnection) {
      connections.delete(connection);
      if (connections.size === 0) allClosed?.();
    },
  };

  const heartbeat = setInterval(() => {
    for (const connection of connections) connection.heartbeat();
  }, limits.heartbeatIntervalMs);
  heartbeat.unref();
  const sessionCheck = setInterval(() => {
    for (const connection of connections) {
      connection.checkSession().catch((error: unknown) => {
        log.warn({ err: error }, 'WebSocket session check failed');
      });
    }
  }, limits.sessionCheckIntervalMs);
  sessionCheck.unref();

  let closed: Promise<void> | undefined;
  return {
    handleUpgrade(request, socket, head) {
      socket.on('error', () => socket.destroy());
      const path = (request.url ?? '/').split('?')[0];
      if (path !== WEBSOCKET_PATH || !options.servesClientApi) {
        refuseUpgrade(socket, 404, MatrixError.unrecognized());
        return;
      }
      if (closed !== undefined) {
        refuseUpgrade(socket, 503, MatrixError.of('M_UNKNOWN', 'The server is stopping.'));
        return;
      }
      webSocketServer().handleUpgrade(request, socket, head, (webSocket) => {
        if (closed !== undefined) {
          webSocket.close(1001, 'server stopping');
          return;
        }
        const connection = new WebSocketConnection(
          webSocket,
          deps,
          clientAddress(request, options.trustProxy),
          request.headers['user-agent'],
        );
        connections.add(connection);
        connection.open(request.headers, request.url ?? '/');
      });
    },

    connectionCount() {
      return connections.size;
    },

    close(deadlineMs) {
      closed ??= new Promise<void>((resolve) => {
        clearInterval(heartbeat);
        clearInterval(sessionCheck);
        const deadline = setTimeout(() => {
          for (const connection of connections) connection.terminate();
        }, deadlineMs);
        allClosed = () => {
          clearTimeout(deadline);
          server?.close();
          resolve();
        };
        if (connections.size === 0) allClosed();
        else for (const connection of [...connections]) connection.shutdown();
      });
      return closed;
    },
  };
}

/** The client's address: the first X-Forwarded-For entry behind a trusted proxy, as Koa reads it. */
function clientAddress(request: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = request.headers['x-forwarded-for'];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return request.socket.remoteAddress ?? '';
}

/** Answers an upgrade we do not take as a plain HTTP error with the Matrix error body, then hangs up. */
function refuseUpgrade(socket: Duplex, status: number, error: MatrixError): void {
  const body = JSON.stringify(error.toJSON());
  const reason = status === 404 ? 'Not Found' : 'Service Unavailable';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
