import { createRequire } from 'node:module';
import { expect } from 'chai';
import { parseQuery, splitRequestTarget } from './request-url.js';

describe('request targets', () => {
  it('splits an origin-form target at its first ?', () => {
    expect(splitRequestTarget('/_matrix/client/v3/sync')).to.deep.equal({
      path: '/_matrix/client/v3/sync',
      querystring: '',
    });
    expect(splitRequestTarget('/a/b?x=1&y=?2')).to.deep.equal({ path: '/a/b', querystring: 'x=1&y=?2' });
    expect(splitRequestTarget('/a?')).to.deep.equal({ path: '/a', querystring: '' });
    expect(splitRequestTarget('/a%20b/%23c')).to.deep.equal({ path: '/a%20b/%23c', querystring: '' });
  });

  it('leaves to Koa what its fast path does not take (absolute form, *, # or whitespace)', () => {
    for (const target of ['http://h/a?b', '*', '/a#frag', '/a b', '/a\tb', '', 'a/b']) {
      expect(splitRequestTarget(target), target).to.equal(undefined);
    }
  });
});

describe('parseQuery', () => {
  // What Koa's ctx.query is made with.
  const koaParse = (
    createRequire(import.meta.url)('koa/lib/search-params.js') as {
      parse(text: string): Record<string, unknown>;
    }
  ).parse;
  const samples = [
    'filter=0&timeout=30000&since=s12_3_4',
    'a=1&a=2&b=&c&a=3',
    '&&a=1&&',
    'a=b=c',
    '=x&=y',
    'since=s1%7E2&x=a+b&y=%zz&z=%E2%82%AC',
    '?a=1',
    'constructor=1&toString=2&hasOwnProperty=3',
    'caf\u00e9=cr\u00e8me',
    'access_token=t&access_token=u',
  ];

  it('gives what Koa gives, key order and repeated keys included', () => {
    for (const text of samples) {
      const ours = parseQuery(text);
      const koa = koaParse(text);
      expect(ours, text).to.deep.equal(koa);
      expect(Object.keys(ours), text).to.deep.equal(Object.keys(koa));
    }
  });

  it('keeps __proto__ an ordinary key', () => {
    const query = parseQuery('__proto__=x&__proto__=y&a=1');
    expect(Object.getPrototypeOf(query)).to.equal(Object.prototype);
    expect(Object.hasOwn(query, '__proto__')).to.equal(true);
    expect(Object.getOwnPropertyDescriptor(query, '__proto__')?.value).to.deep.equal(['x', 'y']);
    expect({ ...query }).to.have.property('a', '1');
  });
});
