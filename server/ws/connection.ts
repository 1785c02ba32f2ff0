/**
 * One client's WebSocket (spec/websocket.md): authentication (upgrade header
 * or a first `auth` frame), the sync stream (the /sync computation run in a
 * loop, each non-empty delta pushed as it exists), and REST calls carried in
 * frames, run through the listener's route dispatcher exactly as over HTTP.
 *
 * Output is bounded: the next sync delta is computed only once the previous
 * one has left for the network, so a slow reader gets pending changes
 * coalesced into one delta from its last token; beyond that, other frames
 * waiting in the buffer past the limit close the socket (4000).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import type WebSocket from 'ws';
import type { JsonObject } from '../../protocol/events.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import type { RouteDispatcher } from '../http/app.js';
import { type AuthenticatedUser, type Authenticator, accessTokenOf } from '../http/auth.js';
import { matrixErrorFor } from '../http/error-responses.js';
import type { PipelineRequest } from '../http/pipeline.js';
import { redactQuery } from '../http/request-logging.js';
import { parseQuery } from '../http/request-url.js';
import type { SyncText } from '../sync/sync-service.js';
import { SyncStreamMemo } from '../sync/sync-stream-memo.js';
import { tryParseSyncToken } from '../sync/sync-token.js';
import {
  type CarriedRequest,
  errorFrame,
  FrameError,
  parseClientFrame,
  type RequestId,
  rawResponseFrame,
  responseFrame,
  type SyncCommand,
  syncFrame,
} from './messages.js';
import { prepareTextFrame, sendPrepared } from './prepared-frame.js';

/** The sync computation the WebSocket runs (sync/ provides it as hs.sync). */
export interface SyncEngine {
  syncText(
    requester: AuthenticatedUser,
    params: {
      since?: string;
      filter?: string;
      timeoutMs: number;
      fullState: boolean;
      setPresence?: 'online' | 'offline' | 'unavailable';
      acknowledgeToDevice?: boolean;
      stream?: SyncStreamMemo;
    },
    signal: AbortSignal,
  ): Promise<SyncText>;
  /** A wait for news past `since` before the next round, when telling needs no read; else undefined. */
  waitBeforeSync(
    requester: AuthenticatedUser,
    since: string,
    filter: string | undefined,
    stream: SyncStreamMemo,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<'changed' | 'timeout' | 'aborted'> | undefined;
}

export interface WebSocketLimits {
  /** A ping every interval; a peer that has not answered the previous one by then is dropped. */
  readonly heartbeatIntervalMs: number;
  /** How long a socket may stay open without authenticating (close 4408). */
  readonly authTimeoutMs: number;
  /** How often open sockets check that their login session still lives (close 4401 once it ends). */
  readonly sessionCheckIntervalMs: number;
  /** Bytes of frames (besides the one sync delta in flight) that may wait for a slow reader before close 4000. */
  readonly maxBufferedBytes: number;
  /** The largest frame accepted; bigger ones close the socket (1009). */
  readonly maxFrameBytes: number;
  /** REST calls one socket may have running at once; more are answered 429 M_LIMIT_EXCEEDED. */
  readonly maxRequestsInFlight: number;
  /** How long one round of the sync loop waits for news before it asks again. */
  readonly syncWaitMs: number;
}

export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  internalError: 1011,
  slowConsumer: 4000,
  unauthenticated: 4401,
  authenticationTimeout: 4408,
  rateLimited: 4429,
} as const;

/** What every connection of one listener shares. */
export interface ConnectionDependencies {
  readonly dispatcher: RouteDispatcher;
  readonly authenticator: Authenticator;
  readonly context: HomeserverContext;
  readonly sync: SyncEngine;
  readonly limits: WebSocketLimits;
  readonly log: Logger;
  /** Called once the socket has closed. */
  forget(connection: WebSocketConnection): void;
}

let connectionCounter = 0;

