/**
 * Server-side search over real HTTP (client-server "Server Side Search"), the
 * same suite on both index backends: SQLite FTS5 (the default) and PostgreSQL
 * (tsvector + GIN) at 127.0.0.1:5432 db `test`, each run in a schema of its own.
 * PostgreSQL is skipped, with a message, only when unreachable outside CI.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import pg from 'pg';
import type { JsonObject } from '../protocol/events.js';
import type { MyelinConfig } from '../server/config/index.js';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

// biome-ignore lint/suspicious/noExplicitAny: the tests walk deep into response JSON
type Json = Record<string, any>;

const POSTGRES_URL = process.env.MYELIN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

interface Backend {
  readonly name: string;
  configure(config: MyelinConfig): void;
  /** Resolves false when the backend cannot run here (the suite is then skipped). */
  available(): Promise<boolean>;
  cleanUp(): Promise<void>;
}

const sqliteBackend: Backend = {
  name: 'SQLite FTS5',
  configure: () => {},
  available: async () => true,
  cleanUp: async () => {},
};

function postgresBackend(): Backend {
  const schema = `search_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  return {
    name: 'PostgreSQL tsvector',
    configure(config) {
      config.search.backend = 'postgres';
      config.search.postgres.url = POSTGRES_URL;
      config.search.postgres.schema = schema;
    },
    async available() {
      if (await postgresReachable()) return true;
      if (process.env.CI) throw new Error(`PostgreSQL at ${POSTGRES_URL} is unreachable; it must run in CI`);
      console.warn(`  (skipped: PostgreSQL at ${POSTGRES_URL} is unreachable)`);
      return false;
    },
    async cleanUp() {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

for (const backend of [sqliteBackend, postgresBackend()]) {
  describe(`Search (${backend.name})`, function () {
    this.timeout(20_000);
    let hs: TestHomeserver;
    let alice: TestUser;
    let bob: TestUser;
    let carol: TestUser;
    let roomId: string;
    let txn = 0;

    before(async function () {
      if (!(await backend.available())) this.skip();
      hs = await TestHomeserver.start({
        configure: (config) => {
          fastAccounts(config);
          backend.configure(config);
        },
      });
      alice = await createUser(hs, 'alice');
      bob = await createUser(hs, 'bob');
      carol = await createUser(hs, 'carol');
      roomId = await createRoom(alice, { preset: 'public_chat', name: 'Gardening club' });
      await join(bob, roomId);
    });

    after(async () => {
      await hs?.stop();
      await backend.cleanUp().catch(() => {});
    });

    async function createRoom(user: TestUser, body: Json): Promise<string> {
      const res = await call(hs, user, 'POST', '/_matrix/client/v3/createRoom', body);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      return res.body.room_id as string;
    }

    async function join(user: TestUser, room: string): Promise<void> {
      const res = await call(
        hs,
        user,
        'POST',
        `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/join`,
        {},
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
    }

    async function send(user: TestUser, content: JsonObject, room = roomId, type = 'm.room.message') {
      txn += 1;
      const res = await call(
        hs,
        user,
        'PUT',
        `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/send/${type}/s${txn}`,
        content,
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      return res.body.event_id as string;
    }

    const say = (user: TestUser, body: string, room = roomId) =>
      send(user, { msgtype: 'm.text', body }, room);

    async function search(user: TestUser, criteria: Json, nextBatch?: string): Promise<Json> {
      const query = nextBatch === undefined ? '' : `?next_batch=${encodeURIComponent(nextBatch)}`;
      const res = await call(hs, user, 'POST', `/_matrix/client/v3/search${query}`, {
        search_categories: { room_events: criteria },
      });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      return (res.body as Json).search_categories.room_events as Json;
    }

    const ids = (found: Json) => (found.results as Json[]).map((r) => r.result.event_id as string);

    it('finds messages by word, case and accents aside, and highlights the words', async () => {
      const id = await say(alice, 'The Tomatoes are ripening in the GREENHOUSE, café time');
      await say(alice, 'nothing to see here');
      const found = await search(bob, { search_term: 'tomatoes greenhouse' });
      expect(ids(found)).to.deep.equal([id]);
      expect(found.count).to.equal(1);
      expect(found.results[0].result.content.body).to.contain('Tomatoes');
      expect(found.highlights).to.include.members(['Tomatoes', 'GREENHOUSE']);
      expect(ids(await search(bob, { search_term: 'cafe' }))).to.deep.equal([id]);
    });

    it('finds by prefix, by emoji and by CJK substring', async () => {
      const pickled = await say(alice, 'pickled cucumbers 🥒 for everyone 👍🏽');
      const tokyo = await say(bob, '東京タワーで会いましょう');
      expect(ids(await search(bob, { search_term: 'cucu*' }))).to.deep.equal([pickled]);
      expect(await search(bob, { search_term: 'cucu' })).to.include({ count: 0 });
      expect(ids(await search(bob, { search_term: '🥒' }))).to.deep.equal([pickled]);
      // A skin tone is a variant of the same emoji.
      expect(ids(await search(bob, { search_term: '👍' }))).to.deep.equal([pickled]);
      expect(ids(await search(alice, { search_term: '東京' }))).to.deep.equal([tokyo]);
      expect(await search(bob, { search_term: '🍅' })).to.include({ count: 0 });
    });

    it('supports phrases, exclusion and OR', async () => {
      const a = await say(alice, 'blue whale sighting');
      const b = await say(alice, 'whale blue paint');
      expect(ids(await search(bob, { search_term: '"blue whale"' }))).to.deep.equal([a]);
      expect(ids(await search(bob, { search_term: 'whale -paint' }))).to.deep.equal([a]);
      const either = await search(bob, { search_term: 'sighting OR paint', order_by: 'recent' });
      expect(ids(either)).to.deep.equal([b, a]);
    });

    it('ranks the best match first, and orders by recency on request', async () => {
      const weak = await say(
        alice,
        'a note about a turnip and many other unrelated garden things to mention today',
      );
      const strong = await say(alice, 'turnip turnip turnip');
      const middle = await say(alice, 'turnip soup, turnip stew');
      const ranked = await search(bob, { search_term: 'turnip', order_by: 'rank' });
      expect(ids(ranked)[0]).to.equal(strong);
      expect(ids(ranked)).to.have.members([weak, strong, middle]);
      expect(ranked.results[0].rank).to.be.greaterThan(ranked.results[2].rank);
      expect(ids(await search(bob, { search_term: 'turnip', order_by: 'recent' }))).to.deep.equal([
        middle,
        strong,
        weak,
      ]);
    });

    it('pages with next_batch in both orders', async () => {
      const sent: string[] = [];
      for (let i = 0; i < 7; i++) sent.push(await say(alice, `pumpkin number ${i}`));
      for (const order_by of ['recent', 'rank'] as const) {
        const seen: string[] = [];
        let next: string | undefined;
        let pages = 0;
        do {
          const page = await search(bob, { search_term: 'pumpkin', order_by, filter: { limit: 3 } }, next);
          seen.push(...ids(page));
          next = page.next_batch;
          pages++;
        } while (next !== undefined && pages < 10);
        expect(seen, order_by).to.have.members(sent);
        expect(seen).to.have.length(7);
        if (order_by === 'recent') expect(seen).to.deep.equal([...sent].reverse());
      }
    });

    it('applies filters: rooms, senders, types and their not_ forms, keys', async () => {
      const other = await createRoom(bob, { name: 'Radish fans', topic: 'all about radish' });
      const fromBob = await say(bob, 'radish harvest', other);
      const fromAlice = await say(alice, 'radish seeds');
      const all = await search(bob, { search_term: 'radish', order_by: 'recent' });
      expect(ids(all)).to.include.members([fromBob, fromAlice]);
      expect(ids(await search(bob, { search_term: 'radish', filter: { rooms: [roomId] } }))).to.deep.equal([
        fromAlice,
      ]);
      expect(
        ids(
          await search(bob, {
            search_term: 'radish',
            filter: { not_rooms: [roomId], types: ['m.room.message'] },
          }),
        ),
      ).to.deep.equal([fromBob]);
      expect(
        ids(await search(bob, { search_term: 'radish', filter: { senders: [alice.userId] } })),
      ).to.deep.equal([fromAlice]);
      const notAlice = ids(
        await search(bob, { search_term: 'radish', filter: { not_senders: [alice.userId] } }),
      );
      expect(notAlice).to.include(fromBob).and.not.include(fromAlice);
      // Names and topics are searched too, and keys narrow the fields.
      const topics = await search(bob, { search_term: 'radish', keys: ['content.topic'] });
      expect((topics.results as Json[]).map((r) => r.result.type)).to.deep.equal(['m.room.topic']);
      const names = await search(bob, { search_term: 'radish', filter: { types: ['m.room.n*'] } });
      expect((names.results as Json[]).map((r) => r.result.content.name)).to.deep.equal(['Radish fans']);
      const notMessages = await search(bob, {
        search_term: 'radish',
        filter: { not_types: ['m.room.message'] },
      });
      expect((notMessages.results as Json[]).map((r) => r.result.type)).to.have.members([
        'm.room.name',
        'm.room.topic',
      ]);
    });

    it('never finds messages of rooms the user is not in, nor from before they could see the room', async () => {
      const secret = await createRoom(alice, { preset: 'private_chat' });
      const visibility = await call(
        hs,
        alice,
        'PUT',
        `/_matrix/client/v3/rooms/${encodeURIComponent(secret)}/state/m.room.history_visibility/`,
        { history_visibility: 'joined' },
      );
      expect(visibility.status).to.equal(200);
      await say(alice, 'the password is mango', secret);
      expect(await search(carol, { search_term: 'mango' })).to.include({ count: 0 });
      const invite = await call(
        hs,
        alice,
        'POST',
        `/_matrix/client/v3/rooms/${encodeURIComponent(secret)}/invite`,
        {
          user_id: carol.userId,
        },
      );
      expect(invite.status).to.equal(200);
      await join(carol, secret);
      const later = await say(alice, 'second mango message', secret);
      expect(ids(await search(carol, { search_term: 'mango' }))).to.deep.equal([later]);
      expect(ids(await search(alice, { search_term: 'mango', order_by: 'recent' }))).to.have.length(2);
    });

    it('never indexes encrypted events', async () => {
      await send(
        alice,
        { algorithm: 'm.megolm.v1.aes-sha2', ciphertext: 'zucchini', session_id: 'x' },
        roomId,
        'm.room.encrypted',
      );
      expect(await search(bob, { search_term: 'zucchini' })).to.include({ count: 0 });
    });

    it('drops redacted messages from results at once', async () => {
      const id = await say(alice, 'embarrassing parsnip typo');
      expect(ids(await search(bob, { search_term: 'parsnip' }))).to.deep.equal([id]);
      const res = await call(
        hs,
        alice,
        'PUT',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/redact/${encodeURIComponent(id)}/r1`,
        {},
      );
      expect(res.status).to.equal(200);
      const after = await search(bob, { search_term: 'parsnip' });
      expect(after.results).to.deep.equal([]);
      expect(after.count).to.equal(0);
    });

    it('returns event context with profiles, room state and groupings', async () => {
      const profile = await call(
        hs,
        bob,
        'PUT',
        `/_matrix/client/v3/profile/${encodeURIComponent(bob.userId)}/displayname`,
        {
          displayname: 'Bob the Gardener',
        },
      );
      expect(profile.status).to.equal(200);
      await say(alice, 'before the kale');
      const hit = await say(bob, 'kale is the word');
      await say(alice, 'after the kale talk');
      const found = await search(alice, {
        search_term: 'word',
        filter: { rooms: [roomId] },
        event_context: { before_limit: 1, after_limit: 1, include_profile: true },
        include_state: true,
        groupings: { group_by: [{ key: 'room_id' }, { key: 'sender' }] },
      });
      expect(ids(found)).to.deep.equal([hit]);
      const context = found.results[0].context;
      expect(context.events_before.map((e: Json) => e.content.body)).to.deep.equal(['before the kale']);
      expect(context.events_after.map((e: Json) => e.content.body)).to.deep.equal(['after the kale talk']);
      expect(context.start).to.be.a('string');
      expect(context.end).to.be.a('string');
      expect(context.profile_info[bob.userId]).to.deep.equal({ displayname: 'Bob the Gardener' });
      expect(found.state[roomId].some((e: Json) => e.type === 'm.room.create')).to.equal(true);
      expect(found.groups.room_id[roomId]).to.deep.equal({ results: [hit], order: 1 });
      expect(found.groups.sender[bob.userId].results).to.deep.equal([hit]);
    });

    it('lists and searches the media of a conversation through io.myelin.msgtypes', async () => {
      const image = await send(alice, {
        msgtype: 'm.image',
        body: 'holiday beetroot.jpg',
        url: 'mxc://localhost/abc',
        info: { mimetype: 'image/jpeg' },
      });
      const file = await send(alice, {
        msgtype: 'm.file',
        body: 'see the attached plan',
        filename: 'allotment-plan.pdf',
        url: 'mxc://localhost/def',
      });
      await say(alice, 'beetroot talk without a picture');
      const media = await search(bob, {
        search_term: '',
        filter: { rooms: [roomId] },
        'io.myelin.msgtypes': ['m.image', 'm.file', 'm.video', 'm.audio'],
      });
      expect(ids(media)).to.deep.equal([file, image]);
      expect(
        ids(await search(bob, { search_term: 'beetroot', 'io.myelin.msgtypes': ['m.image'] })),
      ).to.deep.equal([image]);
      // The file name is searched with the body.
      expect(
        ids(await search(bob, { search_term: 'allotment', 'io.myelin.msgtypes': ['m.file'] })),
      ).to.deep.equal([file]);
      expect(
        ids(await search(bob, { search_term: 'beetroot', filter: { contains_url: false } })),
      ).to.have.length(1);
    });

    it("forgets an erased user's messages", async () => {
      const dave = await createUser(hs, 'dave');
      await join(dave, roomId);
      await say(dave, 'my rhubarb secrets');
      expect(await search(bob, { search_term: 'rhubarb' })).to.include({ count: 1 });
      const res = await call(hs, dave, 'POST', '/_matrix/client/v3/account/deactivate', {
        erase: true,
        auth: {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: 'dave' },
          password: dave.password,
        },
      });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(await search(bob, { search_term: 'rhubarb' })).to.include({ count: 0 });
    });

    it('keeps its index across a restart, and rebuilds a lost one from the event stream', async () => {
      const id = await say(alice, 'artichoke before the restart');
      hs = await hs.restart({
        configure: (config) => {
          fastAccounts(config);
          backend.configure(config);
        },
      });
      expect(ids(await search(bob, { search_term: 'artichoke' }))).to.deep.equal([id]);
      if (backend === sqliteBackend) {
        // Lose the whole index while the server is down: it is rebuilt from the stream at start.
        const dataDir = hs.dataDir;
        await hs.homeserver.stop();
        const db = new Database(path.join(dataDir, 'homeserver.db'));
        db.exec(
          'DELETE FROM search_fts; DELETE FROM search_documents; UPDATE search_position SET indexed_up_to = 0;',
        );
        db.close();
        hs = await TestHomeserver.start({ configure: fastAccounts, dataDir });
        expect(ids(await search(bob, { search_term: 'artichoke' }))).to.deep.equal([id]);
        expect(ids(await search(bob, { search_term: 'tomatoes' }))).to.have.length(1);
      }
    });

    it('rejects a bad next_batch', async () => {
      const res = await call(hs, bob, 'POST', '/_matrix/client/v3/search?next_batch=nonsense', {
        search_categories: { room_events: { search_term: 'x' } },
      });
      expect(res.status).to.equal(400);
      expect(res.body.errcode).to.equal('M_INVALID_PARAM');
    });
  });
}
