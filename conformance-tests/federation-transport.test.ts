/**
 * Federation transport between real servers over TLS (test CA): key server
 * and notary, signed requests both ways, refusal of bad signatures, wrong
 * destinations and untrusted certificates, EDUs reaching sync, and the
 * outbound queue surviving a destination outage and a restart.
 */

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import { expect } from 'chai';
import { Agent, request } from 'undici';
import { FederationRequestError } from '../federation/federation.js';
import { checkServerKeys } from '../protocol/server-keys.js';
import { verifyJsonSignature } from '../protocol/signing.js';
import { signRequest } from '../protocol/x-matrix.js';
import { call, createUser, setMembershipFixture } from './harness/accounts.js';
import { type FederatedServer, TestFederation } from './harness/test-federation.js';
import { until } from './harness/until.js';

describe('federation transport (TLS, test CA)', function () {
  this.timeout(60_000);
  let federation: TestFederation;
  let a: FederatedServer;
  let b: FederatedServer;
  let tlsAgent: Agent;

  before(async () => {
    federation = await TestFederation.start(2);
    [a, b] = federation.servers as [FederatedServer, FederatedServer];
    tlsAgent = new Agent({
      connect: { ca: [...rootCertificates, readFileSync(federation.certificates.caFile, 'utf8')] },
    });
  });
  after(async () => {
    await tlsAgent?.close();
    await federation?.stop();
  });

  async function fetchJson(
    server: FederatedServer,
    method: 'GET' | 'POST' | 'PUT',
    uri: string,
    init: { body?: unknown; authorization?: string } = {},
  ) {
    const response = await request(`${server.federationUrl}${uri}`, {
      dispatcher: tlsAgent,
      method,
      headers: {
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(init.authorization ? { authorization: init.authorization } : {}),
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
  }

  it('publishes self-signed keys, valid for a while, over TLS', async () => {
    const { status, body } = await fetchJson(a, 'GET', '/_matrix/key/v2/server');
    expect(status).to.equal(200);
    const verdict = checkServerKeys(body, a.serverName);
    expect(verdict.ok, JSON.stringify(verdict)).to.equal(true);
    expect(body.valid_until_ts as number).to.be.greaterThan(Date.now() + 3600_000);
    expect(Object.keys(body.verify_keys as object)).to.deep.equal([a.context.signingKey.keyId]);
  });

  it('also serves its keys at the deprecated /key/v2/server/{keyId}, which Synapse 1.67 fetches', async () => {
    const keyId = a.context.signingKey.keyId;
    const { status, body } = await fetchJson(a, 'GET', `/_matrix/key/v2/server/${encodeURIComponent(keyId)}`);
    expect(status).to.equal(200);
    expect(checkServerKeys(body, a.serverName).ok).to.equal(true);
    expect(Object.keys(body.verify_keys as object)).to.deep.equal([keyId]);
  });

  it('serves as a notary: GET and POST /key/v2/query give the origin-signed keys, countersigned', async () => {
    const viaGet = await fetchJson(b, 'GET', `/_matrix/key/v2/query/${encodeURIComponent(a.serverName)}`);
    const viaPost = await fetchJson(b, 'POST', '/_matrix/key/v2/query', {
      body: { server_keys: { [a.serverName]: {}, 'unreachable.invalid': {} } },
    });
    for (const response of [viaGet, viaPost]) {
      expect(response.status).to.equal(200);
      const list = response.body.server_keys as Record<string, unknown>[];
      expect(list).to.have.length(1);
      const keys = list[0]!;
      expect(checkServerKeys(keys, a.serverName).ok).to.equal(true);
      const bKey = b.context.signingKey;
      expect(verifyJsonSignature(keys, b.serverName, bKey.keyId, bKey.publicKey).ok).to.equal(true);
    }
  });

  it('exchanges signed requests both ways; each side learns the other key', async () => {
    const fromA = await a.context.federation.client.request<{ pdus: object }>({
      destination: b.serverName,
      method: 'PUT',
      path: '/_matrix/federation/v1/send/exchange-1',
      body: { origin: a.serverName, origin_server_ts: Date.now(), pdus: [], edus: [] },
    });
    expect(fromA).to.deep.equal({ pdus: {} });
    const fromB = await b.context.federation.client.request({
      destination: a.serverName,
      method: 'PUT',
      path: '/_matrix/federation/v1/send/exchange-1',
      body: { origin: b.serverName, origin_server_ts: Date.now(), pdus: [], edus: [] },
    });
    expect(fromB).to.deep.equal({ pdus: {} });
    const known = await b.context.storage.federation.getServerKey(a.serverName, a.context.signingKey.keyId);
    expect(known?.publicKey).to.equal(a.context.signingKey.publicKey);
  });

  it('accepts a full-size transaction, larger than the client API body limit', async () => {
    const edus = Array.from({ length: 30 }, (_, n) => ({
      edu_type: 'org.example.big',
      content: { n, pad: 'x'.repeat(60_000) },
    }));
    const answer = await a.context.federation.client.request({
      destination: b.serverName,
      method: 'PUT',
      path: '/_matrix/federation/v1/send/big-1',
      body: { origin: a.serverName, origin_server_ts: Date.now(), pdus: [], edus },
    });
    expect(answer).to.deep.equal({ pdus: {} });
  });

  describe('refuses unauthenticated requests with M_UNAUTHORIZED', () => {
    const body = () => ({ origin: a.serverName, origin_server_ts: Date.now(), pdus: [] });

    it('a forged signature', async () => {
      const uri = '/_matrix/federation/v1/send/forged';
      const content = body();
      const header = signRequest(
        {
          method: 'PUT',
          uri,
          origin: a.serverName,
          destination: b.serverName,
          content: { ...content, pdus: [1] },
        },
        a.context.signingKey,
      );
      const res = await fetchJson(b, 'PUT', uri, { body: content, authorization: header });
      expect(res.status).to.equal(401);
      expect(res.body.errcode).to.equal('M_UNAUTHORIZED');
    });

    it('a request signed for another destination', async () => {
      const uri = '/_matrix/federation/v1/send/misdirected';
      const content = body();
      const header = signRequest(
        { method: 'PUT', uri, origin: a.serverName, destination: 'elsewhere.example', content },
        a.context.signingKey,
      );
      const res = await fetchJson(b, 'PUT', uri, { body: content, authorization: header });
      expect(res.status).to.equal(401);
      expect(res.body.errcode).to.equal('M_UNAUTHORIZED');
    });

    it('no Authorization, or a key the origin does not have', async () => {
      const uri = '/_matrix/federation/v1/send/unsigned';
      expect((await fetchJson(b, 'PUT', uri, { body: body() })).body.errcode).to.equal('M_UNAUTHORIZED');
      const header = `X-Matrix origin="${a.serverName}",destination="${b.serverName}",key="ed25519:nope",sig="AAAA"`;
      const res = await fetchJson(b, 'PUT', uri, { body: body(), authorization: header });
      expect(res.status).to.equal(401);
      expect(res.body.errcode).to.equal('M_UNAUTHORIZED');
    });
  });

  it('refuses a transaction whose body names another origin than the signature', async () => {
    const error = (await a.context.federation.client
      .request({
        destination: b.serverName,
        method: 'PUT',
        path: '/_matrix/federation/v1/send/spoofed-origin',
        body: { origin: 'someone.else', origin_server_ts: Date.now(), pdus: [] },
      })
      .catch((e: unknown) => e)) as FederationRequestError;
    expect([error.status, error.errcode]).to.deep.equal([403, 'M_FORBIDDEN']);
  });

  it('a server on the deny list is refused both ways', async () => {
    const guarded = await federation.startServer({
      configure: (config) => {
        config.federation.domain_denylist = [a.serverName];
      },
    });
    try {
      const inbound = (await a.context.federation.client
        .request({
          destination: guarded.serverName,
          method: 'PUT',
          path: '/_matrix/federation/v1/send/denied',
          body: { origin: a.serverName, origin_server_ts: Date.now(), pdus: [] },
        })
        .catch((e: unknown) => e)) as FederationRequestError;
      expect([inbound.status, inbound.errcode]).to.deep.equal([403, 'M_FORBIDDEN']);
      const outbound = (await guarded.context.federation.client
        .request({ destination: a.serverName, method: 'GET', path: '/_matrix/federation/v1/version' })
        .catch((e: unknown) => e)) as FederationRequestError;
      expect(outbound.errcode).to.equal('M_FORBIDDEN');
      // B is not on the list.
      await guarded.context.federation.client.request({
        destination: b.serverName,
        method: 'GET',
        path: '/_matrix/federation/v1/version',
      });
    } finally {
      await guarded.server.stop();
    }
  });

  it('refuses a server whose certificate it cannot verify (no test CA trusted)', async () => {
    const stranger = await federation.startServer({ untrustingCa: true });
    try {
      const error = await stranger.context.federation.client
        .request({
          destination: a.serverName,
          method: 'GET',
          path: '/_matrix/federation/v1/version',
          signed: false,
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).to.be.instanceOf(FederationRequestError);
      expect((error as FederationRequestError).status).to.equal(0);
      expect((error as Error).message).to.match(/certificate|self[- ]signed|issuer/i);
    } finally {
      await stranger.server.stop();
    }
  });

  it('a typing EDU from A reaches the sync of a user on B', async () => {
    const bob = await createUser(b.server, 'bob');
    const created = await call(b.server, bob, 'POST', '/_matrix/client/v3/createRoom', {});
    const roomId = created.body.room_id as string;
    const alice = `@alice:${a.serverName}`;
    // Until joins over federation exist in this test, A's user is made a member directly.
    await setMembershipFixture(b.server, roomId, alice, 'join');
    const first = await call(b.server, bob, 'GET', '/_matrix/client/v3/sync?timeout=0');
    const since = first.body.next_batch as string;
    await a.context.federation.queue.sendEdu(b.serverName, {
      edu_type: 'm.typing',
      content: { room_id: roomId, user_id: alice, typing: true },
    });
    const typing = await until(async () => {
      const res = await call(b.server, bob, 'GET', `/_matrix/client/v3/sync?timeout=2000&since=${since}`);
      const room = (
        res.body.rooms as {
          join?: Record<
            string,
            { ephemeral?: { events: { type: string; content: { user_ids: string[] } }[] } }
          >;
        }
      )?.join?.[roomId];
      return room?.ephemeral?.events.find((event) => event.type === 'm.typing')?.content.user_ids;
    });
    expect(typing).to.deep.equal([alice]);
  });

  it('typing, read receipts and presence of users in a room joined over federation reach the other server sync', async () => {
    const carol = await createUser(a.server, 'carol');
    const dave = await createUser(b.server, 'dave');
    const created = await call(a.server, carol, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'public_chat',
    });
    const roomId = created.body.room_id as string;
    const room = encodeURIComponent(roomId);
    const joined = await call(
      b.server,
      dave,
      'POST',
      `/_matrix/client/v3/join/${room}?server_name=${encodeURIComponent(a.serverName)}`,
      {},
    );
    expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
    await until(async () =>
      (await a.context.storage.memberships.getMembership(roomId, dave.userId))?.membership === 'join'
        ? true
        : undefined,
    );
    const ephemeralOf = async (server: FederatedServer, user: typeof carol, type: string) => {
      const res = await call(server.server, user, 'GET', '/_matrix/client/v3/sync?timeout=0');
      const rooms = res.body.rooms as
        | {
            join?: Record<
              string,
              { ephemeral?: { events: { type: string; content: Record<string, unknown> }[] } }
            >;
          }
        | undefined;
      return rooms?.join?.[roomId]?.ephemeral?.events.find((event) => event.type === type)?.content;
    };

    const typing = await call(
      a.server,
      carol,
      'PUT',
      `/_matrix/client/v3/rooms/${room}/typing/${encodeURIComponent(carol.userId)}`,
      {
        typing: true,
        timeout: 20_000,
      },
    );
    expect(typing.status).to.equal(200);
    const seenByDave = await until(async () => {
      const content = await ephemeralOf(b, dave, 'm.typing');
      return (content?.user_ids as string[] | undefined)?.includes(carol.userId) ? content : undefined;
    });
    expect(seenByDave.user_ids).to.deep.equal([carol.userId]);

    const sent = await call(
      a.server,
      carol,
      'PUT',
      `/_matrix/client/v3/rooms/${room}/send/m.room.message/t1`,
      {
        msgtype: 'm.text',
        body: 'read me',
      },
    );
    const eventId = sent.body.event_id as string;
    await until(async () => ((await b.context.storage.events.getEvent(eventId)) ? true : undefined));
    const receipt = await call(
      b.server,
      dave,
      'POST',
      `/_matrix/client/v3/rooms/${room}/receipt/m.read/${encodeURIComponent(eventId)}`,
      {},
    );
    expect(receipt.status, JSON.stringify(receipt.body)).to.equal(200);
    const receipts = await until(async () => {
      const content = await ephemeralOf(a, carol, 'm.receipt');
      const forEvent = content?.[eventId] as Record<string, Record<string, unknown>> | undefined;
      return forEvent?.['m.read']?.[dave.userId] ? forEvent : undefined;
    });
    expect(receipts['m.read']).to.have.property(dave.userId);

    const status = await call(
      a.server,
      carol,
      'PUT',
      `/_matrix/client/v3/presence/${encodeURIComponent(carol.userId)}/status`,
      {
        presence: 'unavailable',
        status_msg: 'out for lunch 🥪',
      },
    );
    expect(status.status).to.equal(200);
    // Seen in B's sync.
    const presence = await until(async () => {
      const res = await call(b.server, dave, 'GET', '/_matrix/client/v3/sync?timeout=0');
      const events = (
        res.body.presence as { events?: { sender: string; content: Record<string, unknown> }[] } | undefined
      )?.events;
      const content = events?.find((event) => event.sender === carol.userId)?.content;
      return content?.status_msg === 'out for lunch 🥪' ? content : undefined;
    });
    expect(presence.presence).to.equal('unavailable');
    // And asked directly (a user of another server has no account on B).
    const direct = await call(
      b.server,
      dave,
      'GET',
      `/_matrix/client/v3/presence/${encodeURIComponent(carol.userId)}/status`,
    );
    expect(direct.status, JSON.stringify(direct.body)).to.equal(200);
    expect(direct.body).to.include({ presence: 'unavailable', status_msg: 'out for lunch 🥪' });
  });

  it('ignores a typing EDU for a user of another server', async () => {
    const roomId = '!somewhere:example.org';
    await b.context.federation.edus.dispatch(a.serverName, {
      edu_type: 'm.typing',
      content: { room_id: roomId, user_id: '@mallory:elsewhere.example', typing: true },
    });
    expect(b.context.typing.typingUsers(roomId)).to.deep.equal([]);
  });
});

describe('federation outbound queue across outages and restarts', function () {
  this.timeout(60_000);
  let federation: TestFederation;
  const dataDirs: string[] = [];

  before(async () => {
    // Long backoffs: only a wake-up (the destination contacting us) can make delivery prompt.
    federation = await TestFederation.start(0);
  });
  after(async () => {
    await federation?.stop();
    await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('keeps what B missed while down, across a restart of A, and delivers it once, in order, when B is back', async () => {
    const slowRetries = {
      configure: (config: import('../server/config/index.js').MyelinConfig) => {
        config.federation.retry_min_backoff_ms = 60_000;
        config.federation.retry_max_backoff_ms = 600_000;
      },
    };
    const dirA = await mkdtemp(path.join(tmpdir(), 'myelin-fed-a-'));
    const dirB = await mkdtemp(path.join(tmpdir(), 'myelin-fed-b-'));
    dataDirs.push(dirA, dirB);
    let a = await federation.startServer({ ...slowRetries, dataDir: dirA });
    let b = await federation.startServer({ ...slowRetries, dataDir: dirB });
    const portA = a.federationPort;
    const portB = b.federationPort;
    await b.server.stop();

    for (let i = 0; i < 3; i++) {
      await a.context.federation.queue.sendEdu(b.serverName, {
        edu_type: 'org.example.probe',
        content: { n: i },
      });
    }
    const retry = await until(
      async () => (await a.context.storage.federation.getRetry(b.serverName)) ?? undefined,
    );
    expect(retry.backoffMs).to.equal(60_000);
    expect(retry.retryAfterTs).to.be.greaterThan(Date.now() + 25_000);

    await a.server.stop();
    a = await federation.startServer({ ...slowRetries, dataDir: dirA, federationPort: portA });
    b = await federation.startServer({ ...slowRetries, dataDir: dirB, federationPort: portB });
    const received: unknown[] = [];
    b.context.federation.edus.register('org.example.probe', async (origin, content) => {
      expect(origin).to.equal(a.serverName);
      received.push(content);
    });
    // B contacts A: A retries B at once instead of waiting out the backoff.
    await b.context.federation.client.request({
      destination: a.serverName,
      method: 'PUT',
      path: '/_matrix/federation/v1/send/hello-again',
      body: { origin: b.serverName, origin_server_ts: Date.now(), pdus: [] },
    });
    await until(async () => (received.length >= 3 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received).to.deep.equal([{ n: 0 }, { n: 1 }, { n: 2 }]);
    expect(await a.context.storage.federation.getRetry(b.serverName)).to.equal(null);
    expect(await a.context.storage.federation.claimTransaction(b.serverName, 50, 100)).to.equal(null);
    await a.server.stop();
    await b.server.stop();
  });
});
