import { expect } from 'chai';
import { pino } from 'pino';
import type { Pdu } from '../protocol/events.js';
import { hashAndSignEvent } from '../protocol/hashing.js';
import { roomVersionRules } from '../protocol/room-versions.js';
import { buildServerKeys } from '../protocol/server-keys.js';
import { generateSigningKey, type SigningKey, signJson } from '../protocol/signing.js';
import { openSqliteStorage, type SqliteStorage } from '../storage/sqlite/sqlite-storage.js';
import { type FederationClient, type FederationRequest, FederationRequestError } from './federation.js';
import { createKeyRing } from './key-ring.js';

const remoteKey = generateSigningKey('r1');
const notaryKey = generateSigningKey('n1');
const ownKey = generateSigningKey('me');

/** Servers answering /key/v2/server and a notary answering /key/v2/query. */
function keyServers(options: { remoteUp: boolean; validUntilTs: number; notaryKeyForRemote?: SigningKey }) {
  const asked: string[] = [];
  const client: FederationClient = {
    async request<T>(req: FederationRequest): Promise<T> {
      asked.push(`${req.method} ${req.destination}${req.path}`);
      if (req.destination === 'remote.example' && options.remoteUp) {
        return buildServerKeys({
          serverName: 'remote.example',
          key: remoteKey,
          oldKeys: [],
          validUntilTs: options.validUntilTs,
        }) as T;
      }
      if (req.destination === 'notary.example' && req.path === '/_matrix/key/v2/server') {
        return buildServerKeys({
          serverName: 'notary.example',
          key: notaryKey,
          oldKeys: [],
          validUntilTs: Date.now() + 3600_000,
        }) as T;
      }
      if (req.destination === 'notary.example' && req.path === '/_matrix/key/v2/query') {
        const keys = buildServerKeys({
          serverName: 'remote.example',
          key: remoteKey,
          oldKeys: [],
          validUntilTs: options.validUntilTs,
        });
        return {
          server_keys: [signJson(keys, 'notary.example', options.notaryKeyForRemote ?? notaryKey)],
        } as T;
      }
      throw new FederationRequestError(req.destination, 0, undefined, 'unreachable');
    },
    async close() {},
  };
  return { client, asked };
}

