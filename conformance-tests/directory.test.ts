/**
 * Room aliases, the published room directory and space hierarchies, over real HTTP:
 * client-server "Room aliases" (directory.yaml), "Published room directory"
 * (list_public_rooms.yaml) and "Spaces" (space_hierarchy.yaml).
 */
import { expect } from 'chai';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const V3 = '/_matrix/client/v3';
const aliasPath = (alias: string) => `${V3}/directory/room/${encodeURIComponent(alias)}`;
const listPath = (roomId: string) => `${V3}/directory/list/room/${encodeURIComponent(roomId)}`;
const hierarchyPath = (roomId: string, query = '') =>
  `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/hierarchy${query === '' ? '' : `?${query}`}`;

async function createRoom(
  hs: TestHomeserver,
  user: TestUser,
  body: Record<string, unknown> = {},
): Promise<string> {
  const res = await call(hs, user, 'POST', `${V3}/createRoom`, body);
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return res.body.room_id as string;
}

async function join(hs: TestHomeserver, user: TestUser, roomIdOrAlias: string): Promise<string> {
  const res = await call(hs, user, 'POST', `${V3}/join/${encodeURIComponent(roomIdOrAlias)}`, {});
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return res.body.room_id as string;
}

function statePath(roomId: string, type: string, stateKey: string): string {
  return `${V3}/rooms/${encodeURIComponent(roomId)}/state/${encodeURIComponent(type)}/${encodeURIComponent(stateKey)}`;
}

async function putState(
  hs: TestHomeserver,
  user: TestUser,
  roomId: string,
  type: string,
  stateKey: string,
  content: Record<string, unknown>,
): Promise<void> {
  const res = await call(hs, user, 'PUT', statePath(roomId, type, stateKey), content);
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
}

interface PublicRoomsBody {
  chunk: Record<string, unknown>[];
  next_batch?: string;
  prev_batch?: string;
  total_room_count_estimate?: number;
}

