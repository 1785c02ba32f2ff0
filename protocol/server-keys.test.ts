import { expect } from 'chai';
import { buildServerKeys, checkServerKeys } from './server-keys.js';
import { generateSigningKey, signJson } from './signing.js';

const key = generateSigningKey('new');
const old = generateSigningKey('old');

describe('server keys (server-server "Retrieving server keys")', () => {
  const published = buildServerKeys({
    serverName: 'a.example',
    key,
    oldKeys: [{ keyId: old.keyId, publicKey: old.publicKey, expiredTs: 1000 }],
    validUntilTs: 5000,
  });

  it('publishes the current key, the old keys with expired_ts, self-signed', () => {
    expect(published.verify_keys).to.deep.equal({ 'ed25519:new': { key: key.publicKey } });
    expect(published.old_verify_keys).to.deep.equal({
      'ed25519:old': { key: old.publicKey, expired_ts: 1000 },
    });
    const verdict = checkServerKeys(published, 'a.example');
    expect(verdict.ok).to.equal(true);
    if (verdict.ok) {
      expect(verdict.validUntilTs).to.equal(5000);
      expect(verdict.keys).to.deep.equal([
        {
          serverName: 'a.example',
          keyId: 'ed25519:new',
          publicKey: key.publicKey,
          validUntilTs: 5000,
          expired: false,
        },
        {
          serverName: 'a.example',
          keyId: 'ed25519:old',
          publicKey: old.publicKey,
          validUntilTs: 1000,
          expired: true,
        },
      ]);
    }
  });

  it('still verifies with a notary countersignature added', () => {
    const notarised = signJson(published, 'notary.example', generateSigningKey('n'));
    expect(checkServerKeys(notarised, 'a.example').ok).to.equal(true);
  });

  it('refuses a response for another server, tampered, or signed by another key', () => {
    expect(checkServerKeys(published, 'b.example').ok).to.equal(false);
    expect(checkServerKeys({ ...published, valid_until_ts: 9_999_999 }, 'a.example').ok).to.equal(false);
    const impostor = generateSigningKey('new');
    const forged = signJson(
      { ...published, signatures: undefined, verify_keys: { 'ed25519:new': { key: key.publicKey } } },
      'a.example',
      impostor,
    );
    expect(checkServerKeys(forged, 'a.example').ok).to.equal(false);
  });

  it('refuses malformed responses', () => {
    for (const bad of [
      null,
      [],
      { server_name: 'a.example' },
      { ...published, valid_until_ts: 1.5 },
      { ...published, verify_keys: {} },
      { ...published, verify_keys: { 'ed25519:new': { key: 7 } } },
      { ...published, old_verify_keys: { 'ed25519:o': { key: 'x' } } },
    ]) {
      expect(checkServerKeys(bad, 'a.example').ok, JSON.stringify(bad)).to.equal(false);
    }
  });
});
