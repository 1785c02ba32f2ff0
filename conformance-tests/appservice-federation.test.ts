/**
 * Application services and federation: a bridge on one server hears of an invite from
 * another server to one of its users (kept as an outlier, the room being unknown here),
 * and, once its user joined, of the other server's messages.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { call, createUser, type TestUser } from './harness/accounts.js';
import { FakeAppservice } from './harness/fake-appservice.js';
import { type FederatedServer, TestFederation } from './harness/test-federation.js';
import { until } from './harness/until.js';

describe('application services over federation', function () {
  this.timeout(60_000);
  let folder: string;
  let service: FakeAppservice;
  let federation: TestFederation;
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: TestUser;
  const bridge = { accessToken: 'federated-bridge-as' };

  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'myelin-appservice-fed-'));
    service = await FakeAppservice.start();
    await writeFile(
      path.join(folder, 'bridge.yaml'),
      [
        'id: bridge',
        `url: ${service.url}`,
        `as_token: ${bridge.accessToken}`,
        'hs_token: federated-bridge-hs',
        'sender_localpart: bridgebot',
        'namespaces:',
        '  users: [{ exclusive: true, regex: "@irc_.*" }]',
      ].join('\n'),
    );
    federation = await TestFederation.start(1);
    a = federation.servers[0]!;
    b = await federation.startServer({
      configure: (config) => {
        config.app_service_config_files = [path.join(folder, 'bridge.yaml')];
        config.appservice.initial_retry_delay_ms = 50;
      },
    });
    federation.servers.push(b);
    alice = await createUser(a.server, 'alice');
    const made = await call(b.server, bridge, 'POST', '/_matrix/client/v3/register', {
      type: 'm.login.application_service',
      username: 'irc_bob',
      inhibit_login: true,
    });
    expect(made.status, JSON.stringify(made.body)).to.equal(200);
  });

  after(async () => {
    await federation?.stop();
    await service?.stop();
    await rm(folder, { recursive: true, force: true });
  });

  it('pushes the remote invite of its user, then the remote messages of the room it joined', async () => {
    const bob = `@irc_bob:${b.serverName}`;
    const created = await call(a.server, alice, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'private_chat',
      invite: [bob],
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    const roomId = created.body.room_id as string;
    const pushed = () => service.transactions().flatMap((txn) => txn.events);

    const invite = await until(async () =>
      pushed().find((event) => event.type === 'm.room.member' && event.state_key === bob),
    );
    expect(invite).to.include({ room_id: roomId, sender: alice.userId });
    expect(invite.content).to.include({ membership: 'invite' });

    const joined = await call(
      b.server,
      bridge,
      'POST',
      `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?user_id=${encodeURIComponent(bob)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
    const sent = await call(
      a.server,
      alice,
      'PUT',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/m1`,
      { msgtype: 'm.text', body: 'hello from the other server' },
    );
    const message = await until(async () => pushed().find((event) => event.event_id === sent.body.event_id));
    expect(message.content).to.deep.equal({ msgtype: 'm.text', body: 'hello from the other server' });
    await b.context.appservices.settled();
    expect(pushed().filter((event) => event.event_id === sent.body.event_id)).to.have.length(1);
  });

  it('pushes neither the state a join brings nor an invite again once it enters the timeline', async () => {
    const bob = `@irc_bob:${b.serverName}`;
    const dave = `@irc_dave:${b.serverName}`;
    const created = await call(a.server, alice, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'private_chat',
      invite: [bob],
    });
    const roomId = created.body.room_id as string;
    const room = encodeURIComponent(roomId);
    // A membership of one of its users that server B never hears of until it joins.
    const banned = await call(a.server, alice, 'POST', `/_matrix/client/v3/rooms/${room}/ban`, {
      user_id: dave,
    });
    expect(banned.status, JSON.stringify(banned.body)).to.equal(200);
    const pushed = () => service.transactions().flatMap((txn) => txn.events);
    const isInvite = (event: Record<string, unknown>) =>
      event.room_id === roomId &&
      event.type === 'm.room.member' &&
      event.state_key === bob &&
      (event.content as { membership?: unknown }).membership === 'invite';
    await until(async () => pushed().find(isInvite));

    const joined = await call(
      b.server,
      bridge,
      'POST',
      `/_matrix/client/v3/join/${room}?user_id=${encodeURIComponent(bob)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
    const sent = await call(
      a.server,
      alice,
      'PUT',
      `/_matrix/client/v3/rooms/${room}/send/m.room.message/m2`,
      {
        msgtype: 'm.text',
        body: 'after the join',
      },
    );
    await until(async () => pushed().find((event) => event.event_id === sent.body.event_id));
    await b.context.appservices.settled();
    const ofRoom = pushed().filter((event) => event.room_id === roomId);
    expect(
      ofRoom.filter((event) => event.state_key === dave),
      'the ban from before the join',
    ).to.deep.equal([]);
    expect(ofRoom.filter(isInvite), 'the invite, once').to.have.length(1);
  });
});
