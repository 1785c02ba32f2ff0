import { execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import WebSocket, { WebSocketServer } from 'ws';
import { checkPreparedFrames, prepareTextFrame, sendPrepared } from './prepared-frame.js';

/** A server socket and the client at its other end, over 127.0.0.1. */
async function connectedPair(compress: boolean): Promise<{
  server: WebSocket;
  client: WebSocket;
  close(): Promise<void>;
}> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: compress });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, {
    perMessageDeflate: compress,
  });
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  const server = await accepted;
  return {
    server,
    client,
    close: async () => {
      client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

function received(client: WebSocket, count: number): Promise<{ text: string; binary: boolean }[]> {
  return new Promise((resolve) => {
    const messages: { text: string; binary: boolean }[] = [];
    client.on('message', (data, isBinary) => {
      messages.push({ text: String(data), binary: isBinary });
      if (messages.length === count) resolve(messages);
    });
  });
}

describe('prepared WebSocket frames', () => {
  // Lengths around the three header forms (7-bit, 16-bit, 64-bit), multi-byte UTF-8 included.
  const texts = [
    '{}',
    `{"a":"${'é'.repeat(62)}"}`,
    `{"b":"${'x'.repeat(300)}🧪"}`,
    `"${'y'.repeat(70_000)}"`,
  ];

  for (const compress of [false, true]) {
    it(`deliver the same messages, in call order with ws's own sends${compress ? ' (compression negotiated: falls back to ws)' : ''}`, async () => {
      const pair = await connectedPair(compress);
      try {
        const expected = texts.flatMap((text, i) => [text, `{"own":${i}}`]);
        const arriving = received(pair.client, expected.length);
        const handed: (Error | null | undefined)[] = [];
        for (const [i, text] of texts.entries()) {
          // One frame written to this socket; a fan-out writes the same bytes to many.
          sendPrepared(pair.server, prepareTextFrame(text), text, (error) => handed.push(error));
          pair.server.send(`{"own":${i}}`);
        }
        const messages = await arriving;
        expect(messages.map((message) => message.text)).to.deep.equal(expected);
        expect(messages.every((message) => !message.binary)).to.equal(true);
        expect(handed).to.have.length(texts.length);
        expect(handed.every((error) => error == null)).to.equal(true);
      } finally {
        await pair.close();
      }
    });
  }

  it('find the installed ws as expected (else every message would take ws.send)', () => {
    expect(checkPreparedFrames()).to.equal(true);
  });

  it('find it as expected when ws is loaded as an ES module too (as the compiled server loads it)', () => {
    // Mocha's tsx loads ws as CommonJS; a fresh process importing this module loads ws's ES module wrapper.
    const module = new URL('./prepared-frame.ts', import.meta.url).href;
    const output = execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `const { checkPreparedFrames } = await import(${JSON.stringify(module)}); console.log(checkPreparedFrames());`,
      ],
      { encoding: 'utf8', timeout: 15_000 },
    );
    expect(output.trim()).to.equal('true');
  });

  it('never write a whole frame in the middle of a fragmented message', async () => {
    const pair = await connectedPair(false);
    try {
      const arriving = received(pair.client, 2);
      let clientError: Error | undefined;
      pair.client.on('error', (error) => {
        clientError = error;
      });
      pair.server.send('{"first":', { fin: false });
      // Through ws.send, which continues the message ws has begun (a text frame here would
      // be a protocol error for the client).
      sendPrepared(pair.server, prepareTextFrame('1}'), '1}', () => {});
      pair.server.send('{"own":2}');
      const messages = await arriving;
      expect(messages.map((message) => message.text)).to.deep.equal(['{"first":1}', '{"own":2}']);
      expect(clientError).to.equal(undefined);
    } finally {
      await pair.close();
    }
  });

  it('report a socket that is no longer open instead of writing', async () => {
    const pair = await connectedPair(false);
    try {
      pair.server.close(1000);
      const error = await new Promise<Error | null | undefined>((resolve) =>
        sendPrepared(pair.server, prepareTextFrame('{}'), '{}', resolve),
      );
      expect(error).to.be.instanceOf(Error);
    } finally {
      await pair.close();
    }
  });
});
