import { expect } from 'chai';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';

export function describeAccountStoreContract(makeStorage: StorageFactory): void {
  describe('AccountStore', () => {
    const storage = useFreshStorage(makeStorage);

    it('creates an account with defaults and reads it back', async () => {
      await storage().accounts.createAccount({
        userId: '@alice:example.org',
        passwordHash: '$argon2id$x',
        createdTs: 1234,
      });
      expect(await storage().accounts.getAccount('@alice:example.org')).to.deep.equal({
        userId: '@alice:example.org',
        passwordHash: '$argon2id$x',
        isAdmin: false,
        isGuest: false,
        deactivated: false,
        createdTs: 1234,
        displayName: null,
        avatarUrl: null,
      });
      expect(await storage().accounts.getAccount('@nobody:example.org')).to.equal(null);
    });

    it('stores guest and admin accounts with a profile', async () => {
      await storage().accounts.createAccount({
        userId: '@guest:example.org',
        isGuest: true,
        isAdmin: true,
        createdTs: 5,
        displayName: 'Guest 👻',
        avatarUrl: 'mxc://example.org/abc',
      });
      const account = await storage().accounts.getAccount('@guest:example.org');
      expect(account).to.include({
        isGuest: true,
        isAdmin: true,
        passwordHash: null,
        displayName: 'Guest 👻',
      });
      expect(account!.avatarUrl).to.equal('mxc://example.org/abc');
    });

    it('refuses a taken user ID with CONFLICT', async () => {
      await storage().accounts.createAccount({ userId: '@bob:example.org', createdTs: 1 });
      await expectStorageError(
        storage().accounts.createAccount({ userId: '@bob:example.org', createdTs: 2 }),
        'CONFLICT',
      );
      expect((await storage().accounts.getAccount('@bob:example.org'))!.createdTs).to.equal(1);
      expect(await storage().accounts.countAccounts()).to.equal(1);
    });

    it('updates password, admin flag, deactivation and profile', async () => {
      const userId = '@carol:example.org';
      await storage().accounts.createAccount({
        userId,
        passwordHash: 'old',
        createdTs: 1,
        displayName: 'Carol',
      });
      await storage().accounts.setPasswordHash(userId, 'new');
      await storage().accounts.setAdmin(userId, true);
      await storage().accounts.setDeactivated(userId, true);
      await storage().accounts.updateProfile(userId, { avatarUrl: 'mxc://example.org/c' });
      let account = await storage().accounts.getAccount(userId);
      expect(account).to.include({
        passwordHash: 'new',
        isAdmin: true,
        deactivated: true,
        displayName: 'Carol',
        avatarUrl: 'mxc://example.org/c',
      });
      await storage().accounts.updateProfile(userId, { displayName: null });
      await storage().accounts.setPasswordHash(userId, null);
      await storage().accounts.setDeactivated(userId, false);
      account = await storage().accounts.getAccount(userId);
      expect(account).to.include({ passwordHash: null, deactivated: false, displayName: null });
      expect(account!.avatarUrl).to.equal('mxc://example.org/c');
    });

    it('reports updates of unknown accounts as NOT_FOUND', async () => {
      const nobody = '@nobody:example.org';
      await expectStorageError(storage().accounts.setPasswordHash(nobody, 'x'), 'NOT_FOUND');
      await expectStorageError(storage().accounts.setAdmin(nobody, true), 'NOT_FOUND');
      await expectStorageError(storage().accounts.setDeactivated(nobody, true), 'NOT_FOUND');
      await expectStorageError(storage().accounts.updateProfile(nobody, { displayName: 'x' }), 'NOT_FOUND');
      await expectStorageError(storage().accounts.updateProfile(nobody, {}), 'NOT_FOUND');
    });

    it('counts accounts', async () => {
      expect(await storage().accounts.countAccounts()).to.equal(0);
      await Promise.all(
        ['@a:x', '@b:x', '@c:x'].map((userId) => storage().accounts.createAccount({ userId, createdTs: 1 })),
      );
      expect(await storage().accounts.countAccounts()).to.equal(3);
    });
  });
}
