import { expect } from 'chai';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

describe('Restricted joins (join rule restricted / knock_restricted)', () => {
  let hs: TestHomeserver;
  let owner: TestUser;
  let spaceMember: TestUser;
  let stranger: TestUser;
  let spaceId: string;

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    owner = await createUser(hs, 'rj-owner');
    spaceMember = await createUser(hs, 'rj-member');
    stranger = await createUser(hs, 'rj-stranger');
    const space = await call(hs, owner, 'POST', `${V3}/createRoom`, {
      preset: 'public_chat',
      creation_content: { type: 'm.space' },
    });
    spaceId = space.body.room_id as string;
    expect((await call(hs, spaceMember, 'POST', `${V3}/join/${enc(spaceId)}`, {})).status).to.equal(200);
  });
  after(() => hs.stop());

  async function restrictedRoom(joinRule: 'restricted' | 'knock_restricted', roomVersion = '12') {
    const created = await call(hs, owner, 'POST', `${V3}/createRoom`, {
      preset: 'private_chat',
      room_version: roomVersion,
      initial_state: [
        {
          type: 'm.room.join_rules',
          state_key: '',
          content: { join_rule: joinRule, allow: [{ type: 'm.room_membership', room_id: spaceId }] },
        },
      ],
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    return created.body.room_id as string;
  }

  for (const joinRule of ['restricted', 'knock_restricted'] as const) {
    it(`lets a member of an allowed room join a ${joinRule} room, authorised by a local admin`, async () => {
      const roomId = await restrictedRoom(joinRule);
      const joined = await call(hs, spaceMember, 'POST', `${V3}/rooms/${enc(roomId)}/join`, {});
      expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
      const member = await call(
        hs,
        spaceMember,
        'GET',
        `${V3}/rooms/${enc(roomId)}/state/m.room.member/${enc(spaceMember.userId)}`,
      );
      expect(member.body).to.include({ membership: 'join', join_authorised_via_users_server: owner.userId });
    });

    it(`refuses a ${joinRule} join to a user in none of the allowed rooms`, async () => {
      const roomId = await restrictedRoom(joinRule);
      const refused = await call(hs, stranger, 'POST', `${V3}/join/${enc(roomId)}`, {});
      expect(refused.status).to.equal(403);
      expect(refused.body.errcode).to.equal('M_FORBIDDEN');
      const members = await call(hs, owner, 'GET', `${V3}/rooms/${enc(roomId)}/joined_members`);
      expect(Object.keys(members.body.joined as object)).to.deep.equal([owner.userId]);
    });
  }

  it('lets an invited user join without an authoriser', async () => {
    const roomId = await restrictedRoom('restricted');
    await call(hs, owner, 'POST', `${V3}/rooms/${enc(roomId)}/invite`, { user_id: stranger.userId });
    expect((await call(hs, stranger, 'POST', `${V3}/join/${enc(roomId)}`, {})).status).to.equal(200);
    const member = await call(
      hs,
      stranger,
      'GET',
      `${V3}/rooms/${enc(roomId)}/state/m.room.member/${enc(stranger.userId)}`,
    );
    expect(member.body.membership).to.equal('join');
    expect(member.body).not.to.have.property('join_authorised_via_users_server');
  });

  it('treats restricted as invite-only in a room version without restricted joins (v7)', async () => {
    const roomId = await restrictedRoom('restricted', '7');
    const refused = await call(hs, spaceMember, 'POST', `${V3}/join/${enc(roomId)}`, {});
    expect(refused.status).to.equal(403);
  });
});
