import { expect } from 'chai';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';

const registration = {
  method: 'POST',
  uri: '/_matrix/client/v3/register',
  clientDict: { username: 'alice', password: 'hunter2', inhibit_login: false },
};

export function describeUiaSessionStoreContract(makeStorage: StorageFactory): void {
  describe('UiaSessionStore', () => {
    const storage = useFreshStorage(makeStorage);
    const uia = () => storage().uiaSessions;

    it('creates a session and reads it back with nothing completed', async () => {
      await uia().createUiaSession({ sessionId: 'S1', createdTs: 100, ...registration });
      expect(await uia().getUiaSession('S1')).to.deep.equal({
        sessionId: 'S1',
        createdTs: 100,
        ...registration,
        completed: {},
        params: {},
      });
      expect(await uia().getUiaSession('S2')).to.equal(null);
      await expectStorageError(
        uia().createUiaSession({ sessionId: 'S1', createdTs: 200, ...registration }),
        'CONFLICT',
      );
      expect(await uia().getUiaSession('S1')).to.include({ createdTs: 100 });
    });

    it('records completed stages and params, keeping the others, even when written in the same tick', async () => {
      await uia().createUiaSession({ sessionId: 'S', createdTs: 1, ...registration });
      await Promise.all([
        uia().markUiaStageCompleted('S', 'm.login.registration_token', 'beta-token'),
        uia().markUiaStageCompleted('S', 'm.login.dummy', true),
        uia().setUiaSessionParam('S', 'reservedToken', 'beta-token'),
        uia().setUiaSessionParam('S', 'attempts', 1),
      ]);
      await uia().markUiaStageCompleted('S', 'm.login.password', { user_id: '@alice:example.org' });
      await uia().setUiaSessionParam('S', 'attempts', 2);
      await uia().setUiaSessionParam('S', '__proto__', { x: 1 });
      const session = (await uia().getUiaSession('S'))!;
      expect(session.completed).to.deep.equal({
        'm.login.registration_token': 'beta-token',
        'm.login.dummy': true,
        'm.login.password': { user_id: '@alice:example.org' },
      });
      expect(Object.keys(session.params).sort()).to.deep.equal(['__proto__', 'attempts', 'reservedToken']);
      expect(session.params.attempts).to.equal(2);
      expect(session.clientDict).to.deep.equal(registration.clientDict);
    });

    it('reports stage and param writes to unknown sessions as NOT_FOUND', async () => {
      await expectStorageError(uia().markUiaStageCompleted('gone', 'm.login.dummy', true), 'NOT_FOUND');
      await expectStorageError(uia().setUiaSessionParam('gone', 'k', 1), 'NOT_FOUND');
    });

    it('deletes one session, idempotently', async () => {
      await uia().createUiaSession({ sessionId: 'A', createdTs: 1, ...registration });
      await uia().createUiaSession({ sessionId: 'B', createdTs: 1, ...registration });
      await uia().deleteUiaSession('A');
      await uia().deleteUiaSession('A');
      expect(await uia().getUiaSession('A')).to.equal(null);
      expect(await uia().getUiaSession('B')).to.not.equal(null);
    });

    it('removes the sessions created strictly before a time', async () => {
      for (const [sessionId, createdTs] of [
        ['old', 10],
        ['edge', 20],
        ['new', 30],
      ] as const) {
        await uia().createUiaSession({ sessionId, createdTs, ...registration });
      }
      expect(await uia().deleteUiaSessionsCreatedBefore(20)).to.equal(1);
      expect(await uia().getUiaSession('old')).to.equal(null);
      expect(await uia().getUiaSession('edge')).to.not.equal(null);
      expect(await uia().deleteUiaSessionsCreatedBefore(20)).to.equal(0);
    });

    it('takes expired sessions with what they held, so each is undone exactly once', async () => {
      await uia().createUiaSession({ sessionId: 'old', createdTs: 10, ...registration });
      await uia().createUiaSession({ sessionId: 'new', createdTs: 30, ...registration });
      await uia().setUiaSessionParam('old', 'reservedToken', 'beta');
      const [first, second] = await Promise.all([
        uia().takeUiaSessionsCreatedBefore(20),
        uia().takeUiaSessionsCreatedBefore(20),
      ]);
      expect(first!.map((s) => [s.sessionId, s.params])).to.deep.equal([['old', { reservedToken: 'beta' }]]);
      expect(second).to.deep.equal([]);
      expect(await uia().getUiaSession('new')).to.not.equal(null);
    });
  });
}
