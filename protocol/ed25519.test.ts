import { expect } from 'chai';
import { ed25519, libsodiumEd25519, nodeCryptoEd25519 } from './ed25519.js';

/** RFC 8032 section 7.1, tests 1 to 3: seed, public key, message, signature (hex). */
const RFC8032 = [
  [
    '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    '',
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  ],
  [
    '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    '72',
    '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  ],
  [
    'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    'af82',
    '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  ],
] as const;

const implementations = [nodeCryptoEd25519, ...(libsodiumEd25519 === null ? [] : [libsodiumEd25519])];

describe('ed25519 implementations', () => {
  it('uses libsodium where the addon loads (it is a dependency: it should here)', () => {
    expect(libsodiumEd25519, 'sodium-native did not load').to.not.equal(null);
    expect(ed25519.name).to.equal('libsodium');
  });

  for (const implementation of implementations) {
    describe(implementation.name, () => {
      for (const [i, [seed, publicKey, message, signature]] of RFC8032.entries()) {
        it(`signs and verifies RFC 8032 test ${i + 1} exactly`, () => {
          const key = implementation.privateKeyFromSeed(Buffer.from(seed, 'hex'));
          expect(key.publicKey.toString('hex')).to.equal(publicKey);
          const made = key.sign(Buffer.from(message, 'hex'));
          expect(made.toString('hex')).to.equal(signature);
          const verifier = implementation.publicKeyFromRaw(Buffer.from(publicKey, 'hex'))!;
          expect(verifier.verify(Buffer.from(message, 'hex'), made)).to.equal(true);
        });
      }

      it('refuses a changed message, a changed signature and a signature of the wrong length', () => {
        const [seed, publicKey, , signature] = RFC8032[1];
        const verifier = implementation.publicKeyFromRaw(Buffer.from(publicKey, 'hex'))!;
        const good = Buffer.from(signature, 'hex');
        expect(verifier.verify(Buffer.from('73', 'hex'), good)).to.equal(false);
        const flipped = Buffer.from(good);
        flipped[10]! ^= 1;
        expect(verifier.verify(Buffer.from('72', 'hex'), flipped)).to.equal(false);
        expect(verifier.verify(Buffer.from('72', 'hex'), good.subarray(0, 63))).to.equal(false);
        expect(
          implementation.privateKeyFromSeed(Buffer.from(seed, 'hex')).publicKey.toString('hex'),
        ).to.equal(publicKey);
      });

      it('verifies nothing with a small-order or non-canonical public key, as libsodium and Synapse', () => {
        const message = Buffer.from('any message');
        // OpenSSL alone accepts the all-zero key (order 4) with an all-zero signature for any message.
        expect(
          implementation.publicKeyFromRaw(Buffer.alloc(32))?.verify(message, Buffer.alloc(64)) ?? false,
        ).to.equal(false);
        const identity = Buffer.alloc(32);
        identity[0] = 1;
        const identitySignature = Buffer.concat([identity, Buffer.alloc(32)]);
        expect(
          implementation.publicKeyFromRaw(identity)?.verify(message, identitySignature) ?? false,
        ).to.equal(false);
        // y = p + 1, a non-canonical encoding of the identity.
        const nonCanonical = Buffer.from(`ee${'ff'.repeat(30)}7f`, 'hex');
        expect(
          implementation.publicKeyFromRaw(nonCanonical)?.verify(message, identitySignature) ?? false,
        ).to.equal(false);
      });

      it('refuses a public key that is not 32 bytes', () => {
        expect(implementation.publicKeyFromRaw(Buffer.alloc(31))).to.equal(null);
        expect(implementation.publicKeyFromRaw(Buffer.alloc(33))).to.equal(null);
      });
    });
  }

  it('each verifies what the other signs', () => {
    if (libsodiumEd25519 === null) return;
    const seed = Buffer.alloc(32, 7);
    const message = Buffer.from('{"event_id":"$x","content":{"body":"😀"}}');
    for (const [signer, verifier] of [
      [nodeCryptoEd25519, libsodiumEd25519],
      [libsodiumEd25519, nodeCryptoEd25519],
    ] as const) {
      const key = signer.privateKeyFromSeed(seed);
      const signature = key.sign(message);
      expect(verifier.publicKeyFromRaw(key.publicKey)!.verify(message, signature)).to.equal(true);
    }
  });
});