export class WebSocketConnection {
  private readonly id = ++connectionCounter;
  private requester: AuthenticatedUser | undefined;
  private accessToken: string | undefined;
  private authenticating: Promise<void> | undefined;
  private authTimer: NodeJS.Timeout | undefined;
  private awaitingPong = false;
  private requestsInFlight = 0;
  private requestCounter = 0;
  private syncRun: AbortController | undefined;
  /** Aborted when the socket closes or the server stops: long calls carried by it end early. */
  private lifetime: AbortController | undefined;
  /** Bytes of the sync deltas still on their way out (exempt from the buffer limit). */
  private syncBytesInFlight = 0;
  /**
   * Sync deltas handed to the socket and not yet written, oldest first: writes complete in
   * order, so each completion settles the oldest. Usually one; two when a new `sync` command
   * starts a stream while the old stream's last delta is still being written.
   */
  private readonly syncWrites: { readonly bytes: number; readonly resolve: () => void }[] = [];
  /** The to-device position of the newest next_batch this socket has handed out (what sync_ack may confirm). */
  private toDevicePushed = 0;
  private closing = false;
  private closeWhenIdle = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly deps: ConnectionDependencies,
    private readonly ip: string,
    private readonly userAgent: string | undefined,
  ) {
    socket.on('message', (data, isBinary) => {
      this.onFrame(data, isBinary).catch((thrown: unknown) => {
        deps.log.error({ err: thrown, connection: this.id }, 'WebSocket frame handling failed');
        this.close(CloseCode.internalError, 'internal error');
      });
    });
    socket.on('pong', () => {
      this.awaitingPong = false;
    });
    socket.on('close', () => this.onClosed());
    socket.on('error', (error) => deps.log.debug({ err: error, connection: this.id }, 'WebSocket error'));
  }

  /** Starts with the upgrade request's credentials, or waits for an `auth` frame. */
  open(headers: IncomingHttpHeaders, url: string): void {
    let token: string | undefined;
    try {
      token = accessTokenOf(headers, parseQuery(queryStringOf(url)));
    } catch (thrown) {
      this.rejectAuthentication(matrixErrorFor(thrown, this.deps.log));
      return;
    }
    if (token !== undefined) {
      this.authenticating = this.authenticate(token);
      return;
    }
    this.authTimer = setTimeout(() => {
      if (this.requester !== undefined) return;
      this.send(errorFrame(MatrixError.missingToken('No authentication in time.'), { in: 'auth' }));
      this.close(CloseCode.authenticationTimeout, 'authentication timeout');
    }, this.deps.limits.authTimeoutMs);
  }

  /** Heartbeat: drops a peer that did not answer the last ping. */
  heartbeat(): void {
    if (this.awaitingPong) {
      this.deps.log.debug({ connection: this.id }, 'WebSocket peer missed its heartbeat');
      this.socket.terminate();
      return;
    }
    this.awaitingPong = true;
    this.socket.ping();
  }

  /** Closes the socket (4401) once its login session has ended (logout, device deleted, deactivated). */
  async checkSession(): Promise<void> {
    const requester = this.requester;
    if (requester === undefined || this.closing) return;
    const sessions = this.deps.context.sessions;
    // An application service's token has no login session (its sessionId is `appservice:<id>`).
    const alive =
      requester.appservice !== undefined || (await sessions.sessionState(requester.sessionId)).alive;
    const account = await sessions.accountFlags(requester.userId);
    if (alive && account.exists && !account.deactivated) return;
    this.send(errorFrame(MatrixError.unknownToken('The login session has ended.'), { in: 'auth' }));
    this.close(CloseCode.unauthenticated, 'session ended');
  }

  /** Server stopping: ends long calls and the sync stream, lets running calls answer, then closes (1001). */
  shutdown(): void {
    this.syncRun?.abort();
    this.lifetime?.abort();
    if (this.requestsInFlight === 0) this.close(CloseCode.goingAway, 'server stopping');
    else this.closeWhenIdle = true;
  }

  terminate(): void {
    this.socket.terminate();
  }

  private async authenticate(token: string): Promise<void> {
    let requester: AuthenticatedUser;
    try {
      requester = await this.deps.authenticator.authenticateAccessToken(token, {
        ip: this.ip,
        userAgent: this.userAgent,
      });
    } catch (thrown) {
      // As in the HTTP pipeline, a failed attempt draws from the address's bucket.
      const retryAfterMs = this.deps.context.rateLimiter.take('client', this.ip);
      this.rejectAuthentication(
        retryAfterMs > 0 ? MatrixError.limitExceeded(retryAfterMs) : matrixErrorFor(thrown, this.deps.log),
      );
      return;
    }
    if (requester.isLocked) {
      this.rejectAuthentication(MatrixError.userLocked());
      return;
    }
    if (this.requester !== undefined && this.requester.sessionId !== requester.sessionId) {
      this.send(
        errorFrame(MatrixError.forbidden('A socket stays with the login session it began with.'), {
          in: 'auth',
        }),
      );
      return;
    }
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
    this.requester = requester;
    this.accessToken = token;
    this.send(
      JSON.stringify({ type: 'authenticated', user_id: requester.userId, device_id: requester.deviceId }),
    );
  }

  private rejectAuthentication(error: MatrixError): void {
    if (this.requester !== undefined) {
      // A fresh token that fails does not end a socket already authenticated.
      this.send(errorFrame(error, { in: 'auth' }));
      return;
    }
    this.send(errorFrame(error, { in: 'auth' }));
    this.close(
      error.errcode === 'M_LIMIT_EXCEEDED' ? CloseCode.rateLimited : CloseCode.unauthenticated,
      'authentication failed',
    );
  }

  private async onFrame(data: WebSocket.RawData, isBinary: boolean): Promise<void> {
    this.awaitingPong = false;
    if (this.closing) return;
    if (this.authenticating) await this.authenticating;
    if (isBinary) {
      this.send(errorFrame(MatrixError.notJson('Frames are JSON text, not binary.')));
      return;
    }
    let command: ReturnType<typeof parseClientFrame>;
    try {
      command = parseClientFrame(textOf(data), this.requester?.userId);
    } catch (thrown) {
      if (!(thrown instanceof FrameError)) throw thrown;
      this.answerFrameError(thrown);
      return;
    }
    if (command.kind === 'ping') {
      this.send(
        JSON.stringify(command.id === undefined ? { type: 'pong' } : { type: 'pong', id: command.id }),
      );
      return;
    }
    if (command.kind === 'auth') {
      this.authenticating = this.authenticate(command.accessToken);
      await this.authenticating;
      return;
    }
    const requester = this.requester;
    if (requester === undefined) {
      const error = MatrixError.missingToken(
        'Authenticate first: send {"type":"auth","access_token":"..."}.',
      );
      if (command.kind === 'request') this.answerError(command.request.id, error);
      else this.send(errorFrame(error));
      return;
    }
    switch (command.kind) {
      case 'sync':
        this.startSync(requester, command.sync);
        return;
      case 'sync_stop':
        this.syncRun?.abort();
        this.syncRun = undefined;
        return;
      case 'sync_ack':
        await this.acknowledgeSync(requester, command.nextBatch);
        return;
      case 'request':
        await this.carry(command.request);
        return;
    }
  }

  private answerFrameError(failure: FrameError): void {
    if (failure.id !== undefined) this.answerError(failure.id, failure.error);
    else this.send(errorFrame(failure.error));
  }

  private answerError(id: RequestId, error: MatrixError): void {
    const headers = Object.keys(error.headers).length > 0 ? error.headers : undefined;
    this.send(responseFrame(id, error.status, JSON.stringify(error.toJSON()), headers));
  }

  /** A REST call in a frame: the same route, pipeline and answer as over HTTP, as the socket's user. */
  private async carry(call: CarriedRequest): Promise<void> {
    if (this.requestsInFlight >= this.deps.limits.maxRequestsInFlight) {
      this.answerError(call.id, MatrixError.limitExceeded(1000));
      return;
    }
    this.requestsInFlight++;
    const started = performance.now();
    const requestId = `ws${this.id}.${++this.requestCounter}`;
    const log = this.deps.log;
    try {
      const response = await this.deps.dispatcher.dispatch(this.pipelineRequestOf(call, requestId));
      if (response.contentType === 'application/json') {
        this.send(responseFrame(call.id, response.status, response.body.toString(), response.headers));
      } else {
        this.send(
          rawResponseFrame(call.id, response.status, response.body, response.contentType, response.headers),
        );
      }
      log.info(
        {
          requestId,
          connection: this.id,
          method: call.method,
          path: call.path.split('?')[0],
          query: redactQuery(queryStringOf(call.path)),
          status: response.status,
          durationMs: Math.round((performance.now() - started) * 10) / 10,
        },
        'request',
      );
      if (response.status === 401) await this.checkSession();
    } finally {
      this.requestsInFlight--;
      if (this.closeWhenIdle && this.requestsInFlight === 0)
        this.close(CloseCode.goingAway, 'server stopping');
    }
  }

  private pipelineRequestOf(call: CarriedRequest, requestId: string): PipelineRequest {
    const body = call.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(call.body));
    const headers: IncomingHttpHeaders = {
      authorization: `Bearer ${this.accessToken}`,
      'content-type': 'application/json',
    };
    if (this.userAgent !== undefined) headers['user-agent'] = this.userAgent;
    return {
      method: call.method,
      uri: call.path,
      // Parsed as HTTP requests' queries are (a fresh object: the pipeline copies it anyway).
      query: parseQuery(queryStringOf(call.path)),
      headers,
      ip: this.ip,
      requestId,
      log: this.deps.log.child({ requestId }),
      readBody: async (limit) => {
        if (body.length > limit) throw MatrixError.tooLarge(`Request body too large (limit ${limit} bytes)`);
        return body;
      },
      signal: () => this.lifetimeSignal(),
    };
  }

  private lifetimeSignal(): AbortSignal {
    if (this.lifetime === undefined) {
      this.lifetime = new AbortController();
      if (this.closing || this.deps.context.shutdownSignal.aborted) this.lifetime.abort();
    }
    return this.lifetime.signal;
  }

  private startSync(requester: AuthenticatedUser, command: SyncCommand): void {
    const retryAfterMs = this.deps.context.rateLimiter.take('client', requester.userId);
    if (retryAfterMs > 0) {
      this.send(errorFrame(MatrixError.limitExceeded(retryAfterMs), { in: 'sync' }));
      return;
    }
    this.syncRun?.abort();
    const run = new AbortController();
    this.syncRun = run;
    void this.runSync(requester, command, run.signal).catch((thrown: unknown) => {
      this.deps.log.error({ err: thrown, connection: this.id }, 'WebSocket sync stream failed');
    });
  }

  /**
   * The sync loop: each round is one /sync computation from the last token;
   * a delta with content is pushed, and the next round starts only once that
   * delta has been handed to the network (what piles up meanwhile arrives as
   * one coalesced delta).
   */
  private async runSync(
    requester: AuthenticatedUser,
    command: SyncCommand,
    signal: AbortSignal,
  ): Promise<void> {
    const engine = this.deps.sync;
    const stream = new SyncStreamMemo();
    let since = command.since;
    let first = true;
    while (!signal.aborted && !this.closing) {
      let timeoutMs = first && since === undefined ? 0 : this.deps.limits.syncWaitMs;
      let answer: Awaited<ReturnType<SyncEngine['syncText']>>;
      try {
        if (!first && since !== undefined) {
          // Between rounds, wait for news with nothing but a waiter alive (sync-service.ts).
          const waiting = engine.waitBeforeSync(requester, since, command.filter, stream, timeoutMs, signal);
          if (waiting !== undefined) {
            // Timed out: the round answers at once, as the sync's own wait would have led it to.
            if ((await waiting) === 'timeout') timeoutMs = 0;
            if (signal.aborted || this.closing) return;
          }
        }
        // One params object a round (a thousand sockets run a round per message).
        answer = await engine.syncText(
          requester,
          {
            since,
            filter: command.filter,
            setPresence: command.setPresence,
            timeoutMs,
            fullState: first && command.fullState,
            // Only the client's own token confirms to-device messages (it may resume from it after a
            // lost connection); later rounds start from tokens it may never have received.
            acknowledgeToDevice: first,
            stream,
          },
          signal,
        );
      } catch (thrown) {
        if (signal.aborted || this.closing) return;
        // The stream stops; the client may start it again from its last token.
        this.send(errorFrame(matrixErrorFor(thrown, this.deps.log), { in: 'sync' }));
        if (this.syncRun?.signal === signal) this.syncRun = undefined;
        return;
      }
      if (signal.aborted || this.closing) return;
      const hasContent = answer.body === undefined ? answer.hasContent : hasSyncContent(answer.body);
      if ((first && since === undefined) || hasContent) await this.pushSync(answer);
      const next = answer.nextBatch;
      const pushedToDevice = tryParseSyncToken(next)?.toDevice;
      if (pushedToDevice !== undefined) this.toDevicePushed = Math.max(this.toDevicePushed, pushedToDevice);
      since = next;
      first = false;
    }
  }

  /**
   * `sync_ack`: the client processed the deltas up to `nextBatch`, so the to-device messages
   * they carried are delivered (as a /sync from that token would confirm them).
   */
  private async acknowledgeSync(requester: AuthenticatedUser, nextBatch: string): Promise<void> {
    const positions = tryParseSyncToken(nextBatch);
    if (positions === null) {
      this.send(errorFrame(MatrixError.invalidParam('Invalid next_batch token'), { in: 'sync' }));
      return;
    }
    if (requester.deviceId === null) return;
    // Never beyond what this socket has pushed: a token from elsewhere cannot drop unseen messages.
    const upTo = Math.min(positions.toDevice, this.toDevicePushed);
    await this.deps.context.toDevice.acknowledge(requester.userId, requester.deviceId, upTo);
  }

  private pushSync(answer: SyncText): Promise<void> {
    const frame = preparedSyncFrame(answer);
    const bytes = frame.bytes.length;
    return new Promise((resolve) => {
      this.syncWrites.push({ bytes, resolve });
      this.syncBytesInFlight += bytes;
      sendPrepared(this.socket, frame.bytes, frame.text, this.onSyncWritten);
    });
  }

  /** The end of a sync delta's write: one callback for every round rather than one made per push. */
  private readonly onSyncWritten = (): void => {
    const written = this.syncWrites.shift();
    if (written === undefined) return;
    this.syncBytesInFlight -= written.bytes;
    written.resolve();
  };

  private send(frame: string): void {
    if (this.socket.readyState !== this.socket.OPEN || this.closing) return;
    if (this.socket.bufferedAmount - this.syncBytesInFlight > this.deps.limits.maxBufferedBytes) {
      this.deps.log.info(
        { connection: this.id, bufferedBytes: this.socket.bufferedAmount },
        'WebSocket reader too slow; closing',
      );
      this.close(CloseCode.slowConsumer, 'slow consumer');
      // The close frame waits behind what the reader did not take; do not wait with it.
      setTimeout(() => this.socket.terminate(), 1000).unref();
      return;
    }
    this.socket.send(frame);
  }

  private close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.syncRun?.abort();
    this.lifetime?.abort();
    clearTimeout(this.authTimer);
    this.socket.close(code, reason);
  }

  private onClosed(): void {
    this.closing = true;
    this.syncRun?.abort();
    this.lifetime?.abort();
    clearTimeout(this.authTimer);
    this.deps.forget(this);
  }
}

