import { expect } from 'chai';
import fc from 'fast-check';
import {
  compareByCodePoint,
  encodeCanonicalJson,
  encodeCanonicalJsonBytes,
  encodeCanonicalJsonWithout,
  MAX_CANONICAL_JSON_DEPTH,
  parseJson,
} from './canonical-json.js';
import { ProtocolError } from './errors.js';
import vectors from './vectors/appendices-canonical-json.json' with { type: 'json' };

function expectBadJson(run: () => unknown, field?: string): void {
  try {
    run();
  } catch (e) {
    expect(e).to.be.instanceOf(ProtocolError);
    expect((e as ProtocolError).code).to.equal('BAD_JSON');
    if (field !== undefined) expect((e as ProtocolError).field).to.equal(field);
    return;
  }
  expect.fail('expected ProtocolError BAD_JSON');
}

/** A slow, obviously-correct reference: code point order via Array.from, JSON.stringify for the rest. */
function referenceCanonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(referenceCanonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const byCodePoints = (a: string, b: string) => {
      const x = Array.from(a, (c) => c.codePointAt(0)!);
      const y = Array.from(b, (c) => c.codePointAt(0)!);
      for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
      return x.length - y.length;
    };
    const keys = Object.keys(value).sort(byCodePoints);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${referenceCanonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value).toString();
  return JSON.stringify(value);
}

