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
