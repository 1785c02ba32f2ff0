/**
 * Matrix identifiers (spec: appendices "Identifier Grammar": Server Name, User
 * Identifiers incl. historical user IDs, Room IDs, Room Aliases, Event IDs).
 *
 * Identifiers are parsed once where they enter (HTTP edge, federation, event
 * validation) and travel below as the template-literal types declared here.
 * The `isValid*` forms are type guards; the `parse*` forms throw
 * ProtocolError('BAD_IDENTIFIER') and return the parts.
 */
import { ProtocolError } from './errors.js';
import type { RoomVersionRules } from './room-versions.js';

export type UserId = `@${string}:${string}`;
export type RoomAlias = `#${string}:${string}`;
/** `!opaque:server` (room versions 1-11) or `!` + the create event's reference hash (12+). */
export type RoomId = `!${string}`;
/** `$opaque:server` (room versions 1-2) or `$` + the event's reference hash (3+). */
export type EventId = `$${string}`;
/** A string that passed `parseServerName`; it carries no sigil to type it by. */
export type ServerName = string;

/** Whole user IDs, room IDs, aliases and event IDs, in UTF-8 bytes. */
export const MAX_IDENTIFIER_BYTES = 255;
const MAX_SERVER_NAME_LENGTH = 255;

export interface ParsedServerName {
  /** DNS name or IP literal as written; an IPv6 literal without its brackets. */
  host: string;
  port?: number;
  kind: 'dns' | 'ipv4' | 'ipv6';
}
export interface ParsedUserId {
  userId: UserId;
  localpart: string;
  serverName: ServerName;
}
export interface ParsedRoomId {
  roomId: RoomId;
  opaque: string;
  /** Absent for room IDs that are a create event's reference hash (room version 12+). */
  serverName?: ServerName;
}
export interface ParsedEventId {
  eventId: EventId;
  opaque: string;
  /** Present only for the server-generated event IDs of room versions 1-2. */
  serverName?: ServerName;
}
export interface ParsedRoomAlias {
  roomAlias: RoomAlias;
  localpart: string;
  serverName: ServerName;
}

export interface UserIdOptions {
  /**
   * Accept historical localparts (appendices "Historical User IDs"): any non-surrogate
   * code points except `:` and NUL, the empty string included. Events over federation
   * must be accepted with such senders; new accounts must use the strict grammar.
   */
  readonly historical?: boolean;
}

type Verdict<T> = { ok: true; value: T } | { ok: false; reason: string };
const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

function unwrap<T>(verdict: Verdict<T>): T {
  if (!verdict.ok) throw new ProtocolError('BAD_IDENTIFIER', verdict.reason);
  return verdict.value;
}

// --- Server names -------------------------------------------------------------

const DNS_NAME = /^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*$/;
const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const PORT = /^\d{1,5}$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]{2,45}$/;

function isIpv4Literal(text: string): boolean {
  const quad = DOTTED_QUAD.exec(text);
  return quad?.slice(1).every((part) => Number(part) <= 255) === true;
}

function isHexGroupList(text: string): number | undefined {
  if (text === '') return 0;
  const groups = text.split(':');
  return groups.every((group) => HEX_GROUP.test(group)) ? groups.length : undefined;
}

/** RFC 3513 section 2.2 text forms: eight groups, one `::` elision, or a dotted-quad tail. */
function isIpv6Literal(text: string): boolean {
  if (!IPV6_CHARS.test(text)) return false;
  let hexPart = text;
  if (text.includes('.')) {
    const lastColon = text.lastIndexOf(':');
    if (lastColon < 0 || !isIpv4Literal(text.slice(lastColon + 1))) return false;
    hexPart = `${text.slice(0, lastColon + 1)}0:0`; // the dotted quad stands for the last two groups
  }
  const halves = hexPart.split('::');
  if (halves.length > 2) return false;
  if (halves.length === 1) return isHexGroupList(hexPart) === 8;
  const before = isHexGroupList(halves[0]!);
  const after = isHexGroupList(halves[1]!);
  return before !== undefined && after !== undefined && before + after <= 7;
}