/** The same value rebuilt with every object's keys inserted in reverse order. */
function reverseKeyOrder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeyOrder);
  if (value !== null && typeof value === 'object') {
    // fromEntries defines own properties: a generated "__proto__" key stays a key.
    return Object.fromEntries(
      Object.keys(value)
        .reverse()
        .map((key) => [key, reverseKeyOrder((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

function integersOnly(v: unknown): unknown {
  if (typeof v === 'number') return Math.trunc(v) % Number.MAX_SAFE_INTEGER || 0;
  if (Array.isArray(v)) return v.map(integersOnly);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, integersOnly(x)]));
  }
  return v;
}
const strictJsonValue = fc.jsonValue({ stringUnit: 'binary', maxDepth: 4 }).map(integersOnly);

describe('canonical JSON (appendices "Canonical JSON")', () => {
  describe('vectors', () => {
    for (const [i, c] of vectors.cases.entries()) {
      it(`${c.source} case ${i}: ${c.canonical.slice(0, 50)}`, () => {
        const value = JSON.parse(c.input);
        expect(encodeCanonicalJson(value)).to.equal(c.canonical);
        expect(encodeCanonicalJsonBytes(value).equals(Buffer.from(c.canonical, 'utf8'))).to.equal(true);
      });
    }
    for (const [i, c] of vectors.invalid.entries()) {
      it(`rejects invalid case ${i} ${c.strict_only ? 'in strict mode only' : 'always'}`, () => {
        const value = JSON.parse(c.input);
        expectBadJson(() => encodeCanonicalJson(value, { strict: true }), c.field);
        if (c.strict_only) expect(() => encodeCanonicalJson(value)).not.to.throw();
        else expectBadJson(() => encodeCanonicalJson(value), c.field);
      });
    }
  });

  it('sorts astral keys after U+E000..U+FFFF (code points, not UTF-16 units)', () => {
    const value = { '\u{1F600}': 1, '\uFFFF': 2, '\uE000': 3, a: 4 };
    expect(encodeCanonicalJson(value)).to.equal('{"a":4,"\uE000":3,"\uFFFF":2,"\u{1F600}":1}');
    expect(compareByCodePoint('\u{10000}', '\uFFFF')).to.be.greaterThan(0);
    expect(compareByCodePoint('ab', 'a')).to.be.greaterThan(0);
    expect(compareByCodePoint('a', 'a')).to.equal(0);
  });

  it('escapes only what the grammar requires', () => {
    expect(encodeCanonicalJson('\u0000\u0007\b\t\n\u000b\f\r\u001f"\\/\u007f\u2028é😀')).to.equal(
      '"\\u0000\\u0007\\b\\t\\n\\u000b\\f\\r\\u001f\\"\\\\/\u007f\u2028é😀"',
    );
  });

  it('prints -0 as 0 and integers without exponent', () => {
    expect(encodeCanonicalJson([-0, 1e10, -9007199254740991])).to.equal('[0,10000000000,-9007199254740991]');
  });

  it('in non-strict mode (room versions 1-5) encodes floats and big integers', () => {
    expect(encodeCanonicalJson({ a: 1.5, b: 1e21, c: -(2 ** 60) })).to.equal(
      '{"a":1.5,"b":1000000000000000000000,"c":-1152921504606846976}',
    );
  });

  it('rejects what JSON cannot carry, with the field path', () => {
    expectBadJson(() => encodeCanonicalJson({ a: [1, Number.NaN] }), 'a.1');
    expectBadJson(() => encodeCanonicalJson({ a: Number.POSITIVE_INFINITY }), 'a');
    expectBadJson(() => encodeCanonicalJson({ a: { b: undefined } }), 'a.b');
    expectBadJson(() => encodeCanonicalJson({ f: () => 1 }), 'f');
    expectBadJson(() => encodeCanonicalJson({ n: 1n }), 'n');
    expectBadJson(() => encodeCanonicalJson({ s: Symbol('x') }), 's');
    expectBadJson(() => encodeCanonicalJson({ d: new Date(0) }), 'd');
    expectBadJson(() => encodeCanonicalJson({ m: new Map() }), 'm');
    expectBadJson(() => encodeCanonicalJson(Buffer.from('x')));
    expectBadJson(() => encodeCanonicalJson(undefined));
    expectBadJson(() => encodeCanonicalJson({ a: 'ok\uDC00' }), 'a');
    expectBadJson(() => encodeCanonicalJson({ a: '\uD83D' }), 'a');
    expectBadJson(() => encodeCanonicalJson({ a: 1.5 }, { strict: true }), 'a');
    expectBadJson(() => encodeCanonicalJson({ a: 2 ** 53 }, { strict: true }), 'a');
  });

  it('refuses nesting deeper than MAX_CANONICAL_JSON_DEPTH with BAD_JSON, not a stack overflow', () => {
    const nest = (depth: number): unknown => {
      let value: unknown = 'leaf';
      for (let i = 0; i < depth; i++) value = i % 2 ? { k: value } : [value];
      return value;
    };
    expect(() => encodeCanonicalJson(nest(MAX_CANONICAL_JSON_DEPTH))).not.to.throw();
    expectBadJson(() => encodeCanonicalJson(nest(MAX_CANONICAL_JSON_DEPTH + 1)));
    expectBadJson(() => encodeCanonicalJson(nest(50_000)));
    expectBadJson(() => encodeCanonicalJsonWithout({ deep: nest(50_000) }, ['x']));
  });

  it('accepts objects without a prototype and own __proto__ keys', () => {
    const bare = Object.create(null) as Record<string, unknown>;
    bare.b = 1;
    bare.a = 2;
    expect(encodeCanonicalJson(bare)).to.equal('{"a":2,"b":1}');
    expect(encodeCanonicalJson(JSON.parse('{"__proto__":{"x":1},"a":1}'))).to.equal(
      '{"__proto__":{"x":1},"a":1}',
    );
  });

  it('encodeCanonicalJsonWithout leaves out the named top-level keys only', () => {
    const value = { signatures: { a: 1 }, unsigned: { x: 1 }, b: { signatures: 2 }, a: 1 };
    expect(encodeCanonicalJsonWithout(value, ['signatures', 'unsigned'])).to.equal(
      '{"a":1,"b":{"signatures":2}}',
    );
    expect(encodeCanonicalJsonWithout({ signatures: 1 }, ['signatures'])).to.equal('{}');
    expectBadJson(() => encodeCanonicalJsonWithout([] as unknown as object, []));
  });

  it('parseJson maps syntax errors and, when strict, non-canonical numbers to BAD_JSON', () => {
    expect(parseJson('{"a":1}')).to.deep.equal({ a: 1 });
    expectBadJson(() => parseJson('{"a":'));
    expect(parseJson('{"a":1.5}')).to.deep.equal({ a: 1.5 });
    expectBadJson(() => parseJson('{"a":1.5}', { strict: true }), 'a');
  });

  describe('properties', () => {
    it('output parses back to the input (as JSON sees it) and matches a reference encoder', () => {
      fc.assert(
        fc.property(fc.jsonValue({ stringUnit: 'binary', maxDepth: 5 }), (value) => {
          const encoded = encodeCanonicalJson(value);
          expect(JSON.parse(encoded)).to.deep.equal(JSON.parse(JSON.stringify(value)));
          expect(encoded).to.equal(referenceCanonical(value));
        }),
        { numRuns: 1000 },
      );
    });

    it('does not depend on key insertion order', () => {
      fc.assert(
        fc.property(strictJsonValue, (value) => {
          const strict = encodeCanonicalJson(value, { strict: true });
          expect(encodeCanonicalJson(reverseKeyOrder(value), { strict: true })).to.equal(strict);
        }),
        { numRuns: 1000 },
      );
    });

    it('is a fixed point: encoding the parsed output gives the output again', () => {
      fc.assert(
        fc.property(fc.jsonValue({ stringUnit: 'binary', maxDepth: 4 }), (value) => {
          const once = encodeCanonicalJson(value);
          expect(encodeCanonicalJson(JSON.parse(once))).to.equal(once);
        }),
        { numRuns: 500 },
      );
    });
  });
});
