import { expect } from 'chai';
import { type StorageFactory, useFreshStorage } from './contract-harness.js';

const remote = 'remote.example.org';

export function describeFederationStoreContract(makeStorage: StorageFactory): void {
  describe('FederationStore', () => {
    const storage = useFreshStorage(makeStorage);

    it('keeps server keys and the latest key response; a refetch replaces them', async () => {
      const store = storage().federation;
      expect(await store.getServerKey(remote, 'ed25519:a')).to.equal(null);
      await store.putServerKeys(
        remote,
        [
          { serverName: remote, keyId: 'ed25519:a', publicKey: 'AAAA', validUntilTs: 100, expired: false },
          { serverName: remote, keyId: 'ed25519:old', publicKey: 'BBBB', validUntilTs: 50, expired: true },
        ],
        { server_name: remote, valid_until_ts: 100 },
        10,
      );
      expect(await store.getServerKey(remote, 'ed25519:old')).to.deep.equal({
        serverName: remote,
        keyId: 'ed25519:old',
        publicKey: 'BBBB',
        validUntilTs: 50,
        expired: true,
      });
      await store.putServerKeys(
        remote,
        [{ serverName: remote, keyId: 'ed25519:a', publicKey: 'AAAA', validUntilTs: 200, expired: false }],
        { server_name: remote, valid_until_ts: 200 },
        20,
      );
      expect((await store.getServerKey(remote, 'ed25519:a'))?.validUntilTs).to.equal(200);
      expect(await store.getServerKeyResponse(remote)).to.deep.equal({
        response: { server_name: remote, valid_until_ts: 200 },
        validUntilTs: 200,
        fetchedTs: 20,
      });
    });

    it('batches queued items per destination in order, at most N PDUs and M EDUs', async () => {
      const store = storage().federation;
      await store.enqueueOutbound([
        ...Array.from({ length: 5 }, (_, i) => ({ destination: 'a', kind: 'pdu' as const, json: `"p${i}"` })),
        ...Array.from({ length: 3 }, (_, i) => ({ destination: 'a', kind: 'edu' as const, json: `"e${i}"` })),
        { destination: 'b', kind: 'pdu', json: '"b0"' },
      ]);
      const first = await store.claimTransaction('a', 2, 2);
      expect(first?.pdus).to.deep.equal(['"p0"', '"p1"']);
      expect(first?.edus).to.deep.equal(['"e0"', '"e1"']);
      // Not completed: the same transaction, same ID, comes back (a resend after a failure or restart).
      expect(await store.claimTransaction('a', 2, 2)).to.deep.equal(first);
      await store.completeTransaction('a', first!.txnId);
      const second = await store.claimTransaction('a', 2, 2);
      expect(second?.txnId).to.not.equal(first?.txnId);
      expect(second?.pdus).to.deep.equal(['"p2"', '"p3"']);
      expect(second?.edus).to.deep.equal(['"e2"']);
      await store.completeTransaction('a', second!.txnId);
      const third = await store.claimTransaction('a', 2, 2);
      await store.completeTransaction('a', third!.txnId);
      expect(await store.claimTransaction('a', 2, 2)).to.equal(null);
      expect((await store.claimTransaction('b', 2, 2))?.pdus).to.deep.equal(['"b0"']);
    });

    it('drops unclaimed items past their expiry at the next claim, never a claimed one', async () => {
      const store = storage().federation;
      await store.enqueueOutbound([
        { destination: 'a', kind: 'edu', json: '"typing"', expiresTs: 100 },
        { destination: 'a', kind: 'edu', json: '"receipt"' },
      ]);
      const claimed = await store.claimTransaction('a', 10, 10, 50);
      expect(claimed?.edus).to.deep.equal(['"typing"', '"receipt"']);
      // Claimed before it expired: resent as it was.
      expect((await store.claimTransaction('a', 10, 10, 500))?.edus).to.deep.equal(['"typing"', '"receipt"']);
      await store.completeTransaction('a', claimed!.txnId);
      await store.enqueueOutbound([
        { destination: 'a', kind: 'edu', json: '"late typing"', expiresTs: 100 },
        { destination: 'a', kind: 'pdu', json: '"pdu"' },
      ]);
      const next = await store.claimTransaction('a', 10, 10, 101);
      expect(next?.edus).to.deep.equal([]);
      expect(next?.pdus).to.deep.equal(['"pdu"']);
    });

    it('lists pending destinations with their retry state', async () => {
      const store = storage().federation;
      await store.enqueueOutbound([
        { destination: 'a', kind: 'pdu', json: '1' },
        { destination: 'b', kind: 'edu', json: '2' },
      ]);
      await store.setRetry('b', { retryAfterTs: 1000, backoffMs: 500 });
      const pending = (await store.pendingDestinations()).sort((x, y) =>
        x.destination.localeCompare(y.destination),
      );
      expect(pending).to.deep.equal([
        { destination: 'a', retry: null },
        { destination: 'b', retry: { retryAfterTs: 1000, backoffMs: 500 } },
      ]);
      await store.setRetry('b', null);
      expect(await store.getRetry('b')).to.equal(null);
    });

    it('remembers answered inbound transactions per origin until pruned', async () => {
      const store = storage().federation;
      await store.putInboundTransaction('a', 't1', { pdus: {} }, 100);
      expect(await store.getInboundTransaction('a', 't1')).to.deep.equal({ pdus: {} });
      expect(await store.getInboundTransaction('b', 't1')).to.equal(null);
      await store.pruneInboundTransactions(101);
      expect(await store.getInboundTransaction('a', 't1')).to.equal(null);
    });
  });
}