function checkServerName(text: string): Verdict<ParsedServerName> {
  if (text.length === 0) return fail('Server name is empty');
  if (text.length > MAX_SERVER_NAME_LENGTH) {
    return fail(`Server name is longer than ${MAX_SERVER_NAME_LENGTH} characters`);
  }
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return fail(`Server name ${quoted(text)} has an unclosed IPv6 literal`);
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return fail(`Server name ${quoted(text)} has junk after its IPv6 literal`);
      portText = rest.slice(1);
    }
  } else {
    const colon = text.indexOf(':');
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
  }

  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (!PORT.test(portText) || port < 1 || port > 65535) {
      return fail(`Server name ${quoted(text)} has an invalid port`);
    }
  }

  let kind: ParsedServerName['kind'];
  if (text.startsWith('[')) {
    if (!isIpv6Literal(host)) return fail(`Server name ${quoted(text)} has an invalid IPv6 literal`);
    kind = 'ipv6';
  } else if (DOTTED_QUAD.test(host)) {
    if (!isIpv4Literal(host)) return fail(`Server name ${quoted(text)} has an invalid IPv4 literal`);
    kind = 'ipv4';
  } else {
    if (!DNS_NAME.test(host)) return fail(`Server name ${quoted(text)} is not a valid host name`);
    kind = 'dns';
  }
  return { ok: true, value: port === undefined ? { host, kind } : { host, port, kind } };
}

/** Parses `hostname[:port]` (appendices "Server Name"); hostnames are DNS names, IPv4 or `[IPv6]`. */
export function parseServerName(text: unknown): ParsedServerName {
  if (typeof text !== 'string') throw new ProtocolError('BAD_IDENTIFIER', 'Server name is not a string');
  return unwrap(checkServerName(text));
}

export function isValidServerName(text: unknown): text is ServerName {
  return typeof text === 'string' && checkServerName(text).ok;
}

// --- Sigilled identifiers -----------------------------------------------------

const STRICT_LOCALPART = /^[a-z0-9._=\-/+]+$/;
/** NUL or a surrogate code unit not part of a pair: never allowed in any opaque part. */
const NUL_OR_LONE_SURROGATE = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const STANDARD_BASE64_HASH = /^[A-Za-z0-9+/]{43}$/;
const URL_SAFE_BASE64_HASH = /^[A-Za-z0-9\-_]{43}$/;

const SIGIL_NAMES = { '@': 'User ID', '!': 'Room ID', $: 'Event ID', '#': 'Room alias' } as const;
type Sigil = keyof typeof SIGIL_NAMES;

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** For messages: identifiers arrive from outside and may be huge or full of control characters. */
function quoted(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}

interface SigilledParts {
  text: string;
  opaque: string;
  serverName: string | undefined;
}

/** Sigil, byte length, then the split at the first `:` (opaque parts never contain one). */
function splitSigilled(text: unknown, sigil: Sigil): Verdict<SigilledParts> {
  const name = SIGIL_NAMES[sigil];
  if (typeof text !== 'string') return fail(`${name} is not a string`);
  if (!text.startsWith(sigil)) return fail(`${name} ${quoted(text)} does not start with '${sigil}'`);
  if (utf8Length(text) > MAX_IDENTIFIER_BYTES) {
    return fail(`${name} ${quoted(text)} is longer than ${MAX_IDENTIFIER_BYTES} bytes`);
  }
  const colon = text.indexOf(':');
  if (colon < 0) return { ok: true, value: { text, opaque: text.slice(1), serverName: undefined } };
  return { ok: true, value: { text, opaque: text.slice(1, colon), serverName: text.slice(colon + 1) } };
}

