/**
 * Send-to-device messaging (client-server "Send-to-Device messaging"), black
 * box: PUT /sendToDevice to one device, several, or `*`; idempotent per
 * transaction; delivered in /sync `to_device` until the device syncs past it
 * (a lost response is delivered again), at most 100 per response; kept across
 * a restart; dropped with its device; pushed over the WebSocket.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { createHomeserver } from '../server/homeserver.js';
import { call, createUser, fastAccounts, login, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';
import { WsClient } from './harness/ws-client.js';

const V3 = '/_matrix/client/v3';

type ToDeviceEvent = { sender: string; type: string; content: Record<string, unknown> };

interface SyncResult {
  readonly nextBatch: string;
  readonly toDevice: ToDeviceEvent[];
}

async function sync(hs: { fetch: TestHomeserver['fetch'] }, user: TestUser, since?: string, timeout = 0) {
  const query = new URLSearchParams({ timeout: String(timeout) });
  if (since !== undefined) query.set('since', since);
  const res = await hs.fetch(`${V3}/sync?${query}`, {
    headers: { Authorization: `Bearer ${user.accessToken}` },
  });
  const body = (await res.json()) as { next_batch: string; to_device?: { events: ToDeviceEvent[] } };
  expect(res.status, JSON.stringify(body)).to.equal(200);
  return { nextBatch: body.next_batch, toDevice: body.to_device?.events ?? [] } satisfies SyncResult;
}

let txnCounter = 0;

async function sendToDevice(
  hs: TestHomeserver,
  sender: TestUser,
  messages: Record<string, Record<string, Record<string, unknown>>>,
  options: { type?: string; txnId?: string } = {},
): Promise<void> {
  const type = options.type ?? 'org.example.test';
  const txnId = options.txnId ?? `txn-${++txnCounter}`;
  const res = await call(hs, sender, 'PUT', `${V3}/sendToDevice/${encodeURIComponent(type)}/${txnId}`, {
    messages,
  });
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  expect(res.body).to.deep.equal({});
}

const contents = (result: SyncResult) => result.toDevice.map((event) => event.content);

describe('send-to-device', () => {
  let hs: TestHomeserver;
  let alice: TestUser;
  let bobPhone: TestUser;
  let bobLaptop: TestUser;
  const since = new Map<TestUser, string>();

  /** Syncs the device from its last token and moves the token on (acknowledging what it got). */
  async function next(user: TestUser, timeout = 0): Promise<SyncResult> {
    const result = await sync(hs, user, since.get(user), timeout);
    since.set(user, result.nextBatch);
    return result;
  }

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    alice = await createUser(hs, 'alice');
    bobPhone = await createUser(hs, 'bob');
    bobLaptop = await login(hs, bobPhone.userId, bobPhone.password);
    for (const user of [alice, bobPhone, bobLaptop]) await next(user);
  });
  after(() => hs.stop());

  it('delivers a message to one device of a user, with sender and type', async () => {
    await sendToDevice(hs, alice, { [bobPhone.userId]: { [bobPhone.deviceId]: { n: 'one' } } });
    const phone = await next(bobPhone);
    expect(phone.toDevice).to.deep.equal([
      { sender: alice.userId, type: 'org.example.test', content: { n: 'one' } },
    ]);
    expect((await next(bobLaptop)).toDevice).to.deep.equal([]);
    expect((await next(bobPhone)).toDevice, 'delivered once').to.deep.equal([]);
  });

  it('delivers to several named devices, each its own content, and to every device with *', async () => {
    await sendToDevice(hs, alice, {
      [bobPhone.userId]: { [bobPhone.deviceId]: { n: 'phone' }, [bobLaptop.deviceId]: { n: 'laptop' } },
    });
    expect(contents(await next(bobPhone))).to.deep.equal([{ n: 'phone' }]);
    expect(contents(await next(bobLaptop))).to.deep.equal([{ n: 'laptop' }]);

    await sendToDevice(hs, alice, {
      [bobPhone.userId]: { '*': { n: 'all' } },
      [alice.userId]: { '*': { n: 'me' } },
    });
    expect(contents(await next(bobPhone))).to.deep.equal([{ n: 'all' }]);
    expect(contents(await next(bobLaptop))).to.deep.equal([{ n: 'all' }]);
    expect(contents(await next(alice))).to.deep.equal([{ n: 'me' }]);
  });

  it('stores a retransmitted transaction once; another transaction ID or event type is a new send', async () => {
    const messages = { [bobPhone.userId]: { [bobPhone.deviceId]: { n: 'once' } } };
    await sendToDevice(hs, alice, messages, { txnId: 'same' });
    await sendToDevice(hs, alice, messages, { txnId: 'same' });
    expect(contents(await next(bobPhone))).to.deep.equal([{ n: 'once' }]);
    await sendToDevice(hs, alice, messages, { txnId: 'same' });
    expect((await next(bobPhone)).toDevice).to.deep.equal([]);
    await sendToDevice(hs, alice, messages, { txnId: 'same', type: 'org.example.other' });
    await sendToDevice(hs, alice, messages, { txnId: 'different' });
    expect((await next(bobPhone)).toDevice).to.have.length(2);
  });

  it('re-delivers a response the client lost, and deletes the messages once it syncs past them', async () => {
    const from = since.get(bobPhone)!;
    await sendToDevice(hs, alice, { [bobPhone.userId]: { [bobPhone.deviceId]: { n: 'lost?' } } });
    const lost = await sync(hs, bobPhone, from);
    expect(contents(lost)).to.deep.equal([{ n: 'lost?' }]);
    const retried = await sync(hs, bobPhone, from);
    expect(contents(retried), 'the same token gives the same messages').to.deep.equal([{ n: 'lost?' }]);
    expect((await sync(hs, bobPhone, retried.nextBatch)).toDevice).to.deep.equal([]);
    // Having synced past them, the client cannot get them again, even from the old token.
    expect((await sync(hs, bobPhone, from)).toDevice).to.deep.equal([]);
    since.set(bobPhone, retried.nextBatch);
  });

  it('hands out at most 100 per response, next_batch covering only those', async () => {
    for (let i = 0; i < 130; i++) {
      await sendToDevice(hs, alice, { [bobLaptop.userId]: { [bobLaptop.deviceId]: { i } } });
    }
    const first = await next(bobLaptop, 10_000);
    expect(contents(first)).to.have.length(100);
    expect(contents(first)[0]).to.deep.equal({ i: 0 });
    const second = await next(bobLaptop, 10_000);
    expect(contents(second)).to.deep.equal(Array.from({ length: 30 }, (_, k) => ({ i: 100 + k })));
    expect((await next(bobLaptop)).toDevice).to.deep.equal([]);
  });

  it('wakes a waiting long-poll of the recipient', async () => {
    const started = Date.now();
    const waiting = next(bobPhone, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await sendToDevice(hs, alice, { [bobPhone.userId]: { [bobPhone.deviceId]: { n: 'wake' } } });
    expect(contents(await waiting)).to.deep.equal([{ n: 'wake' }]);
    expect(Date.now() - started).to.be.below(5000);
  });

  it('pushes messages over the WebSocket, each once', async () => {
    const client = await WsClient.authenticated(hs, bobPhone.accessToken);
    try {
      client.send({ type: 'sync', since: since.get(bobPhone) });
      const toDeviceFrame = (n: string) => (frame: { type: string; body?: unknown }) =>
        frame.type === 'sync' &&
        ((frame.body as { to_device?: { events: ToDeviceEvent[] } }).to_device?.events ?? []).some(
          (event) => event.content.n === n,
        );
      await sendToDevice(hs, alice, { [bobPhone.userId]: { [bobPhone.deviceId]: { n: 'ws-1' } } });
      await client.next(toDeviceFrame('ws-1'));
      const from = client.frames.length;
      await sendToDevice(hs, alice, { [bobPhone.userId]: { '*': { n: 'ws-2' } } });
      const frame = await client.next(toDeviceFrame('ws-2'), 5000, from);
      const events = (frame.body as { to_device: { events: ToDeviceEvent[] } }).to_device.events;
      expect(events.map((event) => event.content)).to.deep.equal([{ n: 'ws-2' }]);
      since.set(bobPhone, (frame.body as { next_batch: string }).next_batch);
    } finally {
      await client.close();
    }
  });

  it('over the WebSocket, keeps what the client has not confirmed for when it resumes; sync_ack confirms', async () => {
    await next(bobLaptop); // takes what earlier tests sent to every device
    const resumeFrom = since.get(bobLaptop)!;
    const toDeviceOf = (frame: Record<string, unknown>) =>
      ((frame.body as { to_device?: { events: ToDeviceEvent[] } }).to_device?.events ?? []).map(
        (e) => e.content,
      );
    const first = await WsClient.authenticated(hs, bobLaptop.accessToken);
    try {
      first.send({ type: 'sync', since: resumeFrom });
      await sendToDevice(hs, alice, { [bobLaptop.userId]: { [bobLaptop.deviceId]: { n: 'unconfirmed' } } });
      const frame = await first.next((f) => f.type === 'sync' && toDeviceOf(f).length > 0);
      expect(toDeviceOf(frame)).to.deep.equal([{ n: 'unconfirmed' }]);
      // The stream moves on without confirming: a later message is pushed alone.
      await sendToDevice(hs, alice, { [bobLaptop.userId]: { [bobLaptop.deviceId]: { n: 'later' } } });
      const later = await first.next(
        (f) => f.type === 'sync' && toDeviceOf(f).length > 0,
        5000,
        first.frames.indexOf(frame) + 1,
      );
      expect(toDeviceOf(later)).to.deep.equal([{ n: 'later' }]);
    } finally {
      await first.close(); // the connection is lost before the client could process anything
    }

    const second = await WsClient.authenticated(hs, bobLaptop.accessToken);
    try {
      second.send({ type: 'sync', since: resumeFrom });
      const resumed = await second.next((f) => f.type === 'sync');
      expect(toDeviceOf(resumed), 'both are pushed again after resuming').to.deep.equal([
        { n: 'unconfirmed' },
        { n: 'later' },
      ]);
      const token = (resumed.body as { next_batch: string }).next_batch;
      second.send({ type: 'sync_ack', next_batch: token });
      second.send({ type: 'sync_ack', next_batch: 'not a token' });
      const error = await second.next((f) => f.type === 'error');
      expect(error).to.include({ in: 'sync', errcode: 'M_INVALID_PARAM' });
    } finally {
      await second.close();
    }
    // Confirmed: even a resume from the old token no longer carries them.
    expect((await sync(hs, bobLaptop, resumeFrom)).toDevice).to.deep.equal([]);
  });

  it("drops a deleted device's inbox", async () => {
    const tablet = await login(hs, bobPhone.userId, bobPhone.password, { device_id: 'TABLET' });
    await sendToDevice(hs, alice, { [bobPhone.userId]: { TABLET: { n: 'for the old tablet' } } });
    await hs.homeserver.context.sessions.deleteDevices(bobPhone.userId, ['TABLET']);
    const again = await login(hs, bobPhone.userId, bobPhone.password, { device_id: tablet.deviceId });
    expect((await sync(hs, again)).toDevice).to.deep.equal([]);
  });

  it('skips unknown devices and remote users, and refuses a key that is not a user ID', async () => {
    await sendToDevice(hs, alice, {
      [bobPhone.userId]: { NO_SUCH_DEVICE: { n: 1 } },
      '@someone:elsewhere.example': { '*': { n: 2 } },
      '@nobody:localhost': { '*': { n: 3 } },
    });
    const bad = await call(hs, alice, 'PUT', `${V3}/sendToDevice/org.example.test/bad-user`, {
      messages: { 'not a user': { '*': {} } },
    });
    expect(bad.status).to.equal(400);
    expect(bad.body.errcode).to.equal('M_INVALID_PARAM');
    const noMessages = await call(hs, alice, 'PUT', `${V3}/sendToDevice/org.example.test/no-messages`, {});
    expect(noMessages.status).to.equal(400);
    expect((await next(bobPhone)).toDevice).to.deep.equal([]);
  });
});

