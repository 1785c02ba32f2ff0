/**
 * Send-to-device over federation, once per message_id across a restart: a server that sends
 * the same m.direct_to_device again after we restarted (its retry, in a new transaction) must
 * not deliver it twice. The IDs are kept in SQLite, so the restarted server still knows them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { call, createUser, type TestUser } from './harness/accounts.js';
import { type FederatedServer, TestFederation } from './harness/test-federation.js';
import { until } from './harness/until.js';

const V3 = '/_matrix/client/v3';

type ToDeviceEvent = { type: string; sender: string; content: { n?: number } };

describe('federation: to-device message IDs remembered across a restart', function () {
  this.timeout(90_000);
  let federation: TestFederation;
  let dirA: string;

  before(async () => {
    federation = await TestFederation.start(0);
    dirA = await mkdtemp(path.join(tmpdir(), 'myelin-fed-to-device-a-'));
  });
  after(async () => {
    await federation?.stop();
    await rm(dirA, { recursive: true, force: true });
  });

  async function sendEdus(from: FederatedServer, to: FederatedServer, txnId: string, edus: unknown[]) {
    await from.context.federation.client.request({
      destination: to.serverName,
      method: 'PUT',
      path: `/_matrix/federation/v1/send/${txnId}`,
      body: { origin: from.serverName, origin_server_ts: Date.now(), pdus: [], edus },
    });
  }

  /** The org.example.ping events Alice's device receives after `since`, waiting for `count`. */
  async function pings(a: FederatedServer, alice: TestUser, since: string, count: number) {
    return until(async () => {
      const sync = await call(
        a.server,
        alice,
        'GET',
        `${V3}/sync?timeout=0&since=${encodeURIComponent(since)}`,
      );
      expect(sync.status, JSON.stringify(sync.body)).to.equal(200);
      const events = ((sync.body.to_device as { events?: ToDeviceEvent[] } | undefined)?.events ?? []).filter(
        (event) => event.type === 'org.example.ping',
      );
      return events.length >= count ? { events, next: sync.body.next_batch as string } : undefined;
    });
  }

  it('a message_id seen before the restart is not delivered again after it', async () => {
    let a = await federation.startServer({ dataDir: dirA });
    const portA = a.federationPort;
    const b = await federation.startServer();
    const alice = await createUser(a.server, 'alice');
    const bob = await createUser(b.server, 'bob');
    const edu = (messageId: string, n: number) => ({
      edu_type: 'm.direct_to_device',
      content: {
        sender: bob.userId,
        type: 'org.example.ping',
        message_id: messageId,
        messages: { [alice.userId]: { [alice.deviceId]: { n } } },
      },
    });

    const start = (await call(a.server, alice, 'GET', `${V3}/sync?timeout=0`)).body.next_batch as string;
    await sendEdus(b, a, 'first', [edu('once', 1)]);
    const first = await pings(a, alice, start, 1);
    expect(first.events.map((event) => event.content.n)).to.deep.equal([1]);

    await a.server.stop();
    a = await federation.startServer({ dataDir: dirA, federationPort: portA });
    // B retries the message in a new transaction (as after a lost answer), with a new one after it.
    await sendEdus(b, a, 'retry', [edu('once', 1), edu('later', 2)]);
    const after = await pings(a, alice, first.next, 1);
    expect(after.events.map((event) => event.content.n)).to.deep.equal([2]);
    await a.server.stop();
  });
});
