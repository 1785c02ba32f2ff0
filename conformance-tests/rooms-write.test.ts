import { expect } from 'chai';
import { call, createUser, fastAccounts, login, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const V3 = '/_matrix/client/v3';
const room = (roomId: string) => `${V3}/rooms/${encodeURIComponent(roomId)}`;
const enc = encodeURIComponent;

let txnCounter = 0;
const nextTxn = () => `txn-${Date.now()}-${txnCounter++}`;

describe('Room writes (client-server "Rooms": creation, membership, events, redactions, upgrades, reports)', () => {
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    alice = await createUser(hs, 'w-alice', { displayName: 'Alice' });
    bob = await createUser(hs, 'w-bob', { displayName: 'Bob' });
    carol = await createUser(hs, 'w-carol');
  });
  after(() => hs.stop());
  afterEach(() => {
    // Nothing here may be a server error: bad input is the client's error, never a 500.
    const errors = hs.logLines.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
    expect(errors, errors.join('\n')).to.deep.equal([]);
  });

  const storage = () => hs.homeserver.context.storage;

  async function createRoom(user: TestUser, body: Record<string, unknown> = {}): Promise<string> {
    const res = await call(hs, user, 'POST', `${V3}/createRoom`, body);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body.room_id as string;
  }

  async function send(
    user: TestUser,
    roomId: string,
    content: unknown,
    type = 'm.room.message',
    txn = nextTxn(),
  ) {
    return call(hs, user, 'PUT', `${room(roomId)}/send/${enc(type)}/${enc(txn)}`, content);
  }

  async function join(user: TestUser, roomIdOrAlias: string) {
    return call(hs, user, 'POST', `${V3}/join/${enc(roomIdOrAlias)}`, {});
  }

  async function stateContent(roomId: string, type: string, stateKey = '') {
    const eventId = await storage().state.currentStateEventId(roomId, type, stateKey);
    if (eventId === null) return null;
    return (await storage().events.getEvent(eventId))!.pdu.content;
  }

  describe('POST /createRoom', () => {
    it('creates a room, records it (version, creator, directory visibility) and makes the creator a member', async () => {
      const roomId = await createRoom(alice, {
        visibility: 'public',
        preset: 'public_chat',
        name: 'Garden 🌻',
        room_version: '11',
      });
      expect(await storage().rooms.getRoom(roomId)).to.include({
        roomId,
        roomVersion: '11',
        creator: alice.userId,
        isPublic: true,
      });
      const privateRoom = await createRoom(alice);
      expect(await storage().rooms.getRoom(privateRoom)).to.include({ isPublic: false, roomVersion: '12' });
      expect((await storage().memberships.getMembership(roomId, alice.userId))?.membership).to.equal('join');
      expect(await stateContent(roomId, 'm.room.name')).to.deep.equal({ name: 'Garden 🌻' });
      expect(await stateContent(roomId, 'm.room.member', alice.userId)).to.deep.equal({
        membership: 'join',
        displayname: 'Alice',
      });
    });

    it('gives the room its alias, refuses a taken one with M_ROOM_IN_USE, and joins by alias', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat', room_alias_name: 'w-lobby' });
      expect(await stateContent(roomId, 'm.room.canonical_alias')).to.deep.equal({
        alias: '#w-lobby:localhost',
      });
      const taken = await call(hs, bob, 'POST', `${V3}/createRoom`, { room_alias_name: 'w-lobby' });
      expect(taken.status).to.equal(400);
      expect(taken.body.errcode).to.equal('M_ROOM_IN_USE');
      const joined = await join(bob, '#w-lobby:localhost');
      expect(joined).to.deep.equal({ status: 200, body: { room_id: roomId } });
      expect((await storage().memberships.getMembership(roomId, bob.userId))?.membership).to.equal('join');
    });

    it('refuses unknown room versions, bad invitees and state the auth rules refuse', async () => {
      const version = await call(hs, alice, 'POST', `${V3}/createRoom`, { room_version: '999' });
      expect(version.status).to.equal(400);
      expect(version.body.errcode).to.equal('M_UNSUPPORTED_ROOM_VERSION');
      const invitee = await call(hs, alice, 'POST', `${V3}/createRoom`, { invite: ['not a user id'] });
      expect(invitee.status).to.equal(400);
      expect(invitee.body.errcode).to.equal('M_INVALID_PARAM');
      const state = await call(hs, alice, 'POST', `${V3}/createRoom`, {
        room_version: '11',
        power_level_content_override: { users: { [alice.userId]: 100 }, state_default: 200 },
      });
      expect(state.status).to.equal(400);
      expect(state.body.errcode).to.equal('M_INVALID_ROOM_STATE');
      const notJson = await call(hs, alice, 'POST', `${V3}/createRoom`, '{"name": ');
      expect(notJson.status).to.equal(400);
      expect(notJson.body.errcode).to.equal('M_NOT_JSON');
      const badShape = await call(hs, alice, 'POST', `${V3}/createRoom`, { invite: 'w-bob' });
      expect(badShape.status).to.equal(400);
    });
  });

  describe('joining, leaving, forgetting', () => {
    it('answers unknown rooms and aliases with 404 M_NOT_FOUND and a malformed target with 400', async () => {
      const unknownRoom = await join(bob, '!nowhere:localhost');
      expect(unknownRoom.status).to.equal(404);
      expect(unknownRoom.body.errcode).to.equal('M_NOT_FOUND');
      const remoteRoom = await call(hs, bob, 'POST', `${room('!elsewhere:remote.example')}/join`, {});
      expect(remoteRoom.status).to.equal(404);
      const unknownAlias = await join(bob, '#w-nothing:localhost');
      expect(unknownAlias.status).to.equal(404);
      expect(unknownAlias.body.errcode).to.equal('M_NOT_FOUND');
      const malformed = await join(bob, 'lobby');
      expect(malformed.status).to.equal(400);
      expect(malformed.body.errcode).to.equal('M_INVALID_PARAM');
    });

    it('lets guests join only rooms whose guest access is can_join (403 M_GUEST_ACCESS_FORBIDDEN otherwise)', async () => {
      const guest = await createUser(hs, 'w-guest', { isGuest: true });
      const closed = await createRoom(alice, { preset: 'public_chat' });
      const refused = await join(guest, closed);
      expect(refused.status).to.equal(403);
      expect(refused.body.errcode).to.equal('M_GUEST_ACCESS_FORBIDDEN');
      const open = await createRoom(alice, {
        preset: 'public_chat',
        initial_state: [{ type: 'm.room.guest_access', content: { guest_access: 'can_join' } }],
      });
      expect((await join(guest, open)).status).to.equal(200);
      expect((await storage().memberships.getMembership(open, guest.userId))?.membership).to.equal('join');
    });

    it('forgets a room only after leaving it (400 M_UNKNOWN while joined)', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      expect((await join(bob, roomId)).status).to.equal(200);
      const early = await call(hs, bob, 'POST', `${room(roomId)}/forget`, {});
      expect(early.status).to.equal(400);
      expect(early.body.errcode).to.equal('M_UNKNOWN');
      expect((await call(hs, bob, 'POST', `${room(roomId)}/leave`, { reason: 'bye' })).status).to.equal(200);
      expect(await stateContent(roomId, 'm.room.member', bob.userId)).to.deep.equal({
        membership: 'leave',
        reason: 'bye',
      });
      expect((await call(hs, bob, 'POST', `${room(roomId)}/forget`, {})).status).to.equal(200);
      expect((await storage().memberships.getMembership(roomId, bob.userId))?.forgotten).to.equal(true);
      // Leaving a room one is not in is the auth rules' 403.
      const notIn = await call(hs, carol, 'POST', `${room(roomId)}/leave`, {});
      expect(notIn.status).to.equal(403);
      expect(notIn.body.errcode).to.equal('M_FORBIDDEN');
    });

    it('drops a forgotten room from the next sync at once, even from include_leave', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      expect((await join(bob, roomId)).status).to.equal(200);
      const filter = encodeURIComponent(JSON.stringify({ room: { include_leave: true } }));
      // biome-ignore lint/suspicious/noExplicitAny: walking the sync response
      const initialSync = async (): Promise<any> =>
        (await call(hs, bob, 'GET', `${V3}/sync?filter=${filter}`)).body;
      expect((await initialSync()).rooms.join).to.have.property(roomId);
      expect((await call(hs, bob, 'POST', `${room(roomId)}/leave`, {})).status).to.equal(200);
      expect((await initialSync()).rooms.leave).to.have.property(roomId);
      expect((await call(hs, bob, 'POST', `${room(roomId)}/forget`, {})).status).to.equal(200);
      const after = await initialSync();
      expect(after.rooms.leave).to.not.have.property(roomId);
      expect(after.rooms.join).to.not.have.property(roomId);
    });

    it("answers 502 when the invitee's server cannot be reached, and refuses malformed user IDs", async () => {
      const roomId = await createRoom(alice);
      const remote = await call(hs, alice, 'POST', `${room(roomId)}/invite`, {
        user_id: '@x:remote.example',
      });
      expect(remote.status).to.equal(502);
      const bad = await call(hs, alice, 'POST', `${room(roomId)}/invite`, { user_id: 'bob' });
      expect(bad.status).to.equal(400);
      expect(bad.body.errcode).to.equal('M_INVALID_PARAM');
      const missing = await call(hs, alice, 'POST', `${room(roomId)}/invite`, {});
      expect(missing.status).to.equal(400);
    });
  });

  describe('PUT /send and /state', () => {
    it('is idempotent per device: the same txnId gives the same event_id, another device a new event', async () => {
      const roomId = await createRoom(alice);
      const first = await send(
        alice,
        roomId,
        { msgtype: 'm.text', body: 'once' },
        'm.room.message',
        'same-txn',
      );
      const again = await send(
        alice,
        roomId,
        { msgtype: 'm.text', body: 'once' },
        'm.room.message',
        'same-txn',
      );
      expect(first.status).to.equal(200);
      expect(again.body.event_id).to.equal(first.body.event_id);
      const otherDevice = await login(hs, alice.userId, alice.password);
      const fromOther = await send(
        otherDevice,
        roomId,
        { msgtype: 'm.text', body: 'once' },
        'm.room.message',
        'same-txn',
      );
      expect(fromOther.status).to.equal(200);
      expect(fromOther.body.event_id).to.not.equal(first.body.event_id);
      // The same txnId for another event type is another transaction (the path differs).
      const otherType = await send(alice, roomId, { body: 'x' }, 'org.example.custom', 'same-txn');
      expect(otherType.body.event_id).to.not.equal(first.body.event_id);
    });

    it('serves emoji back byte-exact: astral plane, ZWJ sequences, skin tones, flags', async () => {
      const roomId = await createRoom(alice);
      const body = '𝄞 👩‍👩‍👧‍👦 👍🏽👋🏿 🏳️‍🌈 🇫🇷 é\u0301 中文';
      const sent = await send(alice, roomId, { msgtype: 'm.text', body });
      expect(sent.status).to.equal(200);
      const eventId = sent.body.event_id as string;
      const stored = await storage().events.getEvent(eventId);
      expect(stored!.pdu.content.body).to.equal(body);
      expect(Buffer.from(stored!.json, 'utf8').includes(Buffer.from(body, 'utf8'))).to.equal(true);
      const served = await hs.fetch(`${room(roomId)}/event/${enc(eventId)}`, {
        headers: { Authorization: `Bearer ${alice.accessToken}` },
      });
      expect(served.status).to.equal(200);
      const raw = Buffer.from(await served.arrayBuffer());
      expect((JSON.parse(raw.toString('utf8')) as { content: { body: string } }).content.body).to.equal(body);
    });

    it('refuses an event over 64 KiB with 413 M_TOO_LARGE', async () => {
      const roomId = await createRoom(alice);
      const res = await send(alice, roomId, { msgtype: 'm.text', body: 'x'.repeat(65 * 1024) });
      expect(res.status).to.equal(413);
      expect(res.body.errcode).to.equal('M_TOO_LARGE');
      const emoji = await send(alice, roomId, { msgtype: 'm.text', body: '😀'.repeat(16_500) });
      expect(emoji.status).to.equal(413);
      const longType = await send(alice, roomId, {}, 't'.repeat(300));
      expect(longType.status).to.equal(413);
    });

    it('answers non-members and unknown rooms 403 M_FORBIDDEN (as Synapse), bad input 400, never 500', async () => {
      const roomId = await createRoom(alice);
      const outsider = await send(bob, roomId, { msgtype: 'm.text', body: 'hi' });
      expect(outsider.status).to.equal(403);
      expect(outsider.body.errcode).to.equal('M_FORBIDDEN');
      const unknown = await send(bob, '!unknown:localhost', { msgtype: 'm.text', body: 'hi' });
      expect(unknown.status).to.equal(403);
      expect(unknown.body.errcode).to.equal('M_FORBIDDEN');
      const badRoom = await send(alice, 'not-a-room', { body: 'x' });
      expect(badRoom.status).to.equal(400);
      const badEncoding = await call(hs, alice, 'PUT', `${room(roomId)}/send/m.room.message/%E0%A4%A`, {
        body: 'x',
      });
      expect(badEncoding.status).to.equal(400);
      const badTypeEncoding = await call(hs, alice, 'PUT', `${room(roomId)}/send/%ZZ/txn`, { body: 'x' });
      expect(badTypeEncoding.status).to.equal(400);
      const array = await send(alice, roomId, [1, 2]);
      expect(array.status).to.equal(400);
      const float = await send(alice, roomId, { n: 1.5 });
      expect(float.status).to.equal(400);
      const notJson = await call(hs, alice, 'PUT', `${room(roomId)}/send/m.room.message/${nextTxn()}`, '{');
      expect(notJson.status).to.equal(400);
      const redactionViaSend = await send(alice, roomId, { redacts: '$x' }, 'm.room.redaction');
      expect(redactionViaSend.status).to.equal(400);
      const createState = await call(hs, alice, 'PUT', `${room(roomId)}/state/m.room.create`, {});
      expect(createState.status).to.equal(403);
      const noToken = await call(hs, undefined, 'PUT', `${room(roomId)}/send/m.room.message/t`, {
        body: 'x',
      });
      expect(noToken.status).to.equal(401);
    });

    it('sends state with and without a state key', async () => {
      const roomId = await createRoom(alice);
      const topic = await call(hs, alice, 'PUT', `${room(roomId)}/state/m.room.topic`, { topic: 'Tea' });
      expect(topic.status).to.equal(200);
      expect(await stateContent(roomId, 'm.room.topic')).to.deep.equal({ topic: 'Tea' });
      const keyed = await call(
        hs,
        alice,
        'PUT',
        `${room(roomId)}/state/org.example.thing/${enc('key/with slash')}`,
        {
          v: 1,
        },
      );
      expect(keyed.status).to.equal(200);
      expect(await stateContent(roomId, 'org.example.thing', 'key/with slash')).to.deep.equal({ v: 1 });
    });
  });

  describe('PUT /redact', () => {
    it('strips the stored event, lets a member redact only their own events, and is idempotent', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat', room_version: '11' });
      expect((await join(bob, roomId)).status).to.equal(200);
      const aliceMsg = (await send(alice, roomId, { msgtype: 'm.text', body: 'secret' })).body
        .event_id as string;
      const bobMsg = (await send(bob, roomId, { msgtype: 'm.text', body: 'mine' })).body.event_id as string;

      const refused = await call(hs, bob, 'PUT', `${room(roomId)}/redact/${enc(aliceMsg)}/${nextTxn()}`, {});
      expect(refused.status).to.equal(403);
      expect(refused.body.errcode).to.equal('M_FORBIDDEN');
      expect((await storage().events.getEvent(aliceMsg))!.pdu.content.body).to.equal('secret');

      const txn = nextTxn();
      const own = await call(hs, bob, 'PUT', `${room(roomId)}/redact/${enc(bobMsg)}/${txn}`, {
        reason: 'oops',
      });
      expect(own.status).to.equal(200);
      const redactionId = own.body.event_id as string;
      const strippedOwn = await storage().events.getEvent(bobMsg);
      expect(strippedOwn!.pdu.content).to.deep.equal({});
      expect(await storage().events.redactionOf(bobMsg)).to.equal(redactionId);
      const redaction = await storage().events.getEvent(redactionId);
      expect(redaction!.pdu.content).to.deep.equal({ reason: 'oops', redacts: bobMsg });
      const retry = await call(hs, bob, 'PUT', `${room(roomId)}/redact/${enc(bobMsg)}/${txn}`, {
        reason: 'oops',
      });
      expect(retry.body.event_id).to.equal(redactionId);

      // The room admin may redact anyone's event.
      const byAdmin = await call(
        hs,
        alice,
        'PUT',
        `${room(roomId)}/redact/${enc(aliceMsg)}/${nextTxn()}`,
        {},
      );
      expect(byAdmin.status).to.equal(200);
      expect((await storage().events.getEvent(aliceMsg))!.pdu.content).to.deep.equal({});
      const stillThere = await storage().events.getEvent(aliceMsg);
      expect(stillThere!.pdu.type).to.equal('m.room.message');
    });

    it('keeps redactions of unknown events at the redact level; 404 below it; the top-level redacts before v11', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat', room_version: '10' });
      expect((await join(bob, roomId)).status).to.equal(200);
      const unknownId = '$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
      const member = await call(hs, bob, 'PUT', `${room(roomId)}/redact/${enc(unknownId)}/${nextTxn()}`, {});
      expect(member.status).to.equal(404);
      expect(member.body.errcode).to.equal('M_NOT_FOUND');
      const admin = await call(hs, alice, 'PUT', `${room(roomId)}/redact/${enc(unknownId)}/${nextTxn()}`, {});
      expect(admin.status).to.equal(200);
      const kept = await storage().events.getEvent(admin.body.event_id as string);
      expect(kept!.pdu.redacts).to.equal(unknownId);
      const bad = await call(hs, alice, 'PUT', `${room(roomId)}/redact/not-an-event/${nextTxn()}`, {});
      expect(bad.status).to.equal(400);
    });
  });

  describe('reporting content', () => {
    it('records event, room and user reports; 404 for unknown events or a reporter outside the room', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      const eventId = (await send(alice, roomId, { msgtype: 'm.text', body: 'spam' })).body
        .event_id as string;
      const reports = hs.homeserver.context.storage.contentReports;
      const all = async () => (await reports.listReports({ from: 0, limit: 1000, direction: 'b' })).reports;
      const before = (await all()).length;
      const notJoined = await call(hs, bob, 'POST', `${room(roomId)}/report/${enc(eventId)}`, {
        reason: 'spam',
      });
      expect(notJoined.status).to.equal(404);
      expect((await join(bob, roomId)).status).to.equal(200);
      const ok = await call(hs, bob, 'POST', `${room(roomId)}/report/${enc(eventId)}`, { reason: 'spam' });
      expect(ok).to.deep.equal({ status: 200, body: {} });
      expect((await all())[0]).to.include({ reporter: bob.userId, roomId, eventId, reason: 'spam' });
      const unknownEvent = await call(hs, bob, 'POST', `${room(roomId)}/report/${enc('$nope')}`, {});
      expect(unknownEvent.status).to.equal(404);
      expect(
        (await call(hs, carol, 'POST', `${room(roomId)}/report`, { reason: 'bad room' })).status,
      ).to.equal(200);
      expect((await call(hs, carol, 'POST', `${room('!nope:localhost')}/report`, {})).status).to.equal(404);
      expect(
        (await call(hs, carol, 'POST', `${V3}/users/${enc(bob.userId)}/report`, { reason: 'rude' })).status,
      ).to.equal(200);
      expect(
        (await call(hs, carol, 'POST', `${V3}/users/${enc('@ghost:localhost')}/report`, {})).status,
      ).to.equal(404);
      expect((await all()).length).to.equal(before + 3);
    });

    it('lets server admins list event reports, newest first and paged (403 for others)', async () => {
      const admin = await createUser(hs, 'w-report-admin');
      // The session cache holds the admin flag for a while: set it before the first request.
      await hs.homeserver.context.storage.accounts.setAdmin(admin.userId, true);
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      const first = (await send(alice, roomId, { msgtype: 'm.text', body: 'one' })).body.event_id as string;
      const second = (await send(alice, roomId, { msgtype: 'm.text', body: 'two' })).body.event_id as string;
      for (const eventId of [first, second]) {
        const res = await call(hs, alice, 'POST', `${room(roomId)}/report/${enc(eventId)}`, {
          reason: 'bad',
        });
        expect(res.status).to.equal(200);
      }
      expect(
        (await call(hs, carol, 'POST', `${room(roomId)}/report`, { reason: 'not an event' })).status,
      ).to.equal(200);
      const list = `/_synapse/admin/v1/event_reports?room_id=${enc(roomId)}&limit=1`;
      // biome-ignore lint/suspicious/noExplicitAny: walking the response JSON
      const page: any = await call(hs, admin, 'GET', list);
      expect(page.status, JSON.stringify(page.body)).to.equal(200);
      expect(page.body.total).to.equal(2);
      expect(page.body.next_token).to.equal(1);
      expect(page.body.event_reports).to.have.length(1);
      expect(page.body.event_reports[0]).to.include({
        event_id: second,
        room_id: roomId,
        user_id: alice.userId,
        reason: 'bad',
      });
      // biome-ignore lint/suspicious/noExplicitAny: walking the response JSON
      const rest: any = await call(hs, admin, 'GET', `${list}&from=1`);
      expect(rest.body.event_reports.map((r: { event_id: string }) => r.event_id)).to.deep.equal([first]);
      expect(rest.body).to.not.have.property('next_token');
      const refused = await call(hs, alice, 'GET', '/_synapse/admin/v1/event_reports');
      expect(refused.status).to.equal(403);
      expect(refused.body.errcode).to.equal('M_FORBIDDEN');
    });
  });

  describe('POST /upgrade', () => {
    it('tombstones the old room, creates the new one with copied state and moved aliases, and restricts the old PLs', async () => {
      const oldRoom = await createRoom(alice, {
        preset: 'public_chat',
        visibility: 'public',
        room_version: '10',
        name: 'Old hall',
        topic: 'Everything',
        room_alias_name: 'w-hall',
        creation_content: { type: 'org.example.kind' },
      });
      expect((await join(bob, oldRoom)).status).to.equal(200);
      await call(hs, alice, 'PUT', `${room(oldRoom)}/state/m.room.encryption`, {
        algorithm: 'm.megolm.v1.aes-sha2',
      });
      expect(
        (await call(hs, alice, 'POST', `${room(oldRoom)}/ban`, { user_id: carol.userId })).status,
      ).to.equal(200);

      const refused = await call(hs, bob, 'POST', `${room(oldRoom)}/upgrade`, { new_version: '11' });
      expect(refused.status).to.equal(403);
      expect(refused.body.errcode).to.equal('M_FORBIDDEN');
      const unsupported = await call(hs, alice, 'POST', `${room(oldRoom)}/upgrade`, { new_version: '99' });
      expect(unsupported.status).to.equal(400);
      expect(unsupported.body.errcode).to.equal('M_UNSUPPORTED_ROOM_VERSION');

      const res = await call(hs, alice, 'POST', `${room(oldRoom)}/upgrade`, { new_version: '11' });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      const newRoom = res.body.replacement_room as string;
      expect(newRoom).to.be.a('string').and.not.equal(oldRoom);

      expect(await stateContent(oldRoom, 'm.room.tombstone')).to.deep.equal({
        body: 'This room has been replaced',
        replacement_room: newRoom,
      });
      const create = await stateContent(newRoom, 'm.room.create');
      expect(create).to.include({ room_version: '11', type: 'org.example.kind' });
      expect((create!.predecessor as { room_id: string }).room_id).to.equal(oldRoom);
      expect(await stateContent(newRoom, 'm.room.name')).to.deep.equal({ name: 'Old hall' });
      expect((await stateContent(newRoom, 'm.room.topic'))!.topic).to.equal('Everything');
      expect(await stateContent(newRoom, 'm.room.join_rules')).to.deep.equal({ join_rule: 'public' });
      expect(await stateContent(newRoom, 'm.room.encryption')).to.deep.equal({
        algorithm: 'm.megolm.v1.aes-sha2',
      });
      expect(await stateContent(newRoom, 'm.room.canonical_alias')).to.deep.equal({
        alias: '#w-hall:localhost',
      });
      expect((await stateContent(newRoom, 'm.room.member', carol.userId))!.membership).to.equal('ban');
      const newPl = await stateContent(newRoom, 'm.room.power_levels');
      expect((newPl!.users as Record<string, number>)[alice.userId]).to.equal(100);

      expect((await hs.homeserver.context.directory.resolveAlias('#w-hall:localhost'))?.room_id).to.equal(
        newRoom,
      );
      expect((await storage().rooms.getRoom(newRoom))?.isPublic).to.equal(true);
      expect((await storage().rooms.getRoom(oldRoom))?.isPublic).to.equal(false);

      const oldPl = await stateContent(oldRoom, 'm.room.power_levels');
      expect(oldPl!.events_default).to.equal(50);
      expect(oldPl!.invite).to.equal(50);
      const silenced = await send(bob, oldRoom, { msgtype: 'm.text', body: 'still here?' });
      expect(silenced.status).to.equal(403);
    });

    it('upgrades to v12 with the upgrader as creator, not listed in power levels', async () => {
      const oldRoom = await createRoom(alice, { room_version: '11', name: 'To twelve' });
      const res = await call(hs, alice, 'POST', `${room(oldRoom)}/upgrade`, { new_version: '12' });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      const newRoom = res.body.replacement_room as string;
      expect(await stateContent(newRoom, 'm.room.create')).to.include({ room_version: '12' });
      const pl = await stateContent(newRoom, 'm.room.power_levels');
      expect(pl!.users).to.not.have.property(alice.userId);
      expect(await stateContent(newRoom, 'm.room.name')).to.deep.equal({ name: 'To twelve' });
    });
  });

  describe('account hooks', () => {
    it('announces a profile change with a new member event in every joined room', async () => {
      const dave = await createUser(hs, 'w-dave', { displayName: 'Dave' });
      const first = await createRoom(alice, { preset: 'public_chat' });
      const second = await createRoom(bob, { preset: 'public_chat' });
      expect((await join(dave, first)).status).to.equal(200);
      expect((await join(dave, second)).status).to.equal(200);
      const res = await call(hs, dave, 'PUT', `${V3}/profile/${enc(dave.userId)}/displayname`, {
        displayname: 'Dave 🦊',
      });
      expect(res.status).to.equal(200);
      for (const roomId of [first, second]) {
        expect(await stateContent(roomId, 'm.room.member', dave.userId)).to.deep.equal({
          membership: 'join',
          displayname: 'Dave 🦊',
        });
      }
    });

    it('makes a deactivated account leave its rooms and decline its invites', async () => {
      const erin = await createUser(hs, 'w-erin');
      const joined = await createRoom(alice, { preset: 'public_chat' });
      const invited = await createRoom(alice, { invite: [erin.userId] });
      expect((await join(erin, joined)).status).to.equal(200);
      const res = await call(hs, erin, 'POST', `${V3}/account/deactivate`, {
        auth: {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: erin.userId },
          password: erin.password,
        },
      });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect((await storage().memberships.getMembership(joined, erin.userId))?.membership).to.equal('leave');
      expect((await storage().memberships.getMembership(invited, erin.userId))?.membership).to.equal('leave');
    });
  });
});
