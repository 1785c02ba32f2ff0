import { expect } from 'chai';
import { ProtocolError } from './errors.js';
import { generateSigningKey } from './signing.js';
import { formatXMatrixHeader, parseXMatrixHeader, signRequest, verifyRequestSignature } from './x-matrix.js';

const key = generateSigningKey('k1');
const parts = {
  method: 'PUT',
  uri: '/_matrix/federation/v1/send/t1?x=1',
  origin: 'origin.example',
  destination: 'destination.example',
  content: { pdus: [], origin: 'origin.example' },
};

describe('X-Matrix request authentication (server-server "Request Authentication")', () => {
  it('signs a request as the spec example header shows and verifies it', () => {
    const header = signRequest(parts, key);
    expect(header).to.match(
      /^X-Matrix origin="origin\.example",destination="destination\.example",key="ed25519:k1",sig="[A-Za-z0-9+/]+"$/,
    );
    const credentials = parseXMatrixHeader(header)!;
    expect(verifyRequestSignature(parts, credentials, key.publicKey).ok).to.equal(true);
  });

  it('fails verification when the method, URI, destination or body differ', () => {
    const credentials = parseXMatrixHeader(signRequest(parts, key))!;
    for (const changed of [
      { ...parts, method: 'POST' },
      { ...parts, uri: '/_matrix/federation/v1/send/t2?x=1' },
      { ...parts, destination: 'other.example' },
      { ...parts, content: { pdus: [1], origin: 'origin.example' } },
      { ...parts, content: undefined },
    ]) {
      expect(verifyRequestSignature(changed, credentials, key.publicKey).ok).to.equal(false);
    }
    expect(verifyRequestSignature(parts, credentials, generateSigningKey('k2').publicKey).ok).to.equal(false);
  });

  it('parses any order, case-insensitive names, spaces around commas, tokens with colons, escapes', () => {
    const parsed = parseXMatrixHeader(
      'x-matrix  KEY=ed25519:k1 , sig="ab\\"c" ,\tOrigin=origin.example:8448,destination="d.example"',
    );
    expect(parsed).to.deep.equal({
      origin: 'origin.example:8448',
      destination: 'd.example',
      keyId: 'ed25519:k1',
      signature: 'ab"c',
    });
  });

  it('accepts a header without destination (servers before v1.3)', () => {
    expect(parseXMatrixHeader('X-Matrix origin=o.example,key="ed25519:a",sig="s"')?.destination).to.equal(
      undefined,
    );
  });

  it('ignores other schemes and refuses malformed X-Matrix headers', () => {
    expect(parseXMatrixHeader('Bearer abc')).to.equal(undefined);
    for (const bad of [
      'X-Matrix origin="o"',
      'X-Matrix origin="o,key="ed25519:a",sig="s"',
      'X-Matrix origin=o,origin=p,key=ed25519:a,sig=s',
      'X-Matrix =x',
    ]) {
      expect(() => parseXMatrixHeader(bad), bad).to.throw(ProtocolError);
    }
  });

  it('round-trips through format and parse', () => {
    const credentials = { origin: 'a:1', destination: 'b', keyId: 'ed25519:x', signature: 's/+' };
    expect(parseXMatrixHeader(formatXMatrixHeader(credentials))).to.deep.equal(credentials);
  });
});