/** The `opaque:server` form: any code point but NUL in the opaque part, a valid server name after. */
function checkServerForm(
  parts: SigilledParts,
  sigil: Sigil,
): Verdict<{ opaque: string; serverName: string }> {
  const name = SIGIL_NAMES[sigil];
  const { text, opaque, serverName } = parts;
  if (serverName === undefined) return fail(`${name} ${quoted(text)} has no ':server' part`);
  if (NUL_OR_LONE_SURROGATE.test(opaque))
    return fail(`${name} ${quoted(text)} contains NUL or a lone surrogate`);
  const server = checkServerName(serverName);
  if (!server.ok) return fail(`${name} ${quoted(text)}: ${server.reason}`);
  return { ok: true, value: { opaque, serverName } };
}

function checkUserId(text: unknown, options: UserIdOptions | undefined): Verdict<ParsedUserId> {
  const split = splitSigilled(text, '@');
  if (!split.ok) return split;
  const parts = checkServerForm(split.value, '@');
  if (!parts.ok) return parts;
  const { opaque: localpart, serverName } = parts.value;
  if (!options?.historical && !STRICT_LOCALPART.test(localpart)) {
    return fail(
      `User ID ${quoted(split.value.text)} has a localpart that is empty or not all [a-z0-9._=-/+]`,
    );
  }
  return { ok: true, value: { userId: split.value.text as UserId, localpart, serverName } };
}

/** `@localpart:server`, at most 255 bytes; strict localpart grammar unless `historical`. */
export function parseUserId(text: unknown, options?: UserIdOptions): ParsedUserId {
  return unwrap(checkUserId(text, options));
}

export function isValidUserId(text: unknown, options?: UserIdOptions): text is UserId {
  return checkUserId(text, options).ok;
}

/** Localparts a new account may take (client-server `/register`): non-empty `[a-z0-9._=-/+]`. */
export function isValidLocalpartForRegistration(localpart: string): boolean {
  return STRICT_LOCALPART.test(localpart);
}

/** Builds the user ID of a new local account; throws BAD_IDENTIFIER if the result is not a valid ID. */
export function userIdFor(localpart: string, serverName: string): UserId {
  return parseUserId(`@${localpart}:${serverName}`).userId;
}

/**
 * Whether a user ID or room alias belongs to `serverName` (everything after the first `:`:
 * localparts cannot contain one). Cheap enough for per-member loops; validity is the edge's job.
 */
/** The server name of a user ID or room alias: everything after the first `:` (validity is the edge's job). */
export function serverNameOfId(id: string): string {
  return id.slice(id.indexOf(':') + 1);
}

export function belongsToServer(id: string, serverName: string): boolean {
  const colon = id.indexOf(':');
  return colon >= 0 && id.slice(colon + 1) === serverName;
}

type RoomIdRules = Pick<RoomVersionRules, 'roomIdIsCreateEventHash'>;

function checkRoomId(text: unknown, rules: RoomIdRules | undefined): Verdict<ParsedRoomId> {
  const split = splitSigilled(text, '!');
  if (!split.ok) return split;
  const roomId = split.value.text as RoomId;
  if (split.value.serverName === undefined) {
    if (rules && !rules.roomIdIsCreateEventHash)
      return fail(`Room ID ${quoted(roomId)} has no ':server' part`);
    if (!URL_SAFE_BASE64_HASH.test(split.value.opaque)) {
      return fail(
        `Room ID ${quoted(roomId)} is neither '!opaque:server' nor '!' + 43 URL-safe base64 characters`,
      );
    }
    return { ok: true, value: { roomId, opaque: split.value.opaque } };
  }
  if (rules?.roomIdIsCreateEventHash) {
    return fail(
      `Room ID ${quoted(roomId)} has a server part; this room version uses the create event's hash`,
    );
  }
  const parts = checkServerForm(split.value, '!');
  if (!parts.ok) return parts;
  return { ok: true, value: { roomId, ...parts.value } };
}