describe('Room aliases (client-server "Room aliases")', () => {
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let roomId: string;

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    alice = await createUser(hs, 'alias-alice');
    bob = await createUser(hs, 'alias-bob');
    carol = await createUser(hs, 'alias-carol');
    roomId = await createRoom(hs, alice, { preset: 'public_chat' });
    await join(hs, bob, roomId);
  });
  after(() => hs.stop());

  it('creates, resolves, lists and deletes an alias', async () => {
    const alias = '#coffee:localhost';
    expect(await call(hs, alice, 'PUT', aliasPath(alias), { room_id: roomId })).to.deep.equal({
      status: 200,
      body: {},
    });
    const resolved = await call(hs, undefined, 'GET', aliasPath(alias));
    expect(resolved).to.deep.equal({ status: 200, body: { room_id: roomId, servers: ['localhost'] } });
    const listed = await call(hs, bob, 'GET', `${V3}/rooms/${encodeURIComponent(roomId)}/aliases`);
    expect(listed).to.deep.equal({ status: 200, body: { aliases: [alias] } });

    expect((await call(hs, alice, 'DELETE', aliasPath(alias))).status).to.equal(200);
    const gone = await call(hs, undefined, 'GET', aliasPath(alias));
    expect(gone.status).to.equal(404);
    expect(gone.body.errcode).to.equal('M_NOT_FOUND');
    const again = await call(hs, alice, 'DELETE', aliasPath(alias));
    expect([again.status, again.body.errcode]).to.deep.equal([404, 'M_NOT_FOUND']);
  });

  it('keeps aliases with emoji and other code points byte-exact', async () => {
    const alias = '#café☕🇫🇷:localhost';
    expect((await call(hs, bob, 'PUT', aliasPath(alias), { room_id: roomId })).status).to.equal(200);
    expect((await call(hs, bob, 'GET', aliasPath(alias))).body.room_id).to.equal(roomId);
    expect((await call(hs, bob, 'DELETE', aliasPath(alias))).status).to.equal(200);
  });

  it('refuses an alias that is taken with 409', async () => {
    const alias = '#taken:localhost';
    expect((await call(hs, alice, 'PUT', aliasPath(alias), { room_id: roomId })).status).to.equal(200);
    const other = await createRoom(hs, bob);
    const res = await call(hs, bob, 'PUT', aliasPath(alias), { room_id: other });
    expect(res.status).to.equal(409);
    expect(res.body.errcode).to.equal('M_UNKNOWN');
    expect((await call(hs, bob, 'GET', aliasPath(alias))).body.room_id).to.equal(roomId);
    // createRoom's room_alias_name goes through the same table.
    const create = await call(hs, bob, 'POST', `${V3}/createRoom`, { room_alias_name: 'taken' });
    expect([create.status, create.body.errcode]).to.deep.equal([400, 'M_ROOM_IN_USE']);
  });

  it('refuses bad grammar and aliases of other servers with M_INVALID_PARAM', async () => {
    for (const bad of ['coffee:localhost', '#nocolon', '#x:bad_server!', '#', '#a:b:c:d']) {
      const put = await call(hs, alice, 'PUT', aliasPath(bad), { room_id: roomId });
      expect([put.status, put.body.errcode], `PUT ${bad}`).to.deep.equal([400, 'M_INVALID_PARAM']);
      const get = await call(hs, alice, 'GET', aliasPath(bad));
      expect([get.status, get.body.errcode], `GET ${bad}`).to.deep.equal([400, 'M_INVALID_PARAM']);
      const del = await call(hs, alice, 'DELETE', aliasPath(bad));
      expect([del.status, del.body.errcode], `DELETE ${bad}`).to.deep.equal([400, 'M_INVALID_PARAM']);
    }
    for (const bad of ['#:localhost', '#a b:localhost', '#tab\t:localhost']) {
      const put = await call(hs, alice, 'PUT', aliasPath(bad), { room_id: roomId });
      expect([put.status, put.body.errcode], `PUT ${bad}`).to.deep.equal([400, 'M_INVALID_PARAM']);
    }
    const remote = await call(hs, alice, 'PUT', aliasPath('#coffee:elsewhere.example'), { room_id: roomId });
    expect([remote.status, remote.body.errcode]).to.deep.equal([400, 'M_INVALID_PARAM']);
    const tooLong = await call(hs, alice, 'PUT', aliasPath(`#${'a'.repeat(250)}:localhost`), {
      room_id: roomId,
    });
    expect([tooLong.status, tooLong.body.errcode]).to.deep.equal([400, 'M_INVALID_PARAM']);
    const noBody = await call(hs, alice, 'PUT', aliasPath('#nobody:localhost'), {});
    expect([noBody.status, noBody.body.errcode]).to.deep.equal([400, 'M_MISSING_PARAM']);
    const unknownRoom = await call(hs, alice, 'PUT', aliasPath('#ghost:localhost'), {
      room_id: '!ghost:localhost',
    });
    expect(unknownRoom.status).to.equal(400);
    expect((await call(hs, undefined, 'GET', aliasPath('#never-made:localhost'))).status).to.equal(404);
  });

  it('lets only members create aliases (as Synapse)', async () => {
    const res = await call(hs, carol, 'PUT', aliasPath('#carols:localhost'), { room_id: roomId });
    expect([res.status, res.body.errcode]).to.deep.equal([403, 'M_FORBIDDEN']);
    expect(
      await call(hs, undefined, 'PUT', aliasPath('#anon:localhost'), { room_id: roomId }),
    ).to.have.property('status', 401);
  });

  it('lets the creator, room moderators and server admins delete an alias, nobody else', async () => {
    const alias = '#bobs:localhost';
    expect((await call(hs, bob, 'PUT', aliasPath(alias), { room_id: roomId })).status).to.equal(200);
    // Carol is neither its creator nor in the room.
    await join(hs, carol, roomId);
    const refused = await call(hs, carol, 'DELETE', aliasPath(alias));
    expect([refused.status, refused.body.errcode]).to.deep.equal([403, 'M_FORBIDDEN']);
    // Alice did not create it but can send m.room.canonical_alias.
    expect((await call(hs, alice, 'DELETE', aliasPath(alias))).status).to.equal(200);

    const carols = '#carols-own:localhost';
    expect((await call(hs, carol, 'PUT', aliasPath(carols), { room_id: roomId })).status).to.equal(200);
    const admin = await createUser(hs, 'alias-admin');
    await hs.homeserver.context.storage.accounts.setAdmin(admin.userId, true);
    expect((await call(hs, admin, 'DELETE', aliasPath(carols))).status).to.equal(200);
    expect((await call(hs, admin, 'GET', aliasPath(carols))).status).to.equal(404);
  });

  it("shows a room's aliases to members and, when world readable, to anyone", async () => {
    const privateRoom = await createRoom(hs, alice, { preset: 'private_chat', room_alias_name: 'hidden' });
    const path = `${V3}/rooms/${encodeURIComponent(privateRoom)}/aliases`;
    expect(await call(hs, alice, 'GET', path)).to.deep.equal({
      status: 200,
      body: { aliases: ['#hidden:localhost'] },
    });
    const outsider = await call(hs, carol, 'GET', path);
    expect([outsider.status, outsider.body.errcode]).to.deep.equal([403, 'M_FORBIDDEN']);
    await putState(hs, alice, privateRoom, 'm.room.history_visibility', '', {
      history_visibility: 'world_readable',
    });
    expect(await call(hs, carol, 'GET', path)).to.deep.equal({
      status: 200,
      body: { aliases: ['#hidden:localhost'] },
    });
    const unknown = await call(
      hs,
      carol,
      'GET',
      `${V3}/rooms/${encodeURIComponent('!nope:localhost')}/aliases`,
    );
    expect(unknown.status).to.equal(403);
  });

  it('joins a room by alias', async () => {
    const room = await createRoom(hs, alice, { preset: 'public_chat', room_alias_name: 'lobby' });
    const dave = await createUser(hs, 'alias-dave');
    expect(await join(hs, dave, '#lobby:localhost')).to.equal(room);
    const members = await call(hs, dave, 'GET', `${V3}/rooms/${encodeURIComponent(room)}/joined_members`);
    expect(members.status).to.equal(200);
    expect(Object.keys(members.body.joined as object)).to.include(dave.userId);
    const unknown = await call(
      hs,
      dave,
      'POST',
      `${V3}/join/${encodeURIComponent('#nowhere:localhost')}`,
      {},
    );
    expect(unknown.status).to.equal(404);
  });

  it('takes a deleted alias out of m.room.canonical_alias', async () => {
    const room = await createRoom(hs, alice, { preset: 'public_chat', room_alias_name: 'canon' });
    expect(
      (await call(hs, alice, 'PUT', aliasPath('#canon-alt:localhost'), { room_id: room })).status,
    ).to.equal(200);
    await putState(hs, alice, room, 'm.room.canonical_alias', '', {
      alias: '#canon:localhost',
      alt_aliases: ['#canon-alt:localhost'],
    });
    const canonicalPath = statePath(room, 'm.room.canonical_alias', '');
    expect((await call(hs, alice, 'DELETE', aliasPath('#canon:localhost'))).status).to.equal(200);
    expect((await call(hs, alice, 'GET', canonicalPath)).body).to.deep.equal({
      alt_aliases: ['#canon-alt:localhost'],
    });
    expect((await call(hs, alice, 'DELETE', aliasPath('#canon-alt:localhost'))).status).to.equal(200);
    expect((await call(hs, alice, 'GET', canonicalPath)).body).to.deep.equal({});
  });

  it('refuses canonical aliases that do not point to the room', async () => {
    const room = await createRoom(hs, alice, { preset: 'public_chat' });
    const put = (content: Record<string, unknown>) =>
      call(hs, alice, 'PUT', statePath(room, 'm.room.canonical_alias', ''), content);
    const elsewhere = await put({ alias: '#coffee-elsewhere:localhost' });
    expect([elsewhere.status, elsewhere.body.errcode]).to.deep.equal([400, 'M_BAD_ALIAS']);
    const otherRoom = await put({ alt_aliases: ['#lobby:localhost'] });
    expect([otherRoom.status, otherRoom.body.errcode]).to.deep.equal([400, 'M_BAD_ALIAS']);
    const bad = await put({ alias: 'not an alias' });
    expect([bad.status, bad.body.errcode]).to.deep.equal([400, 'M_INVALID_PARAM']);
    expect((await call(hs, alice, 'PUT', aliasPath('#mine:localhost'), { room_id: room })).status).to.equal(
      200,
    );
    expect((await put({ alias: '#mine:localhost' })).status).to.equal(200);
  });
});

