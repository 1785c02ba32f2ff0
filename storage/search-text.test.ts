import { expect } from 'chai';
import fc from 'fast-check';
import { matchedWords, parseSearchTerm, positiveTerms, segment, tokenize } from './search-text.js';

describe('search text', () => {
  it('tokenizes words lower-cased, with Latin, Greek and Cyrillic accents folded', () => {
    expect(tokenize('Crème BRÛLÉE, naïve Ελληνικά café-au-lait 42')).to.deep.equal([
      'creme',
      'brulee',
      'naive',
      'ελληνικα',
      'cafe',
      'au',
      'lait',
      '42',
    ]);
  });

  it('makes each emoji a token of its own, skin tones and variation selectors aside', () => {
    const thumbs = tokenize('👍')[0];
    expect(tokenize('ok👍🏽 great❤️')).to.deep.equal(['ok', thumbs, 'great', tokenize('❤')[0]]);
    expect(tokenize('🇫🇷')).to.have.length(1);
    expect(thumbs).to.match(/^[a-z0-9]+$/);
  });

  it('tokenizes exactly as the Unicode scanner alone does (ASCII takes a faster path)', () => {
    const pieces = fc.constantFrom(
      ' ',
      '\t',
      '\n',
      '\r',
      '\v',
      '.',
      '-',
      "'",
      '_',
      'a',
      'Z',
      '9',
      'word',
      'Crème',
      'BRÛLÉE',
      'ΟΔΟΣ',
      'Σ',
      'naïve',
      'e\u0301',
      '\u0301',
      'İ',
      '東京',
      'タワー',
      '한국어',
      '👍',
      '🏽',
      '❤️',
      '🇫🇷',
      '👩‍💻',
      '\u200d',
      '\u00a0',
      'ǅ',
      'ß',
      '\u0000',
    );
    const text = fc.oneof(
      fc.array(pieces, { maxLength: 30 }).map((parts) => parts.join('')),
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.string({ unit: 'binary-ascii', maxLength: 200 }),
    );
    fc.assert(
      fc.property(text, (sample) => {
        expect(tokenize(sample)).to.deep.equal(segment(sample).map((token) => token.text));
      }),
      { numRuns: 1000 },
    );
    expect(tokenize(`${'a'.repeat(70)} ${'B'.repeat(70)}é`)).to.deep.equal(['a'.repeat(64), 'b'.repeat(64)]);
  });

  it('splits Han and kana into single characters, keeps Hangul words', () => {
    expect(tokenize('東京タワー 한국어')).to.deep.equal(['東', '京', 'タ', 'ワ', 'ー', '한국어']);
  });

  it('parses words, prefixes, phrases, exclusions and OR', () => {
    expect(parseSearchTerm('Hello wor*')).to.deep.equal([
      {
        all: [
          { tokens: ['hello'], prefix: false },
          { tokens: ['wor'], prefix: true },
        ],
        none: [],
      },
    ]);
    expect(parseSearchTerm('"big cat" -dog OR 東京')).to.deep.equal([
      { all: [{ tokens: ['big', 'cat'], prefix: false }], none: [{ tokens: ['dog'], prefix: false }] },
      { all: [{ tokens: ['東', '京'], prefix: false }], none: [] },
    ]);
    // Only exclusions, or only punctuation: nothing to search for.
    expect(parseSearchTerm('-dog')).to.deep.equal([]);
    expect(parseSearchTerm(' ?! ')).to.deep.equal([]);
  });

  it('finds the words a query matched, as written', () => {
    const terms = positiveTerms(parseSearchTerm('cafe hel*'));
    expect([...matchedWords('Café? Hello, HELP. Cafeteria', terms)]).to.deep.equal(['Café', 'Hello', 'HELP']);
  });
});
