/**
 * Unpadded Base64 (spec: appendices "Unpadded Base64" and "URL-safe unpadded Base64").
 * Node's own decoder silently skips characters outside the alphabet, so input
 * is checked against the grammar first.
 */
import { ProtocolError } from './errors.js';

const STANDARD = /^[A-Za-z0-9+/]*$/;
const URL_SAFE = /^[A-Za-z0-9_-]*$/;

export function encodeUnpaddedBase64(bytes: Uint8Array): string {
  const padded = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  let end = padded.length;
  while (end > 0 && padded.charCodeAt(end - 1) === 0x3d /* = */) end--;
  return end === padded.length ? padded : padded.slice(0, end);
}

export function encodeUnpaddedBase64Url(bytes: Uint8Array): string {
  // Node's base64url output is already unpadded.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Strips correct padding (a multiple of four with it), rejecting padding that does not fit. */
function withoutPadding(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d) end--;
  const padding = text.length - end;
  if (padding === 0) return text;
  if (padding > 2 || text.length % 4 !== 0) {
    throw new ProtocolError('BAD_BASE64', 'Base64 padding does not fit the length of the text');
  }
  return text.slice(0, end);
}

function decode(text: string, alphabet: RegExp, encoding: 'base64' | 'base64url', name: string): Buffer {
  if (typeof text !== 'string') throw new ProtocolError('BAD_BASE64', `${name} must be a string`);
  const body = withoutPadding(text);
  // A single leftover character carries 6 bits, less than a byte: never valid.
  if (body.length % 4 === 1 || !alphabet.test(body)) {
    throw new ProtocolError('BAD_BASE64', `Not valid ${name}`);
  }
  return Buffer.from(body, encoding);
}

/** Decodes standard Base64, with or without `=` padding (the spec asks decoders to accept both). */
export function decodeBase64(text: string): Buffer {
  return decode(text, STANDARD, 'base64', 'Base64');
}

/** Decodes URL-safe Base64 (`-` and `_`), with or without `=` padding. */
export function decodeBase64Url(text: string): Buffer {
  return decode(text, URL_SAFE, 'base64url', 'URL-safe Base64');
}
