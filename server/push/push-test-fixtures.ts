/** Shared by the push delivery tests: a loopback push gateway and pusher records. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PusherRecord } from '../../storage/push-store.js';

export interface LoopbackGateway {
  readonly url: string;
  /** Request bodies, in arrival order. */
  readonly received: string[];
  /** Answers for the next requests, in order; then 200 `{"rejected":[]}`. */
  readonly answers: { status: number; body: string }[];
  /** Requests received from now on are answered only once the returned function is called. */
  hold(): () => void;
  stop(): Promise<void>;
}

export async function startLoopbackGateway(): Promise<LoopbackGateway> {
  const received: string[] = [];
  const answers: { status: number; body: string }[] = [];
  let held: Promise<void> = Promise.resolve();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', async () => {
      received.push(body);
      await held;
      const answer = answers.shift() ?? { status: 200, body: '{"rejected":[]}' };
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/_matrix/push/v1/notify`,
    received,
    answers,
    hold: () => {
      let release!: () => void;
      held = new Promise((resolve) => {
        release = resolve;
      });
      return release;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export function httpPusher(userId: string, pushkey: string, data: PusherRecord['data']): PusherRecord {
  return {
    userId,
    deviceId: null,
    kind: 'http',
    appId: 'app',
    pushkey,
    appDisplayName: 'App',
    deviceDisplayName: 'Phone',
    profileTag: null,
    lang: 'en',
    data,
    createdTs: 1_700_000_000_000,
  };
}
