/**
 * multipart/mixed as the federation media endpoints use it (server-server "Content
 * Repository", v1.11+): a JSON metadata part, then the media part (its own Content-Type
 * and Content-Disposition) or a part with only a Location header. RFC 2046 section 5.1.
 */

export interface MultipartPart {
  /** Header names lower-cased. */
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** A multipart/mixed body of these parts, and the Content-Type header naming its boundary. */
export function encodeMultipartMixed(
  parts: readonly { headers: Record<string, string>; body: Buffer | string }[],
  boundary: string,
): { contentType: string; body: Buffer } {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const head = Object.entries(part.headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    chunks.push(Buffer.from(`--${boundary}\r\n${head}\r\n`, 'utf8'));
    chunks.push(typeof part.body === 'string' ? Buffer.from(part.body, 'utf8') : part.body);
    chunks.push(Buffer.from('\r\n', 'utf8'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'utf8'));
  return { contentType: `multipart/mixed; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

/** The boundary parameter of a multipart Content-Type header; undefined when it is not multipart. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (contentType === undefined || !/^\s*multipart\//i.test(contentType)) return undefined;
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match?.[1] ?? match?.[2];
}

/** The parts of a multipart body (preamble and epilogue ignored); throws on a malformed body. */
export function decodeMultipart(body: Buffer, boundary: string): MultipartPart[] {
  const delimiter = Buffer.from(`--${boundary}`, 'utf8');
  const parts: MultipartPart[] = [];
  let at = body.indexOf(delimiter);
  if (at < 0) throw new Error('No multipart boundary in the body');
  for (;;) {
    let start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString('latin1') === '--') return parts; // the close delimiter
    // The rest of the delimiter line (transport padding) and its CRLF.
    const lineEnd = body.indexOf('\r\n', start);
    if (lineEnd < 0) throw new Error('Truncated multipart body');
    start = lineEnd + 2;
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`, 'utf8'), start);
    if (next < 0) throw new Error('Unterminated multipart part');
    const part = body.subarray(start, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    const rawHeaders = headerEnd < 0 ? part.subarray(0, 0) : part.subarray(0, headerEnd);
    const content =
      headerEnd < 0 ? part.subarray(part.indexOf('\r\n') === 0 ? 2 : 0) : part.subarray(headerEnd + 4);
    const headers: Record<string, string> = {};
    for (const line of rawHeaders.toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: Buffer.from(content) });
    at = next + 2;
  }
}
