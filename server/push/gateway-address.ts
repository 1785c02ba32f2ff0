/**
 * Which push gateway URLs this server may call (pusher.yaml `data.url`, push.md
 * "Security considerations"). Clients choose the URL, so without limits a pusher
 * would make the server request any address it can reach (SSRF). By default only
 * HTTPS URLs whose host resolves to public unicast addresses are allowed;
 * `push.allow_private_gateways` also allows loopback, private and link-local
 * addresses and plain HTTP (tests, a gateway on the same host), and
 * `push.allowed_gateway_hosts` restricts the host names. Addresses are checked
 * when the pusher is set and again at each connection (DNS may change).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import type IpAddr from 'ipaddr.js';
import { lazyRequire } from '../lazy-require.js';

/** Required on the first address checked (see lazy-require.ts). */
const ipaddr = lazyRequire<typeof IpAddr>('ipaddr.js');

/** spec pusher.yaml: "MUST be an HTTPS URL with a path of /_matrix/push/v1/notify". */
export const NOTIFY_PATH = '/_matrix/push/v1/notify';

export interface GatewayPolicy {
  readonly allowPrivate: boolean;
  /** Empty: any host. */
  readonly allowedHosts: readonly string[];
}

/** Why a gateway URL is refused, for the client's error message; null when it is acceptable. */
export function gatewayUrlProblem(url: string, policy: GatewayPolicy): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'data.url is not a URL';
  }
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && policy.allowPrivate)) {
    return 'data.url must be an HTTPS URL';
  }
  if (parsed.pathname !== NOTIFY_PATH) return `data.url must have the path ${NOTIFY_PATH}`;
  if (parsed.username !== '' || parsed.password !== '') return 'data.url must not carry credentials';
  const host = hostOf(parsed);
  if (policy.allowedHosts.length > 0 && !policy.allowedHosts.includes(host.toLowerCase())) {
    return 'This server does not send notifications to that push gateway host';
  }
  if (isIP(host) !== 0 && !addressAllowed(host, policy)) {
    return 'data.url points at a private or reserved address';
  }
  return null;
}

/** The URL's host without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

/** Public unicast only, unless private addresses are allowed. */
export function addressAllowed(address: string, policy: Pick<GatewayPolicy, 'allowPrivate'>): boolean {
  if (policy.allowPrivate) return true;
  if (!ipaddr().isValid(address)) return false;
  let parsed = ipaddr().parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as IpAddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as IpAddr.IPv6).toIPv4Address();
  }
  return parsed.range() === 'unicast';
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for net.connect that refuses addresses the policy forbids, so a
 * host name that resolves (or re-resolves) to an internal address is never reached.
 */
export function guardedLookup(policy: Pick<GatewayPolicy, 'allowPrivate'>) {
  return (hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const allowed = addresses.filter((entry) => addressAllowed(entry.address, policy));
      if (allowed.length === 0) {
        const refusal: NodeJS.ErrnoException = new Error(
          `Push gateway ${hostname} resolves to a refused address`,
        );
        refusal.code = 'EADDRNOTALLOWED';
        return callback(refusal, []);
      }
      if (options.all) return callback(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}
