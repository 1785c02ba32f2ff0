import { expect } from 'chai';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';

const alice = '@alice:example.org';

export function describeLoginTokenStoreContract(makeStorage: StorageFactory): void {
  describe('LoginTokenStore', () => {
    const storage = useFreshStorage(makeStorage);
    const loginTokens = () => storage().loginTokens;
    beforeEach(async () => {
      await storage().accounts.createAccount({ userId: alice, createdTs: 1 });
    });

    it('gives the user once, then never again', async () => {
      await loginTokens().createLoginToken({ tokenHash: 'h1', userId: alice, createdTs: 0, expiresTs: 1000 });
      expect(await loginTokens().consumeLoginToken('h1', 10)).to.equal(alice);
      expect(await loginTokens().consumeLoginToken('h1', 11)).to.equal(null);
      expect(await loginTokens().consumeLoginToken('never-issued', 11)).to.equal(null);
    });

    it('gives the user to exactly one of many consumers in the same tick', async () => {
      await loginTokens().createLoginToken({ tokenHash: 'h1', userId: alice, createdTs: 0, expiresTs: 1000 });
      const results = await Promise.all(
        Array.from({ length: 10 }, () => loginTokens().consumeLoginToken('h1', 10)),
      );
      expect(results.filter((r) => r === alice)).to.have.length(1);
      expect(results.filter((r) => r === null)).to.have.length(9);
    });

    it('is valid strictly before its expiry time, and an expired token is gone once presented', async () => {
      await loginTokens().createLoginToken({ tokenHash: 'a', userId: alice, createdTs: 0, expiresTs: 1000 });
      await loginTokens().createLoginToken({ tokenHash: 'b', userId: alice, createdTs: 0, expiresTs: 1000 });
      expect(await loginTokens().consumeLoginToken('a', 999)).to.equal(alice);
      expect(await loginTokens().consumeLoginToken('b', 1000)).to.equal(null);
      // Presented expired, it was deleted: nothing is left for the sweep.
      expect(await loginTokens().deleteExpiredLoginTokens(5000)).to.equal(0);
    });

    it('sweeps the tokens expired at a given time and keeps the others', async () => {
      for (const [tokenHash, expiresTs] of [
        ['old', 100],
        ['edge', 200],
        ['fresh', 201],
      ] as const) {
        await loginTokens().createLoginToken({ tokenHash, userId: alice, createdTs: 0, expiresTs });
      }
      expect(await loginTokens().deleteExpiredLoginTokens(200)).to.equal(2);
      expect(await loginTokens().consumeLoginToken('edge', 0)).to.equal(null);
      expect(await loginTokens().consumeLoginToken('fresh', 200)).to.equal(alice);
    });

    it('refuses a stored hash with CONFLICT and an unknown user with MISSING_REFERENCE', async () => {
      await loginTokens().createLoginToken({ tokenHash: 'h', userId: alice, createdTs: 0, expiresTs: 10 });
      await expectStorageError(
        loginTokens().createLoginToken({ tokenHash: 'h', userId: alice, createdTs: 1, expiresTs: 20 }),
        'CONFLICT',
      );
      await expectStorageError(
        loginTokens().createLoginToken({
          tokenHash: 'x',
          userId: '@ghost:example.org',
          createdTs: 1,
          expiresTs: 20,
        }),
        'MISSING_REFERENCE',
      );
      expect(await loginTokens().consumeLoginToken('h', 5)).to.equal(alice);
    });
  });
}
