/**
 * The v1 invite (server-server invites-v1.yaml), for rooms of versions 1 and 2: a room-version-1
 * invite event sent by A to B's PUT /_matrix/federation/v1/invite/{roomId}/{eventId} comes back
 * as [200, {event}] signed by B too, and Bob sees the invite with the stripped state it carried.
 */
import { expect } from 'chai';
import { FederationRequestError } from '../federation/federation.js';
import type { JsonObject, Pdu } from '../protocol/events.js';
import { hashAndSignEvent } from '../protocol/hashing.js';
import { roomVersionRules } from '../protocol/room-versions.js';
import { call, createUser, type TestUser } from './harness/accounts.js';
import { type FederatedServer, TestFederation } from './harness/test-federation.js';

const enc = encodeURIComponent;

describe('federation: v1 invite (room versions 1 and 2)', function () {
  this.timeout(60_000);
  let federation: TestFederation;
  let a: FederatedServer;
  let b: FederatedServer;
  let bob: TestUser;

  before(async () => {
    federation = await TestFederation.start(2);
    [a, b] = federation.servers as [FederatedServer, FederatedServer];
    bob = await createUser(b.server, 'bob');
  });
  after(async () => {
    await federation?.stop();
  });

  function v1Invite(roomId: string, eventId: string, content: JsonObject): Pdu {
    return hashAndSignEvent(
      {
        event_id: eventId,
        type: 'm.room.member',
        room_id: roomId,
        sender: `@alice:${a.serverName}`,
        state_key: bob.userId,
        content,
        depth: 4,
        prev_events: [[`$previous:${a.serverName}`, { sha256: 'aGFzaA' }]],
        auth_events: [],
        origin: a.serverName,
        origin_server_ts: Date.now(),
        unsigned: {
          invite_room_state: [
            {
              type: 'm.room.name',
              state_key: '',
              sender: `@alice:${a.serverName}`,
              content: { name: 'Old room' },
            },
          ],
        },
      } as never,
      a.serverName,
      a.context.signingKey,
      roomVersionRules('1'),
    );
  }

  function sendV1(roomId: string, eventId: string, pdu: Pdu) {
    return a.context.federation.client.request<unknown>({
      destination: b.serverName,
      method: 'PUT',
      path: `/_matrix/federation/v1/invite/${enc(roomId)}/${enc(eventId)}`,
      body: pdu,
    });
  }

  it('signs the invite, answers [200, {event}] and shows Bob the invite with its stripped state', async () => {
    const roomId = `!old:${a.serverName}`;
    const eventId = `$invite1:${a.serverName}`;
    const answer = await sendV1(roomId, eventId, v1Invite(roomId, eventId, { membership: 'invite' }));
    expect(answer).to.be.an('array').with.lengthOf(2);
    const [status, body] = answer as [number, { event: Pdu }];
    expect(status).to.equal(200);
    expect(body.event.event_id).to.equal(eventId);
    expect(Object.keys(body.event.signatures)).to.have.members([a.serverName, b.serverName]);

    const sync = await call(b.server, bob, 'GET', '/_matrix/client/v3/sync?timeout=0');
    const invite = (
      sync.body.rooms as { invite?: Record<string, { invite_state: { events: JsonObject[] } }> }
    ).invite?.[roomId];
    expect(invite, JSON.stringify(sync.body.rooms)).to.not.equal(undefined);
    const name = invite!.invite_state.events.find((event) => event.type === 'm.room.name');
    expect(name?.content).to.deep.equal({ name: 'Old room' });
  });

  it('refuses to sign an event that is not an invite', async () => {
    const roomId = `!old2:${a.serverName}`;
    const eventId = `$notinvite:${a.serverName}`;
    const error = await sendV1(roomId, eventId, v1Invite(roomId, eventId, { membership: 'join' })).catch(
      (caught: unknown) => caught,
    );
    expect(error).to.be.instanceOf(FederationRequestError);
    expect((error as FederationRequestError).status).to.equal(400);
  });
});
