import { expect } from 'chai';
import { pino } from 'pino';
import { openSqliteStorage, type SqliteStorage } from '../storage/sqlite/sqlite-storage.js';
import { type FederationClient, type FederationRequest, FederationRequestError } from './federation.js';
import { createOutboundQueue, MAX_EDUS_PER_TRANSACTION, MAX_PDUS_PER_TRANSACTION } from './outbound-queue.js';

interface SentTransaction {
  readonly destination: string;
  readonly txnId: string;
  readonly pdus: unknown[];
  readonly edus: unknown[];
}

/** A client whose destinations are up or down at the test's say. */
function stubClient() {
  const sent: SentTransaction[] = [];
  const down = new Set<string>();
  let status = 0;
  const client: FederationClient = {
    async request<T>(req: FederationRequest): Promise<T> {
      if (down.has(req.destination))
        throw new FederationRequestError(req.destination, status, undefined, 'down');
      const body = req.body as { pdus: unknown[]; edus: unknown[] };
      sent.push({
        destination: req.destination,
        txnId: req.path.split('/').pop()!,
        pdus: body.pdus,
        edus: body.edus,
      });
      return { pdus: {} } as T;
    },
    async close() {},
  };
  return {
    client,
    sent,
    down,
    setFailureStatus: (value: number) => {
      status = value;
    },
  };
}

