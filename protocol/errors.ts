/**
 * The one error type protocol/ throws. Callers (storage, server, federation) map
 * `code` onto Matrix errcodes at their edge; nothing in protocol/ knows HTTP.
 */
export type ProtocolErrorCode =
  | 'BAD_JSON' // not JSON, or JSON that canonical JSON forbids (floats, out-of-range ints, lone surrogates...)
  | 'BAD_BASE64'
  | 'BAD_IDENTIFIER' // user ID, room ID, alias, event ID or server name violating the grammar
  | 'BAD_EVENT' // event shape invalid for its room version
  | 'EVENT_TOO_LARGE'
  | 'BAD_SIGNATURE'
  | 'MISSING_SIGNATURE'
  | 'BAD_KEY'
  | 'BAD_AUTHORIZATION' // a malformed X-Matrix Authorization header
  | 'UNSUPPORTED_ROOM_VERSION'
  | 'MISSING_EVENT'; // a lookup the algorithm needs returned nothing

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    /** Dotted path of the offending field, when there is one (e.g. `content.users.@a:b`). */
    readonly field?: string,
  ) {
    super(message);
  }
}

export function isProtocolError(e: unknown): e is ProtocolError {
  return e instanceof ProtocolError;
}
