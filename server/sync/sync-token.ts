/**
 * Sync tokens (ARCHITECTURE "Streams and sync tokens"): the positions of every
 * stream a sync reads, as one opaque string `s<events>_<accountData>_<receipts>_
 * <typing>_<presence>_<toDevice>_<deviceLists>`. Membership changes ride on the
 * events stream. The same string is a valid `from`/`to` for /messages (client-server
 * "Syncing": clients close a gap with `from=<since>&to=<prev_batch>`), which reads
 * only its events position.
 */
import { MatrixError } from '../errors.js';

export interface StreamPositions {
  /** Room event stream ordering: everything at or below it has been handed out. */
  readonly events: number;
  readonly accountData: number;
  readonly receipts: number;
  /** In memory, restarts from 0 with the server. */
  readonly typing: number;
  readonly presence: number;
  /** The to-device stream (storage toDevice, server/sync/to-device.ts): what the device has been handed. */
  readonly toDevice: number;
  /** The device-list stream (storage e2eKeys, server/e2e/device-list-changes.ts): device_lists in sync. */
  readonly deviceLists: number;
}

const STREAMS = [
  'events',
  'accountData',
  'receipts',
  'typing',
  'presence',
  'toDevice',
  'deviceLists',
] as const satisfies readonly (keyof StreamPositions)[];

export const ZERO_POSITIONS: StreamPositions = {
  events: 0,
  accountData: 0,
  receipts: 0,
  typing: 0,
  presence: 0,
  toDevice: 0,
  deviceLists: 0,
};

export function formatSyncToken(positions: StreamPositions): string {
  return `s${STREAMS.map((stream) => positions[stream]).join('_')}`;
}

/** The last token parsed: the members woken together all come back with the same one. */
let lastParsed: { readonly token: string; readonly positions: StreamPositions } | undefined;

/** Parses a token this server gave out; null when it is not one. The result is frozen (shared). */
export function tryParseSyncToken(token: string): StreamPositions | null {
  if (lastParsed?.token === token) return lastParsed.positions;
  const positions = parseTokenText(token);
  if (positions !== null) lastParsed = { token, positions: Object.freeze(positions) };
  return positions;
}

function parseTokenText(token: string): StreamPositions | null {
  if (!token.startsWith('s')) return null;
  const parts = token.slice(1).split('_');
  if (parts.length !== STREAMS.length) return null;
  const positions: Record<string, number> = {};
  for (const [i, stream] of STREAMS.entries()) {
    const part = parts[i]!;
    if (!/^\d{1,15}$/.test(part)) return null;
    positions[stream] = Number(part);
  }
  return positions as unknown as StreamPositions;
}

/** @throws MatrixError 400 M_INVALID_PARAM when the token is not one of ours. */
export function parseSyncToken(token: string, parameter = 'since'): StreamPositions {
  const positions = tryParseSyncToken(token);
  if (positions === null) throw MatrixError.invalidParam(`Invalid ${parameter} token`);
  return positions;
}

/**
 * A token from the future (another server's, a wiped database, a client bug)
 * is clamped to now so nothing is skipped for ever. Typing restarts from 0 with
 * the server: a typing position beyond the current one is from an earlier run,
 * and reads from 0 so every room's current typing is sent again.
 */
export function clampToCurrent(token: StreamPositions, current: StreamPositions): StreamPositions {
  // Nearly always nothing to clamp: the token itself (no object per sync round).
  if (
    token.events <= current.events &&
    token.accountData <= current.accountData &&
    token.receipts <= current.receipts &&
    token.typing <= current.typing &&
    token.presence <= current.presence &&
    token.toDevice <= current.toDevice &&
    token.deviceLists <= current.deviceLists
  ) {
    return token;
  }
  return {
    events: Math.min(token.events, current.events),
    accountData: Math.min(token.accountData, current.accountData),
    receipts: Math.min(token.receipts, current.receipts),
    typing: token.typing > current.typing ? 0 : token.typing,
    presence: Math.min(token.presence, current.presence),
    toDevice: Math.min(token.toDevice, current.toDevice),
    deviceLists: Math.min(token.deviceLists, current.deviceLists),
  };
}

/** The token /messages starts from to read backwards from just before `streamOrdering`. */
export function tokenBeforeEvent(current: StreamPositions, streamOrdering: number): string {
  return formatSyncToken({ ...current, events: Math.max(0, streamOrdering - 1) });
}
