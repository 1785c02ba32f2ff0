/**
 * The sliding sync request (MSC4186 "API"), normalised once at the edge. Two
 * dialects reach us: what Synapse and matrix-rust-sdk (Element X) speak today
 * (`pos`/`timeout` in the query, `ranges`, `required_state` as [type, state_key]
 * pairs with `*`, `$LAZY`, `$ME`, `is_invite`) and the MSC's latest text (`pos`
 * and `timeout` in the body, `range`, `required_state` as {include, exclude,
 * lazy_members}, `is_invited`). Both become one shape here.
 */

import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import { MatrixError } from '../errors.js';

/** Matches state by type and state key; null matches any. `$ME` is resolved when matching. */
export interface StateMatcher {
  readonly type: string | null;
  readonly stateKey: string | null;
}

export interface RequiredStateConfig {
  readonly include: readonly StateMatcher[];
  readonly exclude: readonly StateMatcher[];
  readonly lazyMembers: boolean;
}

export interface RoomConfig {
  readonly timelineLimit: number;
  readonly requiredState: RequiredStateConfig;
}

export interface ListFilters {
  readonly isDm?: boolean;
  readonly isEncrypted?: boolean;
  readonly isInvite?: boolean;
  readonly roomTypes?: readonly (string | null)[];
  readonly notRoomTypes?: readonly (string | null)[];
  readonly spaces?: readonly string[];
  readonly tags?: readonly string[];
  readonly notTags?: readonly string[];
}

export interface ListRequest extends RoomConfig {
  /** Inclusive index ranges into the filtered, sorted list; null: every room. */
  readonly ranges: readonly (readonly [number, number])[] | null;
  readonly filters: ListFilters;
}

/** Which rooms an extension reports on: list names and subscribed room IDs, `*` for all. */
export interface ExtensionScope {
  readonly lists: readonly string[];
  readonly rooms: readonly string[];
}

export interface ExtensionsRequest {
  readonly toDevice?: { readonly since: number; readonly limit: number };
  readonly e2ee?: true;
  readonly accountData?: ExtensionScope;
  readonly receipts?: ExtensionScope;
  readonly typing?: ExtensionScope;
}

export interface SlidingSyncRequest extends RequestSettings {
  /** The body's part shared by requests asking the same thing (see settingsOf). */
  readonly settings: RequestSettings;
  readonly pos: string | null;
  readonly timeoutMs: number;
  readonly setPresence: 'online' | 'offline' | 'unavailable';
}

/** MSC4186: at most 100 lists and 100 subscriptions. */
const MAX_LISTS = 100;
const MAX_SUBSCRIPTIONS = 100;
/** Synapse caps timeline_limit at 1000 too. */
const MAX_TIMELINE_LIMIT = 1000;
const MAX_TO_DEVICE_LIMIT = 100;

type Json = Record<string, unknown>;

/**
 * What the body asks, apart from `pos`, `timeout` and `set_presence`: a client sends the
 * same body request after request, so it is parsed once and shared (the same object for
 * every request that asks the same thing, which lets the service tell "same request").
 */
export interface RequestSettings {
  readonly connId: string;
  /** Older matrix-rust-sdk versions send one and expect it back. */
  readonly txnId?: string;
  readonly lists: ReadonlyMap<string, ListRequest>;
  readonly subscriptions: ReadonlyMap<string, RoomConfig>;
  readonly extensions: ExtensionsRequest;
}

/** Bodies parsed lately, by their JSON text without pos, timeout and set_presence. */
const parsedSettings = new LazyLruCache<string, RequestSettings>({ max: 1_000 });
/** Larger bodies (many subscriptions) are parsed each time rather than held. */
const MAX_CACHED_BODY_CHARS = 16_384;

/** @throws MatrixError 400 M_INVALID_PARAM on anything malformed. */
export function parseSlidingSyncRequest(
  body: Json,
  query: { readonly pos?: string; readonly timeout?: number; readonly set_presence?: string },
): SlidingSyncRequest {
  const pos = query.pos ?? optionalString(body, 'pos');
  const timeout = query.timeout ?? optionalInteger(body, 'timeout', 0);
  const setPresence = query.set_presence ?? optionalString(body, 'set_presence') ?? 'online';
  if (setPresence !== 'online' && setPresence !== 'offline' && setPresence !== 'unavailable')
    throw MatrixError.invalidParam('set_presence must be online, offline or unavailable');
  const settings = settingsOf(body);
  return {
    ...settings,
    settings,
    pos: pos === undefined || pos === '' ? null : pos,
    timeoutMs: pos === undefined ? 0 : Math.max(0, timeout ?? 0),
    setPresence,
  };
}

/**
 * The bodies parsed last with their settings: a request that repeats one of them (nearly
 * every long-poll) is recognised by walking it, without serialising it for the cache key.
 */
const recentBodies: { readonly body: Json; readonly settings: RequestSettings }[] = [];
const RECENT_BODIES = 8;
/** Per request, not part of what the request asks (see RequestSettings). */
const PER_REQUEST_KEYS = new Set(['pos', 'timeout', 'set_presence']);

