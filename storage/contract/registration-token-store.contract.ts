import { expect } from 'chai';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';

export function describeRegistrationTokenStoreContract(makeStorage: StorageFactory): void {
  describe('RegistrationTokenStore', () => {
    const storage = useFreshStorage(makeStorage);
    const tokens = () => storage().registrationTokens;

    it('creates, lists, updates and deletes tokens', async () => {
      await tokens().createRegistrationToken({ token: 'beta', usesAllowed: 5, expiryTs: 1000 });
      await tokens().createRegistrationToken({ token: 'alpha', usesAllowed: null, expiryTs: null });
      expect(await tokens().getRegistrationToken('beta')).to.deep.equal({
        token: 'beta',
        usesAllowed: 5,
        pending: 0,
        completed: 0,
        expiryTs: 1000,
      });
      expect((await tokens().listRegistrationTokens()).map((t) => t.token)).to.deep.equal(['alpha', 'beta']);

      await tokens().updateRegistrationToken('beta', { usesAllowed: null });
      expect(await tokens().getRegistrationToken('beta')).to.include({ usesAllowed: null, expiryTs: 1000 });
      await tokens().updateRegistrationToken('beta', { expiryTs: null, usesAllowed: 1 });
      expect(await tokens().getRegistrationToken('beta')).to.include({ usesAllowed: 1, expiryTs: null });
      await tokens().updateRegistrationToken('beta', {});
      expect(await tokens().getRegistrationToken('beta')).to.include({ usesAllowed: 1, expiryTs: null });

      await tokens().deleteRegistrationToken('alpha');
      expect(await tokens().getRegistrationToken('alpha')).to.equal(null);
      expect(await tokens().listRegistrationTokens()).to.have.length(1);
    });

    it('refuses an existing token with CONFLICT and unknown tokens with NOT_FOUND', async () => {
      await tokens().createRegistrationToken({ token: 't', usesAllowed: 1, expiryTs: null });
      await expectStorageError(
        tokens().createRegistrationToken({ token: 't', usesAllowed: 9, expiryTs: null }),
        'CONFLICT',
      );
      expect(await tokens().getRegistrationToken('t')).to.include({ usesAllowed: 1 });
      await expectStorageError(tokens().updateRegistrationToken('nope', { usesAllowed: 2 }), 'NOT_FOUND');
      await expectStorageError(tokens().updateRegistrationToken('nope', {}), 'NOT_FOUND');
      await expectStorageError(tokens().deleteRegistrationToken('nope'), 'NOT_FOUND');
    });

    it('grants exactly usesAllowed of many reservations made in the same tick', async () => {
      await tokens().createRegistrationToken({ token: 'two', usesAllowed: 2, expiryTs: null });
      const results = await Promise.all(
        Array.from({ length: 8 }, () => tokens().reserveRegistrationTokenUse('two', 0)),
      );
      expect(results.filter(Boolean)).to.have.length(2);
      expect(await tokens().getRegistrationToken('two')).to.include({ pending: 2, completed: 0 });
    });

    it('counts pending and completed uses against usesAllowed, and takes released uses back', async () => {
      await tokens().createRegistrationToken({ token: 'two', usesAllowed: 2, expiryTs: null });
      expect(await tokens().reserveRegistrationTokenUse('two', 0)).to.equal(true);
      await tokens().completeRegistrationTokenUse('two');
      expect(await tokens().getRegistrationToken('two')).to.include({ pending: 0, completed: 1 });
      expect(await tokens().reserveRegistrationTokenUse('two', 0)).to.equal(true);
      expect(await tokens().reserveRegistrationTokenUse('two', 0)).to.equal(false);
      expect(await tokens().getRegistrationToken('two')).to.include({ pending: 1, completed: 1 });

      await tokens().releaseRegistrationTokenUse('two');
      expect(await tokens().getRegistrationToken('two')).to.include({ pending: 0, completed: 1 });
      // Releasing with nothing pending never goes below zero.
      await tokens().releaseRegistrationTokenUse('two');
      expect(await tokens().getRegistrationToken('two')).to.include({ pending: 0 });
      expect(await tokens().reserveRegistrationTokenUse('two', 0)).to.equal(true);
      await tokens().completeRegistrationTokenUse('two');
      expect(await tokens().getRegistrationToken('two')).to.include({ pending: 0, completed: 2 });
      expect(await tokens().reserveRegistrationTokenUse('two', 0)).to.equal(false);

      // Raising the limit makes the token usable again; lowering it below the uses made closes it.
      await tokens().updateRegistrationToken('two', { usesAllowed: 3 });
      expect(await tokens().reserveRegistrationTokenUse('two', 0)).to.equal(true);
      await tokens().releaseRegistrationTokenUse('two');
      await tokens().updateRegistrationToken('two', { usesAllowed: 1 });
      expect(await tokens().reserveRegistrationTokenUse('two', 0)).to.equal(false);
    });

    it('never runs out without a limit, and refuses unknown tokens', async () => {
      await tokens().createRegistrationToken({ token: 'open', usesAllowed: null, expiryTs: null });
      const results = await Promise.all(
        Array.from({ length: 20 }, () => tokens().reserveRegistrationTokenUse('open', 0)),
      );
      expect(results.every(Boolean)).to.equal(true);
      expect(await tokens().getRegistrationToken('open')).to.include({ pending: 20 });
      expect(await tokens().reserveRegistrationTokenUse('unknown', 0)).to.equal(false);
      expect(await tokens().getRegistrationToken('unknown')).to.equal(null);
    });

    it('is valid strictly before its expiry time and counts nothing once expired', async () => {
      await tokens().createRegistrationToken({ token: 'soon', usesAllowed: null, expiryTs: 1000 });
      expect(await tokens().reserveRegistrationTokenUse('soon', 999)).to.equal(true);
      expect(await tokens().reserveRegistrationTokenUse('soon', 1000)).to.equal(false);
      expect(await tokens().reserveRegistrationTokenUse('soon', 1001)).to.equal(false);
      expect(await tokens().getRegistrationToken('soon')).to.include({ pending: 1 });
      await tokens().updateRegistrationToken('soon', { expiryTs: null });
      expect(await tokens().reserveRegistrationTokenUse('soon', 5000)).to.equal(true);
    });

    it('completes a use without a pending one, and ignores completions of deleted tokens', async () => {
      await tokens().createRegistrationToken({ token: 't', usesAllowed: 3, expiryTs: null });
      await tokens().completeRegistrationTokenUse('t');
      expect(await tokens().getRegistrationToken('t')).to.include({ pending: 0, completed: 1 });
      await tokens().reserveRegistrationTokenUse('t', 0);
      await tokens().deleteRegistrationToken('t');
      await tokens().completeRegistrationTokenUse('t');
      await tokens().releaseRegistrationTokenUse('t');
      expect(await tokens().getRegistrationToken('t')).to.equal(null);
    });
  });
}
