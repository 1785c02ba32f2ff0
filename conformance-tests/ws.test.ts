import { expect } from 'chai';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';
import { LimitedWsHomeserver, WS_PATH, WsClient } from './harness/ws-client.js';

const V3 = '/_matrix/client/v3';

async function createRoom(hs: TestHomeserver, creator: TestUser, invite: TestUser[] = []): Promise<string> {
  const res = await call(hs, creator, 'POST', `${V3}/createRoom`, {
    preset: 'public_chat',
    invite: invite.map((user) => user.userId),
  });
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return res.body.room_id as string;
}

async function join(hs: TestHomeserver, user: TestUser, roomId: string): Promise<void> {
  const res = await call(hs, user, 'POST', `${V3}/join/${encodeURIComponent(roomId)}`, {});
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
}

function timelineEventsOf(syncBody: unknown, roomId: string): Record<string, unknown>[] {
  const rooms = (syncBody as { rooms?: { join?: Record<string, { timeline?: { events?: unknown[] } }> } })
    .rooms;
  return (rooms?.join?.[roomId]?.timeline?.events ?? []) as Record<string, unknown>[];
}

function ephemeralEventsOf(syncBody: unknown, roomId: string): Record<string, unknown>[] {
  const rooms = (syncBody as { rooms?: { join?: Record<string, { ephemeral?: { events?: unknown[] } }> } })
    .rooms;
  return (rooms?.join?.[roomId]?.ephemeral?.events ?? []) as Record<string, unknown>[];
}

/** Long-polls REST /sync until `found` accepts a response (or the deadline passes). */
async function restSyncUntil(
  hs: TestHomeserver,
  user: TestUser,
  since: string | undefined,
  found: (body: Record<string, unknown>) => boolean,
  deadlineMs = 5000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + deadlineMs;
  let token = since;
  while (Date.now() < deadline) {
    const query = token === undefined ? '?timeout=0' : `?timeout=1000&since=${encodeURIComponent(token)}`;
    const res = await call(hs, user, 'GET', `${V3}/sync${query}`);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    if (found(res.body)) return res.body;
    token = res.body.next_batch as string;
  }
  throw new Error('REST /sync never showed what was expected');
}