function settingsOf(body: Json): RequestSettings {
  for (const recent of recentBodies) if (sameRequestBody(recent.body, body)) return recent.settings;
  const settings = serialisedSettingsOf(body);
  if (recentBodies.unshift({ body, settings }) > RECENT_BODIES) recentBodies.pop();
  return settings;
}

/** Whether two bodies ask the same (they may differ in the per-request keys). */
function sameRequestBody(a: Json, b: Json): boolean {
  let keysOfA = 0;
  for (const key in a) {
    if (PER_REQUEST_KEYS.has(key)) continue;
    if (!Object.hasOwn(b, key) || !sameJson(a[key], b[key])) return false;
    keysOfA++;
  }
  let keysOfB = 0;
  for (const key in b) if (!PER_REQUEST_KEYS.has(key)) keysOfB++;
  return keysOfA === keysOfB;
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const objectA = a as Json;
  const objectB = b as Json;
  let keys = 0;
  for (const key in objectA) {
    if (!Object.hasOwn(objectB, key) || !sameJson(objectA[key], objectB[key])) return false;
    keys++;
  }
  for (const _ in objectB) keys--;
  return keys === 0;
}

function serialisedSettingsOf(body: Json): RequestSettings {
  const { pos: _pos, timeout: _timeout, set_presence: _presence, ...asked } = body;
  const key = JSON.stringify(asked);
  if (key.length > MAX_CACHED_BODY_CHARS) return parseSettings(body);
  let settings = parsedSettings.get(key);
  if (settings === undefined) {
    settings = parseSettings(body);
    parsedSettings.set(key, settings);
  }
  return settings;
}

function parseSettings(body: Json): RequestSettings {
  const lists = new Map<string, ListRequest>();
  const listsBody = optionalObject(body, 'lists') ?? {};
  if (Object.keys(listsBody).length > MAX_LISTS) throw MatrixError.invalidParam('Too many lists (max 100)');
  for (const [name, raw] of Object.entries(listsBody)) lists.set(name, parseList(name, raw));

  const subscriptions = new Map<string, RoomConfig>();
  const subsBody = optionalObject(body, 'room_subscriptions') ?? {};
  if (Object.keys(subsBody).length > MAX_SUBSCRIPTIONS)
    throw MatrixError.invalidParam('Too many room subscriptions (max 100)');
  for (const [roomId, raw] of Object.entries(subsBody)) {
    if (!roomId.startsWith('!'))
      throw MatrixError.invalidParam(`Invalid room ID in room_subscriptions: ${roomId}`);
    subscriptions.set(roomId, parseRoomConfig(`room_subscriptions.${roomId}`, asObject(raw, roomId)));
  }

  const txnId = optionalString(body, 'txn_id');
  return {
    ...(txnId === undefined ? {} : { txnId }),
    connId: optionalString(body, 'conn_id') ?? '',
    lists,
    subscriptions,
    extensions: parseExtensions(optionalObject(body, 'extensions') ?? {}),
  };
}

function parseList(name: string, raw: unknown): ListRequest {
  const list = asObject(raw, `lists.${name}`);
  let ranges: [number, number][] | null = null;
  if (list.ranges !== undefined) ranges = asArray(list.ranges, 'ranges').map((range) => parseRange(range));
  else if (list.range !== undefined) ranges = [parseRange(list.range)];
  // Synapse's slow_get_all_rooms: the whole list, whatever the ranges say.
  if (list.slow_get_all_rooms === true) ranges = null;
  return {
    ...parseRoomConfig(`lists.${name}`, list),
    ranges,
    filters: parseFilters(optionalObject(list, 'filters') ?? {}),
  };
}

function parseRange(raw: unknown): [number, number] {
  const range = asArray(raw, 'range');
  const [start, end] = range;
  if (range.length !== 2 || !isCount(start) || !isCount(end) || end < start)
    throw MatrixError.invalidParam('A range is [start, end] with 0 <= start <= end');
  return [start, end];
}

function parseRoomConfig(where: string, raw: Json): RoomConfig {
  const limit = raw.timeline_limit ?? 0;
  if (!isCount(limit) || limit > MAX_TIMELINE_LIMIT)
    throw MatrixError.invalidParam(`${where}.timeline_limit must be an integer from 0 to 1000`);
  return { timelineLimit: limit, requiredState: parseRequiredState(where, raw.required_state) };
}

const LAZY = '$LAZY';
const WILDCARD = '*';

