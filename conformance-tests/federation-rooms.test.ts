/**
 * Rooms across real Myelin servers federating over TLS (test CA): a room made on A, a user
 * of B invited and joined, messages both ways (emoji byte-exact) seen in each other's /sync,
 * leaving; PDUs with bad signatures or failing auth refused; a gap filled with
 * get_missing_events; state and events refused to a server with no member in the room.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { FederationRequestError } from '../federation/federation.js';
import type { JsonObject, Pdu } from '../protocol/events.js';
import { hashAndSignEvent, toRoomEvent } from '../protocol/hashing.js';
import { roomVersionRules } from '../protocol/room-versions.js';
import { call, createUser, type TestUser } from './harness/accounts.js';
import { type FederatedServer, TestFederation } from './harness/test-federation.js';
import { until } from './harness/until.js';

type SyncRooms = {
  join?: Record<string, { timeline: { events: JsonObject[] } }>;
  invite?: Record<string, { invite_state: { events: JsonObject[] } }>;
  leave?: Record<string, unknown>;
};

/** Syncs from the start each time (cheap for these small rooms) and returns the rooms section. */
async function syncRooms(server: FederatedServer, user: TestUser): Promise<SyncRooms> {
  const res = await call(server.server, user, 'GET', '/_matrix/client/v3/sync?timeout=0');
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return res.body.rooms as SyncRooms;
}

async function timelineOf(server: FederatedServer, user: TestUser, roomId: string): Promise<JsonObject[]> {
  return (await syncRooms(server, user)).join?.[roomId]?.timeline.events ?? [];
}

/** The raw /sync body text, for byte-exact checks. */
async function rawSync(server: FederatedServer, user: TestUser): Promise<string> {
  const res = await server.server.fetch('/_matrix/client/v3/sync?timeout=0', {
    headers: { Authorization: `Bearer ${user.accessToken}` },
  });
  return res.text();
}

async function send(server: FederatedServer, user: TestUser, roomId: string, body: string): Promise<string> {
  const res = await call(
    server.server,
    user,
    'PUT',
    `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${Math.random()}`,
    { msgtype: 'm.text', body },
  );
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return res.body.event_id as string;
}

/** Sends a transaction from `from` to `to` with these PDUs and returns the per-PDU results. */
async function sendTransaction(
  from: FederatedServer,
  to: FederatedServer,
  pdus: unknown[],
): Promise<Record<string, { error?: string }>> {
  const answer = await from.context.federation.client.request<{ pdus: Record<string, { error?: string }> }>({
    destination: to.serverName,
    method: 'PUT',
    path: `/_matrix/federation/v1/send/test-${Date.now()}-${Math.random()}`,
    body: { origin: from.serverName, origin_server_ts: Date.now(), pdus, edus: [] },
  });
  return answer.pdus;
}

