/**
 * A request target split into its path and query, and the query parsed, as Koa gives
 * them (`ctx.path`, `ctx.querystring`, `ctx.query`) without building a Koa context:
 * every request needs these, and a long-polling client sends one per message it gets.
 */

/** Characters after which parseurl (what Koa uses) leaves its fast path for url.parse. */
const NEEDS_FULL_PARSE = /[\t\n\f\r #\u00a0\ufeff]/;

export interface RequestTarget {
  /** The path as sent, not percent-decoded. */
  readonly path: string;
  /** What follows the first `?`, or '' when nothing does. */
  readonly querystring: string;
}

/**
 * The origin-form target (`/path?query`) split as parseurl's fast path splits it; undefined
 * for anything else (absolute-form, `*`, a `#` or whitespace), which the caller leaves to Koa.
 */
export function splitRequestTarget(url: string): RequestTarget | undefined {
  if (url.charCodeAt(0) !== 0x2f || NEEDS_FULL_PARSE.test(url)) return undefined;
  const queryStart = url.indexOf('?');
  return queryStart === -1
    ? { path: url, querystring: '' }
    : { path: url.slice(0, queryStart), querystring: url.slice(queryStart + 1) };
}

export type ParsedQuery = Record<string, string | string[]>;

/** Percent-encoding or `+` (a space): the strings URLSearchParams must decode. */
const ENCODED = /[%+]/;

/**
 * The query as Koa parses it (URLSearchParams, then one property per key in the order keys
 * first appear: the value, or every value in order when the key repeats), in one pass.
 * Without `%` or `+` nothing needs decoding: pairs are split by hand.
 */
export function parseQuery(querystring: string): ParsedQuery {
  const query: ParsedQuery = {};
  // URLSearchParams drops one leading '?' (a target like `/path??a=1`).
  const text = querystring.charCodeAt(0) === 0x3f ? querystring.slice(1) : querystring;
  if (ENCODED.test(text)) {
    for (const [key, value] of new URLSearchParams(text)) addValue(query, key, value);
    return query;
  }
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('&', start);
    if (end === -1) end = text.length;
    if (end > start) {
      const equals = text.indexOf('=', start);
      if (equals === -1 || equals > end) addValue(query, text.slice(start, end), '');
      else addValue(query, text.slice(start, equals), text.slice(equals + 1, end));
    }
    start = end + 1;
  }
  return query;
}

function addValue(query: ParsedQuery, key: string, value: string): void {
  const existing = Object.hasOwn(query, key) ? query[key] : undefined;
  if (Array.isArray(existing)) existing.push(value);
  else setOwn(query, key, existing === undefined ? value : [existing, value]);
}

function setOwn(query: ParsedQuery, key: string, value: string | string[]): void {
  // A key such as `__proto__` must become a property, not the object's prototype.
  if (key === '__proto__') {
    Object.defineProperty(query, key, { value, writable: true, enumerable: true, configurable: true });
  } else query[key] = value;
}
