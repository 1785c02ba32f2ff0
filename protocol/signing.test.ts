import { expect } from 'chai';
import { decodeBase64, encodeUnpaddedBase64 } from './base64.js';
import { ProtocolError } from './errors.js';
import {
  formatSigningKeyFile,
  generateSigningKey,
  parseKeyId,
  parseSigningKeyFile,
  parseSigningKeys,
  signingKeyFromSeed,
  signJson,
  verifyBytes,
  verifyJsonSignature,
} from './signing.js';
import vectors from './vectors/appendices-cryptographic-test-vectors.json' with { type: 'json' };

const specKey = signingKeyFromSeed(vectors.key_id, decodeBase64(vectors.signing_key_seed));

function expectBadKey(run: () => unknown): void {
  expect(run).to.throw(ProtocolError).with.property('code', 'BAD_KEY');
}

describe('signing JSON (appendices "Signing JSON", "Checking for a Signature")', () => {
  describe('spec test vectors', () => {
    for (const [i, c] of vectors.json_signing.entries()) {
      it(`signs JSON signing example ${i + 1} exactly`, () => {
        expect(signJson(c.input, vectors.server_name, specKey)).to.deep.equal(c.signed);
      });
      it(`verifies JSON signing example ${i + 1}`, () => {
        expect(
          verifyJsonSignature(c.signed, vectors.server_name, vectors.key_id, specKey.publicKey),
        ).to.deep.equal({
          ok: true,
        });
      });
    }
  });

  it('does not modify the input, keeps unsigned and existing signatures', () => {
    const input = { a: 1, unsigned: { age: 5 }, signatures: { other: { 'ed25519:x': 'sig' } } };
    const copy = structuredClone(input);
    const signed = signJson(input, 'domain', specKey);
    expect(input).to.deep.equal(copy);
    expect(signed.unsigned).to.deep.equal({ age: 5 });
    expect(signed.signatures.other).to.deep.equal({ 'ed25519:x': 'sig' });
    // unsigned and signatures are not covered: the same signature as without them.
    expect(signed.signatures.domain).to.deep.equal(signJson({ a: 1 }, 'domain', specKey).signatures.domain);
  });

  it('adds a second key of the same entity beside the first', () => {
    const other = generateSigningKey('second');
    const twice = signJson(signJson({ a: 1 }, 'domain', specKey), 'domain', other);
    expect(Object.keys(twice.signatures.domain!).sort()).to.deep.equal(['ed25519:1', 'ed25519:second']);
    expect(verifyJsonSignature(twice, 'domain', 'ed25519:1', specKey.publicKey).ok).to.equal(true);
    expect(verifyJsonSignature(twice, 'domain', 'ed25519:second', other.publicKey).ok).to.equal(true);
  });

  it('gives typed verdicts for missing, malformed, tampered and wrong-key signatures', () => {
    const signed = signJson({ a: 1, nested: { b: 'x' } }, 'domain', specKey);
    expect(verifyJsonSignature(signed, 'elsewhere', 'ed25519:1', specKey.publicKey)).to.include({
      ok: false,
      reason: 'missing_signature',
    });
    expect(verifyJsonSignature(signed, 'domain', 'ed25519:2', specKey.publicKey)).to.include({
      reason: 'missing_signature',
    });
    expect(verifyJsonSignature({ a: 1 }, 'domain', 'ed25519:1', specKey.publicKey)).to.include({
      reason: 'missing_signature',
    });
    const tampered = { ...signed, nested: { b: 'y' } };
    expect(verifyJsonSignature(tampered, 'domain', 'ed25519:1', specKey.publicKey)).to.include({
      reason: 'bad_signature',
    });
    const otherKey = generateSigningKey();
    expect(verifyJsonSignature(signed, 'domain', 'ed25519:1', otherKey.publicKey)).to.include({
      reason: 'bad_signature',
    });
    const garbled = { ...signed, signatures: { domain: { 'ed25519:1': '!!notbase64' } } };
    expect(verifyJsonSignature(garbled, 'domain', 'ed25519:1', specKey.publicKey)).to.include({
      reason: 'malformed_signature',
    });
    const short = { ...signed, signatures: { domain: { 'ed25519:1': 'AAAA' } } };
    expect(verifyJsonSignature(short, 'domain', 'ed25519:1', specKey.publicKey)).to.include({
      reason: 'malformed_signature',
    });
    const unencodable = { ...signed, a: Number.NaN };
    expect(verifyJsonSignature(unencodable, 'domain', 'ed25519:1', specKey.publicKey)).to.include({
      reason: 'unencodable',
    });
    // Changing only unsigned keeps the signature valid.
    expect(
      verifyJsonSignature({ ...signed, unsigned: { z: 1 } }, 'domain', 'ed25519:1', specKey.publicKey).ok,
    ).to.equal(true);
  });

  it('throws BAD_KEY only for a malformed public key', () => {
    const signed = signJson({ a: 1 }, 'domain', specKey);
    expectBadKey(() => verifyJsonSignature(signed, 'domain', 'ed25519:1', 'not base64!'));
    expectBadKey(() => verifyJsonSignature(signed, 'domain', 'ed25519:1', 'AAAA'));
    expectBadKey(() => verifyBytes(Buffer.from('x'), 'AAAA', 'AAAA'));
  });

  it('verifyBytes accepts a good signature and rejects anything else', () => {
    const signature = signJson({ m: 'hello' }, 'd', specKey).signatures.d!['ed25519:1']!;
    const signedBytes = Buffer.from('{"m":"hello"}');
    expect(verifyBytes(signedBytes, signature, specKey.publicKey)).to.equal(true);
    expect(verifyBytes(Buffer.from('{"m":"hellO"}'), signature, specKey.publicKey)).to.equal(false);
    expect(verifyBytes(signedBytes, '***', specKey.publicKey)).to.equal(false);
    expect(verifyBytes(signedBytes, 'AAAA', specKey.publicKey)).to.equal(false);
  });
});

