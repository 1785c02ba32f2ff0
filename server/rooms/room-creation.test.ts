import { expect } from 'chai';
import type { JsonObject } from '../../protocol/events.js';
import type { RoomAlias } from '../../protocol/identifiers.js';
import { MatrixError } from '../errors.js';
import type { RoomAliasRegistry } from './room-creation.js';
import type { RoomPreset } from './room-presets.js';
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

describe('createRoom', () => {
  let h: RoomsHarness;
  let alice: string;
  let bob: string;
  let carol: string;

  beforeEach(async () => {
    h = await openRoomsHarness();
    alice = await h.account('alice', { displayName: 'Alice 🧠', avatarUrl: 'mxc://rooms.test/alice' });
    bob = await h.account('bob', { displayName: 'Bob' });
    carol = await h.account('carol');
  });
  afterEach(async () => {
    await h.close();
  });

  const content = async (roomId: string, type: string, stateKey = ''): Promise<JsonObject | undefined> =>
    (await h.services.reads.stateEvent(roomId, type, stateKey))?.pdu.content;

  const expectedPreset: Record<RoomPreset, { join_rule: string; guest_access: string; invite: number }> = {
    private_chat: { join_rule: 'invite', guest_access: 'can_join', invite: 0 },
    trusted_private_chat: { join_rule: 'invite', guest_access: 'can_join', invite: 0 },
    public_chat: { join_rule: 'public', guest_access: 'forbidden', invite: 50 },
  };

  for (const version of ['10', '11', '12']) {
    for (const preset of ['private_chat', 'trusted_private_chat', 'public_chat'] as const) {
      it(`creates a v${version} ${preset} room with the preset's state and power levels`, async () => {
        const created = await h.services.createRoom(alice, { room_version: version, preset, invite: [bob] });
        const { roomId } = created;
        expect(created.roomVersion).to.equal(version);
        expect(await h.services.reads.roomVersion(roomId)).to.equal(version);
        if (version === '12') expect(roomId).to.match(/^![A-Za-z0-9_-]{43}$/);
        else expect(roomId).to.match(/^![A-Za-z]{18}:rooms\.test$/);

        const create = (await content(roomId, 'm.room.create'))!;
        expect(create.room_version).to.equal(version);
        if (version === '10') expect(create.creator).to.equal(alice);
        else expect(create).not.to.have.property('creator');
        const trusted = preset === 'trusted_private_chat';
        if (version === '12' && trusted) expect(create.additional_creators).to.deep.equal([bob]);
        else expect(create).not.to.have.property('additional_creators');

        const expected = expectedPreset[preset];
        expect(await content(roomId, 'm.room.join_rules')).to.deep.equal({ join_rule: expected.join_rule });
        expect(await content(roomId, 'm.room.history_visibility')).to.deep.equal({
          history_visibility: 'shared',
        });
        expect(await content(roomId, 'm.room.guest_access')).to.deep.equal({
          guest_access: expected.guest_access,
        });

        const pl = (await content(roomId, 'm.room.power_levels'))!;
        const users: Record<string, number> = {};
        if (version !== '12') {
          users[alice] = 100;
          if (trusted) users[bob] = 100;
        }
        expect(pl.users).to.deep.equal(users);
        expect(pl.invite).to.equal(expected.invite);
        expect(pl.state_default).to.equal(50);
        expect((pl.events as JsonObject)['m.room.tombstone']).to.equal(version === '12' ? 150 : 100);
        expect((pl.events as JsonObject)['m.room.power_levels']).to.equal(100);

        expect(await h.services.reads.membership(roomId, alice)).to.equal('join');
        expect(await h.services.reads.membership(roomId, bob)).to.equal('invite');
        const join = (await content(roomId, 'm.room.member', alice))!;
        expect(join).to.deep.equal({
          membership: 'join',
          displayname: 'Alice 🧠',
          avatar_url: 'mxc://rooms.test/alice',
        });
        expect(await h.services.reads.joinedRooms(alice)).to.deep.equal([roomId]);
      });
    }
  }

  it('sends the events in the order createRoom.yaml prescribes', async () => {
    const { roomId, events } = await h.services.createRoom(alice, {
      preset: 'public_chat',
      room_alias_name: 'pub',
      initial_state: [{ type: 'm.room.encryption', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
      name: 'The Pub',
      topic: 'Happy hour',
      invite: [bob, carol],
    });
    const stored = await h.storage.events.roomEventsAfter(roomId, 0, 100);
    expect(stored.map((e) => e.eventId)).to.deep.equal(events.map((e) => e.eventId));
    expect(stored.map((e) => [e.pdu.type, e.pdu.state_key])).to.deep.equal([
      ['m.room.create', ''],
      ['m.room.member', alice],
      ['m.room.power_levels', ''],
      ['m.room.canonical_alias', ''],
      ['m.room.join_rules', ''],
      ['m.room.history_visibility', ''],
      ['m.room.guest_access', ''],
      ['m.room.encryption', ''],
      ['m.room.name', ''],
      ['m.room.topic', ''],
      ['m.room.member', bob],
      ['m.room.member', carol],
    ]);
    for (let i = 1; i < stored.length; i++) {
      expect(stored[i]!.pdu.prev_events).to.deep.equal([stored[i - 1]!.eventId]);
      expect(stored[i]!.pdu.depth).to.equal(i + 1);
    }
    expect(await content(roomId, 'm.room.topic')).to.deep.equal({
      topic: 'Happy hour',
      'm.topic': { 'm.text': [{ body: 'Happy hour' }] },
    });
    expect(await content(roomId, 'm.room.member', bob)).to.deep.equal({
      membership: 'invite',
      displayname: 'Bob',
    });
    // Every event's state snapshots hold what was before it.
    const beforeTopic = await h.storage.state.stateBeforeEvent(stored[9]!.eventId);
    expect([...beforeTopic!.values()].sort()).to.deep.equal(
      stored
        .slice(0, 9)
        .map((e) => e.eventId)
        .sort(),
    );
    const current = await h.storage.state.currentState(roomId);
    expect(current.size).to.equal(12);
    expect(await h.storage.state.forwardExtremities(roomId)).to.deep.equal([stored.at(-1)!.eventId]);
  });

  it('defaults the preset from the visibility', async () => {
    const pub = await h.services.createRoom(alice, { visibility: 'public' });
    const priv = await h.services.createRoom(alice, {});
    expect(pub.visibility).to.equal('public');
    expect(priv.visibility).to.equal('private');
    expect((await content(pub.roomId, 'm.room.join_rules'))!.join_rule).to.equal('public');
    expect((await content(priv.roomId, 'm.room.join_rules'))!.join_rule).to.equal('invite');
    expect(await h.services.reads.roomVersion(priv.roomId)).to.equal('12');
  });

  it('lets initial_state replace preset events, and name and topic replace initial_state', async () => {
    const { roomId, events } = await h.services.createRoom(alice, {
      preset: 'private_chat',
      initial_state: [
        { type: 'm.room.join_rules', content: { join_rule: 'public' } },
        { type: 'm.room.name', content: { name: 'from initial_state' } },
        { type: 'm.room.history_visibility', content: { history_visibility: 'joined' } },
        { type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } },
      ],
      name: 'from name',
    });
    expect((await content(roomId, 'm.room.join_rules'))!.join_rule).to.equal('knock');
    expect((await content(roomId, 'm.room.history_visibility'))!.history_visibility).to.equal('joined');
    expect((await content(roomId, 'm.room.name'))!.name).to.equal('from name');
    const types = await Promise.all(
      events.map(async (e) => (await h.storage.events.getEvent(e.eventId))!.pdu.type),
    );
    expect(types.filter((t) => t === 'm.room.join_rules')).to.have.length(1);
    expect(types.filter((t) => t === 'm.room.name')).to.have.length(1);
  });

  it('applies power_level_content_override, and an initial power levels event instead of the default', async () => {
    const overridden = await h.services.createRoom(alice, {
      room_version: '11',
      power_level_content_override: { events_default: 20, users: { [alice]: 100, [bob]: 50 } },
    });
    const pl = (await content(overridden.roomId, 'm.room.power_levels'))!;
    expect(pl.events_default).to.equal(20);
    expect(pl.users).to.deep.equal({ [alice]: 100, [bob]: 50 });
    expect(pl.state_default).to.equal(50);

    const replaced = await h.services.createRoom(alice, {
      room_version: '12',
      initial_state: [{ type: 'm.room.power_levels', content: { users: { [bob]: 75 } } }],
      power_level_content_override: { events_default: 20 },
    });
    expect(await content(replaced.roomId, 'm.room.power_levels')).to.deep.equal({ users: { [bob]: 75 } });
  });

  it('refuses before v12 an override whose users leave out the creator', async () => {
    const error = await rejectionOf(
      h.services.createRoom(alice, {
        room_version: '10',
        power_level_content_override: { users: { [bob]: 100 } },
      }),
    );
    expect(error.errcode).to.equal('M_INVALID_PARAM');
    expect(await h.storage.events.latestStreamOrdering()).to.equal(0);
  });

  it('gives the v12 creator infinite power, not listed in users, and refuses listing them', async () => {
    const { roomId } = await h.services.createRoom(alice, { room_version: '12', preset: 'public_chat' });
    await h.services.membership.join(roomId, bob);
    // Power above any integer an admin could hold: alice can make bob 1000.
    await h.services.sender.sendEvent({
      roomId,
      sender: alice,
      type: 'm.room.power_levels',
      stateKey: '',
      content: { users: { [bob]: 1000 } },
    });
    const listed = await rejectionOf(
      h.services.sender.sendEvent({
        roomId,
        sender: alice,
        type: 'm.room.power_levels',
        stateKey: '',
        content: { users: { [alice]: 100 } },
      }),
    );
    expect(listed.errcode).to.equal('M_FORBIDDEN');
    expect(listed.message).to.match(/creator/);
    // And bob at 1000 still cannot ban the creator.
    const ban = await rejectionOf(h.services.membership.ban(roomId, bob, alice));
    expect(ban.errcode).to.equal('M_FORBIDDEN');
  });

  it('makes trusted_private_chat invitees additional creators in v12 (merged with creation_content)', async () => {
    const { roomId } = await h.services.createRoom(alice, {
      room_version: '12',
      preset: 'trusted_private_chat',
      invite: [bob],
      creation_content: { additional_creators: [carol, bob], 'm.federate': false },
    });
    const create = (await content(roomId, 'm.room.create'))!;
    expect(create.additional_creators).to.deep.equal([carol, bob]);
    expect(create['m.federate']).to.equal(false);
    await h.services.membership.join(roomId, bob);
    // bob, a creator, can change power levels (which need 100) though not listed in users.
    await h.services.sender.sendEvent({
      roomId,
      sender: bob,
      type: 'm.room.power_levels',
      stateKey: '',
      content: { users: {}, kick: 10 },
    });
  });

  it('marks invites direct with is_direct', async () => {
    const { roomId } = await h.services.createRoom(alice, {
      invite: [bob],
      is_direct: true,
      preset: 'trusted_private_chat',
    });
    expect(await content(roomId, 'm.room.member', bob)).to.deep.equal({
      membership: 'invite',
      displayname: 'Bob',
      is_direct: true,
    });
  });

  it('sets the canonical alias and calls the alias registry seam', async () => {
    const calls: string[] = [];
    const aliases: RoomAliasRegistry = {
      async assertAvailable(alias: RoomAlias) {
        calls.push(`check ${alias}`);
        if (alias === '#taken:rooms.test') throw MatrixError.of('M_ROOM_IN_USE', 'Room alias already taken');
      },
      async register(alias: RoomAlias, roomId: string) {
        calls.push(`register ${alias} ${roomId}`);
      },
    };
    const local = await openRoomsHarness({ aliases });
    try {
      const dave = await local.account('dave');
      const created = await local.services.createRoom(dave, { room_alias_name: 'lounge' });
      expect(created.alias).to.equal('#lounge:rooms.test');
      const alias = await local.services.reads.stateEvent(created.roomId, 'm.room.canonical_alias', '');
      expect(alias!.pdu.content).to.deep.equal({ alias: '#lounge:rooms.test' });
      const taken = await rejectionOf(local.services.createRoom(dave, { room_alias_name: 'taken' }));
      expect(taken.errcode).to.equal('M_ROOM_IN_USE');
      expect(calls).to.deep.equal([
        'check #lounge:rooms.test',
        `register #lounge:rooms.test ${created.roomId}`,
        'check #taken:rooms.test',
      ]);
    } finally {
      await local.close();
    }
    for (const bad of ['a:b', 'with space', '']) {
      const error = await rejectionOf(h.services.createRoom(alice, { room_alias_name: bad }));
      expect(error.errcode).to.equal('M_INVALID_PARAM');
    }
  });

  it('accepts room versions 1 to 12 and refuses others with M_UNSUPPORTED_ROOM_VERSION', async () => {
    for (let v = 1; v <= 12; v++) {
      const { roomId } = await h.services.createRoom(alice, {
        room_version: String(v),
        preset: 'public_chat',
      });
      expect(await h.services.reads.roomVersion(roomId)).to.equal(String(v));
      await h.services.membership.join(roomId, bob);
      await h.services.sender.sendEvent({
        roomId,
        sender: bob,
        type: 'm.room.message',
        content: { body: `v${v}` },
      });
    }
    for (const version of ['13', '0', 'org.example.custom', '']) {
      const error = await rejectionOf(h.services.createRoom(alice, { room_version: version }));
      expect(error.errcode).to.equal('M_UNSUPPORTED_ROOM_VERSION');
      expect(error.status).to.equal(400);
    }
  });

  it('refuses invalid user IDs in invite with M_INVALID_PARAM, storing nothing', async () => {
    for (const invite of [['bob'], ['@bob'], ['@bob:bad host'], [alice]]) {
      const error = await rejectionOf(h.services.createRoom(alice, { invite }));
      expect(error.errcode).to.equal('M_INVALID_PARAM');
    }
    expect(await h.storage.events.latestStreamOrdering()).to.equal(0);
  });

  it('refuses with M_INVALID_ROOM_STATE, storing nothing, initial state the auth rules refuse', async () => {
    const high = await rejectionOf(
      h.services.createRoom(alice, {
        room_version: '10',
        power_level_content_override: { state_default: 200, users: { [alice]: 100 } },
      }),
    );
    expect(high.errcode).to.equal('M_INVALID_ROOM_STATE');
    expect(high.status).to.equal(400);
    const secondCreate = await rejectionOf(
      h.services.createRoom(alice, { initial_state: [{ type: 'm.room.create', content: {} }] }),
    );
    expect(secondCreate.errcode).to.equal('M_INVALID_ROOM_STATE');
    const othersMember = await rejectionOf(
      h.services.createRoom(alice, {
        initial_state: [{ type: 'm.room.member', state_key: bob, content: { membership: 'join' } }],
      }),
    );
    expect(othersMember.errcode).to.equal('M_INVALID_ROOM_STATE');
    const badCreators = await rejectionOf(
      h.services.createRoom(alice, { creation_content: { additional_creators: ['not a user'] } }),
    );
    expect(badCreators.errcode).to.equal('M_INVALID_PARAM');
    expect(await h.storage.events.latestStreamOrdering()).to.equal(0);
  });

  it('creates many rooms at once, each with its own ID', async () => {
    const created = await Promise.all(
      Array.from({ length: 30 }, () => h.services.createRoom(alice, { preset: 'public_chat' })),
    );
    expect(new Set(created.map((c) => c.roomId)).size).to.equal(30);
    expect((await h.services.reads.joinedRooms(alice)).sort()).to.deep.equal(
      created.map((c) => c.roomId).sort(),
    );
  });
});
