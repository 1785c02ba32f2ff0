/**
 * Room previews (peeking: /rooms/{roomId}/initialSync, /events?room_id=) and the
 * deprecated v1 reads (/initialSync, /events, /events/{eventId}): each shows only
 * what /sync or /messages would show the same user.
 */
import { expect } from 'chai';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

interface Chunk {
  start?: string;
  end: string;
  chunk: { type: string; event_id: string; room_id?: string; content: Record<string, unknown> }[];
}

describe('Room previews and the v1 sync reads', () => {
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  let previewRoom: string;
  let privateRoom: string;
  let privateEventId: string;

  let txn = 0;
  const send = async (user: TestUser, roomId: string, body: string) => {
    const path = `${V3}/rooms/${enc(roomId)}/send/m.room.message/peek${txn++}`;
    const res = await call(hs, user, 'PUT', path, { msgtype: 'm.text', body });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body.event_id as string;
  };

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    alice = await createUser(hs, 'peek-alice');
    bob = await createUser(hs, 'peek-bob');
    previewRoom = (
      await call(hs, alice, 'POST', `${V3}/createRoom`, {
        preset: 'public_chat',
        name: 'Open house',
        initial_state: [
          {
            type: 'm.room.history_visibility',
            state_key: '',
            content: { history_visibility: 'world_readable' },
          },
        ],
      })
    ).body.room_id as string;
    for (let i = 1; i <= 12; i++) await send(alice, previewRoom, `message ${i}`);
    privateRoom = (await call(hs, alice, 'POST', `${V3}/createRoom`, { preset: 'private_chat' })).body
      .room_id as string;
    privateEventId = await send(alice, privateRoom, 'secret');
  });
  after(() => hs.stop());

  it('previews a world-readable room to a non-member: state and latest messages in order', async () => {
    const res = await call(hs, bob, 'GET', `${V3}/rooms/${enc(previewRoom)}/initialSync`);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body.room_id).to.equal(previewRoom);
    expect(res.body).not.to.have.property('membership');
    const state = res.body.state as { type: string; content: Record<string, unknown> }[];
    expect(state.find((event) => event.type === 'm.room.name')?.content).to.deep.equal({
      name: 'Open house',
    });
    const messages = res.body.messages as Chunk;
    const bodies = messages.chunk.filter((e) => e.type === 'm.room.message').map((e) => e.content.body);
    // The ten latest (the default limit), oldest first.
    expect(bodies).to.deep.equal(Array.from({ length: 10 }, (_, i) => `message ${i + 3}`));
    // `start` continues backwards through /messages.
    const earlier = await call(
      hs,
      bob,
      'GET',
      `${V3}/rooms/${enc(previewRoom)}/messages?dir=b&from=${messages.start}`,
    );
    expect(earlier.status).to.equal(200);
    const earlierBodies = (earlier.body.chunk as Chunk['chunk'])
      .filter((e) => e.type === 'm.room.message')
      .map((e) => e.content.body);
    expect(earlierBodies).to.deep.equal(['message 2', 'message 1']);
  });

  it('refuses a preview of a room that is not world-readable', async () => {
    const res = await call(hs, bob, 'GET', `${V3}/rooms/${enc(privateRoom)}/initialSync`);
    expect(res.status).to.equal(403);
    expect(res.body.errcode).to.equal('M_FORBIDDEN');
    const peek = await call(hs, bob, 'GET', `${V3}/events?room_id=${enc(privateRoom)}&timeout=0`);
    expect(peek.status).to.equal(403);
  });

  it('a peeker waiting on /events?room_id= receives the next message of the room', async () => {
    const snapshot = await call(hs, bob, 'GET', `${V3}/rooms/${enc(previewRoom)}/initialSync`);
    const from = (snapshot.body.messages as Chunk).end;
    const waiting = call(
      hs,
      bob,
      'GET',
      `${V3}/events?room_id=${enc(previewRoom)}&from=${from}&timeout=10000`,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const eventId = await send(alice, previewRoom, 'four');
    const res = await waiting;
    expect(res.status).to.equal(200);
    const got = res.body as unknown as Chunk;
    expect(got.chunk.map((event) => event.event_id)).to.deep.equal([eventId]);
    expect(got.start).to.equal(from);
    const again = await call(
      hs,
      bob,
      'GET',
      `${V3}/events?room_id=${enc(previewRoom)}&from=${got.end}&timeout=0`,
    );
    expect((again.body as unknown as Chunk).chunk).to.deep.equal([]);
  });

  it('GET /events/{eventId} serves members and hides the event from others', async () => {
    const own = await call(hs, alice, 'GET', `${V3}/events/${enc(privateEventId)}`);
    expect(own.status).to.equal(200);
    expect(own.body.content).to.deep.include({ body: 'secret' });
    const other = await call(hs, bob, 'GET', `${V3}/events/${enc(privateEventId)}`);
    expect(other.status).to.equal(404);
    expect(other.body.errcode).to.equal('M_NOT_FOUND');
  });

  it("GET /initialSync lists the user's rooms with state and messages; /events streams what follows", async () => {
    const res = await call(hs, alice, 'GET', `${V3}/initialSync?limit=2`);
    expect(res.status).to.equal(200);
    const rooms = res.body.rooms as { room_id: string; membership: string; messages: Chunk }[];
    expect(rooms.map((room) => room.room_id).sort()).to.deep.equal([previewRoom, privateRoom].sort());
    const priv = rooms.find((room) => room.room_id === privateRoom)!;
    expect(priv.membership).to.equal('join');
    expect(priv.messages.chunk.at(-1)?.content.body).to.equal('secret');
    expect(priv.messages.chunk).to.have.length(2);
    expect((await call(hs, bob, 'GET', `${V3}/initialSync`)).body.rooms).to.deep.equal([]);

    const waiting = call(hs, alice, 'GET', `${V3}/events?from=${enc(res.body.end as string)}&timeout=10000`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const eventId = await send(alice, privateRoom, 'later');
    const streamed = (await waiting).body as unknown as Chunk;
    expect(streamed.chunk.map((event) => [event.event_id, event.room_id])).to.deep.include([
      eventId,
      privateRoom,
    ]);
  });
});
