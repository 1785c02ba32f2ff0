import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import {
  createSharedSecretRegistration,
  loadOrCreateRegistrationSharedSecret,
  NONCE_LIFETIME_MS,
  sharedSecretMac,
} from './shared-secret-registration.js';

describe('shared-secret registration', () => {
  it("matches the MAC of Synapse's documented example, with and without a user type", () => {
    const fields = { nonce: 'thisisanonce', username: 'pepper_roni', password: 'pizza', admin: true };
    // Computed with Python's hmac as in admin_api/register_api.md.
    expect(sharedSecretMac('shared_secret', fields)).to.equal('48715842ad67d5dc9a9ee938a3bda4fcfae8d7c7');
    expect(sharedSecretMac('shared_secret', { ...fields, userType: 'bot' })).to.not.equal(
      sharedSecretMac('shared_secret', fields),
    );
  });

  it('nonces are single-use and expire after a minute', () => {
    let now = 0;
    const registration = createSharedSecretRegistration('s3cret', { now: () => now });
    const nonce = registration.issueNonce();
    expect(registration.consumeNonce(nonce)).to.equal(true);
    expect(registration.consumeNonce(nonce)).to.equal(false);
    const late = registration.issueNonce();
    now += NONCE_LIFETIME_MS + 1;
    expect(registration.consumeNonce(late)).to.equal(false);
    expect(registration.consumeNonce('never-issued')).to.equal(false);
  });

  it('checks MACs in any hex case and refuses wrong lengths', () => {
    const registration = createSharedSecretRegistration('s3cret');
    const fields = { nonce: 'n', username: 'u', password: 'p', admin: false };
    const mac = sharedSecretMac('s3cret', fields);
    expect(registration.macMatches(fields, mac)).to.equal(true);
    expect(registration.macMatches(fields, mac.toUpperCase())).to.equal(true);
    expect(registration.macMatches(fields, mac.slice(1))).to.equal(false);
    expect(registration.macMatches({ ...fields, admin: true }, mac)).to.equal(false);
  });

  it('generates the secret file with mode 0600 once, then reads it back', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'myelin-secret-'));
    try {
      const config = { data_dir: dir, registration: { shared_secret_path: '' } } as Parameters<
        typeof loadOrCreateRegistrationSharedSecret
      >[0];
      const log = pino({ level: 'silent' });
      const secret = await loadOrCreateRegistrationSharedSecret(config, log);
      const file = path.join(dir, 'registration_shared_secret');
      expect((await stat(file)).mode & 0o777).to.equal(0o600);
      expect(await loadOrCreateRegistrationSharedSecret(config, log)).to.equal(secret);
      await writeFile(file, '  operator chosen  \n');
      expect(await loadOrCreateRegistrationSharedSecret(config, log)).to.equal('operator chosen');
      expect(await readFile(file, 'utf8')).to.include('operator chosen');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
