import { expect } from 'chai';
import type { JsonObject } from './events.js';
import { generateSigningKey, signJson } from './signing.js';
import { isSignedByInviteKey, thirdPartyInvitePublicKeys } from './third-party-invite-signature.js';

describe('third-party invite signature (auth rule 4.4.1.7)', () => {
  const identityKey = generateSigningKey('0');
  const legacyKey = generateSigningKey('1');
  const otherKey = generateSigningKey('2');
  const signed = (key = identityKey) =>
    signJson({ mxid: '@carol:hs', token: 'tok' }, 'id.example.org', key) as JsonObject;

  it('reads the legacy public_key and every public_keys entry, skipping malformed ones', () => {
    expect(
      thirdPartyInvitePublicKeys({
        public_key: 'legacy',
        public_keys: [{ public_key: 'a' }, { key_validity_url: 'x' }, 'b', { public_key: 7 }],
      }),
    ).to.deep.equal(['legacy', 'a']);
    expect(thirdPartyInvitePublicKeys({ public_keys: 'nope' })).to.deep.equal([]);
  });

  it('accepts a signature by any of the invite keys, legacy or listed', () => {
    const content = { public_key: legacyKey.publicKey, public_keys: [{ public_key: identityKey.publicKey }] };
    expect(isSignedByInviteKey(signed(identityKey), content)).to.equal(true);
    expect(isSignedByInviteKey(signed(legacyKey), content)).to.equal(true);
  });

  it('refuses another key, a tampered block, malformed keys and missing signatures', () => {
    const content = { public_key: 'not base64!', public_keys: [{ public_key: identityKey.publicKey }] };
    expect(isSignedByInviteKey(signed(otherKey), content)).to.equal(false);
    expect(isSignedByInviteKey({ ...signed(), token: 'tok2' }, content)).to.equal(false);
    expect(isSignedByInviteKey(signed(), { public_key: 'not base64!' })).to.equal(false);
    expect(isSignedByInviteKey({ mxid: '@carol:hs', token: 'tok' }, content)).to.equal(false);
    expect(isSignedByInviteKey({ ...signed(), signatures: { 'id.example.org': 'x' } }, content)).to.equal(
      false,
    );
  });
});
