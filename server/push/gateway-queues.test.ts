import { lookup as dnsLookup } from 'node:dns';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { AddressGuard } from '../outbound/address-guard.js';
import { type GatewayPush, GatewayQueues, type PushTarget } from './gateway-queues.js';
import { type LoopbackGateway, startLoopbackGateway } from './push-test-fixtures.js';
import { SendActivity, type SendYieldOptions } from './send-yield.js';

describe('gateway queues (push delivery HTTP side)', () => {
  let gateway: LoopbackGateway;
  let url: string;
  let answers: LoopbackGateway['answers'];
  let received: string[];

  before(async () => {
    gateway = await startLoopbackGateway();
    ({ url, answers, received } = gateway);
  });
  after(() => gateway.stop());
  beforeEach(() => {
    answers.length = 0;
    received.length = 0;
  });

  function queues(
    events: { settled: number; rejected: PushTarget[] },
    options: {
      maxAttempts?: number;
      allowPrivate?: boolean;
      logs?: string[];
      guard?: AddressGuard;
      yieldToSends?: SendYieldOptions;
    } = {},
  ) {
    return new GatewayQueues(
      {
        policy: { allowPrivate: options.allowPrivate ?? true },
        requestTimeoutMs: 2000,
        initialRetryDelayMs: 5,
        maxRetryDelayMs: 20,
        maxAttempts: options.maxAttempts ?? 5,
        yieldToSends: options.yieldToSends,
        onRejected: (targets) => events.rejected.push(...targets),
        onSettled: () => {
          events.settled++;
        },
        log: (level, _fields, message) => options.logs?.push(`${level}: ${message}`),
      },
      options.guard,
    );
  }

  const push = (eventId: string, pushkey = 'k'): GatewayPush => ({
    key: `@u:x ${url}`,
    url,
    body: JSON.stringify({ notification: { event_id: eventId } }),
    eventId,
    targets: [{ userId: '@u:x', appId: 'a', pushkey }],
  });

  async function until(check: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  it('retries 5xx and 429 with backoff, in order, and delivers each push once', async () => {
    const events = { settled: 0, rejected: [] as PushTarget[] };
    const q = queues(events);
    answers.push({ status: 500, body: '' }, { status: 429, body: '' });
    q.add(push('$1'));
    q.add(push('$2'));
    await until(() => events.settled === 2);
    await q.stop();
    expect(received.map((body) => JSON.parse(body).notification.event_id)).to.deep.equal([
      '$1',
      '$1',
      '$1',
      '$2',
    ]);
  });

  it('reports rejected pushkeys, drops on 4xx and gives up after max attempts', async () => {
    const events = { settled: 0, rejected: [] as PushTarget[] };
    const q = queues(events, { maxAttempts: 2 });
    answers.push({ status: 200, body: '{"rejected":["gone"]}' }, { status: 400, body: '' });
    answers.push({ status: 503, body: '' }, { status: 503, body: '' });
    q.add(push('$1', 'gone'));
    q.add(push('$2'));
    q.add(push('$3'));
    await until(() => events.settled === 3);
    await q.stop();
    expect(events.rejected).to.deep.equal([{ userId: '@u:x', appId: 'a', pushkey: 'gone' }]);
    expect(received).to.have.length(4);
  });

  it('retries an unreachable gateway, then drops the push with a warning', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const events = { settled: 0, rejected: [] as PushTarget[] };
    const logs: string[] = [];
    const q = queues(events, { maxAttempts: 3, logs });
    const unreachable = `http://127.0.0.1:${port}/_matrix/push/v1/notify`;
    q.add({ ...push('$1'), key: `@u:x ${unreachable}`, url: unreachable });
    await until(() => events.settled === 1);
    await q.stop();
    expect(logs.filter((line) => line.startsWith('info: Push gateway unreachable'))).to.have.length(3);
    expect(logs).to.include('warn: Push gateway kept failing; notification dropped');
  });

  it('never connects to a refused address; a literal one is final, a name is retried (DNS may change)', async () => {
    const events = { settled: 0, rejected: [] as PushTarget[] };
    const logs: string[] = [];
    const lookups: string[] = [];
    // Resolves every name to loopback, which this policy refuses; counts the lookups.
    const resolve = ((hostname: string, options: object, callback: (...args: unknown[]) => void) => {
      lookups.push(hostname);
      dnsLookup('127.0.0.1', options, callback as never);
    }) as typeof dnsLookup;
    const q = queues(events, {
      maxAttempts: 3,
      allowPrivate: false,
      logs,
      guard: new AddressGuard([], [], resolve),
    });
    const named = url.replace('127.0.0.1', 'gateway.example.org');
    // Two users on the named gateway, two on the literal one.
    q.add({ ...push('$1'), key: `@u:x ${named}`, url: named });
    q.add({ ...push('$2'), key: `@v:x ${named}`, url: named });
    q.add({ ...push('$3'), key: `@u:x ${url}`, url });
    q.add({ ...push('$4'), key: `@v:x ${url}`, url });
    await until(() => events.settled === 4);
    await q.stop();
    expect(received).to.deep.equal([]);
    // Each push to the name was tried max_attempts times, each time resolving it again.
    expect(lookups).to.deep.equal(Array(6).fill('gateway.example.org'));
    // One warning per gateway, not per push or attempt.
    expect(logs).to.have.members([
      'warn: Push gateway host resolves to a private or reserved address; its pushes are retried with backoff and dropped after max_attempts',
      'warn: Push gateway address refused (private or reserved); its pushes are dropped',
    ]);
  });
  it('delivers a push once its gateway name resolves to a permitted address again', async () => {
    const events = { settled: 0, rejected: [] as PushTarget[] };
    const logs: string[] = [];
    // The first two answers are a private address, then loopback (which this guard permits).
    let lookups = 0;
    const resolve = ((_hostname: string, options: object, callback: (...args: unknown[]) => void) => {
      dnsLookup(++lookups <= 2 ? '10.0.0.1' : '127.0.0.1', options, callback as never);
    }) as typeof dnsLookup;
    const q = queues(events, {
      allowPrivate: false,
      logs,
      guard: new AddressGuard(['127.0.0.0/8'], [], resolve),
    });
    const named = url.replace('127.0.0.1', 'gateway.example.org');
    q.add({ ...push('$1'), key: `@u:x ${named}`, url: named });
    await until(() => events.settled === 1);
    await q.stop();
    expect(received.map((body) => JSON.parse(body).notification.event_id)).to.deep.equal(['$1']);
    expect(lookups).to.equal(3);
    expect(logs).to.deep.equal([
      'warn: Push gateway host resolves to a private or reserved address; its pushes are retried with backoff and dropped after max_attempts',
      'info: Push gateway host resolves to a permitted address again',
    ]);
  });

  describe('yielding to sends', () => {
    let sends: SendActivity;
    let sending: NodeJS.Timeout | undefined;
    /** Sends every 5 ms (as a busy server does) until stopSending(). */
    const keepSending = () => {
      sends.noteSend();
      sending = setInterval(() => sends.noteSend(), 5);
    };
    const stopSending = () => {
      clearInterval(sending);
      sending = undefined;
    };
    const eventIds = () => received.map((body) => JSON.parse(body).notification.event_id);
    beforeEach(() => {
      sends = new SendActivity();
    });
    afterEach(stopSending);

    it('holds new requests while sends go on within the quiet window, and starts them once sends pause', async () => {
      const events = { settled: 0, rejected: [] as PushTarget[] };
      const q = queues(events, { yieldToSends: { sends: sends.buffer, quietMs: 100, maxHoldMs: 10_000 } });
      keepSending();
      q.add(push('$1'));
      q.add({ ...push('$2'), key: `@v:x ${url}` });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(received).to.deep.equal([]);
      stopSending();
      const pausedAt = performance.now();
      await until(() => events.settled === 2);
      // Between the quiet window and 1.5 times it (a send is noticed up to quietMs / 2 late).
      expect(performance.now() - pausedAt).to.be.within(90, 1_000);
      await q.stop();
      expect(eventIds()).to.have.members(['$1', '$2']);
    });

    it('starts requests at once when no send happened within the quiet window', async () => {
      const events = { settled: 0, rejected: [] as PushTarget[] };
      const q = queues(events, { yieldToSends: { sends: sends.buffer, quietMs: 5_000, maxHoldMs: 10_000 } });
      const started = performance.now();
      q.add(push('$1'));
      await until(() => events.settled === 1);
      expect(performance.now() - started).to.be.below(1_000);
      await q.stop();
    });

    it('delivers within the hold bound while sends never pause, each queue in order', async () => {
      const events = { settled: 0, rejected: [] as PushTarget[] };
      const q = queues(events, { yieldToSends: { sends: sends.buffer, quietMs: 100, maxHoldMs: 200 } });
      keepSending();
      const started = performance.now();
      q.add(push('$1'));
      q.add(push('$2'));
      await until(() => events.settled === 2);
      const took = performance.now() - started;
      expect(took).to.be.within(190, 1_500);
      // Sends never paused: the bound, not quiet, let them go.
      expect(sending).to.not.equal(undefined);
      expect(eventIds()).to.deep.equal(['$1', '$2']);
      // A later push is held afresh, and goes out within the bound too.
      const later = performance.now();
      q.add(push('$3'));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(eventIds()).to.deep.equal(['$1', '$2']);
      await until(() => events.settled === 3);
      expect(performance.now() - later).to.be.within(190, 1_500);
      await q.stop();
    });

    it('lets a request under way finish, retries held like new ones, and starts what is held on stop', async () => {
      const events = { settled: 0, rejected: [] as PushTarget[] };
      const q = queues(events, { yieldToSends: { sends: sends.buffer, quietMs: 100, maxHoldMs: 10_000 } });
      answers.push({ status: 500, body: '' });
      const release = gateway.hold();
      q.add(push('$1'));
      await until(() => received.length === 1);
      keepSending();
      release();
      gateway.hold()();
      // The 500 came back: its retry (after 5 ms) waits for the sends to pause.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(received).to.have.length(1);
      expect(events.settled).to.equal(0);
      q.add(push('$2'));
      await q.stop();
      expect(events.settled).to.equal(2);
      // Stopping starts the held retry at once, as without the hold, and lets it finish.
      expect(received.map((body) => JSON.parse(body).notification.event_id)).to.deep.equal(['$1', '$1']);
    });
  });
});
