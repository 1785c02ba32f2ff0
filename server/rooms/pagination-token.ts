/**
 * Timeline pagination tokens (/messages `from`/`to`/`start`/`end`, /context
 * `start`/`end`, /members `at`). A token names a position *between* events on
 * the room event stream: position `n` lies just after the event with stream
 * ordering `n`, so paginating backwards from it returns events with ordering
 * <= n (newest first) and forwards events with ordering > n.
 *
 * Encoding: `t<n>` (decimal, n >= 0). Sync tokens (`s<events>_<...>`, see
 * sync/sync-token.ts; /sync's `next_batch` and `prev_batch`) are accepted too and
 * stand for their events position, as the spec lets clients pass them to /messages.
 */
import { MatrixError } from '../errors.js';
import { tryParseSyncToken } from '../sync/sync-token.js';

export type TimelinePosition = number;

/**
 * Below every event: history backfilled from other servers has negative positions
 * (storage EventToPersist.backfilled), so tokens may be negative too.
 */
export const EARLIEST_POSITION = -(2 ** 49);

export function encodeTimelineToken(position: TimelinePosition): string {
  return `t${Math.max(EARLIEST_POSITION, Math.trunc(position))}`;
}

/** The position a token stands for; null when it is not a token of ours. */
export function tryParseTimelineToken(token: string): TimelinePosition | null {
  if (/^t-?\d{1,15}$/.test(token)) return Number(token.slice(1));
  return tryParseSyncToken(token)?.events ?? null;
}

/** @throws MatrixError 400 M_INVALID_PARAM when the token is not one of ours. */
export function parseTimelineToken(token: string, parameter = 'from'): TimelinePosition {
  const position = tryParseTimelineToken(token);
  if (position === null) throw MatrixError.invalidParam(`Invalid '${parameter}' token`);
  return position;
}