describe('Published room directory (client-server "Published room directory")', () => {
  let hs: TestHomeserver;
  let owner: TestUser;
  let joiners: TestUser[];
  /** Every published room, in the order the directory must give them. */
  let expectedOrder: string[];
  let spaces: string[];

  const listAll = async (user: TestUser | undefined, limit: number): Promise<PublicRoomsBody[]> => {
    const pages: PublicRoomsBody[] = [];
    let since: string | undefined;
    for (let guard = 0; guard < 100; guard++) {
      const query = `limit=${limit}${since === undefined ? '' : `&since=${encodeURIComponent(since)}`}`;
      const res = await call(hs, user, 'GET', `${V3}/publicRooms?${query}`);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      const page = res.body as unknown as PublicRoomsBody;
      pages.push(page);
      if (page.next_batch === undefined) return pages;
      since = page.next_batch;
    }
    throw new Error('publicRooms never ended');
  };

  const search = async (body: Record<string, unknown>): Promise<PublicRoomsBody> => {
    const res = await call(hs, owner, 'POST', `${V3}/publicRooms`, body);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body as unknown as PublicRoomsBody;
  };

  before(async function () {
    this.timeout(60_000);
    hs = await TestHomeserver.start({ configure: fastAccounts });
    owner = await createUser(hs, 'dir-owner');
    joiners = [
      await createUser(hs, 'dir-j1'),
      await createUser(hs, 'dir-j2'),
      await createUser(hs, 'dir-j3'),
    ];
    const rooms: { roomId: string; members: number }[] = [];
    spaces = [];
    for (let i = 0; i < 30; i++) {
      const isSpace = i === 7 || i === 21;
      const roomId = await createRoom(hs, owner, {
        visibility: 'public',
        preset: 'public_chat',
        name: `Room ${String(i).padStart(2, '0')}`,
        topic: i % 2 === 0 ? 'All about Cats' : 'All about dogs',
        ...(i === 12 ? { room_alias_name: 'special-place' } : {}),
        ...(isSpace ? { creation_content: { type: 'm.space' } } : {}),
      });
      if (isSpace) spaces.push(roomId);
      const extra = i % 4;
      for (const joiner of joiners.slice(0, extra)) await join(hs, joiner, roomId);
      rooms.push({ roomId, members: 1 + extra });
    }
    // Private rooms and empty published rooms stay out of the list.
    await createRoom(hs, owner, { preset: 'public_chat', name: 'Room unlisted' });
    rooms.sort((a, b) => b.members - a.members || (a.roomId < b.roomId ? -1 : a.roomId > b.roomId ? 1 : 0));
    expectedOrder = rooms.map((room) => room.roomId);
  });
  after(() => hs.stop());

  it('pages through 30 rooms, largest first, with next_batch and prev_batch', async () => {
    const pages = await listAll(undefined, 7);
    expect(pages).to.have.length(5);
    expect(pages.flatMap((page) => page.chunk.map((room) => room.room_id))).to.deep.equal(expectedOrder);
    for (const page of pages) expect(page.total_room_count_estimate).to.equal(30);
    expect(pages[0]!.prev_batch).to.equal(undefined);
    expect(pages[1]!.prev_batch).to.be.a('string');
    expect(pages[4]!.chunk).to.have.length(2);

    // Going back from page 3 gives page 2 again.
    const back = await call(
      hs,
      owner,
      'GET',
      `${V3}/publicRooms?limit=7&since=${encodeURIComponent(pages[2]!.prev_batch!)}`,
    );
    expect(back.body.chunk).to.deep.equal(pages[1]!.chunk);
    expect(back.body.prev_batch).to.equal(pages[1]!.prev_batch);
    expect(back.body.next_batch).to.be.a('string');

    const counts = pages.flatMap((page) => page.chunk.map((room) => room.num_joined_members as number));
    expect(counts).to.deep.equal([...counts].sort((a, b) => b - a));
  });

  it('describes each room as the spec says', async () => {
    const [page] = await listAll(owner, 100);
    expect(page!.chunk).to.have.length(30);
    const special = page!.chunk.find((room) => room.canonical_alias === '#special-place:localhost');
    expect(special).to.deep.include({
      name: 'Room 12',
      topic: 'All about Cats',
      world_readable: false,
      guest_can_join: false,
      join_rule: 'public',
      num_joined_members: 1,
    });
    expect(special).not.to.have.property('room_type');
    const space = page!.chunk.find((room) => room.room_id === spaces[0]);
    expect(space).to.deep.include({ room_type: 'm.space', name: 'Room 07' });
    for (const room of page!.chunk) {
      expect(Object.values(room)).not.to.include(null);
    }
  });

  it('searches names, topics, aliases and room IDs, case-insensitively', async () => {
    const cats = await search({ filter: { generic_search_term: 'cats' } });
    expect(cats.chunk).to.have.length(15);
    expect(cats.total_room_count_estimate).to.equal(15);
    expect((await search({ filter: { generic_search_term: 'CATS' } })).chunk).to.have.length(15);
    expect(
      (await search({ filter: { generic_search_term: 'room 2' } })).chunk.map((r) => r.name),
    ).to.have.members([
      'Room 20',
      'Room 21',
      'Room 22',
      'Room 23',
      'Room 24',
      'Room 25',
      'Room 26',
      'Room 27',
      'Room 28',
      'Room 29',
    ]);
    const byAlias = await search({ filter: { generic_search_term: 'special-place' } });
    expect(byAlias.chunk.map((r) => r.name)).to.deep.equal(['Room 12']);
    const byId = await search({ filter: { generic_search_term: expectedOrder[5] } });
    expect(byId.chunk.map((r) => r.room_id)).to.deep.equal([expectedOrder[5]]);
    expect((await search({ filter: { generic_search_term: 'unlisted' } })).chunk).to.deep.equal([]);

    // Search results page like the full list.
    const first = await search({ limit: 10, filter: { generic_search_term: 'cats' } });
    expect(first.chunk).to.have.length(10);
    const second = await search({
      limit: 10,
      since: first.next_batch,
      filter: { generic_search_term: 'cats' },
    });
    expect(second.chunk).to.have.length(5);
    expect(second.next_batch).to.equal(undefined);
    expect([...first.chunk, ...second.chunk].map((r) => r.room_id)).to.deep.equal(
      cats.chunk.map((r) => r.room_id),
    );
  });

  it('filters by room type, null meaning rooms without one', async () => {
    const onlySpaces = await search({ filter: { room_types: ['m.space'] } });
    expect(onlySpaces.chunk.map((r) => r.room_id)).to.have.members(spaces);
    expect((await search({ filter: { room_types: [null] } })).chunk).to.have.length(28);
    expect((await search({ filter: { room_types: [null, 'm.space'] } })).chunk).to.have.length(30);
    expect((await search({ filter: { room_types: [] } })).chunk).to.have.length(30);
    expect((await search({ filter: { room_types: ['org.example.nothing'] } })).chunk).to.deep.equal([]);
    expect((await search({ include_all_networks: true })).chunk).to.have.length(30);
    expect((await search({ third_party_instance_id: 'irc|freenode' })).chunk).to.deep.equal([]);
  });

  it('follows name changes and joins without a stale entry', async () => {
    const roomId = expectedOrder[29]!;
    await putState(hs, owner, roomId, 'm.room.name', '', { name: 'Renamed 🌻' });
    const newcomer = await createUser(hs, 'dir-newcomer');
    await join(hs, newcomer, roomId);
    const renamed = await search({ filter: { generic_search_term: 'renamed' } });
    expect(renamed.chunk).to.have.length(1);
    expect(renamed.chunk[0]).to.deep.include({ room_id: roomId, name: 'Renamed 🌻' });
    const before = (await listAll(owner, 100))[0]!.chunk.find((r) => r.room_id === roomId);
    expect(before!.num_joined_members).to.equal(2);
  });

  it('publishes and unpublishes a room with /directory/list/room', async () => {
    const roomId = await createRoom(hs, owner, { preset: 'public_chat', name: 'Toggled' });
    expect(await call(hs, undefined, 'GET', listPath(roomId))).to.deep.equal({
      status: 200,
      body: { visibility: 'private' },
    });
    const listed = async () =>
      (await search({ filter: { generic_search_term: 'toggled' } })).chunk.map((room) => room.room_id);
    expect(await listed()).to.deep.equal([]);

    expect((await call(hs, owner, 'PUT', listPath(roomId), { visibility: 'public' })).status).to.equal(200);
    expect((await call(hs, undefined, 'GET', listPath(roomId))).body).to.deep.equal({ visibility: 'public' });
    expect(await listed()).to.deep.equal([roomId]);

    // A plain member may not change it, nor may an outsider.
    const member = joiners[0]!;
    await join(hs, member, roomId);
    const refused = await call(hs, member, 'PUT', listPath(roomId), { visibility: 'private' });
    expect([refused.status, refused.body.errcode]).to.deep.equal([403, 'M_FORBIDDEN']);
    const outsider = await call(hs, joiners[1]!, 'PUT', listPath(roomId), { visibility: 'private' });
    expect(outsider.status).to.equal(403);

    expect((await call(hs, owner, 'PUT', listPath(roomId), { visibility: 'private' })).status).to.equal(200);
    expect(await listed()).to.deep.equal([]);
    // An empty body means public.
    expect((await call(hs, owner, 'PUT', listPath(roomId), {})).status).to.equal(200);
    expect((await call(hs, owner, 'GET', listPath(roomId))).body).to.deep.equal({ visibility: 'public' });
    expect((await call(hs, owner, 'PUT', listPath(roomId), { visibility: 'private' })).status).to.equal(200);

    const bad = await call(hs, owner, 'PUT', listPath(roomId), { visibility: 'secret' });
    expect([bad.status, bad.body.errcode]).to.deep.equal([400, 'M_BAD_JSON']);
    const unknownGet = await call(hs, owner, 'GET', listPath('!unknown:localhost'));
    expect([unknownGet.status, unknownGet.body.errcode]).to.deep.equal([404, 'M_NOT_FOUND']);
    const unknownPut = await call(hs, owner, 'PUT', listPath('!unknown:localhost'), { visibility: 'public' });
    expect([unknownPut.status, unknownPut.body.errcode]).to.deep.equal([404, 'M_NOT_FOUND']);
  });

  it('refuses bad tokens, limits and servers with M_INVALID_PARAM', async () => {
    for (const query of [
      'since=garbage',
      `since=${Buffer.from('n5_notaroom').toString('base64url')}`,
      'limit=-1',
      'limit=abc',
      'server=not%20a%20server',
    ]) {
      const res = await call(hs, undefined, 'GET', `${V3}/publicRooms?${query}`);
      expect([res.status, res.body.errcode], query).to.deep.equal([400, 'M_INVALID_PARAM']);
    }
    const remoteAnonymously = await call(hs, undefined, 'GET', `${V3}/publicRooms?server=elsewhere.example`);
    expect([remoteAnonymously.status, remoteAnonymously.body.errcode]).to.deep.equal([
      401,
      'M_MISSING_TOKEN',
    ]);
    expect((await call(hs, undefined, 'GET', `${V3}/publicRooms?server=localhost&limit=0`)).status).to.equal(
      200,
    );
    const mixed = await call(hs, owner, 'POST', `${V3}/publicRooms`, {
      include_all_networks: true,
      third_party_instance_id: 'irc|x',
    });
    expect([mixed.status, mixed.body.errcode]).to.deep.equal([400, 'M_INVALID_PARAM']);
    const badFilter = await call(hs, owner, 'POST', `${V3}/publicRooms`, { filter: { room_types: [1] } });
    expect([badFilter.status, badFilter.body.errcode]).to.deep.equal([400, 'M_BAD_JSON']);
    expect((await call(hs, undefined, 'POST', `${V3}/publicRooms`, {})).status).to.equal(401);
  });
});

