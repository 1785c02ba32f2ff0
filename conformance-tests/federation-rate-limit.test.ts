/**
 * Inbound federation is rate limited per origin server (rate_limits.federation): a peer that
 * floods gets 429 M_LIMIT_EXCEEDED with retry_after_ms, while other peers, the key server and
 * the client API go on being served; the origin is let in again once its bucket refills.
 */
import { expect } from 'chai';
import { FederationRequestError } from '../federation/federation.js';
import { type FederatedServer, TestFederation } from './harness/test-federation.js';

describe('federation rate limit per origin server', function () {
  this.timeout(60_000);
  let federation: TestFederation;
  let a: FederatedServer;
  let b: FederatedServer;
  let c: FederatedServer;

  before(async () => {
    federation = await TestFederation.start(3, {
      configure: (config) => {
        config.rate_limits.enabled = true;
        config.rate_limits.federation = { per_second: 0.5, burst: 3 };
      },
    });
    [a, b, c] = federation.servers as [FederatedServer, FederatedServer, FederatedServer];
  });
  after(async () => {
    await federation?.stop();
  });

  const transaction = (from: FederatedServer, to: FederatedServer, txnId: string) =>
    from.context.federation.client.request({
      destination: to.serverName,
      method: 'PUT',
      path: `/_matrix/federation/v1/send/${txnId}`,
      body: { origin: from.serverName, origin_server_ts: Date.now(), pdus: [], edus: [] },
    });

  it('answers 429 M_LIMIT_EXCEEDED past the burst of one origin, and serves the others', async () => {
    for (let n = 0; n < 3; n++) expect(await transaction(a, b, `burst-${n}`)).to.deep.equal({ pdus: {} });
    let refused: unknown;
    try {
      await transaction(a, b, 'burst-over');
    } catch (error) {
      refused = error;
    }
    expect(refused).to.be.instanceOf(FederationRequestError);
    const error = refused as FederationRequestError;
    expect(error.status).to.equal(429);
    expect(error.errcode).to.equal('M_LIMIT_EXCEEDED');
    expect((error.body as { retry_after_ms?: number }).retry_after_ms).to.be.within(1, 2000);

    // Another origin has its own bucket; the key server and the client API are not this limit's.
    expect(await transaction(c, b, 'other-origin')).to.deep.equal({ pdus: {} });
    const keys = await fetch(`${b.server.baseUrl}/_matrix/key/v2/server`);
    expect(keys.status).to.equal(200);
    const versions = await fetch(`${b.server.baseUrl}/_matrix/client/versions`);
    expect(versions.status).to.equal(200);
  });

  it('lets the origin in again once its bucket refills', async () => {
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    expect(await transaction(a, b, 'after-refill')).to.deep.equal({ pdus: {} });
  });
});
