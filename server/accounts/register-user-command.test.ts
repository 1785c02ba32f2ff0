import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { defaultConfig, type MyelinConfig } from '../config/index.js';
import { openStorage } from '../homeserver.js';
import { createPasswordHasher } from './password-hash.js';
import { createRegistrationTokenCommand, registerUserCommand } from './register-user-command.js';

describe('register-user and create-registration-token commands', () => {
  let dir: string;
  let config: MyelinConfig;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'myelin-cli-'));
    config = defaultConfig({ server_name: 'example.org', data_dir: dir, port: 8008 });
    config.password_hashing.scrypt_log_n = 10;
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('creates an admin account with a verifiable password, reserved names included', async () => {
    expect(await registerUserCommand({ config, user: 'Admin', password: 'root pw', admin: true })).to.equal(
      '@admin:example.org',
    );
    expect(
      await registerUserCommand({ config, user: '@carol:example.org', password: 'pw', admin: false }),
    ).to.equal('@carol:example.org');
    const storage = await openStorage(config);
    try {
      const admin = await storage.accounts.getAccount('@admin:example.org');
      expect(admin).to.include({ isAdmin: true, isGuest: false });
      const hasher = createPasswordHasher(config.password_hashing);
      expect(await hasher.verify('root pw', admin?.passwordHash ?? '')).to.equal(true);
      expect(await storage.accounts.getAccount('@carol:example.org')).to.include({ isAdmin: false });
    } finally {
      await storage.close();
    }
  });

  it('refuses a taken name, an invalid name and another server', async () => {
    const refusal = (user: string) =>
      registerUserCommand({ config, user, password: 'pw', admin: false }).then(
        () => 'created',
        (error: Error & { errcode?: string }) => error.errcode ?? error.message,
      );
    expect(await refusal('carol')).to.equal('M_USER_IN_USE');
    expect(await refusal('no spaces')).to.equal('M_INVALID_USERNAME');
    expect(await refusal('@dave:elsewhere.org')).to.match(/not a user ID on this server/);
  });

  it('creates registration tokens, random or named', async () => {
    const random = await createRegistrationTokenCommand({ config, usesAllowed: 3 });
    expect(random.token).to.match(/^[A-Za-z0-9._~-]{16}$/);
    const named = await createRegistrationTokenCommand({
      config,
      token: 'invite-1',
      expiryTs: 4_000_000_000_000,
    });
    expect(named).to.include({ token: 'invite-1', usesAllowed: null, expiryTs: 4_000_000_000_000 });
    const storage = await openStorage(config);
    try {
      expect(await storage.registrationTokens.getRegistrationToken(random.token)).to.include({
        usesAllowed: 3,
      });
    } finally {
      await storage.close();
    }
  });
});
