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
        erased: false,
        locked: false,
        suspended: false,
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

    it('locks and suspends an account and lifts both, each on its own', async () => {
      const userId = '@dora:example.org';
      await storage().accounts.createAccount({ userId, createdTs: 1 });
      await storage().accounts.setLocked(userId, true);
      expect(await storage().accounts.getAccount(userId)).to.include({ locked: true, suspended: false });
      await storage().accounts.setSuspended(userId, true);
      await storage().accounts.setLocked(userId, false);
      expect(await storage().accounts.getAccount(userId)).to.include({ locked: false, suspended: true });
      await storage().accounts.setSuspended(userId, false);
      expect(await storage().accounts.getAccount(userId)).to.include({ locked: false, suspended: false });
      await expectStorageError(storage().accounts.setLocked('@nobody:example.org', true), 'NOT_FOUND');
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

    it('records an erasure request with the deactivation, and forgets it on reactivation', async () => {
      const userId = '@dora:example.org';
      await storage().accounts.createAccount({ userId, createdTs: 1 });
      await storage().accounts.setDeactivated(userId, true);
      expect(await storage().accounts.getAccount(userId)).to.include({ deactivated: true, erased: false });
      await storage().accounts.setDeactivated(userId, true, true);
      expect(await storage().accounts.getAccount(userId)).to.include({ deactivated: true, erased: true });
      // Deactivating again without erase does not withdraw the request.
      await storage().accounts.setDeactivated(userId, true, false);
      expect(await storage().accounts.getAccount(userId)).to.include({ erased: true });
      await storage().accounts.setDeactivated(userId, false);
      expect(await storage().accounts.getAccount(userId)).to.include({ deactivated: false, erased: false });
      await expectStorageError(storage().accounts.setDeactivated('@nobody:x', true, true), 'NOT_FOUND');
    });

    it('finds accounts by user ID ignoring ASCII case, oldest first', async () => {
      await storage().accounts.createAccount({ userId: '@Alice:Example.org', createdTs: 20 });
      await storage().accounts.createAccount({ userId: '@alice:example.org', createdTs: 10 });
      await storage().accounts.createAccount({ userId: '@alicia:example.org', createdTs: 5 });
      const found = await storage().accounts.findAccountsCaseInsensitive('@ALICE:EXAMPLE.ORG');
      expect(found.map((a) => a.userId)).to.deep.equal(['@alice:example.org', '@Alice:Example.org']);
      expect(found[0]).to.include({ createdTs: 10, erased: false });
      expect(await storage().accounts.findAccountsCaseInsensitive('@alicia:EXAMPLE.org')).to.have.length(1);
      expect(await storage().accounts.findAccountsCaseInsensitive('@alic:example.org')).to.deep.equal([]);
      // `_` and `%` are ordinary characters here, not patterns.
      expect(await storage().accounts.findAccountsCaseInsensitive('@alic_:example.org')).to.deep.equal([]);
      expect(await storage().accounts.findAccountsCaseInsensitive('@%:example.org')).to.deep.equal([]);
    });

    it('searches user IDs and display names of active, non-guest accounts, ordered, limited', async () => {
      const make = (userId: string, displayName: string | null, extra: { isGuest?: boolean } = {}) =>
        storage().accounts.createAccount({ userId, displayName, createdTs: 1, ...extra });
      await make('@zed:example.org', 'Bob Builder');
      await make('@bobby:example.org', null);
      await make('@BOB:example.org', 'someone');
      await make('@alice:example.org', 'Alice');
      await make('@bobguest:example.org', 'Bob', { isGuest: true });
      await make('@bobgone:example.org', 'Bob');
      await storage().accounts.setDeactivated('@bobgone:example.org', true);

      const ids = async (term: string, limit = 10) =>
        (await storage().accounts.searchAccounts(term, limit)).map((a) => a.userId);
      expect(await ids('bob')).to.deep.equal(['@BOB:example.org', '@bobby:example.org', '@zed:example.org']);
      expect(await ids('BUILDER')).to.deep.equal(['@zed:example.org']);
      expect(await ids('bob', 2)).to.deep.equal(['@BOB:example.org', '@bobby:example.org']);
      expect(await ids('bob', 0)).to.deep.equal([]);
      expect(await ids('nobody-here')).to.deep.equal([]);
      expect((await storage().accounts.searchAccounts('alice', 10))[0]).to.include({ displayName: 'Alice' });
    });

    it('matches %, _ and \\ in a search term literally', async () => {
      const make = (userId: string, displayName: string) =>
        storage().accounts.createAccount({ userId, displayName, createdTs: 1 });
      await make('@a_b:example.org', 'plain');
      await make('@axb:example.org', '100% sure');
      await make('@ayb:example.org', '1000 sure');
      await make('@back:example.org', 'back\\slash');
      const ids = async (term: string) =>
        (await storage().accounts.searchAccounts(term, 10)).map((a) => a.userId);
      expect(await ids('a_b')).to.deep.equal(['@a_b:example.org']);
      expect(await ids('_')).to.deep.equal(['@a_b:example.org']);
      expect(await ids('0%')).to.deep.equal(['@axb:example.org']);
      expect(await ids('%')).to.deep.equal(['@axb:example.org']);
      expect(await ids('k\\s')).to.deep.equal(['@back:example.org']);
      expect(await ids('\\%')).to.deep.equal([]);
    });

    it('stores custom profile fields as JSON, overwrites them and deletes them with null', async () => {
      const userId = '@erin:example.org';
      await storage().accounts.createAccount({ userId, createdTs: 1, displayName: 'Erin' });
      expect(await storage().accounts.getProfileFields(userId)).to.deep.equal({});
      await storage().accounts.setProfileField(userId, 'm.tz', 'Europe/Paris');
      await storage().accounts.setProfileField(userId, 'org.example.badges', ['🧠', { level: 3 }]);
      await storage().accounts.setProfileField(userId, 'org.example.flag', false);
      await storage().accounts.setProfileField(userId, '__proto__', { polluted: true });
      await storage().accounts.setProfileField(userId, 'm.tz', 'Europe/Berlin');
      const fields = await storage().accounts.getProfileFields(userId);
      expect(Object.keys(fields).sort()).to.deep.equal([
        '__proto__',
        'm.tz',
        'org.example.badges',
        'org.example.flag',
      ]);
      expect(fields['m.tz']).to.equal('Europe/Berlin');
      expect(fields['org.example.badges']).to.deep.equal(['🧠', { level: 3 }]);
      expect(fields['org.example.flag']).to.equal(false);
      expect(Object.getOwnPropertyDescriptor(fields, '__proto__')?.value).to.deep.equal({ polluted: true });
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);

      await storage().accounts.setProfileField(userId, 'm.tz', null);
      await storage().accounts.setProfileField(userId, 'never.set', null);
      expect(Object.keys(await storage().accounts.getProfileFields(userId))).to.not.include('m.tz');
      // Custom fields live beside, not inside, the display name and avatar.
      expect(await storage().accounts.getAccount(userId)).to.include({ displayName: 'Erin' });
      expect(await storage().accounts.getProfileFields('@other:example.org')).to.deep.equal({});
      await expectStorageError(
        storage().accounts.setProfileField('@nobody:example.org', 'm.tz', 'UTC'),
        'NOT_FOUND',
      );
    });

    it('writes profile fields inside a transaction, all or nothing', async () => {
      const userId = '@fay:example.org';
      await storage().accounts.createAccount({ userId, createdTs: 1 });
      const attempt = storage().transaction((tx) => {
        tx.accounts.setProfileField(userId, 'm.tz', 'UTC');
        tx.accounts.setProfileField('@nobody:example.org', 'm.tz', 'UTC');
      });
      await expectStorageError(attempt, 'NOT_FOUND');
      expect(await storage().accounts.getProfileFields(userId)).to.deep.equal({});
    });
  });
}
