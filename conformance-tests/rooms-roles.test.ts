import { expect } from 'chai';
import { call, createUser, fastAccounts, type JsonResponse, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const V3 = '/_matrix/client/v3';
const room = (roomId: string) => `${V3}/rooms/${encodeURIComponent(roomId)}`;
const enc = encodeURIComponent;

function expectForbidden(res: JsonResponse): void {
  expect(res.status, JSON.stringify(res.body)).to.equal(403);
  expect(res.body.errcode).to.equal('M_FORBIDDEN');
  expect(res.body.error).to.be.a('string').and.not.equal('');
}

function expectOk(res: JsonResponse): void {
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
}

describe('Group roles and settings (power levels, moderation, join rules)', () => {
  let hs: TestHomeserver;
  let owner: TestUser;
  let mod: TestUser;
  let member: TestUser;
  let outsider: TestUser;
  let groupId: string;

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    owner = await createUser(hs, 'r-owner', { displayName: 'Owner' });
    mod = await createUser(hs, 'r-mod');
    member = await createUser(hs, 'r-member');
    outsider = await createUser(hs, 'r-outsider');
  });
  after(() => hs.stop());
  afterEach(() => {
    // Nothing here may be a server error: bad input is the client's error, never a 500.
    const errors = hs.logLines.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
    expect(errors, errors.join('\n')).to.deep.equal([]);
  });

  const storage = () => hs.homeserver.context.storage;
  const membershipOf = async (roomId: string, userId: string) =>
    (await storage().memberships.getMembership(roomId, userId))?.membership ?? null;
  async function stateEvent(roomId: string, type: string, stateKey = '') {
    const eventId = await storage().state.currentStateEventId(roomId, type, stateKey);
    return eventId === null ? null : storage().events.getEvent(eventId);
  }
  const setState = (user: TestUser, roomId: string, type: string, content: unknown, stateKey = '') =>
    call(hs, user, 'PUT', `${room(roomId)}/state/${enc(type)}/${enc(stateKey)}`, content);
  const act = (user: TestUser, roomId: string, action: string, body: Record<string, unknown> = {}) =>
    call(hs, user, 'POST', `${room(roomId)}/${action}`, body);

  it('creates a private group, invites two users who join, and makes one a moderator (PL 50)', async () => {
    const created = await call(hs, owner, 'POST', `${V3}/createRoom`, {
      preset: 'private_chat',
      name: 'Book club',
      invite: [mod.userId],
    });
    expectOk(created);
    groupId = created.body.room_id as string;
    expectOk(await act(owner, groupId, 'invite', { user_id: member.userId, reason: 'welcome' }));
    expect(await membershipOf(groupId, member.userId)).to.equal('invite');
    expectOk(await act(mod, groupId, 'join'));
    expectOk(await call(hs, member, 'POST', `${V3}/join/${enc(groupId)}`, {}));
    expect(await membershipOf(groupId, member.userId)).to.equal('join');

    const pl = (await stateEvent(groupId, 'm.room.power_levels'))!.pdu.content;
    const users = { ...(pl.users as Record<string, number>), [mod.userId]: 50 };
    expectOk(await setState(owner, groupId, 'm.room.power_levels', { ...pl, users }));
    const updated = (await stateEvent(groupId, 'm.room.power_levels'))!.pdu.content;
    expect((updated.users as Record<string, number>)[mod.userId]).to.equal(50);
  });

  it('refuses a plain member kicking, banning, changing the topic or the power levels', async () => {
    expectForbidden(await act(member, groupId, 'kick', { user_id: mod.userId }));
    expectForbidden(await act(member, groupId, 'ban', { user_id: mod.userId }));
    expectForbidden(await setState(member, groupId, 'm.room.topic', { topic: 'mine now' }));
    const pl = (await stateEvent(groupId, 'm.room.power_levels'))!.pdu.content;
    const users = { ...(pl.users as Record<string, number>), [member.userId]: 100 };
    expectForbidden(await setState(member, groupId, 'm.room.power_levels', { ...pl, users }));
    expect(await membershipOf(groupId, mod.userId)).to.equal('join');
  });

  it('lets the moderator kick a member (who may come back only when invited again)', async () => {
    expectOk(await act(mod, groupId, 'kick', { user_id: member.userId, reason: 'cool down' }));
    const kick = await stateEvent(groupId, 'm.room.member', member.userId);
    expect(kick!.pdu.sender).to.equal(mod.userId);
    expect(kick!.pdu.content).to.deep.equal({ membership: 'leave', reason: 'cool down' });
    // Invite-only: no way back without an invite.
    expectForbidden(await act(member, groupId, 'join'));
    expectOk(await act(mod, groupId, 'invite', { user_id: member.userId }));
    expectOk(await act(member, groupId, 'join'));
    // The moderator cannot act on the owner, nor raise themself.
    expectForbidden(await act(mod, groupId, 'kick', { user_id: owner.userId }));
    expectForbidden(await act(mod, groupId, 'ban', { user_id: owner.userId }));
  });

  it('bans and unbans: a banned user cannot rejoin, even invited; unban lifts it', async () => {
    expectOk(await act(mod, groupId, 'ban', { user_id: member.userId, reason: 'spam' }));
    expect(await membershipOf(groupId, member.userId)).to.equal('ban');
    expectForbidden(await act(member, groupId, 'join'));
    expectForbidden(await act(owner, groupId, 'invite', { user_id: member.userId }));
    // Unbanning someone who is not banned is refused (it would be a kick).
    expectForbidden(await act(mod, groupId, 'unban', { user_id: outsider.userId }));
    expectForbidden(await act(member, groupId, 'unban', { user_id: member.userId }));
    expectOk(await act(mod, groupId, 'unban', { user_id: member.userId }));
    expect(await membershipOf(groupId, member.userId)).to.equal('leave');
    expectOk(await act(owner, groupId, 'invite', { user_id: member.userId }));
    expectOk(await act(member, groupId, 'join'));
    // Banning a user who never was in the room works too (pre-emptive ban).
    expectOk(await act(mod, groupId, 'ban', { user_id: outsider.userId }));
    expectForbidden(await act(outsider, groupId, 'join'));
    expectOk(await act(mod, groupId, 'unban', { user_id: outsider.userId }));
  });

  it('refuses joining an invite-only room without an invite, and invites by non-members', async () => {
    expectForbidden(await act(outsider, groupId, 'join'));
    expectForbidden(await act(outsider, groupId, 'invite', { user_id: outsider.userId }));
    expect(await membershipOf(groupId, outsider.userId)).to.not.equal('join');
    const bad = await act(mod, groupId, 'kick', { user_id: 'nobody' });
    expect(bad.status).to.equal(400);
    const missing = await act(mod, groupId, 'kick', {});
    expect(missing.status).to.equal(400);
  });

  it('takes knocks in a knock room; the knocker joins once invited, and can withdraw', async () => {
    const created = await call(hs, owner, 'POST', `${V3}/createRoom`, {
      initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }],
      room_alias_name: 'r-knockers',
    });
    expectOk(created);
    const roomId = created.body.room_id as string;
    expectForbidden(await act(outsider, roomId, 'join'));
    const knock = await call(hs, outsider, 'POST', `${V3}/knock/${enc('#r-knockers:localhost')}`, {
      reason: 'let me in',
    });
    expect(knock).to.deep.equal({ status: 200, body: { room_id: roomId } });
    expect(await membershipOf(roomId, outsider.userId)).to.equal('knock');
    expect((await stateEvent(roomId, 'm.room.member', outsider.userId))!.pdu.content.reason).to.equal(
      'let me in',
    );
    expectOk(await act(owner, roomId, 'invite', { user_id: outsider.userId }));
    expectOk(await act(outsider, roomId, 'join'));
    expect(await membershipOf(roomId, outsider.userId)).to.equal('join');

    // Knocking is refused where the join rule is not knock, and a knock can be withdrawn.
    expectForbidden(await call(hs, member, 'POST', `${V3}/knock/${enc(groupId)}`, {}));
    expectOk(await call(hs, member, 'POST', `${V3}/knock/${enc(roomId)}`, {}));
    expectOk(await act(member, roomId, 'leave'));
    expect(await membershipOf(roomId, member.userId)).to.equal('leave');
    // Old room versions have no knocking.
    const v6 = await call(hs, owner, 'POST', `${V3}/createRoom`, {
      room_version: '6',
      initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }],
    });
    expectOk(v6);
    expectForbidden(await call(hs, member, 'POST', `${V3}/knock/${enc(v6.body.room_id as string)}`, {}));
  });

  describe('group settings: each a state event the power levels guard', () => {
    const settings: [type: string, content: Record<string, unknown>][] = [
      ['m.room.name', { name: 'Le club 📚' }],
      ['m.room.topic', { topic: 'Books, 🍵 and 👩🏾‍💻' }],
      ['m.room.avatar', { url: 'mxc://localhost/avatar' }],
      ['m.room.join_rules', { join_rule: 'public' }],
      ['m.room.history_visibility', { history_visibility: 'joined' }],
      ['m.room.guest_access', { guest_access: 'forbidden' }],
      ['m.room.encryption', { algorithm: 'm.megolm.v1.aes-sha2' }],
      ['m.room.pinned_events', { pinned: ['$pinned'] }],
    ];

    for (const [type, content] of settings) {
      it(`${type}: refused to a plain member, applied for the owner`, async () => {
        expectForbidden(await setState(member, groupId, type, content));
        const res = await setState(owner, groupId, type, content);
        expectOk(res);
        const current = await stateEvent(groupId, type);
        expect(current!.eventId).to.equal(res.body.event_id);
        expect(current!.pdu.content).to.deep.equal(content);
      });
    }

    it('lets the moderator change the name and topic (PL 50) but not history visibility or encryption (PL 100)', async () => {
      expectOk(await setState(mod, groupId, 'm.room.name', { name: 'Mod named' }));
      expectOk(await setState(mod, groupId, 'm.room.topic', { topic: 'Mod topic' }));
      expectForbidden(
        await setState(mod, groupId, 'm.room.history_visibility', { history_visibility: 'shared' }),
      );
      expectForbidden(
        await setState(mod, groupId, 'm.room.encryption', { algorithm: 'm.megolm.v1.aes-sha2' }),
      );
    });

    it('refuses messages from outsiders and invalid power levels content', async () => {
      const res = await call(hs, outsider, 'PUT', `${room(groupId)}/send/m.room.message/t1`, { body: 'hi' });
      expectForbidden(res);
      const badPl = await setState(owner, groupId, 'm.room.power_levels', {
        users: { [mod.userId]: 'lots' },
      });
      expect(badPl.status).to.equal(403);
      expect(badPl.body.error).to.match(/integer/);
    });
  });
});
