import { expect } from 'chai';
import fc from 'fast-check';
import { decodeBase64, decodeBase64Url, encodeUnpaddedBase64, encodeUnpaddedBase64Url } from './base64.js';
import { ProtocolError } from './errors.js';
import vectors from './vectors/appendices-unpadded-base64.json' with { type: 'json' };

function expectBadBase64(run: () => unknown): void {
  expect(run).to.throw(ProtocolError).with.property('code', 'BAD_BASE64');
}

describe('unpadded base64 (appendices "Unpadded Base64")', () => {
  for (const c of vectors.cases) {
    it(`${c.source}: ${c.bytes_hex || '(empty)'} <-> ${c.unpadded || '""'}`, () => {
      const bytes = Buffer.from(c.bytes_hex, 'hex');
      expect(encodeUnpaddedBase64(bytes)).to.equal(c.unpadded);
      expect(encodeUnpaddedBase64Url(bytes)).to.equal(c.url_safe);
      expect(decodeBase64(c.unpadded).toString('hex')).to.equal(c.bytes_hex);
      expect(decodeBase64Url(c.url_safe).toString('hex')).to.equal(c.bytes_hex);
    });
  }

  it('accepts padded input', () => {
    for (const c of vectors.padded_accepted) {
      expect(decodeBase64(c.text).toString('hex')).to.equal(c.bytes_hex);
      expect(decodeBase64Url(c.text).toString('hex')).to.equal(c.bytes_hex);
    }
  });

  it('rejects malformed input', () => {
    for (const text of vectors.invalid_standard) expectBadBase64(() => decodeBase64(text));
    for (const text of vectors.invalid_url_safe) expectBadBase64(() => decodeBase64Url(text));
    expectBadBase64(() => decodeBase64(undefined as unknown as string));
  });

  it('accepts non-zero trailing bits, as the spec test seed has them', () => {
    expect(decodeBase64('Zh').toString('hex')).to.equal('66');
    expect(encodeUnpaddedBase64(decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1'))).to.equal(
      'YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0',
    );
  });

  it('encodes a view into a larger buffer without its neighbours', () => {
    const big = Buffer.from('xxfooxx');
    expect(encodeUnpaddedBase64(big.subarray(2, 5))).to.equal('Zm9v');
    expect(encodeUnpaddedBase64Url(new Uint8Array(big.buffer, big.byteOffset + 2, 3))).to.equal('Zm9v');
  });

  it('round-trips any bytes, and the encoding never has padding', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const standard = encodeUnpaddedBase64(bytes);
        const urlSafe = encodeUnpaddedBase64Url(bytes);
        expect(standard).not.to.include('=');
        expect(urlSafe).to.match(/^[A-Za-z0-9_-]*$/);
        expect([...decodeBase64(standard)]).to.deep.equal([...bytes]);
        expect([...decodeBase64Url(urlSafe)]).to.deep.equal([...bytes]);
      }),
      { numRuns: 500 },
    );
  });
});
