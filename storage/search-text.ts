/**
 * How text becomes search tokens, and how a `search_term` becomes a query, for
 * every search backend alike. Tokenizing here (not in the database) keeps
 * SQLite FTS5 and PostgreSQL tsvector in agreement token for token:
 *
 * - words are runs of letters, digits and combining marks, lower-cased, with
 *   diacritics of Latin, Greek and Cyrillic letters folded ("Wörld" = "world");
 * - each emoji is a token of its own (`xemoji1f44d`), skin tones and
 *   variation selectors dropped, so 👍 finds 👍🏽 and "ok👍" finds both;
 * - each Han, Hiragana and Katakana character is a token of its own, and a
 *   query word in those scripts becomes a phrase, so "東京" finds "東京タワー"
 *   (those scripts put no spaces between words).
 *
 * Query syntax: words are ANDed and match whole words; `word*` matches as a
 * prefix ("hel*" finds "hello"); "quoted phrases" match in order (`"big ca"*`:
 * the last word as a prefix); `-word` excludes; `OR` between groups widens.
 * (Synapse matches every word as a prefix; whole words by default keep a
 * common word's first page cheap, because FTS5 must gather every document of
 * every word a prefix covers before it can return the newest.)
 */

/** One token per emoji: a name no word tokenizer splits and no one types by chance. */
const EMOJI_TOKEN_PREFIX = 'xemoji';
const MAX_TOKEN_LENGTH = 64;
/** Positions beyond this are not indexed (PostgreSQL's tsvector limit is 16383). */
export const MAX_INDEXED_TOKENS = 16_000;

const SEGMENT =
  /(\p{Regional_Indicator}{2})|(\p{Extended_Pictographic})|([\p{sc=Han}\p{sc=Hiragana}\p{sc=Katakana}])|([\p{L}\p{N}][\p{L}\p{N}\p{M}]*)/gu;
/** SEGMENT's twin for the exec loop of `scan`, so no caller's iteration over SEGMENT shares its lastIndex. */
const SCAN = new RegExp(SEGMENT);
/** Nothing outside ASCII (where folding is only lower-casing). */
const NON_ASCII = /[^\u0020-\u007e\t\n\r]/;
const FOLDED_SCRIPTS = /([\p{sc=Latin}\p{sc=Greek}\p{sc=Cyrillic}])\p{Mn}+/gu;
/** FOLDED_SCRIPTS can only match where a nonspacing mark is. */
const NONSPACING_MARK = /\p{Mn}/u;

type TokenKind = 'emoji' | 'ideograph' | 'word';

interface RawToken {
  readonly text: string;
  readonly kind: TokenKind;
}

/** Lower-cased, with the diacritics of Latin, Greek and Cyrillic letters dropped. */
function fold(text: string): string {
  // Most text is ASCII: nothing to fold but case.
  if (!NON_ASCII.test(text)) return text.toLowerCase();
  const decomposed = text.normalize('NFD');
  // Emoji and most non-Latin text decompose to no marks: skip the script-aware replace.
  const stripped = NONSPACING_MARK.test(decomposed) ? decomposed.replace(FOLDED_SCRIPTS, '$1') : decomposed;
  return stripped.normalize('NFC').toLowerCase();
}

/** `xemoji` and the hex code points of an emoji (one code point, or two for a flag). */
function emojiToken(emoji: string): string {
  let token = EMOJI_TOKEN_PREFIX;
  for (let i = 0; i < emoji.length; ) {
    const codePoint = emoji.codePointAt(i)!;
    token += codePoint.toString(16);
    i += codePoint > 0xffff ? 2 : 1;
  }
  return token;
}

/** Calls `found` with each token of the folded text and its kind, in order. */
function scan(text: string, found: (token: string, kind: TokenKind) => void): void {
  const folded = fold(text);
  SCAN.lastIndex = 0;
  for (let match = SCAN.exec(folded); match !== null; match = SCAN.exec(folded)) {
    const [, flag, emoji, ideograph, word] = match;
    if (flag !== undefined || emoji !== undefined) found(emojiToken(flag ?? emoji!), 'emoji');
    else if (ideograph !== undefined) found(ideograph, 'ideograph');
    else if (word !== undefined)
      found(word.length > MAX_TOKEN_LENGTH ? word.slice(0, MAX_TOKEN_LENGTH) : word, 'word');
  }
}

/** Every token of the text with its kind, by the Unicode scanner alone (queries; the reference for tokenize). */
export function segment(text: string): RawToken[] {
  const tokens: RawToken[] = [];
  scan(text, (token, kind) => tokens.push({ text: token, kind }));
  return tokens;
}