/**
 * `!opaque:server` (room versions 1-11) or `!` + 43 URL-safe unpadded base64 characters (12+).
 * Without `rules` either form is accepted; with them, only the version's form.
 */
export function parseRoomId(text: unknown, rules?: RoomIdRules): ParsedRoomId {
  return unwrap(checkRoomId(text, rules));
}

export function isValidRoomId(text: unknown, rules?: RoomIdRules): text is RoomId {
  return checkRoomId(text, rules).ok;
}

type EventIdRules = Pick<RoomVersionRules, 'eventIdFormat'>;

function isReferenceHash(opaque: string, format: RoomVersionRules['eventIdFormat'] | undefined): boolean {
  switch (format) {
    case 'reference-hash':
      return STANDARD_BASE64_HASH.test(opaque);
    case 'reference-hash-url-safe':
      return URL_SAFE_BASE64_HASH.test(opaque);
    case 'server-generated':
      return false;
    case undefined:
      return STANDARD_BASE64_HASH.test(opaque) || URL_SAFE_BASE64_HASH.test(opaque);
  }
}

function checkEventId(text: unknown, rules: EventIdRules | undefined): Verdict<ParsedEventId> {
  const split = splitSigilled(text, '$');
  if (!split.ok) return split;
  const eventId = split.value.text as EventId;
  const format = rules?.eventIdFormat;
  if (split.value.serverName === undefined) {
    if (format === 'server-generated') return fail(`Event ID ${quoted(eventId)} has no ':server' part`);
    if (!isReferenceHash(split.value.opaque, format)) {
      return fail(
        `Event ID ${quoted(eventId)} is not '$' + 43 unpadded base64 characters of its room version`,
      );
    }
    return { ok: true, value: { eventId, opaque: split.value.opaque } };
  }
  if (format !== undefined && format !== 'server-generated') {
    return fail(`Event ID ${quoted(eventId)} has a server part; this room version uses reference hashes`);
  }
  const parts = checkServerForm(split.value, '$');
  if (!parts.ok) return parts;
  return { ok: true, value: { eventId, ...parts.value } };
}

/**
 * `$opaque:server` (room versions 1-2), `$` + 43 standard base64 characters (3), or
 * `$` + 43 URL-safe base64 characters (4+). Without `rules` any of the three is accepted.
 */
export function parseEventId(text: unknown, rules?: EventIdRules): ParsedEventId {
  return unwrap(checkEventId(text, rules));
}

export function isValidEventId(text: unknown, rules?: EventIdRules): text is EventId {
  return checkEventId(text, rules).ok;
}

function checkRoomAlias(text: unknown): Verdict<ParsedRoomAlias> {
  const split = splitSigilled(text, '#');
  if (!split.ok) return split;
  const parts = checkServerForm(split.value, '#');
  if (!parts.ok) return parts;
  const { opaque: localpart, serverName } = parts.value;
  return { ok: true, value: { roomAlias: split.value.text as RoomAlias, localpart, serverName } };
}

/** `#localpart:server`, at most 255 bytes; the localpart may hold any code point but `:` and NUL. */
export function parseRoomAlias(text: unknown): ParsedRoomAlias {
  return unwrap(checkRoomAlias(text));
}

export function isValidRoomAlias(text: unknown): text is RoomAlias {
  return checkRoomAlias(text).ok;
}

/** The reason an identifier is invalid, or undefined; for callers that attach their own field path. */
export function userIdProblem(text: unknown, options?: UserIdOptions): string | undefined {
  const verdict = checkUserId(text, options);
  return verdict.ok ? undefined : verdict.reason;
}
export function roomIdProblem(text: unknown, rules?: RoomIdRules): string | undefined {
  const verdict = checkRoomId(text, rules);
  return verdict.ok ? undefined : verdict.reason;
}
export function eventIdProblem(text: unknown, rules?: EventIdRules): string | undefined {
  const verdict = checkEventId(text, rules);
  return verdict.ok ? undefined : verdict.reason;
}
