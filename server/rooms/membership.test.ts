import { expect } from 'chai';
import { MatrixError } from '../errors.js';
import { openRoomsHarness, type RoomsHarness } from './rooms-test-harness.js';

async function rejectionOf(promise: Promise<unknown>): Promise<MatrixError> {
  try {
    await promise;
  } catch (e) {
    expect(e).to.be.instanceOf(MatrixError);
    return e as MatrixError;
  }
  return expect.fail('expected the promise to reject');
}

async function expectForbidden(promise: Promise<unknown>): Promise<void> {
  const error = await rejectionOf(promise);
  expect(error.errcode).to.equal('M_FORBIDDEN');
  expect(error.status).to.equal(403);
}

describe('RoomMembership and RoomReads', () => {
  let h: RoomsHarness;
  let alice: string;
  let bob: string;
  let carol: string;
  let membership: RoomsHarness['services']['membership'];

  beforeEach(async () => {
    h = await openRoomsHarness();
    membership = h.services.membership;
    alice = await h.account('alice', { displayName: 'Alice' });
    bob = await h.account('bob', { displayName: 'Bob 👍🏿', avatarUrl: 'mxc://rooms.test/bob' });
    carol = await h.account('carol');
  });
  afterEach(async () => {
    await h.close();
  });

  const membershipOf = (roomId: string, userId: string) => h.services.reads.membership(roomId, userId);

  it('joins a public room with the profile, leaves and joins again', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat' });
    expect(await membershipOf(roomId, bob)).to.equal(null);
    await membership.join(roomId, bob);
    const join = await h.services.reads.stateEvent(roomId, 'm.room.member', bob);
    expect(join!.pdu.content).to.deep.equal({
      membership: 'join',
      displayname: 'Bob 👍🏿',
      avatar_url: 'mxc://rooms.test/bob',
    });
    expect(await h.services.reads.joinedRooms(bob)).to.deep.equal([roomId]);
    await membership.leave(roomId, bob, { reason: 'bye' });
    expect(await membershipOf(roomId, bob)).to.equal('leave');
    expect((await h.services.reads.stateEvent(roomId, 'm.room.member', bob))!.pdu.content).to.deep.equal({
      membership: 'leave',
      reason: 'bye',
    });
    expect(await h.services.reads.joinedRooms(bob)).to.deep.equal([]);
    await membership.join(roomId, bob);
    expect(await membershipOf(roomId, bob)).to.equal('join');
    // Leaving a room one is not in is refused.
    await expectForbidden(membership.leave(roomId, carol));
  });

  it('lets a private room be joined only by invitation', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'private_chat' });
    await expectForbidden(membership.join(roomId, bob));
    await membership.invite(roomId, alice, bob, { reason: 'come in' });
    expect(await membershipOf(roomId, bob)).to.equal('invite');
    expect((await h.services.reads.stateEvent(roomId, 'm.room.member', bob))!.pdu.content).to.deep.equal({
      membership: 'invite',
      displayname: 'Bob 👍🏿',
      avatar_url: 'mxc://rooms.test/bob',
      reason: 'come in',
    });
    await membership.join(roomId, bob);
    expect(await membershipOf(roomId, bob)).to.equal('join');
    // An invite can also be declined.
    await membership.invite(roomId, alice, carol);
    await membership.leave(roomId, carol);
    expect(await membershipOf(roomId, carol)).to.equal('leave');
    await expectForbidden(membership.join(roomId, carol));
  });

  it('checks the invite level: anyone in a private chat, moderators in a public one', async () => {
    const priv = await h.services.createRoom(alice, { preset: 'private_chat', invite: [bob] });
    await membership.join(priv.roomId, bob);
    await membership.invite(priv.roomId, bob, carol);
    expect(await membershipOf(priv.roomId, carol)).to.equal('invite');

    const pub = await h.services.createRoom(alice, { preset: 'public_chat' });
    await membership.join(pub.roomId, bob);
    await expectForbidden(membership.invite(pub.roomId, bob, carol));
    // Inviting someone already joined is refused too.
    await expectForbidden(membership.invite(pub.roomId, alice, bob));
  });

  it('kicks: a moderator kicks a member, a member cannot kick, nobody kicks those above them', async () => {
    for (const version of ['10', '12']) {
      const { roomId } = await h.services.createRoom(alice, { room_version: version, preset: 'public_chat' });
      await membership.join(roomId, bob);
      await membership.join(roomId, carol);
      await expectForbidden(membership.kick(roomId, bob, carol));
      // alice makes carol a moderator (50) with a power levels event.
      const pl = (await h.services.reads.stateEvent(roomId, 'm.room.power_levels', ''))!.pdu.content;
      await h.services.sender.sendEvent({
        roomId,
        sender: alice,
        type: 'm.room.power_levels',
        stateKey: '',
        content: { ...pl, users: { ...(pl.users as object), [carol]: 50 } },
      });
      await expectForbidden(membership.kick(roomId, carol, alice));
      await membership.kick(roomId, carol, bob, { reason: 'spam' });
      expect(await membershipOf(roomId, bob)).to.equal('leave');
      const kick = await h.services.reads.stateEvent(roomId, 'm.room.member', bob);
      expect(kick!.pdu.sender).to.equal(carol);
      expect(kick!.pdu.content).to.deep.equal({ membership: 'leave', reason: 'spam' });
      // Kicking oneself is leaving, and is refused as a kick.
      await expectForbidden(membership.kick(roomId, carol, carol));
    }
  });

  it('bans and unbans with the ban level', async () => {
    const { roomId } = await h.services.createRoom(alice, { preset: 'public_chat' });
    await membership.join(roomId, bob);
    await membership.join(roomId, carol);
    await expectForbidden(membership.ban(roomId, bob, carol));
    await membership.ban(roomId, alice, bob, { reason: 'abuse' });
    expect(await membershipOf(roomId, bob)).to.equal('ban');
    await expectForbidden(membership.join(roomId, bob));
    await expectForbidden(membership.invite(roomId, alice, bob));
    await expectForbidden(membership.unban(roomId, carol, bob));
    await expectForbidden(membership.unban(roomId, alice, carol)); // carol is not banned
    expect(await membershipOf(roomId, carol)).to.equal('join');
    await membership.unban(roomId, alice, bob);
    expect(await membershipOf(roomId, bob)).to.equal('leave');
    await membership.join(roomId, bob);
    expect(await membershipOf(roomId, bob)).to.equal('join');
    // A banned user who was not in the room can be banned in advance.
    const dave = await h.account('dave');
    await membership.ban(roomId, alice, dave);
    await expectForbidden(membership.join(roomId, dave));
  });

  it('knocks where the join rule is knock, and the knocker is then invited in', async () => {
    const { roomId } = await h.services.createRoom(alice, {
      room_version: '11',
      initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }],
    });
    await expectForbidden(membership.join(roomId, bob));
    await membership.knock(roomId, bob, { reason: 'let me in' });
    expect(await membershipOf(roomId, bob)).to.equal('knock');
    await membership.invite(roomId, alice, bob);
    await membership.join(roomId, bob);
    expect(await membershipOf(roomId, bob)).to.equal('join');

    const closed = await h.services.createRoom(alice, { preset: 'private_chat' });
    await expectForbidden(membership.knock(closed.roomId, bob));
    // Knocking does not exist before room version 7.
    const old = await h.services.createRoom(alice, {
      room_version: '6',
      initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }],
    });
    await expectForbidden(membership.knock(old.roomId, bob));
  });

  it('reads current state, single state events, members, joined rooms and the version', async () => {
    const { roomId } = await h.services.createRoom(alice, {
      room_version: '11',
      preset: 'public_chat',
      name: 'Reads',
    });
    await membership.join(roomId, bob);
    await membership.invite(roomId, alice, carol);
    const state = await h.services.reads.currentState(roomId);
    expect(state.get('m.room.name\u0000')!.pdu.content).to.deep.equal({ name: 'Reads' });
    expect(state.get(`m.room.member\u0000${bob}`)!.pdu.content.membership).to.equal('join');
    expect(state.size).to.equal(9);
    expect(await h.services.reads.stateEvent(roomId, 'm.room.topic', '')).to.equal(null);
    expect([...(await h.services.reads.joinedMembers(roomId)).keys()].sort()).to.deep.equal(
      [alice, bob].sort(),
    );
    expect(await h.services.reads.roomVersion(roomId)).to.equal('11');
    expect(await h.services.reads.roomVersion('!unknown:rooms.test')).to.equal(null);
    expect((await h.services.reads.currentState('!unknown:rooms.test')).size).to.equal(0);
    expect(await h.services.reads.joinedRooms(carol)).to.deep.equal([]);
    await membership.join(roomId, carol);
    expect(await h.services.reads.joinedRooms(carol)).to.deep.equal([roomId]);
  });

  it('refuses membership changes in rooms this server does not know with M_NOT_FOUND', async () => {
    const error = await rejectionOf(membership.join('!elsewhere:remote.test', bob));
    expect(error.errcode).to.equal('M_NOT_FOUND');
  });
});
