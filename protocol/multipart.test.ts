import { expect } from 'chai';
import { decodeMultipart, encodeMultipartMixed, multipartBoundary } from './multipart.js';

describe('multipart/mixed (federation media)', () => {
  it('round-trips a JSON part and a binary part byte for byte', () => {
    const bytes = Buffer.from([0, 13, 10, 45, 45, 255, 1, 2]);
    const { contentType, body } = encodeMultipartMixed(
      [
        { headers: { 'Content-Type': 'application/json' }, body: '{}' },
        { headers: { 'Content-Type': 'image/png', 'Content-Disposition': 'inline' }, body: bytes },
      ],
      'b0undary',
    );
    const boundary = multipartBoundary(contentType);
    expect(boundary).to.equal('b0undary');
    const parts = decodeMultipart(body, boundary!);
    expect(parts).to.have.length(2);
    expect(parts[0]!.headers['content-type']).to.equal('application/json');
    expect(parts[0]!.body.toString()).to.equal('{}');
    expect(parts[1]!.headers).to.deep.equal({ 'content-type': 'image/png', 'content-disposition': 'inline' });
    expect(parts[1]!.body.equals(bytes)).to.equal(true);
  });

  it('reads a quoted boundary, a preamble and a Location-only part', () => {
    const text =
      'preamble\r\n--x y\r\nContent-Type: application/json\r\n\r\n{"a":1}\r\n--x y\r\nLocation: https://example.org/m\r\n\r\n\r\n--x y--\r\n';
    expect(multipartBoundary('multipart/mixed; boundary="x y"')).to.equal('x y');
    const parts = decodeMultipart(Buffer.from(text), 'x y');
    expect(parts.map((p) => p.headers)).to.deep.equal([
      { 'content-type': 'application/json' },
      { location: 'https://example.org/m' },
    ]);
    expect(parts[1]!.body.length).to.equal(0);
  });

  it('refuses a body without the boundary, and says so for non-multipart types', () => {
    expect(() => decodeMultipart(Buffer.from('nothing'), 'x')).to.throw();
    expect(multipartBoundary('application/json')).to.equal(undefined);
  });
});