interface PreparedSyncFrame {
  readonly text: string;
  /** The whole WebSocket frame (header and payload), written as it is to every socket. */
  readonly bytes: Buffer;
}

/**
 * The frames of the answers shared by many members (the same object for members woken
 * together with the same counts, fanout-delta.ts): framed once, written to every socket.
 */
const preparedFrames = new WeakMap<SyncText, PreparedSyncFrame>();

/** The sync frame of an answer (never written to: sockets share it). */
function preparedSyncFrame(answer: SyncText): PreparedSyncFrame {
  let frame = preparedFrames.get(answer);
  if (frame === undefined) {
    const text = syncFrame(answer.json);
    frame = { text, bytes: prepareTextFrame(text) };
    preparedFrames.set(answer, frame);
  }
  return frame;
}

/**
 * Whether a sync response carries anything for the client: some event, some
 * device list change, some new room section. A round that only moved the
 * token along (the wait timed out) is not pushed; the next one starts from it.
 */
export function hasSyncContent(body: JsonObject): boolean {
  for (const [key, value] of Object.entries(body)) {
    if (IGNORED_SYNC_KEYS.has(key)) continue;
    if (holdsAnyArrayEntry(value)) return true;
  }
  return false;
}

/** Counts that accompany every response whether or not anything changed. */
const IGNORED_SYNC_KEYS = new Set([
  'next_batch',
  'device_one_time_keys_count',
  'device_unused_fallback_key_types',
  'org.matrix.msc2732.device_unused_fallback_key_types',
]);

function holdsAnyArrayEntry(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value !== 'object' || value === null) return false;
  for (const inner of Object.values(value)) if (holdsAnyArrayEntry(inner)) return true;
  return false;
}

function queryStringOf(pathAndQuery: string): string {
  const start = pathAndQuery.indexOf('?');
  return start === -1 ? '' : pathAndQuery.slice(start + 1);
}

function textOf(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
