/**
 * Backfill across real Myelin servers (server-server "Backfilling and retrieving missing
 * events"): a user of B, joining a room with history on A, pages back with /messages past
 * the join and gets A's older history, fetched with /backfill, in order and exactly once;
 * none of it when the room shows history to joined members only.
 */
import { expect } from 'chai';
import type { JsonObject } from '../protocol/events.js';
import { call, type TestUser } from './harness/accounts.js';
import { type FederatedServer, startAliceAndBob, type TestFederation } from './harness/test-federation.js';

async function pageBack(
  server: FederatedServer,
  user: TestUser,
  roomId: string,
  limit: number,
): Promise<JsonObject[]> {
  const events: JsonObject[] = [];
  let from: string | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const query = `dir=b&limit=${limit}${from === undefined ? '' : `&from=${encodeURIComponent(from)}`}`;
    const res = await call(
      server.server,
      user,
      'GET',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?${query}`,
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    events.push(...(res.body.chunk as JsonObject[]));
    if (res.body.end === undefined) return events;
    from = res.body.end as string;
  }
  throw new Error('pagination did not end');
}

describe('federation: backfill', function () {
  this.timeout(120_000);
  let federation: TestFederation;
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    ({ federation, a, b, alice, bob } = await startAliceAndBob());
  });
  after(async () => {
    await federation?.stop();
  });

  it('a user of B pages back past its join and gets all 100 earlier messages of A, in order, byte-exact, once', async () => {
    const created = await call(a.server, alice, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'public_chat',
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    const roomId = created.body.room_id as string;
    const sent: string[] = [];
    for (let i = 1; i <= 100; i++) {
      const res = await call(
        a.server,
        alice,
        'PUT',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/m${i}`,
        { msgtype: 'm.text', body: `history ${i} 🦉` },
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      sent.push(res.body.event_id as string);
    }
    const joined = await call(
      b.server,
      bob,
      'POST',
      `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?server_name=${encodeURIComponent(a.serverName)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);

    const events = await pageBack(b, bob, roomId, 15);
    const ids = events.map((e) => e.event_id as string);
    expect(new Set(ids).size, 'each event once').to.equal(ids.length);
    const messages = events.filter((e) => e.type === 'm.room.message').reverse();
    expect(messages.map((e) => e.event_id)).to.deep.equal(sent);
    expect(messages.map((e) => (e.content as JsonObject).body)).to.deep.equal(
      sent.map((_, i) => `history ${i + 1} 🦉`),
    );
    // Newest first: the join, the messages, then the room's first events down to the create.
    expect(events[0]!.type).to.equal('m.room.member');
    expect(events.at(-1)!.type).to.equal('m.room.create');
    // Byte-exact: B stores each PDU as A signed it.
    for (const id of [sent[0]!, sent[50]!, sent[99]!]) {
      const onA = await a.context.storage.events.getEvent(id);
      const onB = await b.context.storage.events.getEvent(id);
      expect(onB?.json).to.equal(onA?.json);
    }
    // Once backfilled, paging again asks A nothing and gives the same events.
    const again = await pageBack(b, bob, roomId, 40);
    expect(again.map((e) => e.event_id)).to.deep.equal(ids);
  });

  it('serves a backfilled message redacted, with redacted_because, when its redaction came first', async () => {
    const created = await call(a.server, alice, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'public_chat',
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    const roomId = created.body.room_id as string;
    const room = encodeURIComponent(roomId);
    const send = async (txnId: string, body: string) => {
      const res = await call(
        a.server,
        alice,
        'PUT',
        `/_matrix/client/v3/rooms/${room}/send/m.room.message/${txnId}`,
        {
          msgtype: 'm.text',
          body,
        },
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      return res.body.event_id as string;
    };
    await send('before', 'fennec before the leak');
    const leaked = await send('leak', 'the vault code is marmoset');
    await send('after', 'fennec after the leak');
    const redacted = await call(
      a.server,
      alice,
      'PUT',
      `/_matrix/client/v3/rooms/${room}/redact/${leaked}/r1`,
      {
        reason: 'leaked',
      },
    );
    expect(redacted.status, JSON.stringify(redacted.body)).to.equal(200);
    const redactionId = redacted.body.event_id as string;
    const joined = await call(
      b.server,
      bob,
      'POST',
      `/_matrix/client/v3/join/${room}?server_name=${encodeURIComponent(a.serverName)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);

    // Backfill pages newest first: B stores the redaction before the message it redacts.
    const events = await pageBack(b, bob, roomId, 20);
    const onB = await b.context.storage.events.getEvent(leaked);
    const redactionOnB = await b.context.storage.events.getEvent(redactionId);
    expect(onB?.streamOrdering, 'backfilled').to.be.below(redactionOnB!.streamOrdering);
    const served = events.find((e) => e.event_id === leaked);
    expect(served, 'the redacted message is in the timeline').to.not.equal(undefined);
    expect(served!.content).to.deep.equal({});
    const because = (served!.unsigned as JsonObject | undefined)?.redacted_because as JsonObject | undefined;
    expect(because?.event_id, 'unsigned.redacted_because').to.equal(redactionId);
    expect(onB!.pdu.content).to.deep.equal({});
    // Single event reads agree with the timeline.
    const single = await call(
      b.server,
      bob,
      'GET',
      `/_matrix/client/v3/rooms/${room}/event/${encodeURIComponent(leaked)}`,
    );
    expect(single.status, JSON.stringify(single.body)).to.equal(200);
    expect(single.body.content).to.deep.equal({});
    expect((single.body.unsigned as JsonObject).redacted_because).to.include({ event_id: redactionId });

    // Search: the other backfilled messages are found, the redacted one is not.
    const search = async (term: string) => {
      const res = await call(b.server, bob, 'POST', '/_matrix/client/v3/search', {
        search_categories: { room_events: { search_term: term, filter: { rooms: [roomId] } } },
      });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      const found = (res.body.search_categories as JsonObject).room_events as JsonObject;
      return (found.results as JsonObject[]).map((r) => (r.result as JsonObject).event_id);
    };
    expect(await search('fennec')).to.have.length(2);
    expect(await search('marmoset')).to.deep.equal([]);
  });

  it('gets nothing from before its join in a room whose history is visible to joined members only', async () => {
    const created = await call(a.server, alice, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'public_chat',
      initial_state: [
        { type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } },
      ],
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    const roomId = created.body.room_id as string;
    for (let i = 1; i <= 5; i++) {
      const res = await call(
        a.server,
        alice,
        'PUT',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/secret${i}`,
        { msgtype: 'm.text', body: `before bob ${i}` },
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
    }
    const joined = await call(
      b.server,
      bob,
      'POST',
      `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?server_name=${encodeURIComponent(a.serverName)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
    const events = await pageBack(b, bob, roomId, 10);
    expect(events.filter((e) => e.type === 'm.room.message')).to.deep.equal([]);
    expect(events[0]).to.include({ type: 'm.room.member', state_key: bob.userId });
  });
});
