import { expect } from 'chai';
import { isServerAllowedByAcl } from './server-acl.js';

describe('server ACLs (client-server "Server Access Control Lists")', () => {
  // The spec's example event content.
  const spec = { allow: ['*'], deny: ['*.evil.com', 'evil.com'], allow_ip_literals: false };

  it('applies the spec example: deny globs, IP literals refused, everything else allowed', () => {
    expect(isServerAllowedByAcl('matrix.org', spec)).to.equal(true);
    expect(isServerAllowedByAcl('matrix.org:8448', spec)).to.equal(true);
    expect(isServerAllowedByAcl('evil.com', spec)).to.equal(false);
    expect(isServerAllowedByAcl('sub.evil.com:443', spec)).to.equal(false);
    expect(isServerAllowedByAcl('notevil.com', spec)).to.equal(true);
    expect(isServerAllowedByAcl('1.2.3.4', spec)).to.equal(false);
    expect(isServerAllowedByAcl('[::1]:8448', spec)).to.equal(false);
  });

  it('denies everyone not allowed; no allow list allows nobody', () => {
    expect(isServerAllowedByAcl('a.example', { allow: ['b.example'] })).to.equal(false);
    expect(isServerAllowedByAcl('a.example', {})).to.equal(false);
    expect(isServerAllowedByAcl('a.example', { allow: ['?.example'] })).to.equal(true);
    expect(isServerAllowedByAcl('ab.example', { allow: ['?.example'] })).to.equal(false);
  });

  it('allows IP literals by default, deny wins over allow, matches case-insensitively', () => {
    expect(isServerAllowedByAcl('127.0.0.1:8448', { allow: ['*'] })).to.equal(true);
    expect(isServerAllowedByAcl('a.example', { allow: ['*'], deny: ['a.example'] })).to.equal(false);
    expect(isServerAllowedByAcl('A.Example', { allow: ['a.example'] })).to.equal(true);
  });

  it('treats regular-expression characters literally and ignores malformed entries', () => {
    expect(isServerAllowedByAcl('aXexample', { allow: ['a.example'] })).to.equal(false);
    expect(isServerAllowedByAcl('a.example', { allow: [42, 'a.example'], deny: 'a.example' })).to.equal(true);
    expect(isServerAllowedByAcl('not a server name', { allow: ['*'] })).to.equal(false);
  });
});