function parseRequiredState(where: string, raw: unknown): RequiredStateConfig {
  if (raw === undefined || raw === null) return { include: [], exclude: [], lazyMembers: false };
  if (Array.isArray(raw)) {
    // [[type, state_key], ...] with "*" wildcards and ["m.room.member", "$LAZY"].
    const include: StateMatcher[] = [];
    let lazyMembers = false;
    for (const pair of raw) {
      if (
        !Array.isArray(pair) ||
        pair.length !== 2 ||
        typeof pair[0] !== 'string' ||
        typeof pair[1] !== 'string'
      )
        throw MatrixError.invalidParam(`${where}.required_state entries are [type, state_key] pairs`);
      const [type, stateKey] = pair as [string, string];
      if (type === 'm.room.member' && stateKey === LAZY) lazyMembers = true;
      else
        include.push({
          type: type === WILDCARD ? null : type,
          stateKey: stateKey === WILDCARD ? null : stateKey,
        });
    }
    return { include, exclude: [], lazyMembers };
  }
  const object = asObject(raw, `${where}.required_state`);
  return {
    include: parseMatchers(object.include, where),
    exclude: parseMatchers(object.exclude, where),
    lazyMembers: object.lazy_members === true,
  };
}

function parseMatchers(raw: unknown, where: string): StateMatcher[] {
  if (raw === undefined) return [];
  return asArray(raw, `${where}.required_state`).map((entry) => {
    const matcher = asObject(entry, `${where}.required_state`);
    const type = optionalString(matcher, 'type');
    const stateKey = optionalString(matcher, 'state_key');
    return { type: type ?? null, stateKey: stateKey ?? null };
  });
}

function parseFilters(raw: Json): ListFilters {
  const bool = (key: string) => {
    const value = raw[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') throw MatrixError.invalidParam(`filters.${key} must be a boolean`);
    return value;
  };
  const strings = (key: string, nullable = false) => {
    const value = raw[key];
    if (value === undefined || value === null) return undefined;
    const items = asArray(value, `filters.${key}`);
    if (!items.every((item) => typeof item === 'string' || (nullable && item === null)))
      throw MatrixError.invalidParam(`filters.${key} must be a list of strings`);
    return items as (string | null)[];
  };
  return {
    isDm: bool('is_dm'),
    isEncrypted: bool('is_encrypted'),
    isInvite: bool('is_invited') ?? bool('is_invite'),
    roomTypes: strings('room_types', true),
    notRoomTypes: strings('not_room_types', true),
    spaces: strings('spaces') as string[] | undefined,
    tags: strings('tags') as string[] | undefined,
    notTags: strings('not_tags') as string[] | undefined,
  };
}

function parseExtensions(raw: Json): ExtensionsRequest {
  const enabled = (key: string) => {
    const extension = optionalObject(raw, key);
    return extension !== undefined && extension.enabled === true ? extension : undefined;
  };
  const scope = (extension: Json | undefined): ExtensionScope | undefined =>
    extension === undefined
      ? undefined
      : {
          lists: stringList(extension.lists, ['*']),
          rooms: stringList(extension.rooms, ['*']),
        };
  const toDevice = enabled('to_device');
  let toDeviceRequest: ExtensionsRequest['toDevice'];
  if (toDevice !== undefined) {
    const since = toDevice.since;
    if (since !== undefined && since !== null && (typeof since !== 'string' || !/^\d{1,15}$/.test(since)))
      throw MatrixError.invalidParam("'extensions.to_device.since' is invalid (should look like an int)");
    const limit = toDevice.limit ?? MAX_TO_DEVICE_LIMIT;
    if (!isCount(limit) || limit === 0)
      throw MatrixError.invalidParam('extensions.to_device.limit must be positive');
    toDeviceRequest = {
      since: typeof since === 'string' ? Number(since) : 0,
      limit: Math.min(limit, MAX_TO_DEVICE_LIMIT),
    };
  }
  const request: {
    -readonly [K in keyof ExtensionsRequest]: ExtensionsRequest[K];
  } = {};
  if (toDeviceRequest !== undefined) request.toDevice = toDeviceRequest;
  if (enabled('e2ee') !== undefined) request.e2ee = true;
  const accountData = scope(enabled('account_data'));
  if (accountData !== undefined) request.accountData = accountData;
  const receipts = scope(enabled('receipts'));
  if (receipts !== undefined) request.receipts = receipts;
  const typing = scope(enabled('typing'));
  if (typing !== undefined) request.typing = typing;
  return request;
}

function stringList(raw: unknown, fallback: string[]): string[] {
  if (raw === undefined || raw === null) return fallback;
  const items = asArray(raw, 'extension scope');
  if (!items.every((item) => typeof item === 'string'))
    throw MatrixError.invalidParam('Extension lists and rooms are lists of strings');
  return items as string[];
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function asObject(value: unknown, where: string): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw MatrixError.invalidParam(`${where} must be an object`);
  return value as Json;
}

function asArray(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw MatrixError.invalidParam(`${where} must be a list`);
  return value;
}

function optionalObject(body: Json, key: string): Json | undefined {
  const value = body[key];
  return value === undefined || value === null ? undefined : asObject(value, key);
}

function optionalString(body: Json, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw MatrixError.invalidParam(`${key} must be a string`);
  return value;
}

function optionalInteger(body: Json, key: string, min: number): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value) || (value as number) < min)
    throw MatrixError.invalidParam(`${key} must be an integer >= ${min}`);
  return value as number;
}
