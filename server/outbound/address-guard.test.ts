import { expect } from 'chai';
import { AddressGuard } from './address-guard.js';

describe('outbound address guard (SSRF)', () => {
  const guard = new AddressGuard([], ['203.0.113.0/24']);

  it('denies loopback, private, link-local, multicast and other special ranges', () => {
    for (const address of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fc00::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
    ]) {
      expect(guard.permits(address), address).to.equal(false);
    }
  });

  it('permits public unicast addresses, minus the configured denylist', () => {
    expect(guard.permits('93.184.215.14')).to.equal(true);
    expect(guard.permits('2606:2800:21f:cb07:6820:80da:af6b:8b2c')).to.equal(true);
    expect(guard.permits('203.0.113.7')).to.equal(false);
  });

  it('lets the allowlist through', () => {
    const allowing = new AddressGuard(['127.0.0.0/8', '::1/128'], []);
    expect(allowing.permits('127.0.0.1')).to.equal(true);
    expect(allowing.permits('::1')).to.equal(true);
    expect(allowing.permits('10.0.0.1')).to.equal(false);
  });
});
