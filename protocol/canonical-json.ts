/**
 * Canonical JSON (spec: appendices "Canonical JSON"): the shortest UTF-8 JSON
 * encoding, object keys sorted by Unicode code point, no insignificant
 * whitespace, only the escapes the grammar requires.
 *
 * Hand-rolled because it sits on the hot path of every hash and signature: it
 * walks the value once and never builds sorted copies.
 */
import { ProtocolError } from './errors.js';

export interface CanonicalJsonOptions {
  /**
   * Room version 6+ rules: numbers must be integers in [-(2^53)+1, (2^53)-1].
   * Without it (room versions 1-5) other finite numbers are encoded as JavaScript prints them.
   */
  readonly strict?: boolean;
}

/** Deeper nesting is refused rather than risking the call stack (the spec sets no limit; Synapse's parser stops near here). */
export const MAX_CANONICAL_JSON_DEPTH = 1000;

/** Thrown inside the encoder and caught at the top, collecting the field path as it unwinds. */
class CanonicalJsonFault {
  readonly path: string[] = [];
  constructor(readonly reason: string) {}
}

const isWellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
    : (s) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

/** Strings with no surrogates: UTF-16 order equals code point order, so the native sort is exact. */
const SURROGATE = /[\ud800-\udfff]/;

/**
 * Orders strings by Unicode code point. The native comparison works on UTF-16
 * code units, which puts astral characters (surrogates, 0xD800-0xDFFF) before
 * U+E000-U+FFFF; this shifts surrogates above that range at the first difference.
 */
export function compareByCodePoint(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

function sortKeys(keys: string[]): string[] {
  keys.sort();
  for (let i = 0; i < keys.length; i++) {
    if (SURROGATE.test(keys[i]!)) return keys.sort(compareByCodePoint);
  }
  return keys;
}

function encodeString(s: string): string {
  // JSON.stringify escapes exactly as the canonical grammar asks (\" \\ \b \f \n \r \t,
  // other controls as lowercase \u00xx, nothing else) for well-formed strings.
  if (SURROGATE.test(s) && !isWellFormed(s)) throw new CanonicalJsonFault('string contains a lone surrogate');
  return JSON.stringify(s);
}

function encodeNumber(n: number, strict: boolean): string {
  if (Number.isSafeInteger(n)) return `${n}`; // -0 prints as 0
  if (!Number.isFinite(n)) throw new CanonicalJsonFault(`number ${n} is not finite`);
  if (strict) {
    throw new CanonicalJsonFault(
      Number.isInteger(n) ? `integer ${n} is outside [-(2^53)+1, (2^53)-1]` : `number ${n} is not an integer`,
    );
  }
  // Room versions 1-5 tolerate these. Large integers print as the exact value held,
  // without exponent (as Python, hence Synapse, prints integers).
  return Number.isInteger(n) ? BigInt(n).toString() : `${n}`;
}

function encodeValue(value: unknown, strict: boolean, depth: number): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value);
    case 'number':
      return encodeNumber(value, strict);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      if (depth >= MAX_CANONICAL_JSON_DEPTH) {
        throw new CanonicalJsonFault(`nested deeper than ${MAX_CANONICAL_JSON_DEPTH} levels`);
      }
      if (Array.isArray(value)) return encodeArray(value, strict, depth + 1);
      return encodeObject(value as Record<string, unknown>, strict, depth + 1);
    default:
      throw new CanonicalJsonFault(`${typeof value} is not a JSON value`);
  }
}

function encodeArray(array: unknown[], strict: boolean, depth: number): string {
  const length = array.length;
  if (length === 0) return '[]';
  let out = '[';
  let i = 0;
  try {
    for (; i < length; i++) {
      if (i > 0) out += ',';
      out += encodeValue(array[i], strict, depth);
    }
  } catch (e) {
    if (e instanceof CanonicalJsonFault) e.path.push(String(i));
    throw e;
  }
  return `${out}]`;
}

function encodeObject(
  object: Record<string, unknown>,
  strict: boolean,
  depth: number,
  omitKeys?: readonly string[],
): string {
  const proto = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    throw new CanonicalJsonFault(`${proto?.constructor?.name ?? 'object'} is not a plain JSON object`);
  }
  const keys = sortKeys(Object.keys(object));
  const length = keys.length;
  let out = '{';
  let key = '';
  try {
    for (let i = 0; i < length; i++) {
      key = keys[i]!;
      if (omitKeys?.includes(key)) continue;
      if (out.length > 1) out += ',';
      out += encodeString(key);
      out += ':';
      out += encodeValue(object[key], strict, depth);
    }
  } catch (e) {
    if (e instanceof CanonicalJsonFault) e.path.push(key);
    throw e;
  }
  return `${out}}`;
}

/**
 * Encodes a JSON value as canonical JSON text.
 * @throws ProtocolError('BAD_JSON') with the dotted field path for values canonical JSON cannot carry:
 *   non-finite numbers, lone surrogates, undefined, functions, bigints, symbols, non-plain objects,
 *   and (strict) non-integers or integers outside the safe range.
 */
export function encodeCanonicalJson(value: unknown, options?: CanonicalJsonOptions): string {
  try {
    return encodeValue(value, options?.strict === true, 0);
  } catch (e) {
    throw toProtocolError(e);
  }
}

/**
 * Encodes an object as canonical JSON as if the named top-level keys were absent,
 * without copying it (signing drops `signatures` and `unsigned`, hashing also `hashes`).
 */
export function encodeCanonicalJsonWithout(
  object: object,
  omitKeys: readonly string[],
  options?: CanonicalJsonOptions,
): string {
  try {
    if (object === null || typeof object !== 'object' || Array.isArray(object)) {
      throw new CanonicalJsonFault('expected a JSON object');
    }
    return encodeObject(object as Record<string, unknown>, options?.strict === true, 1, omitKeys);
  } catch (e) {
    throw toProtocolError(e);
  }
}

function toProtocolError(e: unknown): unknown {
  if (!(e instanceof CanonicalJsonFault)) return e;
  const field = e.path.reverse().join('.');
  return new ProtocolError(
    'BAD_JSON',
    field
      ? `Cannot encode as canonical JSON at '${field}': ${e.reason}`
      : `Cannot encode as canonical JSON: ${e.reason}`,
    field || undefined,
  );
}

/** Canonical JSON as the UTF-8 bytes that get hashed and signed. */
export function encodeCanonicalJsonBytes(value: unknown, options?: CanonicalJsonOptions): Buffer {
  return Buffer.from(encodeCanonicalJson(value, options), 'utf8');
}

/**
 * Parses JSON text, mapping syntax errors to ProtocolError('BAD_JSON').
 * With `strict`, also checks that the result can be encoded as strict canonical JSON
 * (integers only, safe range, no lone surrogates).
 */
export function parseJson(text: string, options?: CanonicalJsonOptions): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ProtocolError('BAD_JSON', `Not valid JSON: ${(e as Error).message}`);
  }
  if (options?.strict) encodeCanonicalJson(value, options);
  return value;
}
