import { expect } from 'chai';
import type { JsonObject } from '../../protocol/events.js';
import { openSqliteStorage } from '../../storage/sqlite/sqlite-storage.js';
import type { Storage } from '../../storage/storage.js';
import { MatrixError, UserInteractiveAuthRequired } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
import { createPasswordHasher } from './password-hash.js';
import {
  createUserInteractiveAuthState,
  finishUserInteractiveAuth,
  requireUserInteractiveAuth,
  SESSION_LIFETIME_MS,
  type UiaHost,
  type UiaPolicy,
} from './user-interactive-auth.js';

const TWO_STAGES: UiaPolicy = {
  flows: [['m.login.dummy', 'm.login.password']],
  params: { 'm.login.password': {} },
};
const REQUEST = { method: 'POST', uri: '/_matrix/client/v3/test' };

describe('user-interactive authentication engine', () => {
  let storage: Storage;
  let host: UiaHost;
  let clock: number;

  beforeEach(async () => {
    storage = await openSqliteStorage({ path: ':memory:' });
    clock = 1_700_000_000_000;
    const passwords = createPasswordHasher({ scrypt_log_n: 10, scrypt_r: 8, scrypt_p: 1 });
    await storage.accounts.createAccount({
      userId: '@alice:example.org',
      passwordHash: await passwords.hash('alice password'),
      createdTs: clock,
    });
    host = {
      config: { server_name: 'example.org' },
      storage,
      passwords,
      userInteractiveAuth: createUserInteractiveAuthState({ now: () => clock }),
    };
  });
  afterEach(() => storage.close());

  /** The 401 a call throws (fails the test if it resolves or throws something else). */
  async function challengeOf(body: JsonObject, policy = TWO_STAGES): Promise<UserInteractiveAuthRequired> {
    try {
      await requireUserInteractiveAuth(host, { ...REQUEST, body }, policy);
    } catch (error) {
      if (error instanceof UserInteractiveAuthRequired) return error;
      throw error;
    }
    throw new Error('expected a 401 challenge');
  }

  const password = (session: string, secret = 'alice password') => ({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: 'alice' },
    password: secret,
    session,
  });

  it('runs a two-stage flow in order, reporting completed stages, and yields the authenticated user', async () => {
    const first = await challengeOf({ thing: 1 });
    expect(first.toJSON()).to.deep.equal({
      flows: [{ stages: ['m.login.dummy', 'm.login.password'] }],
      params: { 'm.login.password': {} },
      session: first.challenge.session,
    });
    const session = first.challenge.session;
    const afterDummy = await challengeOf({ thing: 1, auth: { type: 'm.login.dummy', session } });
    expect(afterDummy.toJSON()).to.include({ session }).and.not.have.property('errcode');
    expect(afterDummy.challenge.completed).to.deep.equal(['m.login.dummy']);

    const result = await requireUserInteractiveAuth(
      host,
      { ...REQUEST, body: { thing: 1, auth: password(session) } },
      TWO_STAGES,
    );
    expect(result).to.deep.include({
      sessionId: session,
      completed: ['m.login.dummy', 'm.login.password'],
      authenticatedUserId: '@alice:example.org',
      clientDict: { thing: 1 },
    });
  });

  it('refuses a stage out of order with 401 M_FORBIDDEN and keeps the session', async () => {
    const { session } = (await challengeOf({})).challenge;
    const early = await challengeOf({ auth: password(session) });
    expect(early.toJSON()).to.include({ errcode: 'M_FORBIDDEN', session });
    expect(early.challenge.completed).to.deep.equal([]);
  });

  it('an auth dict with only the session reports progress without completing', async () => {
    const { session } = (await challengeOf({})).challenge;
    await challengeOf({ auth: { type: 'm.login.dummy', session } });
    const progress = await challengeOf({ auth: { session } });
    expect(progress.toJSON()).to.not.have.property('errcode');
    expect(progress.challenge.completed).to.deep.equal(['m.login.dummy']);
  });

  it('a completed stage may be retried without harm', async () => {
    const { session } = (await challengeOf({})).challenge;
    await challengeOf({ auth: { type: 'm.login.dummy', session } });
    const retried = await challengeOf({ auth: { type: 'm.login.dummy', session } });
    expect(retried.challenge.completed).to.deep.equal(['m.login.dummy']);
    expect(retried.toJSON()).to.not.have.property('errcode');
  });

  it('a wrong password and an unknown user both fail the stage the same way', async () => {
    const { session } = (await challengeOf({})).challenge;
    await challengeOf({ auth: { type: 'm.login.dummy', session } });
    const wrong = await challengeOf({ auth: password(session, 'guess') });
    const unknown = await challengeOf({
      auth: { ...password(session), identifier: { type: 'm.id.user', user: '@nobody:example.org' } },
    });
    for (const failure of [wrong, unknown]) {
      expect(failure.toJSON()).to.include({ errcode: 'M_FORBIDDEN', error: 'Invalid username or password' });
    }
  });

  it('keeps the first body (minus auth and secrets) for later requests that send only auth', async () => {
    const { session } = (
      await challengeOf(
        { username: 'x', password: 'secret', new_password: 'secret2' },
        { flows: [['m.login.dummy']] },
      )
    ).challenge;
    const result = await requireUserInteractiveAuth(
      host,
      { ...REQUEST, body: { auth: { type: 'm.login.dummy', session } } },
      { flows: [['m.login.dummy']] },
    );
    expect(result.clientDict).to.deep.equal({ username: 'x' });
  });

  it('sessions expire: an old session is unknown, and the sweep gives back its registration token use', async () => {
    await storage.registrationTokens.createRegistrationToken({
      token: 'tok',
      usesAllowed: 1,
      expiryTs: null,
    });
    const policy: UiaPolicy = { flows: [['m.login.registration_token', 'm.login.dummy']] };
    const { session } = (await challengeOf({}, policy)).challenge;
    const reserved = await challengeOf(
      { auth: { type: 'm.login.registration_token', token: 'tok', session } },
      policy,
    );
    expect(reserved.challenge.completed).to.deep.equal(['m.login.registration_token']);
    expect(await storage.registrationTokens.getRegistrationToken('tok')).to.include({ pending: 1 });

    clock += SESSION_LIFETIME_MS + 1;
    const late = await requireUserInteractiveAuth(
      host,
      { ...REQUEST, body: { auth: { type: 'm.login.dummy', session } } },
      policy,
    ).catch((error: unknown) => error);
    expect(late).to.be.instanceOf(MatrixError);
    expect((late as MatrixError).toJSON()).to.include({ errcode: 'M_UNKNOWN' });
    expect(await storage.registrationTokens.getRegistrationToken('tok')).to.include({
      pending: 0,
      completed: 0,
    });
    expect(await storage.uiaSessions.getUiaSession(session)).to.equal(null);
  });

  it('finishing a flow spends the session and completes its token use', async () => {
    await storage.registrationTokens.createRegistrationToken({
      token: 'tok2',
      usesAllowed: 2,
      expiryTs: null,
    });
    const policy: UiaPolicy = { flows: [['m.login.registration_token']] };
    const result = await requireUserInteractiveAuth(
      host,
      { ...REQUEST, body: { auth: { type: 'm.login.registration_token', token: 'tok2' } } },
      policy,
    );
    expect(result.registrationToken).to.equal('tok2');
    await finishUserInteractiveAuth(host, result, { registrationTokenUsed: true });
    expect(await storage.registrationTokens.getRegistrationToken('tok2')).to.include({
      pending: 0,
      completed: 1,
    });
    expect(await storage.uiaSessions.getUiaSession(result.sessionId)).to.equal(null);
  });

  it('a session started by one user (or anonymously) cannot be continued by another', async () => {
    const policy: UiaPolicy = { flows: [['m.login.dummy', 'm.login.password']] };
    const bob: AuthenticatedUser = {
      kind: 'user',
      userId: '@bob:example.org',
      deviceId: 'D',
      isGuest: false,
      sessionId: 's',
      isAdmin: false,
      isLocked: false,
      isSuspended: false,
    };
    const alice: AuthenticatedUser = { ...bob, userId: '@alice:example.org' };
    const started = async (requester?: AuthenticatedUser) => {
      const error = await requireUserInteractiveAuth(
        host,
        { ...REQUEST, body: {}, ...(requester ? { requester } : {}) },
        policy,
      ).catch((e: unknown) => e);
      return (error as UserInteractiveAuthRequired).challenge.session;
    };
    for (const [owner, intruder] of [
      [bob, alice],
      [undefined, alice],
      [alice, undefined],
    ] as const) {
      const session = await started(owner);
      const error = await requireUserInteractiveAuth(
        host,
        {
          ...REQUEST,
          body: { auth: { type: 'm.login.dummy', session } },
          ...(intruder ? { requester: intruder } : {}),
        },
        policy,
      ).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(MatrixError).and.not.be.instanceOf(UserInteractiveAuthRequired);
      expect((error as MatrixError).status).to.equal(403);
    }
    const own = await started(alice);
    const progress = await challengeOf({ auth: { type: 'm.login.dummy', session: own } }).catch(
      (e: unknown) => e,
    );
    expect(progress, 'anonymous continuation of a logged-in session').to.be.instanceOf(MatrixError);
  });

  it('a logged-in requester must be the user whose password is given', async () => {
    const policy: UiaPolicy = { flows: [['m.login.password']] };
    const requester = {
      kind: 'user',
      userId: '@bob:example.org',
      deviceId: 'D',
      isGuest: false,
      sessionId: 's',
      isAdmin: false,
      isLocked: false,
      isSuspended: false,
    } as const;
    const error = await requireUserInteractiveAuth(
      host,
      {
        ...REQUEST,
        requester,
        body: {
          auth: {
            type: 'm.login.password',
            identifier: { type: 'm.id.user', user: 'alice' },
            password: 'alice password',
          },
        },
      },
      policy,
    ).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(UserInteractiveAuthRequired);
    expect((error as UserInteractiveAuthRequired).toJSON()).to.include({ errcode: 'M_FORBIDDEN' });
  });
});