describe('WebSocket io.myelin (spec/websocket.md)', () => {
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  const open: WsClient[] = [];
  const track = (client: WsClient) => {
    open.push(client);
    return client;
  };

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    alice = await createUser(hs, 'alice');
    bob = await createUser(hs, 'bob');
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((client) => client.close()));
  });
  after(() => hs.stop());

  describe('connecting and authenticating', () => {
    it('authenticates by the Authorization header of the upgrade request', async () => {
      const client = track(await WsClient.open(hs.baseUrl, { accessToken: alice.accessToken }));
      const frame = await client.next((f) => f.type === 'authenticated');
      expect(frame).to.deep.equal({
        type: 'authenticated',
        user_id: alice.userId,
        device_id: alice.deviceId,
      });
    });

    it('authenticates by ?access_token= on the upgrade URL', async () => {
      const client = track(
        await WsClient.open(hs.baseUrl, { accessToken: bob.accessToken, tokenInQuery: true }),
      );
      expect(await client.next((f) => f.type === 'authenticated')).to.include({ user_id: bob.userId });
    });

    it('authenticates by a first auth frame (browsers)', async () => {
      const client = track(await WsClient.open(hs.baseUrl));
      client.send({ type: 'auth', access_token: alice.accessToken });
      expect(await client.next((f) => f.type === 'authenticated')).to.include({ user_id: alice.userId });
      const whoami = await client.call('GET', `${V3}/account/whoami`);
      expect(whoami).to.deep.equal({
        status: 200,
        body: { user_id: alice.userId, device_id: alice.deviceId, is_guest: false },
      });
    });

    it('a bad token on the upgrade gets an M_UNKNOWN_TOKEN error frame and close 4401', async () => {
      const client = track(await WsClient.open(hs.baseUrl, { accessToken: 'not-a-token' }));
      expect(await client.closedWith()).to.equal(4401);
      expect(client.frames).to.have.length(1);
      expect(client.frames[0]).to.include({ type: 'error', in: 'auth', errcode: 'M_UNKNOWN_TOKEN' });
    });

    it('a bad token in the auth frame gets an M_UNKNOWN_TOKEN error frame and close 4401', async () => {
      const client = track(await WsClient.open(hs.baseUrl));
      client.send({ type: 'auth', access_token: `${alice.accessToken}x` });
      expect(await client.closedWith()).to.equal(4401);
      expect(client.frames[0]).to.include({ type: 'error', errcode: 'M_UNKNOWN_TOKEN' });
    });

    it('a malformed Authorization header is M_MISSING_TOKEN and close 4401', async () => {
      const client = track(await WsClient.open(hs.baseUrl, { headers: { Authorization: 'Basic abc' } }));
      expect(await client.closedWith()).to.equal(4401);
      expect(client.frames[0]).to.include({ type: 'error', errcode: 'M_MISSING_TOKEN' });
    });

    it('calls before authentication are answered M_MISSING_TOKEN; the socket stays usable', async () => {
      const client = track(await WsClient.open(hs.baseUrl));
      const early = await client.call('GET', `${V3}/account/whoami`);
      expect(early.status).to.equal(401);
      expect(early.body).to.include({ errcode: 'M_MISSING_TOKEN' });
      client.send({ type: 'auth', access_token: alice.accessToken });
      await client.next((f) => f.type === 'authenticated');
      expect((await client.call('GET', `${V3}/account/whoami`)).status).to.equal(200);
    });

    it('frames sent right after the upgrade wait for the header token to be checked', async () => {
      const client = track(await WsClient.open(hs.baseUrl, { accessToken: alice.accessToken }));
      const whoami = await client.call('GET', `${V3}/account/whoami`);
      expect(whoami.status).to.equal(200);
      expect(client.frames[0]!.type).to.equal('authenticated');
    });

    it('an upgrade to another path is refused 404 M_UNRECOGNIZED', async () => {
      const refusal = await WsClient.open(hs.baseUrl, { path: '/_matrix/client/v3/sync' }).then(
        () => undefined,
        (error: { status?: number }) => error,
      );
      expect(refusal?.status).to.equal(404);
    });

    it('a plain GET of the endpoint is 426 and the endpoint is in the OpenAPI document', async () => {
      const res = await hs.fetch(WS_PATH);
      expect(res.status).to.equal(426);
      expect(await res.json()).to.include({ errcode: 'M_UNRECOGNIZED' });
      const doc = (await (await hs.fetch('/_matrix/docs/openapi.json')).json()) as {
        info: { description: string };
        paths: Record<string, unknown>;
      };
      expect(doc.paths).to.have.property(WS_PATH);
      expect(doc.info.description).to.contain('spec/websocket.md');
    });
  });

  describe('client calls answer exactly what REST answers', () => {
    let roomId: string;
    before(async () => {
      roomId = await createRoom(hs, alice);
    });

    it('a send: same status and body, and the same transaction gives the same event', async () => {
      const path = `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/same-txn`;
      const content = { msgtype: 'm.text', body: 'emoji 👩‍👩‍👧‍👦🏽 over both' };
      const rest = await call(hs, alice, 'PUT', path, content);
      expect(rest.status).to.equal(200);
      const client = track(await WsClient.authenticated(hs, alice.accessToken));
      const carried = await client.call('PUT', path, content);
      expect(carried).to.deep.equal({ status: rest.status, body: rest.body });
      const fresh = await client.call('PUT', path.replace('same-txn', 'ws-txn'), content);
      expect(fresh.status).to.equal(200);
      expect(fresh.body.event_id).to.be.a('string').and.not.equal(rest.body.event_id);
      const stored = await call(
        hs,
        alice,
        'GET',
        `${V3}/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(fresh.body.event_id as string)}`,
      );
      expect(stored.status).to.equal(200);
      expect(stored.body.content).to.deep.equal(content);
    });

    it('errors: the same errcode, status and body as REST', async () => {
      const client = track(await WsClient.authenticated(hs, bob.accessToken));
      const cases: [string, string, unknown][] = [
        [
          'PUT',
          `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`,
          { msgtype: 'm.text', body: 'x' },
        ],
        [
          'PUT',
          `${V3}/rooms/${encodeURIComponent('!nowhere:localhost')}/send/m.room.message/t2`,
          { body: 'x' },
        ],
        ['GET', `${V3}/no/such/endpoint`, undefined],
        ['DELETE', `${V3}/account/whoami`, undefined],
        ['POST', `${V3}/createRoom`, { preset: 42 }],
        [
          'PUT',
          `${V3}/profile/${encodeURIComponent(alice.userId)}/displayname`,
          { displayname: 'not yours' },
        ],
      ];
      for (const [method, path, body] of cases) {
        const rest = await call(hs, bob, method, path, body);
        const carried = await client.call(method, path, body);
        expect(rest.status, `${method} ${path}`).to.be.at.least(400);
        expect(carried, `${method} ${path}`).to.deep.equal({ status: rest.status, body: rest.body });
      }
    });

    it('a 405 carries its Allow header; a body over the limit is 413 M_TOO_LARGE', async () => {
      const client = track(await WsClient.authenticated(hs, alice.accessToken));
      client.send({ type: 'request', id: 'm', method: 'DELETE', path: `${V3}/account/whoami` });
      const frame = await client.next((f) => f.type === 'response' && f.id === 'm');
      expect(frame.status).to.equal(405);
      expect(frame.headers).to.deep.equal({ Allow: 'GET, HEAD, OPTIONS' });
      const big = 'x'.repeat(hs.config.limits.max_request_body_bytes);
      const tooLarge = await client.call(
        'PUT',
        `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/big`,
        {
          body: big,
        },
      );
      expect(tooLarge.status).to.equal(413);
      expect(tooLarge.body).to.include({ errcode: 'M_TOO_LARGE' });
    });

    it('convenience frames map onto their REST calls: send, reaction, redaction, receipt, read marker, typing', async () => {
      const client = track(await WsClient.authenticated(hs, alice.accessToken));
      const room = { room_id: roomId };
      const sent = await client.command('send', {
        ...room,
        event_type: 'm.room.message',
        content: { msgtype: 'm.text', body: 'hi' },
        txn_id: 'conv-1',
      });
      expect(sent.status, JSON.stringify(sent.body)).to.equal(200);
      const eventId = sent.body.event_id as string;
      const again = await client.command('send', {
        ...room,
        event_type: 'm.room.message',
        content: { msgtype: 'm.text', body: 'hi' },
        txn_id: 'conv-1',
      });
      expect(again.body.event_id).to.equal(eventId);

      const reaction = await client.command('reaction', { ...room, event_id: eventId, key: '👍' });
      expect(reaction.status, JSON.stringify(reaction.body)).to.equal(200);
      const reactionEvent = await call(
        hs,
        alice,
        'GET',
        `${V3}/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(reaction.body.event_id as string)}`,
      );
      expect(reactionEvent.body.content).to.deep.equal({
        'm.relates_to': { rel_type: 'm.annotation', event_id: eventId, key: '👍' },
      });
      const duplicate = await client.command('reaction', { ...room, event_id: eventId, key: '👍' });
      const restDuplicate = await call(
        hs,
        alice,
        'PUT',
        `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.reaction/rest-dup`,
        {
          'm.relates_to': { rel_type: 'm.annotation', event_id: eventId, key: '👍' },
        },
      );
      expect(duplicate).to.deep.equal({ status: restDuplicate.status, body: restDuplicate.body });

      const receipt = await client.command('receipt', { ...room, event_id: eventId });
      expect(receipt).to.deep.equal({ status: 200, body: {} });
      const marker = await client.command('read_marker', { ...room, fully_read: eventId });
      expect(marker).to.deep.equal({ status: 200, body: {} });
      const typing = await client.command('typing', { ...room, typing: true, timeout: 5000 });
      expect(typing).to.deep.equal({ status: 200, body: {} });

      const redaction = await client.command('redaction', {
        ...room,
        event_id: reaction.body.event_id,
        reason: 'oops',
      });
      expect(redaction.status, JSON.stringify(redaction.body)).to.equal(200);
      expect(redaction.body.event_id).to.be.a('string');

      const missing = await client.command('send', { event_type: 'm.room.message', content: {} });
      expect(missing.status).to.equal(400);
      expect(missing.body).to.include({ errcode: 'M_MISSING_PARAM' });
    });
  });

  describe('malformed frames', () => {
    it('each gets an error frame, never a crash; the socket goes on working', async () => {
      const client = track(await WsClient.authenticated(hs, alice.accessToken));
      const sent: [unknown, string][] = [
        ['{"type":', 'M_NOT_JSON'],
        ['[1,2,3]', 'M_BAD_JSON'],
        ['"text"', 'M_BAD_JSON'],
        [{ no: 'type' }, 'M_MISSING_PARAM'],
        [{ type: 'launch_rockets' }, 'M_UNRECOGNIZED'],
        [{ type: 'request', method: 'GET', path: `${V3}/account/whoami` }, 'M_MISSING_PARAM'],
        [{ type: 'sync', since: 42 }, 'M_BAD_JSON'],
      ];
      for (const [frame] of sent) client.send(frame);
      client.socket.send(Buffer.from([0x7b, 0x7d]), { binary: true });
      await client.next(
        (f) => f.type === 'error' && f.errcode === 'M_NOT_JSON' && String(f.error).includes('binary'),
      );
      const errors = client.frames.filter((f) => f.type === 'error').map((f) => f.errcode);
      expect(errors).to.deep.equal([...sent.map(([, errcode]) => errcode), 'M_NOT_JSON']);

      const badPath = await client.call('GET', 'no-leading-slash');
      expect(badPath.status).to.equal(400);
      expect(badPath.body).to.include({ errcode: 'M_INVALID_PARAM' });
      client.send({ type: 'ping', id: 'still-there' });
      expect(await client.next((f) => f.type === 'pong')).to.deep.equal({ type: 'pong', id: 'still-there' });
    });
  });

  describe('sync over the socket', () => {
    let roomId: string;
    before(async () => {
      roomId = await createRoom(hs, alice, []);
      await join(hs, bob, roomId);
    });

    it('pushes the initial sync, then each new message within ~100 ms of its send', async () => {
      const client = track(await WsClient.authenticated(hs, bob.accessToken));
      client.send({ type: 'sync' });
      const initial = await client.next((f) => f.type === 'sync');
      const initialBody = initial.body as Record<string, unknown>;
      expect(initialBody.next_batch).to.be.a('string');
      expect((initialBody.rooms as { join: Record<string, unknown> }).join).to.have.property(roomId);

      const latencies: number[] = [];
      for (let i = 0; i < 5; i++) {
        const from = client.frames.length;
        const started = performance.now();
        const res = await call(
          hs,
          alice,
          'PUT',
          `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/lat-${i}`,
          {
            msgtype: 'm.text',
            body: `message ${i}`,
          },
        );
        const eventId = res.body.event_id as string;
        await client.next(
          (f) => f.type === 'sync' && timelineEventsOf(f.body, roomId).some((e) => e.event_id === eventId),
          2000,
          from,
        );
        latencies.push(performance.now() - started);
      }
      latencies.sort((a, b) => a - b);
      expect(latencies[2], `send-to-push latencies ${latencies.join(', ')} ms`).to.be.below(100);
    });

    it('a delta carries the same JSON as REST /sync from the same token', async () => {
      const client = track(await WsClient.authenticated(hs, bob.accessToken));
      client.send({ type: 'sync' });
      const initial = await client.next((f) => f.type === 'sync');
      const since = (initial.body as { next_batch: string }).next_batch;
      const res = await call(
        hs,
        alice,
        'PUT',
        `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/same-json`,
        {
          msgtype: 'm.text',
          body: 'compare me',
        },
      );
      const pushed = await client.next(
        (f) =>
          f.type === 'sync' && timelineEventsOf(f.body, roomId).some((e) => e.event_id === res.body.event_id),
        3000,
        1,
      );
      const rest = await call(hs, bob, 'GET', `${V3}/sync?since=${encodeURIComponent(since)}&timeout=0`);
      const pushedEvents = timelineEventsOf(pushed.body, roomId).map(({ unsigned, ...event }) => event);
      const restEvents = timelineEventsOf(rest.body, roomId).map(({ unsigned, ...event }) => event);
      expect(pushedEvents).to.deep.equal(restEvents);
    });

    it('the sender sees its transaction_id on its own event, pushed over its own socket', async () => {
      const client = track(await WsClient.authenticated(hs, alice.accessToken));
      client.send({ type: 'sync' });
      await client.next((f) => f.type === 'sync');
      const sent = await client.command('send', {
        room_id: roomId,
        event_type: 'm.room.message',
        content: { msgtype: 'm.text', body: 'mine' },
        txn_id: 'echo-me',
      });
      const pushed = await client.next(
        (f) =>
          f.type === 'sync' &&
          timelineEventsOf(f.body, roomId).some((e) => e.event_id === sent.body.event_id),
      );
      const event = timelineEventsOf(pushed.body, roomId).find((e) => e.event_id === sent.body.event_id)!;
      expect((event.unsigned as Record<string, unknown>).transaction_id).to.equal('echo-me');
    });

    it('typing and a read receipt sent over the socket are seen by another client’s REST /sync', async () => {
      const bobsView = await restSyncUntil(hs, bob, undefined, () => true);
      const client = track(await WsClient.authenticated(hs, alice.accessToken));
      const sent = await client.command('send', {
        room_id: roomId,
        event_type: 'm.room.message',
        content: { msgtype: 'm.text', body: 'read me' },
      });
      expect(
        (await client.command('typing', { room_id: roomId, typing: true, timeout: 10_000 })).status,
      ).to.equal(200);
      await restSyncUntil(hs, bob, bobsView.next_batch as string, (body) =>
        ephemeralEventsOf(body, roomId).some(
          (e) =>
            e.type === 'm.typing' &&
            ((e.content as { user_ids: string[] }).user_ids ?? []).includes(alice.userId),
        ),
      );
      expect(
        (await client.command('receipt', { room_id: roomId, event_id: sent.body.event_id })).status,
      ).to.equal(200);
      await restSyncUntil(hs, bob, bobsView.next_batch as string, (body) =>
        ephemeralEventsOf(body, roomId).some((e) => {
          if (e.type !== 'm.receipt') return false;
          const content = e.content as Record<string, { 'm.read'?: Record<string, unknown> }>;
          return content[sent.body.event_id as string]?.['m.read']?.[alice.userId] !== undefined;
        }),
      );
    });

    it('a client that reconnects with its last next_batch misses nothing', async () => {
      const first = track(await WsClient.authenticated(hs, bob.accessToken));
      first.send({ type: 'sync' });
      const initial = await first.next((f) => f.type === 'sync');
      let lastToken = (initial.body as { next_batch: string }).next_batch;
      const seen: string[] = [];
      const sentIds: string[] = [];
      const send = async (body: string) => {
        const res = await call(
          hs,
          alice,
          'PUT',
          `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${body}`,
          {
            msgtype: 'm.text',
            body,
          },
        );
        sentIds.push(res.body.event_id as string);
      };
      for (let i = 0; i < 3; i++) await send(`before-${i}`);
      await first.next(
        (f) => f.type === 'sync' && timelineEventsOf(f.body, roomId).some((e) => e.event_id === sentIds[2]),
        3000,
        1,
      );
      for (const frame of first.frames.filter((f) => f.type === 'sync').slice(1)) {
        seen.push(...timelineEventsOf(frame.body, roomId).map((e) => e.event_id as string));
        lastToken = (frame.body as { next_batch: string }).next_batch;
      }
      await first.close();

      for (let i = 0; i < 4; i++) await send(`while-away-${i}`);
      const second = track(await WsClient.authenticated(hs, bob.accessToken));
      second.send({ type: 'sync', since: lastToken });
      await send('after');
      await second.next(
        (f) =>
          f.type === 'sync' && timelineEventsOf(f.body, roomId).some((e) => e.event_id === sentIds.at(-1)),
        3000,
      );
      for (const frame of second.frames.filter((f) => f.type === 'sync')) {
        seen.push(...timelineEventsOf(frame.body, roomId).map((e) => e.event_id as string));
      }
      expect(seen).to.deep.equal(sentIds);
    });

    it('sync_stop stops the pushes; an invalid since is an error frame in sync', async () => {
      const client = track(await WsClient.authenticated(hs, bob.accessToken));
      client.send({ type: 'sync', since: 'not a token' });
      expect(await client.next((f) => f.type === 'error')).to.include({ in: 'sync' });
      client.send({ type: 'sync' });
      await client.next((f) => f.type === 'sync');
      client.send({ type: 'sync_stop' });
      client.send({ type: 'ping', id: 'after-stop' });
      await client.next((f) => f.type === 'pong');
      const before = client.frames.length;
      await call(
        hs,
        alice,
        'PUT',
        `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/after-stop`,
        {
          msgtype: 'm.text',
          body: 'unseen',
        },
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(client.frames.slice(before).filter((f) => f.type === 'sync')).to.deep.equal([]);
    });
  });
});