describe('Space hierarchy (client-server "Spaces")', () => {
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  let space: string;
  let roomA: string;
  let subspace: string;
  let roomC: string;
  let roomB: string;
  let inviteOnly: string;

  const hierarchy = async (user: TestUser, query = '', roomId = space) => {
    const res = await call(hs, user, 'GET', hierarchyPath(roomId, query));
    return res;
  };
  const ids = (body: Record<string, unknown>) =>
    (body.rooms as { room_id: string }[]).map((room) => room.room_id);

  before(async function () {
    this.timeout(30_000);
    hs = await TestHomeserver.start({ configure: fastAccounts });
    alice = await createUser(hs, 'space-alice');
    bob = await createUser(hs, 'space-bob');
    const spaceRoom = { preset: 'public_chat', creation_content: { type: 'm.space' } };
    space = await createRoom(hs, alice, { ...spaceRoom, name: 'The Space', topic: 'Everything' });
    subspace = await createRoom(hs, alice, { ...spaceRoom, name: 'Sub' });
    roomA = await createRoom(hs, alice, { preset: 'public_chat', name: 'A' });
    roomB = await createRoom(hs, alice, { preset: 'public_chat', name: 'B' });
    roomC = await createRoom(hs, alice, { preset: 'public_chat', name: 'C' });
    inviteOnly = await createRoom(hs, alice, { preset: 'private_chat', name: 'Secret' });
    const link = (parent: string, child: string, content: Record<string, unknown>) =>
      putState(hs, alice, parent, 'm.space.child', child, content);
    await link(space, roomA, { via: ['localhost'], order: 'a', suggested: true });
    await link(space, subspace, { via: ['localhost'], order: 'b', suggested: true });
    await link(space, roomB, { via: ['localhost'], order: 'c' });
    await link(space, inviteOnly, { via: ['localhost'] });
    await link(space, '!elsewhere:remote.example', { via: ['remote.example'] });
    await link(space, '!removed:localhost', {});
    await link(subspace, roomC, { via: ['localhost'] });
    // A loop back to the top must not make the walk go round.
    await link(subspace, space, { via: ['localhost'] });
    await join(hs, bob, space);
  });
  after(() => hs.stop());

  it('walks the tree depth first, in the spec order, hiding what the requester may not see', async () => {
    const res = await hierarchy(bob);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(ids(res.body)).to.deep.equal([space, roomA, subspace, roomC, roomB]);
    expect(res.body.next_batch).to.equal(undefined);

    const top = (res.body.rooms as Record<string, unknown>[])[0]!;
    expect(top).to.deep.include({
      room_id: space,
      name: 'The Space',
      topic: 'Everything',
      room_type: 'm.space',
      join_rule: 'public',
      num_joined_members: 2,
      world_readable: false,
      guest_can_join: false,
      room_version: '12',
    });
    const children = top.children_state as { state_key: string; sender: string; origin_server_ts: number }[];
    // The removed link is not a child; the hidden and remote ones are, as links.
    expect(children.map((child) => child.state_key)).to.deep.equal([
      roomA,
      subspace,
      roomB,
      inviteOnly,
      '!elsewhere:remote.example',
    ]);
    for (const child of children) {
      expect(child).to.include.keys('type', 'state_key', 'content', 'sender', 'origin_server_ts');
      expect(child.sender).to.equal(alice.userId);
    }
    const leaf = (res.body.rooms as Record<string, unknown>[]).find((room) => room.room_id === roomA)!;
    expect(leaf.children_state).to.deep.equal([]);
    expect(leaf).not.to.have.property('room_type');

    // Alice is in the invite-only room, so she sees it.
    const mine = await hierarchy(alice);
    expect(ids(mine.body)).to.deep.equal([space, roomA, subspace, roomC, roomB, inviteOnly]);
  });

  it('follows only suggested children with suggested_only', async () => {
    const res = await hierarchy(bob, 'suggested_only=true');
    expect(ids(res.body)).to.deep.equal([space, roomA, subspace]);
    const top = (res.body.rooms as { children_state: { state_key: string }[] }[])[0]!;
    expect(top.children_state.map((child) => child.state_key)).to.deep.equal([roomA, subspace]);
  });

  it('stops at max_depth', async () => {
    expect(ids((await hierarchy(bob, 'max_depth=0')).body)).to.deep.equal([space]);
    expect(ids((await hierarchy(bob, 'max_depth=1')).body)).to.deep.equal([space, roomA, subspace, roomB]);
  });

  it('pages with next_batch, and refuses a token reused with other parameters', async () => {
    const first = await hierarchy(bob, 'limit=2');
    expect(ids(first.body)).to.deep.equal([space, roomA]);
    const token = first.body.next_batch as string;
    expect(token).to.be.a('string');
    const second = await hierarchy(bob, `limit=2&from=${encodeURIComponent(token)}`);
    expect(ids(second.body)).to.deep.equal([subspace, roomC]);
    const third = await hierarchy(
      bob,
      `limit=2&from=${encodeURIComponent(second.body.next_batch as string)}`,
    );
    expect(ids(third.body)).to.deep.equal([roomB]);
    expect(third.body.next_batch).to.equal(undefined);

    const changed = await hierarchy(bob, `limit=2&max_depth=1&from=${encodeURIComponent(token)}`);
    expect([changed.status, changed.body.errcode]).to.deep.equal([400, 'M_INVALID_PARAM']);
    const otherUser = await hierarchy(alice, `limit=2&from=${encodeURIComponent(token)}`);
    expect([otherUser.status, otherUser.body.errcode]).to.deep.equal([400, 'M_INVALID_PARAM']);
    const unknown = await hierarchy(bob, 'from=nonsense');
    expect([unknown.status, unknown.body.errcode]).to.deep.equal([400, 'M_INVALID_PARAM']);
  });

  it('refuses rooms the requester cannot see, and bad parameters', async () => {
    const hidden = await hierarchy(bob, '', inviteOnly);
    expect([hidden.status, hidden.body.errcode]).to.deep.equal([403, 'M_FORBIDDEN']);
    const unknown = await hierarchy(bob, '', '!unknown:localhost');
    expect(unknown.status).to.equal(403);
    for (const query of ['limit=0', 'limit=-3', 'max_depth=-1', 'limit=x', 'suggested_only=perhaps']) {
      const res = await hierarchy(bob, query);
      expect([res.status, res.body.errcode], query).to.deep.equal([400, 'M_INVALID_PARAM']);
    }
    // A room that is not a space is its own one-room hierarchy.
    expect(ids((await hierarchy(bob, '', roomA)).body)).to.deep.equal([roomA]);
  });
});