describe('key ring', () => {
  let storage: SqliteStorage;
  beforeEach(async () => {
    storage = await openSqliteStorage({ path: ':memory:' });
  });
  afterEach(() => storage.close());

  function ringWith(client: FederationClient, trusted: string[] = []) {
    return createKeyRing({
      serverName: 'me.example',
      signingKey: ownKey,
      oldKeys: [{ keyId: 'ed25519:older', publicKey: remoteKey.publicKey, expiredTs: 500 }],
      ownValidUntilTs: () => Date.now() + 1000,
      store: storage.federation,
      client,
      trustedKeyServers: trusted,
      log: pino({ level: 'silent' }),
    });
  }

  it("knows this server's keys, old ones until they expired, without asking anyone", async () => {
    const servers = keyServers({ remoteUp: false, validUntilTs: 0 });
    const ring = ringWith(servers.client);
    expect(await ring.verifyKeyFor('me.example', ownKey.keyId, Date.now())).to.equal(ownKey.publicKey);
    expect(await ring.verifyKeyFor('me.example', 'ed25519:older', 400)).to.equal(remoteKey.publicKey);
    expect(await ring.verifyKeyFor('me.example', 'ed25519:older', 600)).to.equal(undefined);
    expect(servers.asked).to.deep.equal([]);
  });

  it('fetches a server key once, then serves it from storage', async () => {
    const servers = keyServers({ remoteUp: true, validUntilTs: Date.now() + 3600_000 });
    const ring = ringWith(servers.client);
    const [first, second] = await Promise.all([
      ring.verifyKeyFor('remote.example', remoteKey.keyId, Date.now()),
      ring.verifyKeyFor('remote.example', remoteKey.keyId, Date.now()),
    ]);
    expect(first).to.equal(remoteKey.publicKey);
    expect(second).to.equal(remoteKey.publicKey);
    expect(await ring.verifyKeyFor('remote.example', remoteKey.keyId, Date.now())).to.equal(
      remoteKey.publicKey,
    );
    expect(servers.asked).to.deep.equal(['GET remote.example/_matrix/key/v2/server']);
  });

  it('enforces valid_until_ts only when asked (room versions 5+)', async () => {
    const validUntilTs = Date.now() + 1000;
    const ring = ringWith(keyServers({ remoteUp: true, validUntilTs }).client);
    expect(await ring.verifyKeyFor('remote.example', remoteKey.keyId, validUntilTs + 1)).to.equal(undefined);
    expect(
      await ring.verifyKeyFor('remote.example', remoteKey.keyId, validUntilTs + 1, {
        enforceValidity: false,
      }),
    ).to.equal(remoteKey.publicKey);
  });

  it('trusts a key at most 7 days ahead, whatever valid_until_ts it claims', async () => {
    const day = 24 * 3600_000;
    const ring = ringWith(keyServers({ remoteUp: true, validUntilTs: Date.now() + 30 * day }).client);
    expect(await ring.verifyKeyFor('remote.example', remoteKey.keyId, Date.now() + 6 * day)).to.equal(
      remoteKey.publicKey,
    );
    expect(await ring.verifyKeyFor('remote.example', remoteKey.keyId, Date.now() + 8 * day)).to.equal(
      undefined,
    );
  });

  it('asks the trusted notaries when the server does not answer, checking the notary signature', async () => {
    const good = keyServers({ remoteUp: false, validUntilTs: Date.now() + 3600_000 });
    expect(
      await ringWith(good.client, ['notary.example']).verifyKeyFor(
        'remote.example',
        remoteKey.keyId,
        Date.now(),
      ),
    ).to.equal(remoteKey.publicKey);
    await storage.close();
    storage = await openSqliteStorage({ path: ':memory:' });
    const forged = keyServers({
      remoteUp: false,
      validUntilTs: Date.now() + 3600_000,
      notaryKeyForRemote: generateSigningKey('n1'),
    });
    expect(
      await ringWith(forged.client, ['notary.example']).verifyKeyFor(
        'remote.example',
        remoteKey.keyId,
        Date.now(),
      ),
    ).to.equal(undefined);
  });

  it('checks event signatures with fetched keys, by room version rules', async () => {
    const ring = ringWith(keyServers({ remoteUp: true, validUntilTs: Date.now() + 3600_000 }).client);
    const rules = roomVersionRules('10');
    const pdu = hashAndSignEvent(
      {
        type: 'm.room.message',
        room_id: '!room:remote.example',
        sender: '@a:remote.example',
        origin_server_ts: Date.now(),
        content: { body: 'hi' },
        depth: 3,
        prev_events: [],
        auth_events: [],
      },
      'remote.example',
      remoteKey,
      rules,
    );
    expect((await ring.verifyEventSignatures(pdu, rules)).ok).to.equal(true);
    expect((await ring.checkReceivedEvent(pdu, rules)).outcome).to.equal('accept');
    const tamperedContent: Pdu = { ...pdu, content: { body: 'changed' } };
    expect((await ring.checkReceivedEvent(tamperedContent, rules)).outcome).to.equal('redact');
    const otherSender: Pdu = { ...pdu, sender: '@a:unknown.example' };
    const verdict = await ring.verifyEventSignatures(otherSender, rules);
    expect(verdict.ok).to.equal(false);
    const tooLate: Pdu = hashAndSignEvent(
      { ...pdu, origin_server_ts: Date.now() + 7200_000, signatures: {} },
      'remote.example',
      remoteKey,
      rules,
    );
    expect((await ring.verifyEventSignatures(tooLate, rules)).ok).to.equal(false);
    expect((await ring.verifyEventSignatures(tooLate, roomVersionRules('4'))).ok).to.equal(true);
  });
});