describe('outbound federation queue', () => {
  let storage: SqliteStorage;
  let now: number;
  const log = pino({ level: 'silent' });

  beforeEach(async () => {
    storage = await openSqliteStorage({ path: ':memory:' });
    now = 1_000_000;
  });
  afterEach(() => storage.close());

  function queueWith(client: FederationClient, random = () => 1) {
    return createOutboundQueue({
      serverName: 'me.example',
      store: storage.federation,
      client,
      log,
      minBackoffMs: 1000,
      maxBackoffMs: 5000,
      now: () => now,
      random,
    });
  }

  it('batches into transactions of at most 50 PDUs and 100 EDUs, in order, skipping this server', async () => {
    const stub = stubClient();
    const queue = queueWith(stub.client);
    // Not started yet: everything is only stored.
    for (let i = 0; i < 120; i++) await queue.sendPdu(['b.example', 'me.example'], { n: i });
    for (let i = 0; i < 150; i++) await queue.sendEdu('b.example', { edu_type: 'x', content: { n: i } });
    await queue.start();
    await queue.settled();
    expect(stub.sent.map((txn) => [txn.pdus.length, txn.edus.length])).to.deep.equal([
      [MAX_PDUS_PER_TRANSACTION, MAX_EDUS_PER_TRANSACTION],
      [50, 50],
      [20, 0],
    ]);
    expect(stub.sent.flatMap((txn) => txn.pdus)).to.deep.equal(
      Array.from({ length: 120 }, (_, n) => ({ n })),
    );
    expect(new Set(stub.sent.map((txn) => txn.txnId)).size).to.equal(3);
    expect(stub.sent.every((txn) => txn.destination === 'b.example')).to.equal(true);
    await queue.stop();
  });

  it('backs off exponentially with jitter while a destination is down, capped, and clears it on delivery', async () => {
    const stub = stubClient();
    stub.down.add('b.example');
    let jitter = 1;
    const queue = queueWith(stub.client, () => jitter);
    await queue.start();
    await queue.sendEdu('b.example', { edu_type: 'x', content: {} });
    await queue.settled();
    const backoffs: number[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const retry = (await storage.federation.getRetry('b.example'))!;
      backoffs.push(retry.backoffMs);
      // With jitter 1 the wait is the whole step; with 0 it would be half of it.
      expect(retry.retryAfterTs - now).to.equal(retry.backoffMs);
      now = retry.retryAfterTs;
      queue.wake('b.example');
      await queue.settled();
    }
    expect(backoffs).to.deep.equal([1000, 2000, 4000, 5000, 5000]);
    jitter = 0;
    queue.wake('b.example');
    await queue.settled();
    const halved = (await storage.federation.getRetry('b.example'))!;
    expect(halved.retryAfterTs - now).to.equal(2500);
    stub.down.delete('b.example');
    queue.wake('b.example');
    await queue.settled();
    expect(stub.sent).to.have.length(1);
    expect(await storage.federation.getRetry('b.example')).to.equal(null);
    await queue.stop();
  });

  it('waits out the backoff unless woken by the destination', async () => {
    const stub = stubClient();
    stub.down.add('b.example');
    const queue = queueWith(stub.client);
    await queue.start();
    await queue.sendEdu('b.example', { edu_type: 'x', content: { n: 1 } });
    await queue.settled();
    stub.down.delete('b.example');
    // New items while backed off are stored, not sent.
    await queue.sendEdu('b.example', { edu_type: 'x', content: { n: 2 } });
    await queue.settled();
    expect(stub.sent).to.have.length(0);
    queue.wake('b.example');
    await queue.settled();
    expect(stub.sent.flatMap((txn) => txn.edus)).to.deep.equal([
      { edu_type: 'x', content: { n: 1 } },
      { edu_type: 'x', content: { n: 2 } },
    ]);
    await queue.stop();
  });

  it('drops an EDU with a time to live that could not be sent in time, keeps the others', async () => {
    const stub = stubClient();
    stub.down.add('b.example');
    const queue = queueWith(stub.client);
    await queue.start();
    await queue.sendPdu(['b.example'], { n: 1 });
    await queue.settled();
    // The first transaction (the PDU) is claimed and failed; these wait behind it.
    await queue.sendEdu('b.example', { edu_type: 'm.typing', content: { typing: true } }, { ttlMs: 30_000 });
    await queue.sendEdu('b.example', { edu_type: 'm.receipt', content: {} });
    stub.down.delete('b.example');
    now += 60_000;
    queue.wake('b.example');
    await queue.settled();
    expect(stub.sent.map((txn) => [txn.pdus, txn.edus])).to.deep.equal([
      [[{ n: 1 }], []],
      [[], [{ edu_type: 'm.receipt', content: {} }]],
    ]);
    await queue.stop();
  });

  it('after a restart resends an interrupted transaction under the same ID, then the rest, nothing twice', async () => {
    const stub = stubClient();
    stub.down.add('b.example');
    const first = queueWith(stub.client);
    await first.start();
    for (let i = 0; i < 3; i++) await first.sendPdu(['b.example'], { n: i });
    await first.settled();
    await first.stop();
    // The failed attempt claimed a transaction; another item arrives while the server is down.
    const claimed = (await storage.federation.claimTransaction('b.example', 50, 100))!;
    await storage.federation.enqueueOutbound([{ destination: 'b.example', kind: 'pdu', json: '{"n":3}' }]);

    stub.down.delete('b.example');
    now += 3600_000; // past the stored backoff
    const second = queueWith(stub.client);
    await second.start();
    await second.settled();
    expect(stub.sent.map((txn) => txn.txnId)[0]).to.equal(claimed.txnId);
    expect(stub.sent.flatMap((txn) => txn.pdus)).to.deep.equal([{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }]);
    expect(await storage.federation.pendingDestinations()).to.deep.equal([]);
    await second.stop();
  });

  it('sends to many destinations at once, but never more than 64 transactions in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const delivered = new Set<string>();
    const client: FederationClient = {
      async request<T>(req: FederationRequest): Promise<T> {
        most = Math.max(most, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, 5));
        inFlight--;
        delivered.add(req.destination);
        return { pdus: {} } as T;
      },
      async close() {},
    };
    const queue = queueWith(client);
    await queue.start();
    const destinations = Array.from({ length: 150 }, (_, i) => `d${i}.example`);
    await queue.sendPdu(destinations, { n: 1 });
    await queue.settled();
    expect(delivered.size).to.equal(150);
    expect(most).to.be.at.most(64).and.at.least(32);
    await queue.stop();
  });

  it('drops a transaction the destination refuses as malformed or forbidden, and goes on', async () => {
    const stub = stubClient();
    stub.down.add('b.example');
    stub.setFailureStatus(400);
    const queue = queueWith(stub.client);
    await queue.start();
    await queue.sendEdu('b.example', { edu_type: 'x', content: {} });
    await queue.settled();
    expect(await storage.federation.getRetry('b.example')).to.equal(null);
    expect(await storage.federation.pendingDestinations()).to.deep.equal([]);
    await queue.stop();
  });
});
