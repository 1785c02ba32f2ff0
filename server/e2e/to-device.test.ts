import { expect } from 'chai';
import { pino } from 'pino';
import type { JsonObject } from '../../protocol/events.js';
import { openSqliteStorage } from '../../storage/sqlite/sqlite-storage.js';
import type { Storage } from '../../storage/storage.js';
import { MatrixError } from '../errors.js';
import { SyncNotifier } from '../sync/notifier.js';
import { TO_DEVICE_TRANSACTION_LIFETIME_MS, ToDeviceService } from './to-device.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';

describe('ToDeviceService', () => {
  let storage: Storage;
  let notifier: SyncNotifier;
  let service: ToDeviceService;
  let now: number;

  beforeEach(async () => {
    storage = await openSqliteStorage({ path: ':memory:' });
    for (const userId of [alice, bob]) await storage.accounts.createAccount({ userId, createdTs: 1 });
    await storage.devices.createDevice({ userId: alice, deviceId: 'A', createdTs: 1 });
    await storage.devices.createDevice({ userId: bob, deviceId: 'B', createdTs: 1 });
    notifier = new SyncNotifier();
    now = Date.now();
    service = new ToDeviceService({
      store: storage.toDevice,
      serverName: 'example.org',
      notifier: () => notifier,
      log: pino({ level: 'silent' }),
      now: () => now,
    });
  });
  afterEach(() => storage.close());

  const sendToBob = (txnId: string, content: JsonObject = {}) =>
    service.send(
      { userId: alice, deviceId: 'A' },
      { type: 'm.test', txnId, messages: { [bob]: { B: content } } },
    );

  it('wakes the recipients only, and only when something was stored', async () => {
    const mark = notifier.mark();
    const bobWaits = notifier.waitForChange({ userId: bob, roomIds: [], sinceMark: mark, timeoutMs: 2000 });
    const aliceWaits = notifier.waitForChange({ userId: alice, roomIds: [], sinceMark: mark, timeoutMs: 50 });
    await sendToBob('t1');
    expect(await bobWaits).to.equal('changed');
    expect(await aliceWaits).to.equal('timeout');
    const again = notifier.mark();
    await sendToBob('t1'); // a retransmission stores nothing
    expect(
      await notifier.waitForChange({ userId: bob, roomIds: [], sinceMark: again, timeoutMs: 30 }),
    ).to.equal('timeout');
  });

  it('advances the position to the last message handed out when the limit cuts, else to upTo', async () => {
    for (let i = 1; i <= 3; i++) await sendToBob(`t${i}`, { i });
    const latest = await service.latestPosition();
    const cut = await service.pending(bob, 'B', 0, latest, 2);
    expect(cut.events.map((e) => e.content)).to.deep.equal([{ i: 1 }, { i: 2 }]);
    const rest = await service.pending(bob, 'B', cut.position, latest, 2);
    expect(rest).to.deep.equal({
      events: [{ sender: alice, type: 'm.test', content: { i: 3 } }],
      position: latest,
    });
    expect(await service.pending(bob, 'B', latest, latest, 2)).to.deep.equal({
      events: [],
      position: latest,
    });

    await service.acknowledge(bob, 'B', cut.position);
    expect((await service.pending(bob, 'B', 0, latest, 10)).events).to.have.length(1);
  });

  it('ignores users of other servers and refuses keys that are not user IDs', async () => {
    await service.send(
      { userId: alice, deviceId: 'A' },
      { type: 'm.test', txnId: 'r', messages: { '@carol:elsewhere.example': { '*': {} } } },
    );
    expect(await service.latestPosition()).to.equal(1); // stored with no recipient
    try {
      await service.send(
        { userId: alice, deviceId: 'A' },
        { type: 'm.test', txnId: 'x', messages: { bob: {} } },
      );
      expect.fail('should refuse');
    } catch (error) {
      expect(error).to.be.instanceOf(MatrixError);
      expect((error as MatrixError).errcode).to.equal('M_INVALID_PARAM');
    }
  });

  it('forgets transaction IDs after a day, sweeping at most hourly', async () => {
    await sendToBob('old');
    now += TO_DEVICE_TRANSACTION_LIFETIME_MS + 60_000;
    await sendToBob('other'); // sweeps
    await new Promise((resolve) => setImmediate(resolve));
    await sendToBob('old');
    expect((await service.pending(bob, 'B', 0, await service.latestPosition(), 10)).events).to.have.length(3);
  });

  it('queues one EDU per remote server with a message_id that is the same for a retried send', async () => {
    const edus: { destination: string; content: JsonObject }[] = [];
    const federated = new ToDeviceService({
      store: storage.toDevice,
      serverName: 'example.org',
      notifier: () => notifier,
      log: pino({ level: 'silent' }),
      remote: () => async (destination, content) => {
        edus.push({ destination, content: content as unknown as JsonObject });
      },
    });
    const request = {
      type: 'm.test',
      txnId: 'r1',
      messages: {
        '@carol:other.org': { C1: { n: 1 } },
        '@dave:other.org': { '*': { n: 2 } },
        '@erin:third.org': { E: { n: 3 } },
        [bob]: { B: { n: 4 } },
      },
    };
    await federated.send({ userId: alice, deviceId: 'A' }, request);
    await federated.send({ userId: alice, deviceId: 'A' }, request);
    expect(edus.map((e) => e.destination)).to.deep.equal([
      'other.org',
      'third.org',
      'other.org',
      'third.org',
    ]);
    expect(edus[0]!.content).to.deep.include({
      sender: alice,
      type: 'm.test',
      messages: { '@carol:other.org': { C1: { n: 1 } }, '@dave:other.org': { '*': { n: 2 } } },
    });
    expect(edus[2]!.content.message_id).to.equal(edus[0]!.content.message_id);
  });

  it('stores a received EDU once per message_id, for local devices only, from a sender of the origin', async () => {
    const content = (messageId: string, sender = '@carol:other.org') => ({
      sender,
      type: 'm.test',
      message_id: messageId,
      messages: { [bob]: { '*': { hi: true } }, '@zed:elsewhere.org': { Z: {} } },
    });
    await service.receiveRemote('other.org', content('m1'));
    await service.receiveRemote('other.org', content('m1'));
    await service.receiveRemote('other.org', content('m2', '@mallory:example.org'));
    await service.receiveRemote('other.org', 'not an object');
    const pending = await service.pending(bob, 'B', 0, await service.latestPosition(), 10);
    expect(pending.events).to.deep.equal([
      { sender: '@carol:other.org', type: 'm.test', content: { hi: true } },
    ]);
  });
});
