/**
 * What a file is, from its bytes, never from what the uploader claimed; and
 * how it may be served (content_repo "Serving inline content").
 */
/** file-type (its signature tables) is loaded on the first sniff, not at start-up. */
let fileTypeModule: Promise<typeof import('file-type')> | undefined;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Claimed text types believed when the bytes are plain text (and not markup). */
const BELIEVED_TEXT_TYPES = new Set([
  'text/plain',
  'text/csv',
  'text/css',
  'application/json',
  'text/markdown',
]);

/**
 * The Content-Type of a file whose first bytes are `head`: file-type's
 * signatures first; then markup (HTML, SVG, XML) recognised by its opening
 * tag; then UTF-8 text (keeping a claimed harmless text type); else
 * application/octet-stream.
 */
export async function sniffContentType(head: Buffer, claimed: string | undefined): Promise<string> {
  fileTypeModule ??= import('file-type');
  const detected = await (await fileTypeModule).fileTypeFromBuffer(head);
  if (detected) return detected.mime;
  const text = decodeText(head);
  if (text === undefined) return 'application/octet-stream';
  const start = text
    .replace(/^\uFEFF/, '')
    .trimStart()
    .slice(0, 512)
    .toLowerCase();
  if (/^<!doctype html|^<html|^<head|^<body|^<script|^<iframe|^<!--/.test(start)) return 'text/html';
  if (/<svg[\s>]/.test(start)) return 'image/svg+xml';
  if (start.startsWith('<?xml')) return 'application/xml';
  const claimedType = claimed?.split(';')[0]?.trim().toLowerCase();
  if (claimedType && BELIEVED_TEXT_TYPES.has(claimedType)) {
    return claimedType.startsWith('text/') ? `${claimedType}; charset=utf-8` : claimedType;
  }
  return 'text/plain; charset=utf-8';
}

/** The head as text when it is UTF-8 without control characters (a cut multi-byte sequence at the end is fine). */
function decodeText(head: Buffer): string | undefined {
  let text: string | undefined;
  for (let cut = 0; cut < 4 && text === undefined; cut++) {
    try {
      text = utf8.decode(head.subarray(0, head.length - cut));
    } catch {
      // A multi-byte character may straddle the end of the head: retry a little shorter.
    }
  }
  if (text === undefined) return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: binary data shows as control characters.
  return /[\u0000-\u0008\u000e-\u001a\u001c-\u001f]/.test(text) ? undefined : text;
}

/** content_repo "Serving inline content": the types that may be served inline. */
const INLINE_TYPES = new Set([
  'text/css',
  'text/plain',
  'text/csv',
  'application/json',
  'application/ld+json',
  'image/jpeg',
  'image/gif',
  'image/png',
  'image/apng',
  'image/webp',
  'image/avif',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'video/quicktime',
  'audio/mp4',
  'audio/webm',
  'audio/aac',
  'audio/mpeg',
  'audio/ogg',
  'audio/wave',
  'audio/wav',
  'audio/x-wav',
  'audio/x-pn-wav',
  'audio/flac',
  'audio/x-flac',
]);

export function servedInline(contentType: string): boolean {
  return INLINE_TYPES.has(contentType.split(';')[0]!.trim().toLowerCase());
}

/** RFC 6266 Content-Disposition: inline only for the safe list, with the file name (RFC 8187 for non-ASCII). */
export function contentDisposition(contentType: string, fileName: string | null): string {
  const kind = servedInline(contentType) ? 'inline' : 'attachment';
  if (!fileName) return kind;
  const ascii = /^[\x20-\x7e]*$/.test(fileName) && !/["\\]/.test(fileName);
  if (ascii) return `${kind}; filename="${fileName}"`;
  return `${kind}; filename*=utf-8''${encodeRfc8187(fileName)}`;
}

function encodeRfc8187(value: string): string {
  return encodeURIComponent(value).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** content_repo: the recommended policy, sent with every piece of media. */
export const MEDIA_CONTENT_SECURITY_POLICY =
  "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";
