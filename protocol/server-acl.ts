/**
 * Server access control lists (client-server "Server Access Control Lists",
 * m.room.server_acl): may a server take part in a room? Pure: the caller
 * passes the event's content.
 */
import { parseServerName } from './identifiers.js';

export interface ServerAclContent {
  readonly allow?: unknown;
  readonly deny?: unknown;
  readonly allow_ip_literals?: unknown;
}

/**
 * The spec's order: the port is ignored; an IP literal is denied unless
 * allow_ip_literals (default true); any deny glob that matches denies; then
 * an allow glob must match (no allow list allows nobody). Globs: `*` any run
 * of characters, `?` one character. Malformed entries (non-strings) are ignored.
 */
export function isServerAllowedByAcl(serverName: string, acl: ServerAclContent): boolean {
  let host: string;
  let kind: 'dns' | 'ipv4' | 'ipv6';
  try {
    ({ host, kind } = parseServerName(serverName));
  } catch {
    return false;
  }
  if (kind === 'ipv6') host = `[${host}]`;
  const allowIpLiterals = typeof acl.allow_ip_literals === 'boolean' ? acl.allow_ip_literals : true;
  if (!allowIpLiterals && kind !== 'dns') return false;
  if (globsOf(acl.deny).some((glob) => glob.test(host))) return false;
  return globsOf(acl.allow).some((glob) => glob.test(host));
}

const compiled = new Map<string, RegExp>();

function globsOf(list: unknown): RegExp[] {
  if (!Array.isArray(list)) return [];
  const globs: RegExp[] = [];
  for (const entry of list) if (typeof entry === 'string') globs.push(globRegExp(entry));
  return globs;
}

/** Server names compare case-insensitively (DNS). */
export function globRegExp(glob: string): RegExp {
  let regExp = compiled.get(glob);
  if (regExp === undefined) {
    const source = glob
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('');
    regExp = new RegExp(`^${source}$`, 'is');
    if (compiled.size > 1024) compiled.clear();
    compiled.set(glob, regExp);
  }
  return regExp;
}
