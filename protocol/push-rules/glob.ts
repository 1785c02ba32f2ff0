/**
 * Glob-style matching (appendices "Glob-style matching": `*` any run, `?` one
 * character), case-insensitive, compiled once to a RegExp. event_match on
 * `content.body` matches a substring bounded by word boundaries: the start or
 * end of the value or any character outside [A-Za-z0-9_] (push.md "Conditions").
 */

export type GlobMatcher = (value: string) => boolean;

function globBody(pattern: string): string {
  let source = '';
  for (const char of pattern) {
    if (char === '*') source += '[\\s\\S]*';
    else if (char === '?') source += '[\\s\\S]';
    else source += char.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return source;
}

/** Matches the entire value. */
export function compileGlob(pattern: string): GlobMatcher {
  if (pattern === '*') return () => true;
  if (!/[*?]/.test(pattern)) {
    const lower = pattern.toLowerCase();
    return (value) => value.length === pattern.length && value.toLowerCase() === lower;
  }
  const regex = new RegExp(`^${globBody(pattern)}$`, 'iu');
  return (value) => regex.test(value);
}

/** Matches any substring that starts and ends at a word boundary. */
export function compileWordGlob(pattern: string): GlobMatcher {
  // Lookarounds express "boundary" without consuming the separator characters.
  const regex = new RegExp(`(?<![A-Za-z0-9_])${globBody(pattern)}(?![A-Za-z0-9_])`, 'iu');
  return (value) => regex.test(value);
}

/** A literal text (no glob characters) bounded by word boundaries, case-insensitive. */
export function compileWordLiteral(text: string): GlobMatcher {
  const escaped = text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const regex = new RegExp(`(?<![A-Za-z0-9_])${escaped}(?![A-Za-z0-9_])`, 'iu');
  return (value) => regex.test(value);
}
