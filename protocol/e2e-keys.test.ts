import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { checkCrossSigningKey, checkDeviceKeys, checkOneTimeKey, sameSignedContent } from './e2e-keys.js';
import type { JsonObject } from './events.js';
import { signingKeyFromSeed, signJson } from './signing.js';

const alice = '@alice:example.org';
const deviceKey = signingKeyFromSeed('ed25519:PHONE', randomBytes(32));

function deviceKeys(overrides: JsonObject = {}): JsonObject {
  return signJson(
    {
      user_id: alice,
      device_id: 'PHONE',
      algorithms: ['m.olm.v1.curve25519-aes-sha2'],
      keys: { 'ed25519:PHONE': deviceKey.publicKey, 'curve25519:PHONE': 'curve' },
      ...overrides,
    },
    alice,
    deviceKey,
  ) as unknown as JsonObject;
}

describe('E2E key checks (client-server "Key management API")', () => {
  it('accepts self-signed device keys and gives their ed25519 key', () => {
    const verdict = checkDeviceKeys(deviceKeys(), alice, 'PHONE');
    expect(verdict).to.include({ ok: true, ed25519: deviceKey.publicKey });
  });

  it('refuses device keys of another user or device, without their ed25519 key, or with a bad signature', () => {
    expect(checkDeviceKeys(deviceKeys(), '@bob:example.org', 'PHONE')).to.include({
      ok: false,
      reason: 'invalid',
    });
    expect(checkDeviceKeys(deviceKeys(), alice, 'LAPTOP')).to.include({ ok: false, reason: 'invalid' });
    expect(checkDeviceKeys(deviceKeys({ keys: { 'curve25519:PHONE': 'c' } }), alice, 'PHONE')).to.include({
      ok: false,
      reason: 'invalid',
    });
    const tampered = { ...deviceKeys(), algorithms: ['m.megolm.v1.aes-sha2'] };
    expect(checkDeviceKeys(tampered, alice, 'PHONE')).to.include({ ok: false, reason: 'bad_signature' });
    const unsigned = { ...deviceKeys(), signatures: {} };
    expect(checkDeviceKeys(unsigned, alice, 'PHONE')).to.include({ ok: false, reason: 'bad_signature' });
    // Signed with another key than the one it names.
    const other = signingKeyFromSeed('ed25519:PHONE', randomBytes(32));
    const { signatures: _s, ...body } = deviceKeys();
    expect(checkDeviceKeys(signJson(body, alice, other), alice, 'PHONE')).to.include({
      reason: 'bad_signature',
    });
  });

  it('checks signed one-time keys against the device key when known, and their names', () => {
    const signer = { userId: alice, deviceId: 'PHONE', ed25519: deviceKey.publicKey };
    const key = signJson({ key: 'curve' }, alice, deviceKey);
    expect(checkOneTimeKey('signed_curve25519:AAAB', key, signer)).to.deep.equal({
      ok: true,
      algorithm: 'signed_curve25519',
      keyId: 'AAAB',
    });
    expect(checkOneTimeKey('signed_curve25519:AAAB', { ...key, key: 'other' }, signer)).to.include({
      reason: 'bad_signature',
    });
    expect(
      checkOneTimeKey('signed_curve25519:AAAB', { ...key, key: 'other' }, { ...signer, ed25519: null }),
    ).to.include({
      ok: true,
    });
    expect(checkOneTimeKey('curve25519:AAAC', 'plain', signer)).to.include({
      ok: true,
      algorithm: 'curve25519',
    });
    expect(checkOneTimeKey('nocolon', 'plain', signer)).to.include({ ok: false, reason: 'invalid' });
    expect(checkOneTimeKey('alg:', 'plain', signer)).to.include({ ok: false, reason: 'invalid' });
    expect(checkOneTimeKey('alg:x', 42, signer)).to.include({ ok: false, reason: 'invalid' });
  });

  it('checks the shape of cross-signing keys', () => {
    const key = { user_id: alice, usage: ['master'], keys: { 'ed25519:PUB': 'PUB' } };
    expect(checkCrossSigningKey(key, alice, 'master')).to.include({ ok: true, publicKey: 'PUB' });
    expect(checkCrossSigningKey(key, alice, 'self_signing')).to.include({ ok: false });
    expect(checkCrossSigningKey(key, '@bob:example.org', 'master')).to.include({ ok: false });
    expect(checkCrossSigningKey({ ...key, keys: { 'ed25519:PUB': 'OTHER' } }, alice, 'master')).to.include({
      ok: false,
    });
    expect(
      checkCrossSigningKey({ ...key, keys: { 'ed25519:A': 'A', 'ed25519:B': 'B' } }, alice, 'master'),
    ).to.include({ ok: false });
  });

  it('compares key objects without their signatures and unsigned data', () => {
    const a = { user_id: alice, keys: { x: 'y' }, signatures: { [alice]: { k: 's' } } };
    const b = { keys: { x: 'y' }, user_id: alice, unsigned: { device_display_name: 'n' } };
    expect(sameSignedContent(a, b)).to.equal(true);
    expect(sameSignedContent(a, { ...b, keys: { x: 'z' } })).to.equal(false);
    expect(sameSignedContent(a, { ...b, extra: 1 })).to.equal(false);
  });
});