/** In ASCII, SEGMENT matches exactly these (no emoji, ideographs or marks there). */
const ASCII_WORD = /[a-z0-9]+/g;
const NON_ASCII_ANYWHERE = new RegExp(NON_ASCII.source, 'g');

/** Never part of a token, and no neighbour folds differently across them: text splits there safely. */
function isSeparator(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x09 || code === 0x0d;
}

function pushAsciiTokens(text: string, tokens: string[]): void {
  for (const word of text.toLowerCase().match(ASCII_WORD) ?? [])
    tokens.push(word.length > MAX_TOKEN_LENGTH ? word.slice(0, MAX_TOKEN_LENGTH) : word);
}

/**
 * The tokens of a text field, in order (what backends index, position by position):
 * segment's tokens, but only the whitespace-delimited chunks holding something
 * outside ASCII go through the Unicode scanner (most text is mostly ASCII).
 */
export function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let asciiFrom = 0;
  NON_ASCII_ANYWHERE.lastIndex = 0;
  for (
    let found = NON_ASCII_ANYWHERE.exec(text);
    found !== null && tokens.length < MAX_INDEXED_TOKENS;
    found = NON_ASCII_ANYWHERE.exec(text)
  ) {
    let start = found.index;
    while (start > asciiFrom && !isSeparator(text.charCodeAt(start - 1))) start--;
    let end = found.index + 1;
    while (end < text.length && !isSeparator(text.charCodeAt(end))) end++;
    pushAsciiTokens(text.slice(asciiFrom, start), tokens);
    scan(text.slice(start, end), (token) => tokens.push(token));
    asciiFrom = end;
    NON_ASCII_ANYWHERE.lastIndex = end;
  }
  if (tokens.length < MAX_INDEXED_TOKENS) pushAsciiTokens(text.slice(asciiFrom), tokens);
  if (tokens.length > MAX_INDEXED_TOKENS) tokens.length = MAX_INDEXED_TOKENS;
  return tokens;
}

/** A term: one token (a prefix for words) or a phrase of several in a row. */
export interface SearchTerm {
  readonly tokens: readonly string[];
  /** The last token matches as a prefix. */
  readonly prefix: boolean;
}

/** Terms that must all be present, and terms none of which may be. */
export interface SearchGroup {
  readonly all: readonly SearchTerm[];
  readonly none: readonly SearchTerm[];
}

/** Groups joined by OR; empty when the term has nothing to search for. */
export type SearchExpression = readonly SearchGroup[];

const QUERY_PART = /(-?)"([^"]*)"?(\*?)|(\S+)/gu;

/** Parses a `search_term`; an empty expression means nothing searchable was given. */
export function parseSearchTerm(searchTerm: string): SearchExpression {
  const groups: SearchGroup[] = [];
  let current: { all: SearchTerm[]; none: SearchTerm[] } = { all: [], none: [] };
  const close = () => {
    if (current.all.length > 0) groups.push(current);
    current = { all: [], none: [] };
  };
  for (const match of searchTerm.matchAll(QUERY_PART)) {
    const [, quotedNegation, quoted, quotedStar, bare] = match;
    if (bare === 'OR') {
      close();
      continue;
    }
    let negated = quotedNegation === '-';
    let text = quoted;
    if (bare !== undefined) {
      negated = bare.startsWith('-') && bare.length > 1;
      text = negated ? bare.slice(1) : bare;
    }
    const target = negated ? current.none : current.all;
    const star = quoted !== undefined ? quotedStar === '*' : text!.endsWith('*');
    // A bare word may hold several tokens ("ok👍", "東京", "e-mail"): they must appear in a row.
    const tokens = segment(text!);
    if (tokens.length === 0) continue;
    const last = tokens.at(-1)!;
    target.push({ tokens: tokens.map((token) => token.text), prefix: star && last.kind === 'word' });
  }
  close();
  return groups;
}

/** The distinct tokens a query looks for (not those it excludes): what highlights are built from. */
export function positiveTerms(expression: SearchExpression): SearchTerm[] {
  return expression.flatMap((group) => group.all);
}

/**
 * The words of `text` that the query matched, as they appear in the text
 * (client-server "Search": `highlights`, words to highlight in the results).
 */
export function matchedWords(text: string, terms: readonly SearchTerm[]): Set<string> {
  const found = new Set<string>();
  if (terms.length === 0) return found;
  const wanted = terms.flatMap((term) =>
    term.tokens.map((token, i) => ({ token, prefix: term.prefix && i === term.tokens.length - 1 })),
  );
  for (const match of text.matchAll(SEGMENT)) {
    const [original] = match;
    const [token] = segment(original);
    if (token === undefined) continue;
    const hit = wanted.some((w) => (w.prefix ? token.text.startsWith(w.token) : token.text === w.token));
    if (hit) found.add(original);
  }
  return found;
}
