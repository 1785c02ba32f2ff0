/**
 * The shared room delta (server/sync/fanout-delta.ts): a woken member's /sync answer
 * spliced from the delta shared by every member woken for the same events must be
 * the answer the general builder gives (bar unsigned.age), and it must step aside
 * whenever something about the member differs (own message, new membership).
 */
import { expect } from 'chai';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const enc = encodeURIComponent;

type Json = Record<string, unknown>;

/** The body with every unsigned.age removed (it is taken when each answer is built). */
function withoutAges(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutAges);
  if (typeof value !== 'object' || value === null) return value;
  const copy: Json = {};
  for (const [key, inner] of Object.entries(value)) {
    if (key === 'age' && typeof inner === 'number') continue;
    copy[key] = withoutAges(inner);
  }
  return copy;
}

describe('Sync fan-out: answers spliced from a shared room delta', function () {
  this.timeout(60_000);
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let roomId: string;
  let txn = 0;

  before(async () => {
    hs = await TestHomeserver.start({
      configure: (config) => {
        fastAccounts(config);
        // A presence change (carol's first request marks her online) rightly takes the general
        // path; off here so that whether the shared path answers does not depend on timing.
        config.presence.enabled = false;
      },
    });
    [alice, bob, carol] = await Promise.all([
      createUser(hs, 'alice'),
      createUser(hs, 'bob'),
      createUser(hs, 'carol'),
    ]);
    const created = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' });
    roomId = created.body.room_id as string;
    for (const user of [bob, carol]) {
      expect((await call(hs, user, 'POST', `/_matrix/client/v3/join/${enc(roomId)}`, {})).status).to.equal(
        200,
      );
    }
  });

  after(() => hs.stop());

  const send = async (user: TestUser, body: string) => {
    const res = await call(
      hs,
      user,
      'PUT',
      `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t${++txn}`,
      { msgtype: 'm.text', body },
    );
    expect(res.status).to.equal(200);
    return res.body.event_id as string;
  };

  const httpSync = async (user: TestUser, query: Record<string, string>) => {
    const res = await call(hs, user, 'GET', `/_matrix/client/v3/sync?${new URLSearchParams(query)}`);
    expect(res.status).to.equal(200);
    return res.body;
  };

  const generalSync = (user: TestUser, since: string, filter?: string) =>
    hs.homeserver.context.sync.sync(
      { userId: user.userId, deviceId: user.deviceId },
      { since, ...(filter !== undefined ? { filter } : {}), timeoutMs: 0, fullState: false },
      new AbortController().signal,
    );

  for (const [name, filter] of [
    ['without a filter', undefined],
    [
      'with lazy-loaded members and a timeline filter',
      JSON.stringify({
        room: {
          rooms: [],
          timeline: { limit: 20, not_types: ['m.room.topic'] },
          state: { lazy_load_members: true },
        },
      }),
    ],
  ] as const) {
    it(`gives the general builder's answer ${name}`, async () => {
      const query = (since?: string) => ({
        ...(filter !== undefined
          ? { filter: filter.replace('"rooms":[]', `"rooms":${JSON.stringify([roomId])}`) }
          : {}),
        ...(since !== undefined ? { since } : {}),
      });
      const initial = await httpSync(bob, query());
      // A first message from alice: bob's device still lacks her membership (lazy loading).
      await send(alice, 'first');
      const first = await httpSync(bob, query(initial.next_batch as string));
      const since = first.next_batch as string;

      await send(alice, 'second 🧪');
      await send(carol, 'third');
      const shared = hs.homeserver.context.sync.sharedAnswers;
      const spliced = await httpSync(bob, query(since));
      expect(hs.homeserver.context.sync.sharedAnswers, 'answered from the shared delta').to.equal(shared + 1);
      const general = await generalSync(bob, since, query().filter);
      expect(withoutAges(spliced)).to.deep.equal(withoutAges(general));
      const timeline = (spliced.rooms as Json & { join: Record<string, { timeline: { events: Json[] } }> })
        .join[roomId]!.timeline.events;
      expect(timeline.map((event) => (event.content as Json).body)).to.deep.equal(['second 🧪', 'third']);
      expect(timeline.every((event) => typeof (event.unsigned as Json).age === 'number')).to.equal(true);
    });
  }

  it('reads the room state before a delta only for members who lazy-load, once for all of them', async () => {
    const reads = hs.homeserver.context.sync.reads;
    const original = reads.stateBefore;
    let stateReads = 0;
    reads.stateBefore = function (this: typeof reads, ...args: Parameters<typeof original>) {
      stateReads++;
      return original.apply(this, args);
    };
    try {
      const lazy = JSON.stringify({ room: { rooms: [roomId], state: { lazy_load_members: true } } });
      const plainSince = (await httpSync(bob, {})).next_batch as string;
      const initial = (await httpSync(carol, { filter: lazy })).next_batch as string;
      // A general answer first: it hands carol's device the members the next delta needs.
      await send(alice, 'warm-up');
      const lazySince = (await httpSync(carol, { filter: lazy, since: initial })).next_batch as string;
      await send(alice, 'no state read for the plain sync');
      const shared = hs.homeserver.context.sync.sharedAnswers;
      stateReads = 0;
      await httpSync(bob, { since: plainSince });
      expect(hs.homeserver.context.sync.sharedAnswers).to.equal(shared + 1);
      expect(stateReads, 'no member lazy-loads: no state read').to.equal(0);
      const [first, second] = await Promise.all([
        httpSync(carol, { filter: lazy, since: lazySince }),
        httpSync(carol, { filter: lazy, since: lazySince }),
      ]);
      expect(first.next_batch).to.equal(second.next_batch);
      expect(hs.homeserver.context.sync.sharedAnswers).to.be.greaterThanOrEqual(shared + 2);
      expect(stateReads, 'lazy-loading members share one read').to.equal(1);
    } finally {
      reads.stateBefore = original;
    }
  });

  it('steps aside for the sender (transaction IDs) and for a membership change', async () => {
    const since = (await httpSync(alice, {})).next_batch as string;
    await send(alice, 'mine');
    const shared = hs.homeserver.context.sync.sharedAnswers;
    const own = await httpSync(alice, { since });
    const events = (own.rooms as { join: Record<string, { timeline: { events: Json[] } }> }).join[roomId]!
      .timeline.events;
    expect((events.at(-1)!.unsigned as Json).transaction_id).to.equal(`t${txn}`);

    const bobSince = (await httpSync(bob, {})).next_batch as string;
    await call(hs, carol, 'PUT', `/_matrix/client/v3/profile/${enc(carol.userId)}/displayname`, {
      displayname: 'Carol ✨',
    });
    const renamed = await httpSync(bob, { since: bobSince });
    const section = (renamed.rooms as { join: Record<string, Json> }).join[roomId]!;
    expect(section.summary, 'a membership change carries the summary').to.not.equal(undefined);
    expect(hs.homeserver.context.sync.sharedAnswers).to.equal(shared);
  });
});
