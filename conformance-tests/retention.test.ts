/**
 * Operator retention (spec/retention.md) over real HTTP: a room's old history
 * moves to cold storage (compressed segments on disk), the server restarts,
 * and every event reads back byte-exact through /messages, /context and
 * /search; redactions still apply to cold events.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { MyelinConfig } from '../server/config/index.js';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

// biome-ignore lint/suspicious/noExplicitAny: the tests walk deep into response JSON
type Json = Record<string, any>;

function configure(config: MyelinConfig): void {
  fastAccounts(config);
  // The job is run by hand here; rooms may ask for any period.
  config.retention.min_lifetime_ms = 0;
}

describe('Retention and cold storage', function () {
  this.timeout(30_000);
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;
  let txn = 0;

  before(async () => {
    hs = await TestHomeserver.start({ configure });
    alice = await createUser(hs, 'alice');
    bob = await createUser(hs, 'bob');
    const res = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' });
    roomId = (res.body as Json).room_id;
    expect(
      (await call(hs, bob, 'POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`, {})).status,
    ).to.equal(200);
  });

  after(async () => {
    await hs?.stop();
  });

  const room = () => encodeURIComponent(roomId);

  async function send(user: TestUser, body: string): Promise<string> {
    txn += 1;
    const res = await call(
      hs,
      user,
      'PUT',
      `/_matrix/client/v3/rooms/${room()}/send/m.room.message/c${txn}`,
      {
        msgtype: 'm.text',
        body,
      },
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return (res.body as Json).event_id;
  }

  /** The whole timeline through /messages, newest first, in pages of 7. */
  async function wholeTimeline(user: TestUser): Promise<Json[]> {
    const events: Json[] = [];
    let from: string | undefined;
    for (let page = 0; page < 100; page++) {
      const query = new URLSearchParams({ dir: 'b', limit: '7', ...(from ? { from } : {}) });
      const res = await call(hs, user, 'GET', `/_matrix/client/v3/rooms/${room()}/messages?${query}`);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      const body = res.body as Json;
      events.push(...body.chunk);
      if (body.end === undefined) break;
      from = body.end;
    }
    return events;
  }

  const withoutAge = (events: Json[]) =>
    events.map((event) => {
      const { age: _age, ...unsigned } = event.unsigned ?? {};
      return { ...event, unsigned };
    });

  async function storedJson(eventIds: string[]): Promise<Map<string, string>> {
    const events = await hs.homeserver.context.storage.events.getEvents(eventIds);
    return new Map([...events].map(([id, event]) => [id, event.json]));
  }

  it('moves old history to cold storage and reads it back byte-exact after a restart', async () => {
    const retention = await call(
      hs,
      alice,
      'PUT',
      `/_matrix/client/v3/rooms/${room()}/state/m.room.retention/`,
      {
        max_lifetime: 1,
      },
    );
    expect(retention.status).to.equal(200);
    const sent: string[] = [];
    for (let i = 0; i < 40; i++)
      sent.push(await send(i % 2 ? bob : alice, `old message ${i} about quinces 🍐 ${i}`));
    const before = await wholeTimeline(bob);
    const jsonBefore = await storedJson(before.map((event) => event.event_id));
    await new Promise((resolve) => setTimeout(resolve, 20));

    const report = await hs.homeserver.context.retention.runOnce();
    // Every message but the latest (the room's forward extremity) is old enough; state stays hot.
    expect(report.moved).to.equal(39);
    const coldDir = path.join(hs.dataDir, 'cold-archive');
    expect(readdirSync(coldDir).filter((file) => file.endsWith('.jsonl.gz'))).to.have.length(1);

    hs = await hs.restart({ configure });
    const after = await wholeTimeline(bob);
    expect(withoutAge(after)).to.deep.equal(withoutAge(before));
    const jsonAfter = await storedJson([...jsonBefore.keys()]);
    for (const [eventId, json] of jsonBefore) expect(jsonAfter.get(eventId), eventId).to.equal(json);

    // The auth chain of a cold message (federation /event_auth) holds its auth events and theirs.
    const events = hs.homeserver.context.storage.events;
    const coldMessage = await events.getEvent(sent[5]!);
    const authEvents = (coldMessage!.pdu.auth_events as string[]).slice();
    expect(authEvents).to.not.be.empty;
    const chain = await events.authChainEventIds([sent[5]!]);
    const chainOfAuthEvents = await events.authChainEventIds(authEvents);
    expect([...chain].sort()).to.deep.equal([...new Set([...authEvents, ...chainOfAuthEvents])].sort());

    // /context around a cold event.
    const middle = sent[20]!;
    const context = await call(
      hs,
      bob,
      'GET',
      `/_matrix/client/v3/rooms/${room()}/context/${encodeURIComponent(middle)}?limit=4`,
    );
    expect(context.status).to.equal(200);
    expect((context.body as Json).event.content.body).to.equal('old message 20 about quinces 🍐 20');
    expect((context.body as Json).events_before.map((e: Json) => e.event_id)).to.deep.equal([
      sent[19],
      sent[18],
    ]);
    expect((context.body as Json).events_after.map((e: Json) => e.event_id)).to.deep.equal([
      sent[21],
      sent[22],
    ]);

    // /search finds cold messages, with the same content.
    const found = await call(hs, bob, 'POST', '/_matrix/client/v3/search', {
      search_categories: {
        room_events: { search_term: 'quinces', order_by: 'recent', filter: { limit: 50 } },
      },
    });
    expect(found.status).to.equal(200);
    const results = (found.body as Json).search_categories.room_events.results as Json[];
    expect(results.map((r) => r.result.event_id)).to.deep.equal([...sent].reverse());
    expect(results[39]!.result.content).to.deep.equal(before.find((e) => e.event_id === sent[0])!.content);

    // New messages go on as before, after the cold history.
    const fresh = await send(alice, 'a fresh quince');
    const timeline = await wholeTimeline(bob);
    expect(timeline[0]!.event_id).to.equal(fresh);
    expect(timeline).to.have.length(before.length + 1);
  });

  it('applies a redaction to a cold event', async () => {
    const found = await call(hs, bob, 'POST', '/_matrix/client/v3/search', {
      search_categories: { room_events: { search_term: '"message 3 about"' } },
    });
    const target = ((found.body as Json).search_categories.room_events.results as Json[])[0]!.result.event_id;
    const res = await call(
      hs,
      bob,
      'PUT',
      `/_matrix/client/v3/rooms/${room()}/redact/${encodeURIComponent(target)}/r1`,
      {},
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const event = await call(
      hs,
      alice,
      'GET',
      `/_matrix/client/v3/rooms/${room()}/event/${encodeURIComponent(target)}`,
    );
    expect((event.body as Json).content).to.deep.equal({});
    expect((event.body as Json).unsigned.redacted_because).to.have.property('type', 'm.room.redaction');
    const again = await call(hs, bob, 'POST', '/_matrix/client/v3/search', {
      search_categories: { room_events: { search_term: '"message 3 about"' } },
    });
    expect((again.body as Json).search_categories.room_events.results).to.deep.equal([]);
  });

  it('removes a segment file an interrupted move left behind, and keeps history without a period', async () => {
    const coldDir = path.join(hs.dataDir, 'cold-archive');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(coldDir, '0000000099.jsonl.gz'), 'partial');
    const report = await hs.homeserver.context.retention.runOnce();
    expect(readdirSync(coldDir)).to.not.include('0000000099.jsonl.gz');
    // The last message of the first run and the fresh one; the room's latest event (the redaction) stays hot.
    expect(report.moved).to.equal(2);
    const timeline = await wholeTimeline(alice);
    expect(timeline[0]!.type).to.equal('m.room.redaction');
    expect(timeline.filter((event) => event.type === 'm.room.message')).to.have.length(41);
    expect(await hs.homeserver.context.retention.lifetimeOf('!unknown:localhost')).to.equal(null);
  });
});

