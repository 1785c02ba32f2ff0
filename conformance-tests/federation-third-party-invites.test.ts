/**
 * Third-party invites across two real Myelins (TLS, test CA), with an identity server played
 * by a loopback HTTP server in the test (it is outside our world): a bound email invites its
 * Matrix ID (hashed v2 lookup); an unbound one is stored on the identity server and becomes an
 * m.room.third_party_invite; when the address is bound, the identity server's /3pid/onbind on
 * the invitee's server makes it exchange the invite with the room's server, which sends the
 * invite (the auth rules check the identity server's signature). Forged signatures are refused,
 * and a server without identity.allow_private_addresses never contacts a loopback identity server.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { FederationRequestError } from '../federation/federation.js';
import type { JsonObject } from '../protocol/events.js';
import { generateSigningKey, type SigningKey, signJson } from '../protocol/signing.js';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { type FederatedServer, TestFederation } from './harness/test-federation.js';
import { TestHomeserver } from './harness/test-homeserver.js';
import { until } from './harness/until.js';

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;
const ID_ACCESS_TOKEN = 'is-token-123';
const PEPPER = 'matrixrocks';

interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: JsonObject | undefined;
}

/** A tiny identity server: hash_details, lookup (sha256) and store-invite, recording what it is asked. */
class FakeIdentityServer {
  readonly requests: SeenRequest[] = [];
  /** address -> mxid */
  readonly bindings = new Map<string, string>();
  readonly key: SigningKey = generateSigningKey('0');
  private server: Server | undefined;
  private tokens = 0;

  get name(): string {
    return `127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req).then(([status, body]) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
  }

  stop(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(req: IncomingMessage): Promise<[number, unknown]> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text === '' ? undefined : (JSON.parse(text) as JsonObject);
    this.requests.push({
      method: req.method!,
      path: req.url!,
      authorization: req.headers.authorization,
      body,
    });
    if (req.headers.authorization !== `Bearer ${ID_ACCESS_TOKEN}`)
      return [401, { errcode: 'M_UNAUTHORIZED' }];
    if (req.url === '/_matrix/identity/v2/hash_details') {
      return [200, { lookup_pepper: PEPPER, algorithms: ['none', 'sha256'] }];
    }
    if (req.url === '/_matrix/identity/v2/lookup' && body?.algorithm === 'sha256') {
      const mappings: Record<string, string> = {};
      for (const [address, mxid] of this.bindings) {
        const hash = createHash('sha256').update(`${address} email ${PEPPER}`).digest('base64url');
        if ((body.addresses as string[]).includes(hash)) mappings[hash] = mxid;
      }
      return [200, { mappings }];
    }
    if (req.url === '/_matrix/identity/v2/store-invite') {
      this.tokens++;
      return [
        200,
        {
          token: `invite-token-${this.tokens}`,
          public_keys: [
            {
              public_key: this.key.publicKey,
              key_validity_url: `http://${this.name}/_matrix/identity/v2/pubkey/isvalid`,
            },
          ],
          display_name: 'c...@e...',
        },
      ];
    }
    return [404, { errcode: 'M_UNRECOGNIZED' }];
  }

  /** What the identity server signs for an invite when the address is bound (`signed`). */
  signed(mxid: string, token: string, key: SigningKey = this.key): JsonObject {
    return signJson({ mxid, token }, this.name, key) as unknown as JsonObject;
  }
}