describe('send-to-device across a restart', () => {
  it('keeps undelivered messages, and a retransmitted transaction is still recognised', async () => {
    const hs = await TestHomeserver.start({ configure: fastAccounts });
    try {
      const alice = await createUser(hs, 'alice');
      const bob = await createUser(hs, 'bob');
      const initial = await sync(hs, bob);
      const messages = { [bob.userId]: { [bob.deviceId]: { n: 'kept' } } };
      await sendToDevice(hs, alice, messages, { txnId: 'before-restart' });
      await hs.homeserver.stop();

      const again = await createHomeserver(hs.config, { logger: pino({ level: 'silent' }) });
      try {
        const { ports } = await again.start();
        const restarted = {
          fetch: (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${ports[0]}${path}`, init),
        };
        const res = await restarted.fetch(`${V3}/sendToDevice/org.example.test/before-restart`, {
          method: 'PUT',
          headers: { Authorization: `Bearer ${alice.accessToken}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ messages }),
        });
        expect(res.status).to.equal(200);
        const got = await sync(restarted, bob, initial.nextBatch);
        expect(got.toDevice.map((event) => event.content)).to.deep.equal([{ n: 'kept' }]);
        expect((await sync(restarted, bob, got.nextBatch)).toDevice).to.deep.equal([]);
      } finally {
        await again.stop();
      }
    } finally {
      await hs.stop();
    }
  });
});
