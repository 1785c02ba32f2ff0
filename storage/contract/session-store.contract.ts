import { expect } from 'chai';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';

const alice = '@alice:example.org';

export function describeSessionStoreContract(makeStorage: StorageFactory): void {
  describe('SessionStore', () => {
    const storage = useFreshStorage(makeStorage);
    beforeEach(async () => {
      await storage().accounts.createAccount({ userId: alice, createdTs: 1 });
      await storage().devices.createDevice({ userId: alice, deviceId: 'PHONE', createdTs: 1 });
      await storage().devices.createDevice({ userId: alice, deviceId: 'LAPTOP', createdTs: 1 });
    });

    it('creates a session and finds it by ID and by refresh token hash', async () => {
      await storage().sessions.createSession({
        sessionId: 'sess-1',
        userId: alice,
        deviceId: 'PHONE',
        createdTs: 100,
        refreshTokenHash: 'rt-hash-1',
        refreshTokenExpiresTs: 5000,
      });
      const expected = {
        sessionId: 'sess-1',
        userId: alice,
        deviceId: 'PHONE',
        createdTs: 100,
        revoked: false,
        refreshTokenHash: 'rt-hash-1',
        refreshTokenExpiresTs: 5000,
      };
      expect(await storage().sessions.getSession('sess-1')).to.deep.equal(expected);
      expect(await storage().sessions.findSessionByRefreshTokenHash('rt-hash-1')).to.deep.equal(expected);
      expect(await storage().sessions.findSessionByRefreshTokenHash('other')).to.equal(null);
      expect(await storage().sessions.getSession('sess-unknown')).to.equal(null);
    });

    it('refuses reused session IDs and refresh token hashes, and sessions of unknown devices', async () => {
      await storage().sessions.createSession({
        sessionId: 's',
        userId: alice,
        deviceId: 'PHONE',
        createdTs: 1,
        refreshTokenHash: 'h',
      });
      await expectStorageError(
        storage().sessions.createSession({ sessionId: 's', userId: alice, deviceId: 'LAPTOP', createdTs: 2 }),
        'CONFLICT',
      );
      await expectStorageError(
        storage().sessions.createSession({
          sessionId: 't',
          userId: alice,
          deviceId: 'LAPTOP',
          createdTs: 2,
          refreshTokenHash: 'h',
        }),
        'CONFLICT',
      );
      await expectStorageError(
        storage().sessions.createSession({ sessionId: 'u', userId: alice, deviceId: 'GONE', createdTs: 2 }),
        'MISSING_REFERENCE',
      );
    });

    it('revokes a session so it can no longer be refreshed', async () => {
      await storage().sessions.createSession({
        sessionId: 's',
        userId: alice,
        deviceId: 'PHONE',
        createdTs: 1,
        refreshTokenHash: 'h',
        refreshTokenExpiresTs: 10,
      });
      await storage().sessions.revokeSession('s');
      expect(await storage().sessions.getSession('s')).to.include({
        revoked: true,
        refreshTokenHash: null,
        refreshTokenExpiresTs: null,
      });
      expect(await storage().sessions.findSessionByRefreshTokenHash('h')).to.equal(null);
      await expectStorageError(storage().sessions.rotateRefreshToken('s', 'h2', 20), 'NOT_FOUND');
      await expectStorageError(storage().sessions.revokeSession('nope'), 'NOT_FOUND');
    });

    it('revokes all sessions of a user but one, and all sessions of a device', async () => {
      const ids = ['s1', 's2', 's3', 's4'];
      for (const [i, sessionId] of ids.entries()) {
        await storage().sessions.createSession({
          sessionId,
          userId: alice,
          deviceId: i < 2 ? 'PHONE' : 'LAPTOP',
          createdTs: i,
        });
      }
      expect(await storage().sessions.revokeSessionsOfDevice(alice, 'PHONE')).to.equal(2);
      expect(await storage().sessions.revokeSessionsOfDevice(alice, 'PHONE')).to.equal(0);
      expect(await storage().sessions.revokeSessionsOfUser(alice, 's4')).to.equal(1);
      const sessions = await storage().sessions.listSessions(alice);
      expect(sessions.map((s) => [s.sessionId, s.revoked])).to.deep.equal([
        ['s1', true],
        ['s2', true],
        ['s3', true],
        ['s4', false],
      ]);
      expect(await storage().sessions.revokeSessionsOfUser(alice)).to.equal(1);
      expect((await storage().sessions.getSession('s4'))!.revoked).to.equal(true);
    });

    it('rotates the refresh token of a live session', async () => {
      await storage().sessions.createSession({
        sessionId: 's',
        userId: alice,
        deviceId: 'PHONE',
        createdTs: 1,
        refreshTokenHash: 'old',
        refreshTokenExpiresTs: 10,
      });
      await storage().sessions.rotateRefreshToken('s', 'new', 20);
      expect(await storage().sessions.findSessionByRefreshTokenHash('old')).to.equal(null);
      expect(await storage().sessions.findSessionByRefreshTokenHash('new')).to.include({
        sessionId: 's',
        refreshTokenExpiresTs: 20,
      });
      await expectStorageError(storage().sessions.rotateRefreshToken('missing', 'x', null), 'NOT_FOUND');
    });

    it('tells a current refresh token from the one it replaced, and forgets older ones', async () => {
      await storage().sessions.createSession({
        sessionId: 's',
        userId: alice,
        deviceId: 'PHONE',
        createdTs: 1,
        refreshTokenHash: 'rt-1',
        refreshTokenExpiresTs: 10,
      });
      const first = await storage().sessions.findRefreshToken('rt-1');
      expect(first).to.deep.equal({
        isCurrent: true,
        session: {
          sessionId: 's',
          userId: alice,
          deviceId: 'PHONE',
          createdTs: 1,
          revoked: false,
          refreshTokenHash: 'rt-1',
          refreshTokenExpiresTs: 10,
        },
      });

      await storage().sessions.rotateRefreshToken('s', 'rt-2', 20);
      expect(await storage().sessions.findRefreshToken('rt-2')).to.include({ isCurrent: true });
      const replayed = await storage().sessions.findRefreshToken('rt-1');
      expect(replayed?.isCurrent).to.equal(false);
      expect(replayed?.session).to.include({
        sessionId: 's',
        refreshTokenHash: 'rt-2',
        refreshTokenExpiresTs: 20,
      });
      // The replaced token stays inside storage: a Session shows only the current one.
      expect(Object.keys((await storage().sessions.getSession('s'))!).sort()).to.deep.equal(
        Object.keys(first!.session).sort(),
      );

      await storage().sessions.rotateRefreshToken('s', 'rt-3', 30);
      expect(await storage().sessions.findRefreshToken('rt-1')).to.equal(null);
      expect(await storage().sessions.findRefreshToken('rt-2')).to.include({ isCurrent: false });
      expect(await storage().sessions.findRefreshToken('rt-3')).to.include({ isCurrent: true });
      expect(await storage().sessions.findRefreshToken('unknown')).to.equal(null);

      await storage().sessions.revokeSession('s');
      expect(await storage().sessions.findRefreshToken('rt-2')).to.equal(null);
      expect(await storage().sessions.findRefreshToken('rt-3')).to.equal(null);
    });

    it('forgets replaced refresh tokens when revoking sessions of a user or a device', async () => {
      for (const [sessionId, deviceId] of [
        ['p', 'PHONE'],
        ['l', 'LAPTOP'],
      ] as const) {
        await storage().sessions.createSession({
          sessionId,
          userId: alice,
          deviceId,
          createdTs: 1,
          refreshTokenHash: `${sessionId}-1`,
        });
        await storage().sessions.rotateRefreshToken(sessionId, `${sessionId}-2`, null);
      }
      await storage().sessions.revokeSessionsOfDevice(alice, 'PHONE');
      expect(await storage().sessions.findRefreshToken('p-1')).to.equal(null);
      expect(await storage().sessions.findRefreshToken('l-1')).to.include({ isCurrent: false });
      await storage().sessions.revokeSessionsOfUser(alice);
      expect(await storage().sessions.findRefreshToken('l-1')).to.equal(null);
      expect(await storage().sessions.findRefreshToken('l-2')).to.equal(null);
    });

    it('lets only one of two concurrent rotations from the same token win', async () => {
      await storage().sessions.createSession({
        sessionId: 's',
        userId: alice,
        deviceId: 'PHONE',
        createdTs: 1,
        refreshTokenHash: 'rt-1',
      });
      const outcomes = await Promise.allSettled([
        storage().sessions.rotateRefreshToken('s', 'rt-a', 100, 'rt-1'),
        storage().sessions.rotateRefreshToken('s', 'rt-b', 100, 'rt-1'),
      ]);
      expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected']);
      expect((outcomes[1] as PromiseRejectedResult).reason).to.have.property('code', 'CONFLICT');
      expect(await storage().sessions.findRefreshToken('rt-a')).to.include({ isCurrent: true });
      expect(await storage().sessions.findRefreshToken('rt-b')).to.equal(null);
      expect(await storage().sessions.findRefreshToken('rt-1')).to.include({ isCurrent: false });

      await storage().sessions.revokeSession('s');
      await expectStorageError(storage().sessions.rotateRefreshToken('s', 'rt-c', null, 'rt-a'), 'NOT_FOUND');
      await expectStorageError(
        storage().sessions.rotateRefreshToken('missing', 'rt-d', null, 'rt-a'),
        'NOT_FOUND',
      );
    });

    it('refuses to rotate to a hash another session holds, and prefers the current holder', async () => {
      await storage().sessions.createSession({
        sessionId: 's',
        userId: alice,
        deviceId: 'PHONE',
        createdTs: 1,
        refreshTokenHash: 'rt-1',
      });
      await storage().sessions.rotateRefreshToken('s', 'rt-2', null);
      await storage().sessions.createSession({
        sessionId: 't',
        userId: alice,
        deviceId: 'LAPTOP',
        createdTs: 2,
        refreshTokenHash: 'rt-9',
      });
      await expectStorageError(storage().sessions.rotateRefreshToken('t', 'rt-2', null), 'CONFLICT');
      expect(await storage().sessions.findRefreshToken('rt-9')).to.include({ isCurrent: true });
      // Hashes of random tokens never collide in practice; if one did, the current holder answers.
      await storage().sessions.rotateRefreshToken('t', 'rt-1', null);
      const found = await storage().sessions.findRefreshToken('rt-1');
      expect(found?.isCurrent).to.equal(true);
      expect(found?.session.sessionId).to.equal('t');
    });
  });
}