describe('federation: third-party invites through an identity server', function () {
  this.timeout(90_000);
  let federation: TestFederation;
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;
  const identity = new FakeIdentityServer();

  async function stateOf(server: FederatedServer, user: TestUser, type: string, stateKey: string) {
    return call(server.server, user, 'GET', `${V3}/rooms/${enc(roomId)}/state/${type}/${enc(stateKey)}`);
  }

  async function invitedInSync(server: FederatedServer, user: TestUser): Promise<JsonObject[]> {
    return until(async () => {
      const sync = await call(server.server, user, 'GET', `${V3}/sync?timeout=0`);
      const invite = (
        sync.body.rooms as { invite?: Record<string, { invite_state: { events: JsonObject[] } }> }
      ).invite?.[roomId];
      return invite?.invite_state.events;
    });
  }

  before(async () => {
    await identity.start();
    federation = await TestFederation.start(2, {
      configure: (config) => {
        config.identity.allow_private_addresses = true;
      },
    });
    [a, b] = federation.servers as [FederatedServer, FederatedServer];
    alice = await createUser(a.server, 'alice');
    bob = await createUser(b.server, 'bob');
    const created = await call(a.server, alice, 'POST', `${V3}/createRoom`, {
      preset: 'private_chat',
      name: '3PID',
    });
    roomId = created.body.room_id as string;
  });
  after(async () => {
    await federation?.stop();
    await identity.stop();
  });

  function inviteByEmail(address: string, extra: JsonObject = {}) {
    return call(a.server, alice, 'POST', `${V3}/rooms/${enc(roomId)}/invite`, {
      id_server: identity.name,
      id_access_token: ID_ACCESS_TOKEN,
      medium: 'email',
      address,
      ...extra,
    });
  }

  it('a bound address: the hashed lookup finds the Matrix ID, which is invited (on another server)', async () => {
    identity.bindings.set('bob@example.org', bob.userId);
    const res = await inviteByEmail('bob@example.org');
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const lookup = identity.requests.find((r) => r.path === '/_matrix/identity/v2/lookup');
    expect(lookup?.authorization).to.equal(`Bearer ${ID_ACCESS_TOKEN}`);
    expect(lookup?.body).to.deep.equal({
      algorithm: 'sha256',
      pepper: PEPPER,
      addresses: [createHash('sha256').update(`bob@example.org email ${PEPPER}`).digest('base64url')],
    });
    await invitedInSync(b, bob);
    const member = await stateOf(a, alice, 'm.room.member', bob.userId);
    expect(member.body.membership).to.equal('invite');
    expect(identity.requests.some((r) => r.path === '/_matrix/identity/v2/store-invite')).to.equal(false);
  });

  it('an unbound address: the identity server stores the invite and the room gets an m.room.third_party_invite', async () => {
    const res = await inviteByEmail('carol@example.org');
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const store = identity.requests.find((r) => r.path === '/_matrix/identity/v2/store-invite');
    expect(store?.body).to.deep.include({
      medium: 'email',
      address: 'carol@example.org',
      room_id: roomId,
      sender: alice.userId,
      room_name: '3PID',
    });
    const invite = await stateOf(a, alice, 'm.room.third_party_invite', 'invite-token-1');
    expect(invite.status, JSON.stringify(invite.body)).to.equal(200);
    expect(invite.body).to.deep.include({ display_name: 'c...@e...', public_key: identity.key.publicKey });
    expect(invite.body.public_keys).to.have.lengthOf(1);
  });

  it('the address is bound later: /3pid/onbind makes the invitee server exchange the invite, and the invitee is invited', async () => {
    const carol = await createUser(b.server, 'carol');
    // The spec says PUT; identity servers (Sydent) send POST: both are served.
    const putWithoutBody = await call(b.server, undefined, 'PUT', '/_matrix/federation/v1/3pid/onbind', {});
    expect(putWithoutBody.status, JSON.stringify(putWithoutBody.body)).to.equal(400);
    const res = await call(b.server, undefined, 'POST', '/_matrix/federation/v1/3pid/onbind', {
      medium: 'email',
      address: 'carol@example.org',
      mxid: carol.userId,
      invites: [
        {
          medium: 'email',
          address: 'carol@example.org',
          mxid: carol.userId,
          room_id: roomId,
          sender: alice.userId,
          signed: identity.signed(carol.userId, 'invite-token-1'),
        },
      ],
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    await invitedInSync(b, carol);
    const member = await stateOf(a, alice, 'm.room.member', carol.userId);
    expect(member.body.membership).to.equal('invite');
    const thirdParty = member.body.third_party_invite as { display_name: string; signed: JsonObject };
    expect(thirdParty.display_name).to.equal('c...@e...');
    expect(thirdParty.signed.token).to.equal('invite-token-1');
    // And carol can join.
    const joined = await call(
      b.server,
      carol,
      'POST',
      `${V3}/join/${enc(roomId)}?server_name=${enc(a.serverName)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
  });

  it('exchange_third_party_invite refuses a signature the invite’s keys did not make, and an unknown token', async () => {
    await inviteByEmail('dave@example.org'); // invite-token-2
    const dave = `@dave:${b.serverName}`;
    const exchange = (signed: JsonObject) =>
      b.context.federation.client.request({
        destination: a.serverName,
        method: 'PUT',
        path: `/_matrix/federation/v1/exchange_third_party_invite/${enc(roomId)}`,
        body: {
          type: 'm.room.member',
          room_id: roomId,
          sender: alice.userId,
          state_key: dave,
          content: { membership: 'invite', third_party_invite: { display_name: 'd', signed } },
        },
      });
    const forged = await exchange(identity.signed(dave, 'invite-token-2', generateSigningKey('0'))).catch(
      (error: unknown) => error,
    );
    expect(forged).to.be.instanceOf(FederationRequestError);
    expect((forged as FederationRequestError).status).to.equal(403);
    const unknown = await exchange(identity.signed(dave, 'no-such-token')).catch((error: unknown) => error);
    expect((unknown as FederationRequestError).status).to.equal(404);
    const member = await stateOf(a, alice, 'm.room.member', dave);
    expect(member.status).to.equal(404);
  });

  it('createRoom with invite_3pid: a bound address is invited, an unbound one gets an m.room.third_party_invite', async () => {
    identity.bindings.set('bob-again@example.org', bob.userId);
    const stored = identity.requests.filter((r) => r.path === '/_matrix/identity/v2/store-invite').length;
    const created = await call(a.server, alice, 'POST', `${V3}/createRoom`, {
      invite_3pid: ['bob-again@example.org', 'erin@example.org'].map((address) => ({
        id_server: identity.name,
        id_access_token: ID_ACCESS_TOKEN,
        medium: 'email',
        address,
      })),
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    const newRoom = created.body.room_id as string;
    const state = await call(a.server, alice, 'GET', `${V3}/rooms/${enc(newRoom)}/state`);
    const events = state.body as unknown as JsonObject[];
    const invites = events.filter((event) => event.type === 'm.room.third_party_invite');
    expect(invites).to.have.lengthOf(1);
    expect((invites[0]!.content as JsonObject).public_key).to.equal(identity.key.publicKey);
    const bobMember = events.find(
      (event) => event.type === 'm.room.member' && event.state_key === bob.userId,
    );
    expect((bobMember?.content as JsonObject | undefined)?.membership).to.equal('invite');
    expect(identity.requests.filter((r) => r.path === '/_matrix/identity/v2/store-invite')).to.have.lengthOf(
      stored + 1,
    );
  });

  it('refuses an invite with only some of the third-party fields (400 M_MISSING_PARAM)', async () => {
    const res = await call(a.server, alice, 'POST', `${V3}/rooms/${enc(roomId)}/invite`, {
      id_server: identity.name,
      medium: 'email',
      address: 'x@example.org',
    });
    expect(res.status).to.equal(400);
    expect(res.body.errcode).to.equal('M_MISSING_PARAM');
  });
});

describe('third-party invites: identity servers on private addresses are refused by default', function () {
  this.timeout(30_000);
  let server: TestHomeserver;
  const identity = new FakeIdentityServer();

  before(async () => {
    await identity.start();
    server = await TestHomeserver.start({ configure: fastAccounts });
  });
  after(async () => {
    await server?.stop();
    await identity.stop();
  });

  it('answers 403 M_FORBIDDEN and never contacts a loopback identity server, by address or by name', async () => {
    const alice = await createUser(server, 'alice');
    const created = await call(server, alice, 'POST', `${V3}/createRoom`, {});
    const port = identity.name.split(':')[1]!;
    // The literal address is refused before any connection; the name when it resolves to loopback.
    for (const idServer of [identity.name, `localhost:${port}`]) {
      const res = await call(
        server,
        alice,
        'POST',
        `${V3}/rooms/${enc(created.body.room_id as string)}/invite`,
        {
          id_server: idServer,
          id_access_token: ID_ACCESS_TOKEN,
          medium: 'email',
          address: 'someone@example.org',
        },
      );
      expect(res.status, `${idServer}: ${JSON.stringify(res.body)}`).to.equal(403);
      expect(res.body.errcode).to.equal('M_FORBIDDEN');
    }
    expect(identity.requests).to.deep.equal([]);
  });
});
