/**
 * Archiving conversations (spec/archiving.md) over real HTTP: the archive
 * endpoints set the io.myelin.archived and m.lowpriority tags, sync carries
 * them and filters archived rooms on request, and a room archived with
 * unarchive_on_activity comes back when someone else writes in it.
 */
import { expect } from 'chai';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

// biome-ignore lint/suspicious/noExplicitAny: the tests walk deep into response JSON
type Json = Record<string, any>;

describe('Archiving conversations', () => {
  let hs: TestHomeserver;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;
  let otherRoomId: string;
  let txn = 0;

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    alice = await createUser(hs, 'alice');
    bob = await createUser(hs, 'bob');
    roomId = await createRoom(alice);
    otherRoomId = await createRoom(alice);
    const join = await call(
      hs,
      bob,
      'POST',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`,
      {},
    );
    expect(join.status).to.equal(200);
  });

  after(async () => {
    await hs?.stop();
  });

  async function createRoom(user: TestUser): Promise<string> {
    const res = await call(hs, user, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return (res.body as Json).room_id as string;
  }

  const archivePath = (user: TestUser, room: string) =>
    `/_matrix/client/unstable/io.myelin/user/${encodeURIComponent(user.userId)}/rooms/${encodeURIComponent(room)}/archive`;

  async function sync(user: TestUser, params: Record<string, string> = {}): Promise<Json> {
    const query = new URLSearchParams(params).toString();
    const res = await call(hs, user, 'GET', `/_matrix/client/v3/sync?${query}`);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body as Json;
  }

  const filterArchived = (mode: string) => JSON.stringify({ room: { 'io.myelin.archived': mode } });

  function tagsIn(response: Json, room: string): Json | undefined {
    const events = (response.rooms?.join?.[room]?.account_data?.events ?? []) as Json[];
    return events.find((event) => event.type === 'm.tag')?.content.tags;
  }

  async function send(user: TestUser, room: string, body: string): Promise<void> {
    txn += 1;
    const res = await call(
      hs,
      user,
      'PUT',
      `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/send/m.room.message/a${txn}`,
      { msgtype: 'm.text', body },
    );
    expect(res.status).to.equal(200);
  }

  it('archives and unarchives a room, which moves in sync', async () => {
    const initial = await sync(alice);
    expect(Object.keys(initial.rooms.join)).to.include.members([roomId, otherRoomId]);

    expect((await call(hs, alice, 'PUT', archivePath(alice, roomId), {})).status).to.equal(200);
    const archived = await sync(alice, { since: initial.next_batch, timeout: '0' });
    const tags = tagsIn(archived, roomId);
    expect(tags).to.have.property('m.lowpriority');
    expect(tags?.['io.myelin.archived']).to.include({ unarchive_on_activity: false });

    // Clients that know the extension leave archived rooms out of their list, or list only them.
    expect(Object.keys((await sync(alice, { filter: filterArchived('exclude') })).rooms.join)).to.deep.equal([
      otherRoomId,
    ]);
    expect(Object.keys((await sync(alice, { filter: filterArchived('only') })).rooms.join)).to.deep.equal([
      roomId,
    ]);

    expect((await call(hs, alice, 'DELETE', archivePath(alice, roomId))).status).to.equal(200);
    const back = await sync(alice, { since: archived.next_batch, timeout: '0' });
    expect(tagsIn(back, roomId)).to.deep.equal({});
    expect(
      Object.keys((await sync(alice, { filter: filterArchived('exclude') })).rooms.join),
    ).to.include.members([roomId, otherRoomId]);
  });

  it('keeps a low priority the user had set before archiving', async () => {
    const tagPath = `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(otherRoomId)}/tags`;
    expect((await call(hs, alice, 'PUT', `${tagPath}/m.lowpriority`, { order: 0.5 })).status).to.equal(200);
    expect((await call(hs, alice, 'PUT', archivePath(alice, otherRoomId), {})).status).to.equal(200);
    expect((await call(hs, alice, 'DELETE', archivePath(alice, otherRoomId))).status).to.equal(200);
    const res = await call(hs, alice, 'GET', tagPath);
    expect((res.body as Json).tags).to.deep.equal({ 'm.lowpriority': { order: 0.5 } });
  });

  it('brings a room back on new activity when asked to, not for the user’s own messages', async () => {
    const body = { unarchive_on_activity: true };
    expect((await call(hs, alice, 'PUT', archivePath(alice, roomId), body)).status).to.equal(200);
    await send(alice, roomId, 'my own note to self');
    const before = await sync(alice, { filter: filterArchived('only') });
    expect(Object.keys(before.rooms.join)).to.deep.equal([roomId]);

    await send(bob, roomId, 'hello again!');
    let unarchived = false;
    for (let i = 0; i < 50 && !unarchived; i++) {
      const only = await sync(alice, { filter: filterArchived('only') });
      unarchived = Object.keys(only.rooms?.join ?? {}).length === 0;
      if (!unarchived) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(unarchived).to.equal(true);
    const tags = await call(
      hs,
      alice,
      'GET',
      `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(roomId)}/tags`,
    );
    expect((tags.body as Json).tags).to.deep.equal({});
  });

  it('stays archived on activity without unarchive_on_activity', async () => {
    expect((await call(hs, alice, 'PUT', archivePath(alice, roomId), {})).status).to.equal(200);
    await send(bob, roomId, 'are you there?');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(Object.keys((await sync(alice, { filter: filterArchived('only') })).rooms.join)).to.deep.equal([
      roomId,
    ]);
  });

  it('refuses to archive for someone else', async () => {
    const res = await call(hs, bob, 'PUT', archivePath(alice, roomId), {});
    expect(res.status).to.equal(403);
  });
});
