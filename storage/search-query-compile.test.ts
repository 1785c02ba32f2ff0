import { expect } from 'chai';
import { tsqueryOf, tsvectorLiteral } from './postgres/search-index.js';
import { SEARCH_KEYS } from './search-index.js';
import { parseSearchTerm, tokenize } from './search-text.js';
import { ftsExpression } from './sqlite/search-index.js';

describe('search query compilation', () => {
  const expression = parseSearchTerm('"big cat" hel* -dog OR 👍');

  it('writes FTS5 MATCH strings restricted to the keys’ columns', () => {
    expect(ftsExpression(expression, SEARCH_KEYS)).to.equal(
      '{body name topic} : ((("big cat" AND "hel"*) NOT ("dog")) OR ("xemoji1f44d"))',
    );
    expect(ftsExpression(parseSearchTerm('x'), ['content.topic'])).to.equal('{topic} : (("x"))');
    expect(ftsExpression([], SEARCH_KEYS)).to.equal(null);
  });

  it('writes tsquery literals restricted to the keys’ weights', () => {
    expect(tsqueryOf(expression, ['content.body'])).to.equal(
      "(('big':A <-> 'cat':A) & 'hel':*A & !'dog':A) | ('xemoji1f44d':A)",
    );
    expect(tsqueryOf(parseSearchTerm('x'), SEARCH_KEYS)).to.equal("('x':ABC)");
  });

  it('writes tsvector literals with each key weighted and apart', () => {
    const literal = tsvectorLiteral({
      streamOrdering: 1,
      eventId: '$e',
      roomId: '!r:x',
      sender: '@a:x',
      type: 'm.room.topic',
      msgtype: null,
      containsUrl: false,
      originServerTs: 0,
      tokens: { 'content.body': tokenize('a b'), 'content.name': [], 'content.topic': tokenize("it's") },
    });
    expect(literal).to.equal("'a':1A 'b':2A 'it':7C 's':8C");
  });
});
