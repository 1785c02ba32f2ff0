/**
 * Which push gateway URLs this server may call (pusher.yaml `data.url`, push.md
 * "Security considerations"). Clients choose the URL, so without limits a pusher
 * would make the server request any address it can reach (SSRF). By default only
 * HTTPS URLs whose host resolves to public unicast addresses are allowed;
 * `push.allow_private_gateways` also allows loopback, private and link-local
 * addresses and plain HTTP (tests, a gateway on the same host), and
 * `push.allowed_gateway_hosts` restricts the host names. Addresses are judged by the
 * server's one outbound guard (server/outbound/address-guard.ts, as for URL previews
 * and identity servers): when the pusher is set, and again at each connection (DNS may change).
 */
import { isIP } from 'node:net';
import { AddressGuard } from '../outbound/address-guard.js';

/** spec pusher.yaml: "MUST be an HTTPS URL with a path of /_matrix/push/v1/notify". */
export const NOTIFY_PATH = '/_matrix/push/v1/notify';

export interface GatewayPolicy {
  readonly allowPrivate: boolean;
  /** Empty: any host. */
  readonly allowedHosts: readonly string[];
}

/** The address guard for push gateways under this policy: public unicast only, unless private ones are allowed. */
export function gatewayAddressGuard(policy: Pick<GatewayPolicy, 'allowPrivate'>): AddressGuard {
  return AddressGuard.publicOnly(policy.allowPrivate);
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
  const host = literalHost(parsed);
  if (policy.allowedHosts.length > 0 && !policy.allowedHosts.includes(host.toLowerCase())) {
    return 'This server does not send notifications to that push gateway host';
  }
  if (isIP(host) !== 0 && !gatewayAddressGuard(policy).permits(host)) {
    return 'data.url points at a private or reserved address';
  }
  return null;
}

/** The URL's host without IPv6 brackets. */
export function literalHost(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}
