/**
 * Spaces across servers and generic federation queries, on real Myelins over TLS (test CA):
 * federation GET /hierarchy/{roomId} (children the asking server may see, the rest listed as
 * inaccessible, suggested_only, 404 for unknown or hidden rooms), the client /hierarchy of a
 * space whose children live on a server we are not in (asked through the link's `via`, cached),
 * and GET /query/{queryType} for a type nobody serves.
 */
import { expect } from 'chai';
import { FederationRequestError } from '../federation/federation.js';
import type { JsonObject } from '../protocol/events.js';
import { call, createUser, type TestUser } from './harness/accounts.js';
import { type FederatedServer, startAliceAndBob, TestFederation } from './harness/test-federation.js';

const enc = encodeURIComponent;

async function createRoom(server: FederatedServer, user: TestUser, body: JsonObject): Promise<string> {
  const res = await call(server.server, user, 'POST', '/_matrix/client/v3/createRoom', body);
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return res.body.room_id as string;
}

async function addChild(
  server: FederatedServer,
  user: TestUser,
  spaceId: string,
  childId: string,
  content: JsonObject,
): Promise<void> {
  const res = await call(
    server.server,
    user,
    'PUT',
    `/_matrix/client/v3/rooms/${enc(spaceId)}/state/m.space.child/${enc(childId)}`,
    content,
  );
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
}

/** Asks `to` over federation, signed as `from`. */
function federationGet(
  from: FederatedServer,
  to: FederatedServer,
  path: string,
  query?: Record<string, string>,
) {
  return from.context.federation.client.request<JsonObject>({
    destination: to.serverName,
    method: 'GET',
    path,
    ...(query ? { query } : {}),
  });
}

async function federationError(promise: Promise<unknown>): Promise<FederationRequestError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(FederationRequestError);
    return error as FederationRequestError;
  }
  throw new Error('expected the request to fail');
}

