/**
 * A text message framed once and written as the same bytes to many sockets. A message
 * into a room of a thousand members pushes one sync answer to most of them (members
 * woken together share it, fanout-delta.ts); `ws.send` would frame it again for each
 * socket (a header buffer, a cork, a two-buffer writev). Server frames are not masked,
 * so the bytes on the wire are the same for every socket: here they are made once.
 *
 * Written straight to the socket's stream, which is where ws's own sender writes too,
 * synchronously and in call order, when no extension is transforming frames (the
 * listener turns compression off) and no fragmented message is half sent; with anything
 * else in the way, or if ws's internals are not as expected (checked once at start-up),
 * the message goes through `ws.send` instead.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import WebSocket, * as wsModule from 'ws';

/** The complete frame (RFC 6455 section 5.2) of a final, unmasked text message holding `text`. */
export function prepareTextFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81; // FIN, opcode 1 (text)
  if (length < 126) frame[1] = length;
  else if (length < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  frame.write(text, headerLength, 'utf8');
  return frame;
}

/** What ws's sender keeps that matters here (not part of its typed API). */
interface SenderInternals {
  /** 0 when no compression or queued write is in progress. */
  readonly _state?: number;
  readonly _queue?: readonly unknown[];
  /** False between the frames of a fragmented message (a whole frame may not go in between). */
  readonly _firstFragment?: boolean;
}

/** What ws keeps on a connection that matters here (not part of its typed API). */
interface WebSocketInternals {
  readonly _socket?: Socket | null;
  readonly _sender?: SenderInternals | null;
  readonly _extensions?: Record<string, unknown>;
}

/** Whether ws's private fields are the ones read here; null until checked. */
let internalsKnown: boolean | null = null;

/**
 * Checks once (at start-up) that the installed ws keeps the private fields this module
 * reads, with the values of an idle connection; if not, every message goes through
 * `ws.send` (correct, slower), and that is logged once.
 */
export function checkPreparedFrames(log?: Logger): boolean {
  if (internalsKnown !== null) return internalsKnown;
  internalsKnown = probeInternals();
  if (!internalsKnown)
    log?.warn(
      'the installed ws keeps its connection state in other fields than expected: prepared frames are sent through ws.send',
    );
  return internalsKnown;
}

function probeInternals(): boolean {
  try {
    // A named export of ws's ES module wrapper; a property of the class when loaded as CommonJS.
    type WithSender = { Sender?: new (socket: unknown) => SenderInternals };
    const Sender = (wsModule as unknown as WithSender).Sender ?? (WebSocket as unknown as WithSender).Sender;
    if (typeof Sender !== 'function') return false;
    const sender = new Sender({});
    const socket = new (
      WebSocket as unknown as new (
        address: null,
        protocols: undefined,
        options: object,
      ) => WebSocketInternals
    )(null, undefined, {});
    return (
      sender._state === 0 &&
      Array.isArray(sender._queue) &&
      sender._queue.length === 0 &&
      sender._firstFragment === true &&
      '_socket' in socket &&
      '_sender' in socket &&
      typeof socket._extensions === 'object' &&
      socket._extensions !== null
    );
  } catch {
    return false;
  }
}

/**
 * Sends the prepared frame of `text` (never written to: sockets share it); `done` runs once
 * it has been handed to the network, or at once if the socket is not open.
 */
export function sendPrepared(
  socket: WebSocket,
  frame: Buffer,
  text: string,
  done: (error?: Error | null) => void,
): void {
  if (socket.readyState !== WebSocket.OPEN) {
    done(new Error('WebSocket is not open'));
    return;
  }
  const internals = socket as unknown as WebSocketInternals;
  const stream = internals._socket;
  const sender = internals._sender;
  const plain =
    (internalsKnown ?? checkPreparedFrames()) &&
    stream != null &&
    !stream.destroyed &&
    sender != null &&
    sender._state === 0 &&
    sender._queue?.length === 0 &&
    sender._firstFragment === true &&
    isEmpty(internals._extensions);
  if (!plain) {
    socket.send(text, { binary: false }, done);
    return;
  }
  stream.write(frame, done);
}

function isEmpty(extensions: Record<string, unknown> | undefined): boolean {
  for (const _ in extensions) return false;
  return true;
}