describe('Retention job on its node-cron schedule', function () {
  this.timeout(30_000);
  let hs: TestHomeserver;

  after(async () => {
    await hs?.stop();
  });

  it('moves old messages by itself when enabled', async () => {
    hs = await TestHomeserver.start({
      configure: (config) => {
        configure(config);
        config.retention.enabled = true;
        config.retention.schedule = '* * * * * *'; // every second
        config.retention.default_max_lifetime_ms = 1;
      },
    });
    const alice = await createUser(hs, 'alice');
    const created = await call(hs, alice, 'POST', '/_matrix/client/v3/createRoom', {});
    const roomId = (created.body as Json).room_id as string;
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call(
        hs,
        alice,
        'PUT',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/j${i}`,
        {
          msgtype: 'm.text',
          body: `scheduled ${i}`,
        },
      );
      sent.push((res.body as Json).event_id);
    }
    const coldDir = path.join(hs.dataDir, 'cold-archive');
    let files: string[] = [];
    for (let i = 0; i < 60 && files.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      try {
        files = readdirSync(coldDir).filter((file) => file.endsWith('.jsonl.gz'));
      } catch {
        files = [];
      }
    }
    expect(files.length).to.be.greaterThan(0);
    const messages = await call(
      hs,
      alice,
      'GET',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`,
    );
    const bodies = ((messages.body as Json).chunk as Json[])
      .filter((event) => event.type === 'm.room.message')
      .map((event) => event.content.body);
    expect(bodies).to.deep.equal(['scheduled 4', 'scheduled 3', 'scheduled 2', 'scheduled 1', 'scheduled 0']);
  });
});
