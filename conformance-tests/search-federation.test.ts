/**
 * Search over events that arrived over federation, across real Myelin servers: a message
 * another server sends while a local user is in the room (inbound /send), and history
 * fetched with /backfill (stored below 0 in the stream), are both searchable on the
 * receiving server. The indexer follows the event stream, not one path that persists.
 */
import { expect } from 'chai';
import type { JsonObject } from '../protocol/events.js';
import { call, type TestUser } from './harness/accounts.js';
import { type FederatedServer, startAliceAndBob, type TestFederation } from './harness/test-federation.js';

// biome-ignore lint/suspicious/noExplicitAny: the test walks deep into response JSON
type Json = Record<string, any>;

async function search(server: FederatedServer, user: TestUser, term: string): Promise<Json> {
  const res = await call(server.server, user, 'POST', '/_matrix/client/v3/search', {
    search_categories: { room_events: { search_term: term, order_by: 'recent' } },
  });
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return (res.body as Json).search_categories.room_events as Json;
}

const foundIds = (found: Json) => (found.results as Json[]).map((r) => r.result.event_id as string);

async function send(server: FederatedServer, user: TestUser, roomId: string, txnId: string, body: string) {
  const res = await call(
    server.server,
    user,
    'PUT',
    `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txnId}`,
    { msgtype: 'm.text', body },
  );
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return res.body.event_id as string;
}

describe('search: events received over federation', function () {
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

  it('finds a message sent on another server, and history backfilled from it', async () => {
    const created = await call(a.server, alice, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'public_chat',
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    const roomId = created.body.room_id as string;
    const history: string[] = [];
    for (let i = 1; i <= 5; i++) history.push(await send(a, alice, roomId, `old${i}`, `quokka history ${i}`));
    const joined = await call(
      b.server,
      bob,
      'POST',
      `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?server_name=${encodeURIComponent(a.serverName)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);

    // Inbound /send: A's message reaches B in the background; B finds it once it has arrived.
    const live = await send(a, alice, roomId, 'live', 'the wombat arrived over federation');
    const deadline = Date.now() + 30_000;
    while ((await b.context.storage.events.getEvent(live)) === null) {
      expect(Date.now(), 'the message reaches B').to.be.below(deadline);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(foundIds(await search(b, bob, 'wombat'))).to.deep.equal([live]);

    // Before backfill B holds none of the older history, so finds none of it.
    expect(foundIds(await search(b, bob, 'quokka'))).to.deep.equal([]);
    // Paging back past the join backfills it from A (negative stream orderings on B).
    let from: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const query = `dir=b&limit=10${from === undefined ? '' : `&from=${encodeURIComponent(from)}`}`;
      const res = await call(
        b.server,
        bob,
        'GET',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?${query}`,
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      if (res.body.end === undefined) break;
      from = res.body.end as string;
    }
    const backfilled = await b.context.storage.events.getEvent(history[0]!);
    expect(backfilled?.streamOrdering, 'stored as backfilled history').to.be.below(0);
    const found = await search(b, bob, 'quokka');
    expect(foundIds(found)).to.deep.equal([...history].reverse());
    expect((found.results as Json[]).map((r) => (r.result.content as JsonObject).body)).to.deep.equal(
      history.map((_, i) => `quokka history ${5 - i}`),
    );
  });
});