describe('federation: spaces and generic queries (TLS, test CA)', function () {
  this.timeout(90_000);
  let federation: TestFederation;
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: TestUser;
  let bob: TestUser;
  let aSpace: string;
  let aLocal: string;
  let bSpace: string;
  let bPublic: string;
  let bSecret: string;
  let bOther: string;

  before(async () => {
    ({ federation, a, b, alice, bob } = await startAliceAndBob());
    bSpace = await createRoom(b, bob, {
      preset: 'public_chat',
      name: 'Space on B',
      creation_content: { type: 'm.space' },
    });
    bPublic = await createRoom(b, bob, { preset: 'public_chat', name: 'Public on B' });
    bOther = await createRoom(b, bob, { preset: 'public_chat', name: 'Not suggested on B' });
    bSecret = await createRoom(b, bob, { preset: 'private_chat', name: 'Secret on B' });
    await addChild(b, bob, bSpace, bPublic, { via: [b.serverName], suggested: true, order: 'a' });
    await addChild(b, bob, bSpace, bOther, { via: [b.serverName], order: 'b' });
    await addChild(b, bob, bSpace, bSecret, { via: [b.serverName], order: 'c' });

    aSpace = await createRoom(a, alice, {
      preset: 'public_chat',
      name: 'Space on A',
      creation_content: { type: 'm.space' },
    });
    aLocal = await createRoom(a, alice, { preset: 'public_chat', name: 'Local on A' });
    await addChild(a, alice, aSpace, aLocal, { via: [a.serverName], order: '1' });
    await addChild(a, alice, aSpace, bSpace, { via: [b.serverName], order: '2', suggested: true });
  });
  after(async () => {
    await federation?.stop();
  });

  it('federation /hierarchy: the space, the children the asking server may see, the others as inaccessible', async () => {
    const answer = await federationGet(a, b, `/_matrix/federation/v1/hierarchy/${enc(bSpace)}`);
    const room = answer.room as JsonObject;
    expect(room.room_id).to.equal(bSpace);
    expect(room.name).to.equal('Space on B');
    expect(room.room_type).to.equal('m.space');
    expect(room.join_rule).to.equal('public');
    expect(room.room_version).to.be.a('string');
    const childrenState = room.children_state as JsonObject[];
    expect(childrenState.map((child) => child.state_key)).to.have.members([bPublic, bOther, bSecret]);
    for (const child of childrenState) {
      expect(child.type).to.equal('m.space.child');
      expect(child.origin_server_ts).to.be.a('number');
    }
    const children = answer.children as JsonObject[];
    expect(children.map((child) => child.room_id)).to.have.members([bPublic, bOther]);
    expect(children.find((child) => child.room_id === bPublic)?.name).to.equal('Public on B');
    expect(answer.inaccessible_children).to.deep.equal([bSecret]);
  });

  it('federation /hierarchy with suggested_only: only suggested children', async () => {
    const answer = await federationGet(a, b, `/_matrix/federation/v1/hierarchy/${enc(bSpace)}`, {
      suggested_only: 'true',
    });
    const room = answer.room as JsonObject;
    expect((room.children_state as JsonObject[]).map((child) => child.state_key)).to.deep.equal([bPublic]);
    expect((answer.children as JsonObject[]).map((child) => child.room_id)).to.deep.equal([bPublic]);
    expect(answer.inaccessible_children).to.deep.equal([]);
  });

  it('federation /hierarchy: 404 M_NOT_FOUND for an unknown room and for one the asking server cannot see', async () => {
    const unknown = await federationError(
      federationGet(a, b, `/_matrix/federation/v1/hierarchy/${enc(`!nothing:${b.serverName}`)}`),
    );
    expect(unknown.status).to.equal(404);
    expect(unknown.errcode).to.equal('M_NOT_FOUND');
    const hidden = await federationError(
      federationGet(a, b, `/_matrix/federation/v1/hierarchy/${enc(bSecret)}`),
    );
    expect(hidden.status).to.equal(404);
    expect(hidden.errcode).to.equal('M_NOT_FOUND');
  });

  it('client /hierarchy: children on a server we are not in are asked of their via server and merged', async () => {
    const res = await call(a.server, alice, 'GET', `/_matrix/client/v1/rooms/${enc(aSpace)}/hierarchy`);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const rooms = res.body.rooms as JsonObject[];
    // Depth first, children in `order`: A's space, its local room, B's space, then B's children.
    expect(rooms.map((room) => room.room_id)).to.deep.equal([aSpace, aLocal, bSpace, bPublic, bOther]);
    const remoteSpace = rooms[2]!;
    expect(remoteSpace.name).to.equal('Space on B');
    expect(remoteSpace.room_type).to.equal('m.space');
    expect((remoteSpace.children_state as JsonObject[]).map((child) => child.state_key)).to.have.members([
      bPublic,
      bOther,
      bSecret,
    ]);
    expect(rooms[3]!.name).to.equal('Public on B');
  });

  it('client /hierarchy with suggested_only follows only suggested links, remote ones too', async () => {
    const res = await call(
      a.server,
      alice,
      'GET',
      `/_matrix/client/v1/rooms/${enc(aSpace)}/hierarchy?suggested_only=true`,
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect((res.body.rooms as JsonObject[]).map((room) => room.room_id)).to.deep.equal([
      aSpace,
      bSpace,
      bPublic,
    ]);
  });

  it('client /hierarchy answers from the cache while the remote server is down', async () => {
    const before = await call(a.server, alice, 'GET', `/_matrix/client/v1/rooms/${enc(aSpace)}/hierarchy`);
    expect(before.status).to.equal(200);
    await b.server.stop();
    const res = await call(a.server, alice, 'GET', `/_matrix/client/v1/rooms/${enc(aSpace)}/hierarchy`);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect((res.body.rooms as JsonObject[]).map((room) => room.room_id)).to.deep.equal([
      aSpace,
      aLocal,
      bSpace,
      bPublic,
      bOther,
    ]);
  });
});

describe('federation: generic GET /query/{queryType}', function () {
  this.timeout(60_000);
  let federation: TestFederation;
  let a: FederatedServer;
  let b: FederatedServer;
  let bob: TestUser;

  before(async () => {
    federation = await TestFederation.start(2);
    [a, b] = federation.servers as [FederatedServer, FederatedServer];
    bob = await createUser(b.server, 'bob');
    const res = await call(
      b.server,
      bob,
      'PUT',
      `/_matrix/client/v3/profile/${enc(bob.userId)}/displayname`,
      {
        displayname: 'Bob of B',
      },
    );
    expect(res.status).to.equal(200);
  });
  after(async () => {
    await federation?.stop();
  });

  it('answers an unknown query type with 404 M_UNRECOGNIZED', async () => {
    const error = await federationError(
      federationGet(a, b, '/_matrix/federation/v1/query/no_such_type', { anything: 'x' }),
    );
    expect(error.status).to.equal(404);
    expect(error.errcode).to.equal('M_UNRECOGNIZED');
  });

  it('still serves the known types profile and directory', async () => {
    const profile = await federationGet(a, b, '/_matrix/federation/v1/query/profile', {
      user_id: bob.userId,
    });
    expect(profile.displayname).to.equal('Bob of B');
    const missing = await federationError(
      federationGet(a, b, '/_matrix/federation/v1/query/directory', { room_alias: `#none:${b.serverName}` }),
    );
    expect(missing.status).to.equal(404);
    expect(missing.errcode).to.equal('M_NOT_FOUND');
  });

  it('refuses an unsigned request to the generic route', async () => {
    const error = await federationError(
      a.context.federation.client.request({
        destination: b.serverName,
        method: 'GET',
        path: '/_matrix/federation/v1/query/no_such_type',
        signed: false,
      }),
    );
    expect(error.status).to.equal(401);
  });
});