describe('signing keys', () => {
  it('derives the public key of the spec test seed', () => {
    // The spec's key (seed YJDBA9...) is the one its test vectors verify against; check it is stable.
    expect(specKey.keyId).to.equal('ed25519:1');
    expect(decodeBase64(specKey.publicKey)).to.have.length(32);
    // The spec's seed text has non-zero trailing bits (…XA1); the canonical encoding ends …XA0.
    expect(specKey.seed.equals(decodeBase64(vectors.signing_key_seed))).to.equal(true);
    expect(encodeUnpaddedBase64(specKey.seed)).to.equal('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0');
  });

  it('generates keys with a valid version and distinct seeds', () => {
    const a = generateSigningKey();
    const b = generateSigningKey();
    expect(a.keyId).to.match(/^ed25519:a_[A-Za-z0-9]{4}$/);
    expect(a.seed.equals(b.seed)).to.equal(false);
    expect(generateSigningKey('v1').keyId).to.equal('ed25519:v1');
  });

  it('formats and parses the Synapse key file', () => {
    const text = formatSigningKeyFile(specKey);
    expect(text).to.equal('ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0\n');
    const parsed = parseSigningKeyFile(text);
    expect(parsed.keyId).to.equal('ed25519:1');
    expect(parsed.publicKey).to.equal(specKey.publicKey);
    // Padded seeds, blank lines and several keys are accepted.
    const two = parseSigningKeys(
      `\ned25519 a ${vectors.signing_key_seed}=\n\ned25519 b ${encodeUnpaddedBase64(generateSigningKey().seed)}\n`,
    );
    expect(two.map((k) => k.keyId)).to.deep.equal(['ed25519:a', 'ed25519:b']);
    expect(two[0]!.publicKey).to.equal(specKey.publicKey);
  });

  it('rejects malformed key files, key IDs and seeds with BAD_KEY', () => {
    expectBadKey(() => parseSigningKeyFile(''));
    expectBadKey(() => parseSigningKeyFile('ed25519 1'));
    expectBadKey(() => parseSigningKeyFile('ed25519 1 !!!!'));
    expectBadKey(() => parseSigningKeyFile('ed25519 1 AAAA'));
    expectBadKey(() => parseSigningKeyFile(`rsa 1 ${vectors.signing_key_seed}`));
    expectBadKey(() => parseSigningKeyFile(`ed25519 bad-version ${vectors.signing_key_seed}`));
    expectBadKey(() => signingKeyFromSeed('ed25519:1', Buffer.alloc(31)));
    expectBadKey(() => parseKeyId('ed25519'));
    expectBadKey(() => parseKeyId('ed25519:'));
    expect(parseKeyId('ed25519:a_b1')).to.deep.equal({ algorithm: 'ed25519', version: 'a_b1' });
  });
});