describe('Directory robustness', () => {
  let hs: TestHomeserver;
  let user: TestUser;
  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    user = await createUser(hs, 'robust');
  });
  after(() => hs.stop());

  it('never answers odd input with a 500', async () => {
    const paths: [string, string, unknown?][] = [
      ['GET', `${V3}/directory/room/%23`],
      ['GET', `${V3}/directory/room/%23%00:localhost`],
      ['GET', `${V3}/directory/room/${encodeURIComponent(`#${'x'.repeat(5000)}:localhost`)}`],
      ['PUT', `${V3}/directory/room/${encodeURIComponent('#a:localhost')}`, { room_id: 12 }],
      ['PUT', `${V3}/directory/room/${encodeURIComponent('#a:localhost')}`, { room_id: 'not a room' }],
      ['PUT', `${V3}/directory/room/${encodeURIComponent('#a:localhost')}`, '[]'],
      ['DELETE', `${V3}/directory/room/${encodeURIComponent('#%:localhost')}`],
      ['GET', `${V3}/rooms/${encodeURIComponent('not a room')}/aliases`],
      ['GET', `${V3}/directory/list/room/${encodeURIComponent('💥')}`],
      ['PUT', `${V3}/directory/list/room/${encodeURIComponent('💥')}`, { visibility: 'public' }],
      ['PUT', `${V3}/directory/list/room/x`, '{"visibility":'],
      ['POST', `${V3}/publicRooms`, { limit: 'ten' }],
      ['POST', `${V3}/publicRooms`, { limit: 1e20 }],
      ['POST', `${V3}/publicRooms`, { since: '' }],
      ['POST', `${V3}/publicRooms`, { filter: 'cats' }],
      ['POST', `${V3}/publicRooms`, { filter: { generic_search_term: 5 } }],
      ['GET', `${V3}/publicRooms?since=${'n'.repeat(3000)}`],
      ['GET', `${V3}/publicRooms?limit=99999999999999999999`],
      ['GET', hierarchyPath('💥', 'max_depth=99999999999')],
      ['GET', hierarchyPath('!x:localhost', 'from=')],
    ];
    for (const [method, path, body] of paths) {
      const res = await call(hs, user, method, path, body);
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).to.be.within(200, 499);
      if (res.status >= 400) expect(res.body.errcode, `${method} ${path}`).to.be.a('string');
    }
  });
});
