/**
 * Which addresses the server may connect to when a user names the place (URL previews,
 * identity servers): the guard against server-side request forgery. It checks every
 * address a name resolves to (loopback, private, link-local, multicast and the other
 * special ranges are denied unless allowlisted), and the connection then goes to exactly
 * the vetted address, so DNS rebinding cannot swap it.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import type IpAddr from 'ipaddr.js';
import { lazyRequire } from '../lazy-require.js';

/** Required on the first address checked (see lazy-require.ts). */
const ipaddr = lazyRequire<typeof IpAddr>('ipaddr.js');
type Cidr = [IpAddr.IPv4 | IpAddr.IPv6, number];

export class AddressGuard {
  private readonly allow: Cidr[];
  private readonly deny: Cidr[];

  /** `resolve`: how names are looked up (tests count or fake the answers). */
  constructor(
    allowlist: readonly string[],
    denylist: readonly string[],
    private readonly resolve: typeof dnsLookup = dnsLookup,
  ) {
    this.allow = allowlist.map((cidr) => ipaddr().parseCIDR(cidr));
    this.deny = denylist.map((cidr) => ipaddr().parseCIDR(cidr));
  }

  /** A guard that lets every address through (tests, same-host deployments). */
  static permitAll(): AddressGuard {
    return new AddressGuard(['0.0.0.0/0', '::/0'], []);
  }

  /** Public unicast addresses only, or every address when private ones are allowed (a setting). */
  static publicOnly(allowPrivate: boolean): AddressGuard {
    return allowPrivate ? AddressGuard.permitAll() : new AddressGuard([], []);
  }

  /** Public unicast addresses only, unless allowlisted; the configured denylist on top. */
  permits(address: string): boolean {
    let ip = ipaddr().parse(address);
    if (ip.kind() === 'ipv6' && (ip as IpAddr.IPv6).isIPv4MappedAddress()) {
      ip = (ip as IpAddr.IPv6).toIPv4Address();
    }
    if (this.matches(ip, this.allow)) return true;
    if (this.matches(ip, this.deny)) return false;
    return ip.range() === 'unicast';
  }

  private matches(ip: IpAddr.IPv4 | IpAddr.IPv6, list: Cidr[]): boolean {
    return list.some(([range, bits]) => range.kind() === ip.kind() && ip.match([range, bits] as never));
  }

  /** A dns.lookup that fails unless every address of the name is permitted. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.resolve(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 0);
      const denied = addresses.find((a) => !this.permits(a.address));
      if (denied || addresses.length === 0) {
        return callback(new ForbiddenAddressError(hostname), '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

/** The lookup's refusal; undici may hand it back as the cause of its own error. */
export class ForbiddenAddressError extends Error {
  override readonly name = 'ForbiddenAddressError';
  constructor(host: string) {
    super(`${host} resolves to an address this server may not contact`);
  }

  static isOrCauses(error: unknown): boolean {
    return (
      error instanceof ForbiddenAddressError ||
      (error as { cause?: unknown })?.cause instanceof ForbiddenAddressError
    );
  }
}