describe('WebSocket robustness (short heartbeats, small buffers)', () => {
  let hs: LimitedWsHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  const asTestHomeserver = () => hs as unknown as TestHomeserver;

  before(async () => {
    hs = await LimitedWsHomeserver.start(
      {
        heartbeatIntervalMs: 150,
        authTimeoutMs: 300,
        sessionCheckIntervalMs: 100,
        maxBufferedBytes: 64 * 1024,
        maxFrameBytes: 256 * 1024,
      },
      fastAccounts,
    );
    alice = await createUser(asTestHomeserver(), 'alice');
    bob = await createUser(asTestHomeserver(), 'bob');
  });
  after(() => hs.stop());

  it('a socket that never authenticates is closed 4408', async () => {
    const client = await WsClient.open(hs.baseUrl);
    expect(await client.closedWith(2000)).to.equal(4408);
    expect(client.frames[0]).to.include({ type: 'error', errcode: 'M_MISSING_TOKEN' });
  });

  it('a peer that stops answering pings is dropped; one that answers stays', async () => {
    const dead = await WsClient.open(hs.baseUrl, { accessToken: alice.accessToken, autoPong: false });
    const alive = await WsClient.authenticated(hs, alice.accessToken);
    const code = await dead.closedWith(2000);
    expect(code).to.equal(1006);
    expect(alive.closeCode).to.equal(undefined);
    expect((await alive.call('GET', `${V3}/account/whoami`)).status).to.equal(200);
    await alive.close();
  });

  it('a frame over the size limit closes the socket 1009', async () => {
    const client = await WsClient.authenticated(hs, alice.accessToken);
    client.send({ type: 'ping', pad: 'x'.repeat(300 * 1024) });
    expect(await client.closedWith()).to.equal(1009);
  });

  it('logging out closes the session’s sockets 4401; other sessions keep theirs', async () => {
    const other = await WsClient.authenticated(hs, alice.accessToken);
    const second = await createUser(asTestHomeserver(), 'carol');
    const doomed = await WsClient.authenticated(hs, second.accessToken);
    const res = await call(asTestHomeserver(), second, 'POST', `${V3}/logout`, {});
    expect(res.status).to.equal(200);
    expect(await doomed.closedWith(2000)).to.equal(4401);
    expect(doomed.frames.at(-1)).to.include({ type: 'error', errcode: 'M_UNKNOWN_TOKEN' });
    expect(other.closeCode).to.equal(undefined);
    await other.close();
  });

  it('a reader that does not read is dropped instead of buffered without bound', async () => {
    const client = await WsClient.authenticated(hs, alice.accessToken);
    client.socket.pause();
    // Each answer is the whole OpenAPI document: a few hundred KB that pile up unread.
    for (let i = 0; i < 60; i++) {
      client.send({ type: 'request', id: i, method: 'GET', path: '/_matrix/docs/openapi.json' });
    }
    const deadline = Date.now() + 10_000;
    while (!hs.logLines.some((line) => line.includes('WebSocket reader too slow'))) {
      if (Date.now() > deadline) throw new Error('The slow reader was never dropped');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    client.socket.resume();
    expect(await client.closedWith(5000)).to.be.oneOf([4000, 1006]);
  });

  it('stopping the server closes every socket with 1001', async () => {
    const first = await WsClient.authenticated(hs, alice.accessToken);
    const second = await WsClient.authenticated(hs, bob.accessToken);
    const closing = Promise.all([first.closedWith(5000), second.closedWith(5000)]);
    await hs.homeserver.stop();
    expect(await closing).to.deep.equal([1001, 1001]);
  });
});

describe('WebSocket slow sync reader', () => {
  // Heartbeats at their default (30 s): a reader paused for a while is slow, not dead.
  let hs: LimitedWsHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  const asTestHomeserver = (server: LimitedWsHomeserver) => server as unknown as TestHomeserver;

  before(async () => {
    hs = await LimitedWsHomeserver.start({ maxBufferedBytes: 64 * 1024 }, fastAccounts);
    alice = await createUser(asTestHomeserver(hs), 'alice');
    bob = await createUser(asTestHomeserver(hs), 'bob');
  });
  after(() => hs.stop());

  it('a slow sync reader gets pending deltas coalesced, and nothing is lost', async () => {
    const res = await call(asTestHomeserver(hs), alice, 'POST', `${V3}/createRoom`, {
      preset: 'public_chat',
    });
    const roomId = res.body.room_id as string;
    await call(asTestHomeserver(hs), bob, 'POST', `${V3}/join/${encodeURIComponent(roomId)}`, {});
    const client = await WsClient.authenticated(hs, bob.accessToken);
    client.send({ type: 'sync', filter: { room: { timeline: { limit: 1000 } } } });
    await client.next((f) => f.type === 'sync');
    client.socket.pause();
    const sent: string[] = [];
    const padding = 'p'.repeat(50_000);
    for (let i = 0; i < 150; i++) {
      const reply = await call(
        asTestHomeserver(hs),
        alice,
        'PUT',
        `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/slow-${i}`,
        {
          msgtype: 'm.text',
          body: `${i} ${padding}`,
        },
      );
      sent.push(reply.body.event_id as string);
    }
    client.socket.resume();
    await client.next(
      (f) => f.type === 'sync' && timelineEventsOf(f.body, roomId).some((e) => e.event_id === sent.at(-1)),
      10_000,
    );
    const deltas = client.frames.filter((f) => f.type === 'sync').slice(1);
    const received = deltas.flatMap((f) => timelineEventsOf(f.body, roomId).map((e) => e.event_id as string));
    expect(received).to.deep.equal(sent);
    expect(deltas.length, `${sent.length} messages in ${deltas.length} deltas: coalesced`).to.be.below(
      sent.length,
    );
    expect(client.closeCode).to.equal(undefined);
    await client.close();
  });
});
