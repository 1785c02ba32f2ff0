/**
 * X-Matrix request authentication (server-server "Request Authentication"):
 * the JSON object a request's signature covers, and the Authorization header
 * that carries it.
 */
import { ProtocolError } from './errors.js';
import { type SignatureVerdict, type SigningKey, signJson, verifyJsonSignature } from './signing.js';

export interface XMatrixCredentials {
  readonly origin: string;
  /** Absent in requests from servers older than spec v1.3. */
  readonly destination: string | undefined;
  readonly keyId: string;
  readonly signature: string;
}

export interface SignedRequestParts {
  readonly method: string;
  /** Path and query string, exactly as sent. */
  readonly uri: string;
  readonly origin: string;
  readonly destination: string;
  /** The parsed JSON body, when the request has one. */
  readonly content?: unknown;
}

/** The object whose canonical JSON is signed: method, uri, origin, destination and content when present. */
export function requestSigningObject(parts: SignedRequestParts): Record<string, unknown> {
  const object: Record<string, unknown> = {
    method: parts.method,
    uri: parts.uri,
    origin: parts.origin,
    destination: parts.destination,
  };
  if (parts.content !== undefined) object.content = parts.content;
  return object;
}

/** The Authorization header value for a request sent by `parts.origin`. */
export function signRequest(parts: SignedRequestParts, key: SigningKey): string {
  const signed = signJson(requestSigningObject(parts), parts.origin, key);
  const signature = signed.signatures[parts.origin]![key.keyId]!;
  return formatXMatrixHeader({
    origin: parts.origin,
    destination: parts.destination,
    keyId: key.keyId,
    signature,
  });
}

export function formatXMatrixHeader(credentials: XMatrixCredentials): string {
  const params = [`origin=${quote(credentials.origin)}`];
  if (credentials.destination !== undefined) params.push(`destination=${quote(credentials.destination)}`);
  params.push(`key=${quote(credentials.keyId)}`, `sig=${quote(credentials.signature)}`);
  return `X-Matrix ${params.join(',')}`;
}

function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * Parses `X-Matrix origin=...,destination=...,key=...,sig=...` (RFC 9110
 * auth-param syntax: token or quoted-string values, any order, optional
 * whitespace). Undefined when the header is not an X-Matrix one.
 * @throws ProtocolError('BAD_AUTHORIZATION') when it is X-Matrix but malformed.
 */
export function parseXMatrixHeader(header: string): XMatrixCredentials | undefined {
  const match = /^\s*X-Matrix\s+(.*)$/is.exec(header);
  if (!match) return undefined;
  const params = new Map<string, string>();
  const text = match[1]!;
  let index = 0;
  while (index < text.length) {
    const name = /^[\s,]*([A-Za-z0-9_-]+)\s*=\s*/.exec(text.slice(index));
    if (!name) {
      if (/^[\s,]*$/.test(text.slice(index))) break;
      throw new ProtocolError('BAD_AUTHORIZATION', 'Malformed X-Matrix parameter');
    }
    index += name[0].length;
    let value: string;
    if (text[index] === '"') {
      let end = index + 1;
      value = '';
      while (end < text.length && text[end] !== '"') {
        if (text[end] === '\\' && end + 1 < text.length) end++;
        value += text[end];
        end++;
      }
      if (end >= text.length) throw new ProtocolError('BAD_AUTHORIZATION', 'Unterminated X-Matrix value');
      index = end + 1;
    } else {
      const token = /^[^\s,]*/.exec(text.slice(index))![0];
      value = token;
      index += token.length;
    }
    const key = name[1]!.toLowerCase();
    if (params.has(key)) throw new ProtocolError('BAD_AUTHORIZATION', `Repeated X-Matrix parameter ${key}`);
    params.set(key, value);
  }
  const origin = params.get('origin');
  const keyId = params.get('key');
  const signature = params.get('sig');
  if (!origin || !keyId || !signature) {
    throw new ProtocolError('BAD_AUTHORIZATION', 'X-Matrix needs origin, key and sig');
  }
  return { origin, destination: params.get('destination'), keyId, signature };
}

/** Checks an X-Matrix signature against the origin's public key `publicKeyBase64`. */
export function verifyRequestSignature(
  parts: SignedRequestParts,
  credentials: XMatrixCredentials,
  publicKeyBase64: string,
): SignatureVerdict {
  const object = {
    ...requestSigningObject(parts),
    signatures: { [credentials.origin]: { [credentials.keyId]: credentials.signature } },
  };
  return verifyJsonSignature(object, credentials.origin, credentials.keyId, publicKeyBase64);
}
