import { Agent, request } from 'node:http';
import { expect } from 'chai';
import { longPollRoute, slowRoute } from './harness/probe-routes.js';
import { TestHomeserver } from './harness/test-homeserver.js';

describe('homeserver lifecycle', () => {
  it('binds port 0 to a real port and serves on it', async () => {
    const hs = await TestHomeserver.start();
    try {
      expect(hs.port).to.be.greaterThan(0);
      expect((await hs.fetch('/health')).status).to.equal(200);
    } finally {
      await hs.stop();
    }
  });

  it('stop() lets an in-flight request finish, then refuses new connections', async () => {
    const hs = await TestHomeserver.start({ extraRoutes: [slowRoute] });
    const inFlight = hs.fetch('/_test/slow?ms=400');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();
    await hs.stop();
    const res = await inFlight;
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ waited: 400 });
    expect(performance.now() - started).to.be.greaterThan(200);
    let refused = false;
    await hs.fetch('/health').catch(() => {
      refused = true;
    });
    expect(refused, 'connection refused after stop').to.equal(true);
  });

  it('stop() wakes long polls through the request signal, and they still answer', async () => {
    const hs = await TestHomeserver.start({ extraRoutes: [longPollRoute] });
    const quick = await hs.fetch('/_test/long-poll?ms=10');
    expect(await quick.json()).to.deep.equal({ aborted: false });
    const polling = hs.fetch('/_test/long-poll?ms=30000');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();
    await hs.stop();
    expect(performance.now() - started).to.be.lessThan(2000);
    const res = await polling;
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ aborted: true });
  });

  it('a keep-alive connection carries many long polls; closing it aborts the one waiting', async () => {
    const hs = await TestHomeserver.start({ extraRoutes: [longPollRoute] });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const poll = (ms: number, requestId: string) =>
        new Promise<{ body: string; socket: unknown }>((resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port: hs.port, path: `/_test/long-poll?ms=${ms}`, agent },
            (res) => {
              let body = '';
              res.on('data', (chunk: Buffer) => {
                body += chunk.toString();
              });
              res.on('end', () => resolve({ body, socket: req.socket }));
            },
          );
          req.setHeader('X-Request-Id', requestId);
          req.on('error', reject);
          req.end();
        });
      // Answered polls leave the connection's signal alone for the next ones.
      const first = await poll(5, 'kept-1');
      const second = await poll(5, 'kept-2');
      expect(JSON.parse(first.body)).to.deep.equal({ aborted: false });
      expect(JSON.parse(second.body)).to.deep.equal({ aborted: false });
      expect(second.socket).to.equal(first.socket);
      const waiting = poll(30_000, 'kept-3').catch(() => 'gone');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const started = performance.now();
      agent.destroy();
      expect(await waiting).to.equal('gone');
      // The handler woke at once: its request's access line is written when it returns.
      while (!hs.logs().some((line) => line.requestId === 'kept-3' && line.msg === 'request')) {
        expect(performance.now() - started).to.be.lessThan(2000);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      agent.destroy();
      await hs.stop();
    }
  });

  it('stop() cuts requests still running at the deadline', async () => {
    const hs = await TestHomeserver.start({ extraRoutes: [slowRoute], shutdownTimeoutMs: 200 });
    const inFlight = hs.fetch('/_test/slow?ms=5000').then(
      () => 'answered',
      () => 'cut',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();
    await hs.stop();
    expect(performance.now() - started).to.be.lessThan(2000);
    expect(await inFlight).to.equal('cut');
  });

  it('keeps its signing key across restarts in the same data folder', async () => {
    const hs = await TestHomeserver.start();
    try {
      const key = hs.homeserver.context.signingKey;
      expect(key.keyId).to.match(/^ed25519:/);
      const { createHomeserver } = await import('../server/homeserver.js');
      const { pino } = await import('pino');
      const again = await createHomeserver(hs.config, { logger: pino({ level: 'silent' }) });
      expect(again.context.signingKey.publicKey).to.equal(key.publicKey);
      await again.stop();
    } finally {
      await hs.stop();
    }
  });
});