describe('federation: rooms across servers (TLS, test CA)', function () {
  this.timeout(90_000);
  let federation: TestFederation;
  let a: FederatedServer;
  let b: FederatedServer;
  let c: FederatedServer;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;

  before(async () => {
    federation = await TestFederation.start(3);
    [a, b, c] = federation.servers as [FederatedServer, FederatedServer, FederatedServer];
    alice = await createUser(a.server, 'alice');
    bob = await createUser(b.server, 'bob');
    const created = await call(a.server, alice, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'private_chat',
      name: 'Across 🌍',
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    roomId = created.body.room_id as string;
  });
  after(async () => {
    await federation?.stop();
  });

  it('invites a user of another server: the invite appears in their sync with the stripped state', async () => {
    const res = await call(
      a.server,
      alice,
      'POST',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`,
      {
        user_id: bob.userId,
      },
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const invite = await until(async () => (await syncRooms(b, bob)).invite?.[roomId]);
    const types = invite.invite_state.events.map((e) => e.type);
    expect(types).to.include.members(['m.room.name', 'm.room.member']);
    const name = invite.invite_state.events.find((e) => e.type === 'm.room.name');
    expect((name!.content as JsonObject).name).to.equal('Across 🌍');
  });

  it('invites users of another server named in createRoom, through their server (a direct chat)', async () => {
    const created = await call(a.server, alice, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'trusted_private_chat',
      is_direct: true,
      invite: [bob.userId],
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    const directRoom = created.body.room_id as string;
    const invite = await until(async () => (await syncRooms(b, bob)).invite?.[directRoom]);
    const member = invite.invite_state.events.find(
      (e) => e.type === 'm.room.member' && e.state_key === bob.userId,
    );
    expect(member!.content).to.deep.include({ membership: 'invite', is_direct: true });
  });

  it('joins through the resident server; both servers see the join', async () => {
    const res = await call(
      b.server,
      bob,
      'POST',
      `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?server_name=${encodeURIComponent(a.serverName)}`,
      {},
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body.room_id).to.equal(roomId);
    const joinedOnB = await call(b.server, bob, 'GET', '/_matrix/client/v3/joined_rooms');
    expect(joinedOnB.body.joined_rooms).to.deep.equal([roomId]);
    await until(async () => {
      const events = await timelineOf(a, alice, roomId);
      return events.some((e) => e.type === 'm.room.member' && e.state_key === bob.userId) ? true : undefined;
    });
    const members = await call(
      b.server,
      bob,
      'GET',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`,
    );
    expect(Object.keys(members.body.joined as object)).to.have.members([alice.userId, bob.userId]);
  });

  it('exchanges messages both ways, emoji byte-exact, each seen in the other side’s sync', async () => {
    const fromAlice = 'Bonjour 👩🏽‍💻 — ça va? 🏳️‍⚧️ 𝕄';
    const aliceEvent = await send(a, alice, roomId, fromAlice);
    const seenByBob = await until(async () =>
      (await timelineOf(b, bob, roomId)).find((e) => e.event_id === aliceEvent),
    );
    expect((seenByBob.content as JsonObject).body).to.equal(fromAlice);
    expect(await rawSync(b, bob)).to.include(JSON.stringify(fromAlice).slice(1, -1));

    const fromBob = 'Très bien 🙂 👍🏿';
    const bobEvent = await send(b, bob, roomId, fromBob);
    const seenByAlice = await until(async () =>
      (await timelineOf(a, alice, roomId)).find((e) => e.event_id === bobEvent),
    );
    expect((seenByAlice.content as JsonObject).body).to.equal(fromBob);
    expect(seenByAlice.sender).to.equal(bob.userId);
  });

  it('serves state_ids, state and events to a server in the room, and refuses them to one that is not', async () => {
    const head = (await a.context.storage.state.forwardExtremities(roomId))[0]!;
    const path = `/_matrix/federation/v1/state_ids/${encodeURIComponent(roomId)}`;
    const ids = await b.context.federation.client.request<{ pdu_ids: string[] }>({
      destination: a.serverName,
      method: 'GET',
      path,
      query: { event_id: head },
    });
    expect(ids.pdu_ids.length).to.be.greaterThan(4);
    for (const request of [
      { method: 'GET' as const, path, query: { event_id: head } },
      {
        method: 'GET' as const,
        path: `/_matrix/federation/v1/state/${encodeURIComponent(roomId)}`,
        query: { event_id: head },
      },
      { method: 'GET' as const, path: `/_matrix/federation/v1/event/${encodeURIComponent(head)}` },
    ]) {
      let error: unknown;
      try {
        await c.context.federation.client.request({ destination: a.serverName, ...request });
      } catch (e) {
        error = e;
      }
      expect(error, request.path).to.be.instanceOf(FederationRequestError);
      expect((error as FederationRequestError).status, request.path).to.equal(403);
    }
  });

  it('rejects a PDU whose signature does not verify', async () => {
    const bobEvent = await send(b, bob, roomId, 'to be forged');
    await until(async () =>
      (await a.context.storage.events.getEvent(bobEvent)) !== null ? true : undefined,
    );
    const stored = await b.context.storage.events.getEvent(bobEvent);
    const forged = structuredClone(stored!.pdu) as Pdu;
    forged.content = { msgtype: 'm.text', body: 'forged' };
    forged.depth += 1;
    forged.prev_events = [bobEvent];
    const rules = roomVersionRules('12');
    const signed = hashAndSignEvent(forged, b.serverName, b.context.signingKey, rules);
    const sig = signed.signatures[b.serverName]!;
    const keyId = Object.keys(sig)[0]!;
    sig[keyId] = `${sig[keyId]!.slice(0, -6)}AAAAAA`;
    const { eventId } = toRoomEvent(signed, rules);
    const results = await sendTransaction(b, a, [signed]);
    expect(results[eventId]?.error).to.match(/signature/);
    expect(await a.context.storage.events.getEvent(eventId)).to.equal(null);
  });

  it('rejects a PDU that fails the auth rules (a user of a server that is not in the room)', async () => {
    const rules = roomVersionRules('12');
    const head = (await a.context.storage.state.forwardExtremities(roomId))[0]!;
    const headEvent = await a.context.storage.events.getEvent(head);
    const power = await a.context.storage.state.currentStateEventId(roomId, 'm.room.power_levels', '');
    const intruder = `@mallory:${c.serverName}`;
    const pdu = hashAndSignEvent(
      {
        type: 'm.room.message',
        room_id: roomId,
        sender: intruder,
        content: { msgtype: 'm.text', body: 'let me in' },
        depth: headEvent!.pdu.depth + 1,
        prev_events: [head],
        auth_events: [power!],
        origin_server_ts: Date.now(),
      },
      c.serverName,
      c.context.signingKey,
      rules,
    );
    const { eventId } = toRoomEvent(pdu, rules);
    const results = await sendTransaction(c, a, [pdu]);
    expect(results[eventId]?.error).to.match(/rejected/);
    const timeline = await timelineOf(a, alice, roomId);
    expect(timeline.map((e) => e.event_id)).to.not.include(eventId);
  });

  it('leaves: the leave reaches the resident server', async () => {
    const res = await call(
      b.server,
      bob,
      'POST',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/leave`,
      {},
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    await until(async () => {
      const members = await call(
        a.server,
        alice,
        'GET',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`,
      );
      return Object.keys(members.body.joined as object).length === 1 ? true : undefined;
    });
    const timeline = await timelineOf(a, alice, roomId);
    const leave = timeline.filter((e) => e.type === 'm.room.member' && e.state_key === bob.userId).at(-1);
    expect((leave!.content as JsonObject).membership).to.equal('leave');
    const joined = await call(b.server, bob, 'GET', '/_matrix/client/v3/joined_rooms');
    expect(joined.body.joined_rooms).to.deep.equal([]);
  });

  it('keeps an invite that came only through /v2/invite for a room its server has left (as Synapse sends it)', async () => {
    // Synapse sends room events only to servers with a joined member: once B has left, a new
    // invite reaches B through /v2/invite alone, never through /send.
    const rules = roomVersionRules('12');
    const head = (await a.context.storage.state.forwardExtremities(roomId))[0]!;
    const headEvent = await a.context.storage.events.getEvent(head);
    const stateId = async (type: string, key: string) =>
      (await a.context.storage.state.currentStateEventId(roomId, type, key))!;
    const invite = hashAndSignEvent(
      {
        type: 'm.room.member',
        room_id: roomId,
        sender: alice.userId,
        state_key: bob.userId,
        content: { membership: 'invite' },
        depth: headEvent!.pdu.depth + 1,
        prev_events: [head],
        auth_events: [
          await stateId('m.room.power_levels', ''),
          await stateId('m.room.join_rules', ''),
          await stateId('m.room.member', alice.userId),
          await stateId('m.room.member', bob.userId),
        ],
        origin_server_ts: Date.now(),
      },
      a.serverName,
      a.context.signingKey,
      rules,
    );
    const { eventId } = toRoomEvent(invite, rules);
    await a.context.federation.client.request({
      destination: b.serverName,
      method: 'PUT',
      path: `/_matrix/federation/v2/invite/${encodeURIComponent(roomId)}/${encodeURIComponent(eventId)}`,
      body: { event: invite, room_version: '12', invite_room_state: [] },
    });
    const shown = await until(async () => (await syncRooms(b, bob)).invite?.[roomId]);
    expect(shown.invite_state.events).to.be.an('array');
    const membership = await b.context.storage.state.currentStateEventId(roomId, 'm.room.member', bob.userId);
    expect(membership).to.equal(eventId);
  });

  it('rejoins a room its server has left through the resident server, and catches up on its state', async () => {
    const renamed = await call(
      a.server,
      alice,
      'PUT',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.name/`,
      { name: 'Renamed while B was away' },
    );
    expect(renamed.status, JSON.stringify(renamed.body)).to.equal(200);
    const invited = await call(
      a.server,
      alice,
      'POST',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`,
      { user_id: bob.userId },
    );
    expect(invited.status, JSON.stringify(invited.body)).to.equal(200);
    await until(async () => {
      const m = await b.context.storage.state.currentStateEventId(roomId, 'm.room.member', bob.userId);
      const e = m === null ? null : await b.context.storage.events.getEvent(m);
      return e?.pdu.content.membership === 'invite' && e.pdu.sender === alice.userId ? true : undefined;
    });
    const joined = await call(
      b.server,
      bob,
      'POST',
      `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
    // Joined through A (make_join): B learns the name set while it was away.
    const name = await call(
      b.server,
      bob,
      'GET',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.name/`,
    );
    expect(name.body).to.deep.equal({ name: 'Renamed while B was away' });
    const fromB = await send(b, bob, roomId, 'back again 🔁');
    // 30 s: the full suite runs this on a loaded machine, where 10 s was once not enough.
    await until(
      async () => ((await a.context.storage.events.getEvent(fromB)) !== null ? true : undefined),
      30_000,
    );
    const leave = await call(
      b.server,
      bob,
      'POST',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/leave`,
      {},
    );
    expect(leave.status).to.equal(200);
  });

  it('reads the profile of a user of another server through the client API', async () => {
    const set = await call(
      b.server,
      bob,
      'PUT',
      `/_matrix/client/v3/profile/${encodeURIComponent(bob.userId)}/displayname`,
      {
        displayname: 'Bob ⛵',
      },
    );
    expect(set.status).to.equal(200);
    const profile = await call(
      a.server,
      alice,
      'GET',
      `/_matrix/client/v3/profile/${encodeURIComponent(bob.userId)}`,
    );
    expect(profile.status, JSON.stringify(profile.body)).to.equal(200);
    expect(profile.body.displayname).to.equal('Bob ⛵');
    const field = await call(
      a.server,
      alice,
      'GET',
      `/_matrix/client/v3/profile/${encodeURIComponent(bob.userId)}/displayname`,
    );
    expect(field.body).to.deep.equal({ displayname: 'Bob ⛵' });
    // An unset field is a 200 without it over federation (Synapse asks field by field and
    // fails the whole lookup on a 404), and a 404 to the client.
    const unsetOverFederation = await a.context.federation.client.request<JsonObject>({
      destination: b.serverName,
      method: 'GET',
      path: '/_matrix/federation/v1/query/profile',
      query: { user_id: bob.userId, field: 'avatar_url' },
    });
    expect(unsetOverFederation).to.deep.equal({});
    const unsetField = await call(
      a.server,
      alice,
      'GET',
      `/_matrix/client/v3/profile/${encodeURIComponent(bob.userId)}/avatar_url`,
    );
    expect(unsetField.status).to.equal(404);
    const unknown = await call(
      a.server,
      alice,
      'GET',
      `/_matrix/client/v3/profile/${encodeURIComponent(`@nobody:${b.serverName}`)}`,
    );
    expect(unknown.status).to.equal(404);
  });

  it("resolves another server's alias and lists its published rooms through the client API", async () => {
    const created = await call(b.server, bob, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'public_chat',
      room_alias_name: 'plaza',
      name: 'Plaza 🏛',
      visibility: 'public',
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    const plaza = created.body.room_id as string;
    const resolved = await call(
      a.server,
      alice,
      'GET',
      `/_matrix/client/v3/directory/room/${encodeURIComponent(`#plaza:${b.serverName}`)}`,
    );
    expect(resolved.status, JSON.stringify(resolved.body)).to.equal(200);
    expect(resolved.body.room_id).to.equal(plaza);
    expect(resolved.body.servers).to.include(b.serverName);
    const unknown = await call(
      a.server,
      alice,
      'GET',
      `/_matrix/client/v3/directory/room/${encodeURIComponent(`#nowhere:${b.serverName}`)}`,
    );
    expect([unknown.status, unknown.body.errcode]).to.deep.equal([404, 'M_NOT_FOUND']);

    const server = encodeURIComponent(b.serverName);
    const listed = await call(a.server, alice, 'GET', `/_matrix/client/v3/publicRooms?server=${server}`);
    expect(listed.status, JSON.stringify(listed.body)).to.equal(200);
    const chunk = listed.body.chunk as JsonObject[];
    expect(chunk.map((r) => r.room_id)).to.include(plaza);
    const searched = await call(a.server, alice, 'POST', `/_matrix/client/v3/publicRooms?server=${server}`, {
      filter: { generic_search_term: 'plaza' },
    });
    expect(searched.status, JSON.stringify(searched.body)).to.equal(200);
    expect((searched.body.chunk as JsonObject[]).map((r) => r.name)).to.deep.equal(['Plaza 🏛']);
  });

  it('knocks on a room of the other server; the answer carries the stripped state under both names', async () => {
    const created = await call(b.server, bob, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'private_chat',
      name: 'Knock here 🚪',
      initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }],
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    const knockRoom = created.body.room_id as string;
    // The raw send_knock answer: knock_room_state (spec) and knock_state_events, which Synapse
    // 1.67 reads (it fails the knock with a 500 without it).
    const kate = await createUser(a.server, 'kate');
    const remote = a.context.roomFederation.remote;
    const made = await remote.makeMembership(b.serverName, 'knock', knockRoom, kate.userId, ['12']);
    const rules = roomVersionRules(made.roomVersion);
    const template = { ...made.event, origin_server_ts: Date.now() } as unknown as Pdu;
    const signed = hashAndSignEvent(template, a.serverName, a.context.signingKey, rules);
    const { eventId } = toRoomEvent(signed, rules);
    const answer = await remote.sendMembership(b.serverName, 'knock', knockRoom, eventId, signed);
    const names = (list: unknown) =>
      (list as JsonObject[]).map((e) => (e.type === 'm.room.name' ? (e.content as JsonObject).name : e.type));
    expect(names(answer.knock_room_state)).to.include('Knock here 🚪');
    expect(answer.knock_state_events).to.deep.equal(answer.knock_room_state);

    // Through the client API: the knock shows in the knocker's sync with that state.
    const res = await call(
      a.server,
      alice,
      'POST',
      `/_matrix/client/v3/knock/${encodeURIComponent(knockRoom)}?server_name=${encodeURIComponent(b.serverName)}`,
      { reason: 'please' },
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const sync = await call(a.server, alice, 'GET', '/_matrix/client/v3/sync?timeout=0');
    const knock = (sync.body.rooms as { knock?: Record<string, { knock_state: { events: JsonObject[] } }> })
      .knock?.[knockRoom];
    expect(names(knock?.knock_state.events)).to.include('Knock here 🚪');
  });

  it('joins a public room of the other server by its alias, and fills a gap with get_missing_events', async () => {
    const created = await call(b.server, bob, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'public_chat',
      room_alias_name: 'lobby',
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    const publicRoom = created.body.room_id as string;
    const alias = `#lobby:${b.serverName}`;
    const joined = await call(
      a.server,
      alice,
      'POST',
      `/_matrix/client/v3/join/${encodeURIComponent(alias)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
    expect(joined.body.room_id).to.equal(publicRoom);
    // B stops sending on its own: three messages stay on B, then only the last is pushed to A.
    b.context.roomFederation.close();
    const ids = [
      await send(b, bob, publicRoom, 'gap 1'),
      await send(b, bob, publicRoom, 'gap 2'),
      await send(b, bob, publicRoom, 'gap 3'),
    ];
    const last = await b.context.storage.events.getEvent(ids[2]!);
    const results = await sendTransaction(b, a, [last!.pdu]);
    expect(results[ids[2]!]).to.deep.equal({});
    const timeline = await until(async () => {
      const events = await timelineOf(a, alice, publicRoom);
      return ids.every((id) => events.some((e) => e.event_id === id)) ? events : undefined;
    });
    const order = timeline.map((e) => e.event_id).filter((id) => ids.includes(id as string));
    expect(order).to.deep.equal(ids);
  });
});

describe('federation: a room across an outage of one server', function () {
  this.timeout(120_000);
  let federation: TestFederation;
  const dataDirs: string[] = [];

  before(async () => {
    federation = await TestFederation.start(0);
  });
  after(async () => {
    await federation?.stop();
    await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('B is stopped while A sends 200 messages; restarted, B receives each exactly once, in order', async () => {
    const dirB = await mkdtemp(path.join(tmpdir(), 'myelin-fed-rooms-b-'));
    dataDirs.push(dirB);
    const a = await federation.startServer();
    let b = await federation.startServer({ dataDir: dirB });
    const portB = b.federationPort;
    const alice = await createUser(a.server, 'alice');
    const bob = await createUser(b.server, 'bob');
    const created = await call(a.server, alice, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'public_chat',
    });
    const roomId = created.body.room_id as string;
    const joined = await call(
      b.server,
      bob,
      'POST',
      `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?via=${encodeURIComponent(a.serverName)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);

    await b.server.stop();
    const sent: string[] = [];
    for (let n = 0; n < 200; n++) sent.push(await send(a, alice, roomId, `while you were away ${n} 💤`));

    b = await federation.startServer({ dataDir: dirB, federationPort: portB });
    // B contacts A (as it would on its own soon enough): A stops backing off and sends at once.
    await b.context.federation.client.request({
      destination: a.serverName,
      method: 'PUT',
      path: '/_matrix/federation/v1/send/back-again',
      body: { origin: b.serverName, origin_server_ts: Date.now(), pdus: [] },
    });
    const received = await until(async () => {
      const events = await b.context.storage.events.roomEventsAfter(roomId, 0, 10_000);
      const messages = events.filter((event) => event.pdu.type === 'm.room.message');
      return messages.length >= 200 ? messages : undefined;
    }, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const again = await b.context.storage.events.roomEventsAfter(roomId, 0, 10_000);
    const ids = again.filter((event) => event.pdu.type === 'm.room.message').map((event) => event.eventId);
    expect(ids).to.deep.equal(sent);
    expect(received.map((event) => event.pdu.content.body)).to.deep.equal(
      sent.map((_, n) => `while you were away ${n} 💤`),
    );
    // And bob's sync shows the latest of them.
    const timeline = await timelineOf(b, bob, roomId);
    expect(timeline.at(-1)?.event_id).to.equal(sent.at(-1));
    await b.server.stop();
  });
});
