import { expect } from 'chai';
import fc from 'fast-check';
import { encodeCanonicalJson } from './canonical-json.js';
import { ProtocolError, type ProtocolErrorCode } from './errors.js';
import {
  checkEventSize,
  MAX_AUTH_EVENTS,
  MAX_JSON_NESTING,
  MAX_PDU_BYTES,
  MAX_PREV_EVENTS,
  validateEvent,
} from './event-validation.js';
import type { JsonObject, JsonValue } from './events.js';
import { type RoomVersionRules, roomVersionRules } from './room-versions.js';

const HASH_STANDARD = 'acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk';
const HASH_URL_SAFE = 'Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg';
const HASH_URL_SAFE_2 = 'Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ';
const CONTENT_HASH = 'ThisHashCoversAllFieldsInCaseThisIsRedacted';

const ALL_VERSIONS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'].map(roomVersionRules);

/** A well-formed event ID of the version's format; `n` (0-25) makes distinct ones. */
function eventIdFor(rules: RoomVersionRules, n = 0): string {
  const tag = String.fromCharCode(0x41 + n);
  switch (rules.eventIdFormat) {
    case 'server-generated':
      return `$event${n}:example.org`;
    case 'reference-hash':
      return `$${tag}${HASH_STANDARD.slice(1)}`;
    case 'reference-hash-url-safe':
      return `$${tag}${HASH_URL_SAFE.slice(1)}`;
  }
}

function referenceFor(rules: RoomVersionRules, n = 0): JsonValue {
  return rules.eventReferencesIncludeHashes
    ? [eventIdFor(rules, n), { sha256: CONTENT_HASH }]
    : eventIdFor(rules, n);
}

function roomIdFor(rules: RoomVersionRules): string {
  return rules.roomIdIsCreateEventHash ? `!${HASH_URL_SAFE_2}` : '!room:example.com';
}

/** A valid m.room.message PDU for the room version. */
function messageEvent(rules: RoomVersionRules): JsonObject {
  const event: JsonObject = {
    type: 'm.room.message',
    room_id: roomIdFor(rules),
    sender: '@alice:example.com',
    origin_server_ts: 1_700_000_000_000,
    content: { msgtype: 'm.text', body: 'hello' },
    depth: 12,
    prev_events: [referenceFor(rules, 1)],
    auth_events: [referenceFor(rules, 2), referenceFor(rules, 3)],
    hashes: { sha256: CONTENT_HASH },
    signatures: { 'example.com': { 'ed25519:key1': 'c2lnbmF0dXJl' } },
    unsigned: { age: 4612 },
  };
  if (rules.eventIdFormat === 'server-generated') event.event_id = eventIdFor(rules, 9);
  return event;
}

function createEvent(rules: RoomVersionRules): JsonObject {
  const event = messageEvent(rules);
  event.type = 'm.room.create';
  event.state_key = '';
  event.content = { room_version: rules.id };
  event.prev_events = [];
  event.auth_events = [];
  event.depth = 1;
  if (rules.roomIdIsCreateEventHash) delete event.room_id;
  return event;
}

function redactionEvent(rules: RoomVersionRules): JsonObject {
  const event = messageEvent(rules);
  event.type = 'm.room.redaction';
  event.content = { reason: 'spam' };
  if (rules.redactsInContent) event.content.redacts = eventIdFor(rules, 5);
  else event.redacts = eventIdFor(rules, 5);
  return event;
}

function expectRejection(
  fn: () => unknown,
  code: ProtocolErrorCode,
  field?: string,
  message?: RegExp,
): ProtocolError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    expect(e.code, e.message).to.equal(code);
    if (field !== undefined) expect(e.field, e.message).to.equal(field);
    if (message) expect(e.message).to.match(message);
    return e;
  }
  expect.fail(`expected ProtocolError ${code}${field ? ` on '${field}'` : ''}`);
}

function canonicalSize(event: JsonObject, rules: RoomVersionRules): number {
  return Buffer.byteLength(encodeCanonicalJson(event, { strict: rules.strictCanonicalJson }), 'utf8');
}

describe('validateEvent', () => {
  describe('accepts well-formed events of every room version', () => {
    for (const rules of ALL_VERSIONS) {
      it(`v${rules.id}: message, create, redaction and state events`, () => {
        for (const event of [messageEvent(rules), createEvent(rules), redactionEvent(rules)]) {
          expect(validateEvent(event, rules)).to.equal(event);
        }
        const state = {
          ...messageEvent(rules),
          type: 'm.room.topic',
          state_key: '',
          content: { topic: 't' },
        };
        expect(validateEvent(state, rules)).to.equal(state);
      });
    }

    it('accepts events without the optional unsigned and with an empty signatures object', () => {
      const rules = roomVersionRules('10');
      const event = messageEvent(rules);
      delete event.unsigned;
      event.signatures = {};
      expect(validateEvent(event, rules)).to.equal(event);
    });

    it('accepts a carried event_id from v3 on without checking it (it is computed)', () => {
      const rules = roomVersionRules('4');
      const event = { ...messageEvent(rules), event_id: '$anything:example.com' };
      expect(validateEvent(event, rules)).to.equal(event);
      expectRejection(() => validateEvent({ ...event, event_id: 7 }, rules), 'BAD_EVENT', 'event_id');
    });
  });

  describe('shape', () => {
    const v1 = roomVersionRules('1');
    const v4 = roomVersionRules('4');
    const v11 = roomVersionRules('11');

    it('rejects values that are not JSON objects', () => {
      for (const value of [null, [], [messageEvent(v4)], 'event', 42, true, undefined]) {
        expectRejection(() => validateEvent(value, v4), 'BAD_EVENT');
      }
    });

    const required = [
      'type',
      'room_id',
      'sender',
      'origin_server_ts',
      'content',
      'depth',
      'prev_events',
      'auth_events',
      'hashes',
      'signatures',
    ];
    for (const key of required) {
      it(`rejects an event without '${key}'`, () => {
        for (const rules of [v1, v4, v11, roomVersionRules('12')]) {
          const event = messageEvent(rules);
          delete event[key];
          expectRejection(() => validateEvent(event, rules), 'BAD_EVENT', key);
        }
      });
    }

    const wrongTypes: [string, JsonValue][] = [
      ['type', 5],
      ['type', null],
      ['sender', ['@alice:example.com']],
      ['room_id', { id: '!room:example.com' }],
      ['origin_server_ts', '1700000000000'],
      ['origin_server_ts', true],
      ['content', 'hello'],
      ['content', ['hello']],
      ['content', null],
      ['depth', '12'],
      ['depth', -1],
      ['depth', 1.5],
      ['prev_events', {}],
      ['auth_events', 'x'],
      ['hashes', 'x'],
      ['hashes', []],
      ['signatures', 'x'],
      ['signatures', []],
      ['state_key', 0],
      ['state_key', null],
      ['unsigned', 'x'],
      ['unsigned', []],
      ['origin', 7],
      ['redacts', 7],
    ];
    for (const [key, value] of wrongTypes) {
      it(`rejects '${key}' = ${JSON.stringify(value)}`, () => {
        const event = { ...messageEvent(v4), [key]: value };
        expectRejection(() => validateEvent(event, v4), 'BAD_EVENT', key);
      });
    }

    it('rejects non-integer and out-of-range numbers in typed fields even where floats are tolerated', () => {
      expect(v1.strictCanonicalJson).to.equal(false);
      expectRejection(() => validateEvent({ ...messageEvent(v1), depth: 2.5 }, v1), 'BAD_EVENT', 'depth');
      expectRejection(
        () => validateEvent({ ...messageEvent(v1), origin_server_ts: 1.5 }, v1),
        'BAD_EVENT',
        'origin_server_ts',
      );
      expectRejection(() => validateEvent({ ...messageEvent(v1), depth: 2 ** 53 }, v1), 'BAD_EVENT', 'depth');
    });

    it('accepts depth 0 and 2^53-1', () => {
      for (const depth of [0, Number.MAX_SAFE_INTEGER]) {
        const event = { ...messageEvent(v11), depth };
        expect(validateEvent(event, v11)).to.equal(event);
      }
    });

    it('requires hashes.sha256 to be a string', () => {
      for (const hashes of [{}, { sha256: 1 }, { sha256: null }, { sha512: CONTENT_HASH }]) {
        expectRejection(
          () => validateEvent({ ...messageEvent(v4), hashes }, v4),
          'BAD_EVENT',
          'hashes.sha256',
        );
      }
    });

    it('requires signatures to be an object of objects of strings', () => {
      expectRejection(
        () => validateEvent({ ...messageEvent(v4), signatures: { 'example.com': 'sig' } }, v4),
        'BAD_EVENT',
        'signatures.example.com',
      );
      expectRejection(
        () => validateEvent({ ...messageEvent(v4), signatures: { 'example.com': { 'ed25519:1': 5 } } }, v4),
        'BAD_EVENT',
        'signatures.example.com.ed25519:1',
      );
    });

    it('accepts an empty-string state key and rejects a 256-byte one', () => {
      const event = { ...messageEvent(v4), state_key: '' };
      expect(validateEvent(event, v4)).to.equal(event);
      expectRejection(
        () => validateEvent({ ...messageEvent(v4), state_key: 's'.repeat(256) }, v4),
        'EVENT_TOO_LARGE',
        'state_key',
      );
    });
  });

  describe('sender', () => {
    const v10 = roomVersionRules('10');

    it('accepts historical user IDs', () => {
      for (const sender of [
        '@Alice:example.com',
        '@ali ce😀:example.com',
        '@:example.com',
        '@a!b#c:example.com',
      ]) {
        const event = { ...messageEvent(v10), sender };
        expect(validateEvent(event, v10), sender).to.equal(event);
      }
    });

    it('rejects strings that are not user IDs', () => {
      for (const sender of [
        'alice',
        '@alice',
        '@alice:',
        '@alice:bad host',
        '#alice:example.com',
        '@a\u0000b:example.com',
      ]) {
        expectRejection(
          () => validateEvent({ ...messageEvent(v10), sender }, v10),
          'BAD_IDENTIFIER',
          'sender',
        );
      }
    });
  });

  describe('room_id per room version', () => {
    const v11 = roomVersionRules('11');
    const v12 = roomVersionRules('12');

    it('v12: the create event must not carry a room_id', () => {
      const event = { ...createEvent(v12), room_id: `!${HASH_URL_SAFE_2}` };
      expectRejection(() => validateEvent(event, v12), 'BAD_EVENT', 'room_id');
    });

    it('v12: other events need a hash room ID', () => {
      expectRejection(
        () => validateEvent({ ...messageEvent(v12), room_id: '!room:example.com' }, v12),
        'BAD_IDENTIFIER',
        'room_id',
      );
    });

    it('v1-11: the create event needs a room_id, of the server form', () => {
      const create = createEvent(v11);
      delete create.room_id;
      expectRejection(() => validateEvent(create, v11), 'BAD_EVENT', 'room_id');
      expectRejection(
        () => validateEvent({ ...messageEvent(v11), room_id: `!${HASH_URL_SAFE_2}` }, v11),
        'BAD_IDENTIFIER',
        'room_id',
      );
      expectRejection(
        () => validateEvent({ ...messageEvent(v11), room_id: '#room:example.com' }, v11),
        'BAD_IDENTIFIER',
        'room_id',
      );
    });
  });

  describe('event IDs and references per room version', () => {
    const v1 = roomVersionRules('1');
    const v3 = roomVersionRules('3');
    const v4 = roomVersionRules('4');

    it('v1-2: event_id is required and of the server form', () => {
      for (const rules of [v1, roomVersionRules('2')]) {
        const event = messageEvent(rules);
        delete event.event_id;
        expectRejection(() => validateEvent(event, rules), 'BAD_EVENT', 'event_id');
        expectRejection(
          () => validateEvent({ ...messageEvent(rules), event_id: `$${HASH_URL_SAFE}` }, rules),
          'BAD_IDENTIFIER',
          'event_id',
        );
      }
    });

    it('v1-2: references are [event ID, {sha256}] pairs', () => {
      const bad: [JsonValue, string, ProtocolErrorCode][] = [
        [['$a:example.com'], 'prev_events.0', 'BAD_EVENT'],
        [[['$a:example.com']], 'prev_events.0', 'BAD_EVENT'],
        [[['$a:example.com', { sha256: 'x' }, 3]], 'prev_events.0', 'BAD_EVENT'],
        [[['$a:example.com', {}]], 'prev_events.0.1.sha256', 'BAD_EVENT'],
        [[['$a:example.com', 'x']], 'prev_events.0.1.sha256', 'BAD_EVENT'],
        [[[5, { sha256: 'x' }]], 'prev_events.0.0', 'BAD_EVENT'],
        [[[`$${HASH_URL_SAFE}`, { sha256: 'x' }]], 'prev_events.0.0', 'BAD_IDENTIFIER'],
      ];
      for (const [prevEvents, field, code] of bad) {
        expectRejection(
          () => validateEvent({ ...messageEvent(v1), prev_events: prevEvents }, v1),
          code,
          field,
        );
      }
    });

    it('v3+: references are bare event IDs of the version format', () => {
      const cases: [RoomVersionRules, JsonValue, ProtocolErrorCode][] = [
        [v3, [[`$${HASH_STANDARD}`, { sha256: 'x' }]], 'BAD_EVENT'],
        [v3, [`$${HASH_URL_SAFE}`], 'BAD_IDENTIFIER'],
        [v4, [`$${HASH_STANDARD}`], 'BAD_IDENTIFIER'],
        [v4, ['$a:example.com'], 'BAD_IDENTIFIER'],
        [v4, [null], 'BAD_EVENT'],
      ];
      for (const [rules, authEvents, code] of cases) {
        expectRejection(
          () => validateEvent({ ...messageEvent(rules), auth_events: authEvents }, rules),
          code,
          'auth_events.0',
        );
      }
    });

    it(`allows at most ${MAX_PREV_EVENTS} prev_events and ${MAX_AUTH_EVENTS} auth_events`, () => {
      for (const rules of [v1, v4]) {
        const refs = (n: number) => Array.from({ length: n }, (_, i) => referenceFor(rules, i));
        const atLimit = { ...messageEvent(rules), prev_events: refs(20), auth_events: refs(10) };
        expect(validateEvent(atLimit, rules)).to.equal(atLimit);
        expectRejection(
          () => validateEvent({ ...atLimit, prev_events: refs(21) }, rules),
          'BAD_EVENT',
          'prev_events',
        );
        expectRejection(
          () => validateEvent({ ...atLimit, auth_events: refs(11) }, rules),
          'BAD_EVENT',
          'auth_events',
        );
      }
    });
  });

  describe('redacts', () => {
    it('v1-10: a top-level redacts, when present, is an event ID of the version', () => {
      for (const rules of ALL_VERSIONS.filter((r) => !r.redactsInContent)) {
        expectRejection(
          () => validateEvent({ ...redactionEvent(rules), redacts: 'not-an-id' }, rules),
          'BAD_IDENTIFIER',
          'redacts',
        );
        expectRejection(
          () => validateEvent({ ...redactionEvent(rules), redacts: 5 }, rules),
          'BAD_EVENT',
          'redacts',
        );
        // A redacted redaction event has lost its top-level redacts and is still well-formed.
        const redacted = redactionEvent(rules);
        delete redacted.redacts;
        expect(validateEvent(redacted, rules)).to.equal(redacted);
      }
    });

    it('v11+: content.redacts is required and an event ID of the version', () => {
      for (const rules of ALL_VERSIONS.filter((r) => r.redactsInContent)) {
        const topLevelOnly = { ...redactionEvent(rules), content: {}, redacts: eventIdFor(rules, 5) };
        expectRejection(() => validateEvent(topLevelOnly, rules), 'BAD_EVENT', 'content.redacts');
        expectRejection(
          () => validateEvent({ ...redactionEvent(rules), content: { redacts: '$a:example.com' } }, rules),
          'BAD_IDENTIFIER',
          'content.redacts',
        );
        // The top-level key is tolerated alongside it.
        const both = { ...redactionEvent(rules), redacts: eventIdFor(rules, 5) };
        expect(validateEvent(both, rules)).to.equal(both);
      }
    });

    it('ignores content.redacts before v11 and redacts on other event types', () => {
      const v10 = roomVersionRules('10');
      const event = { ...messageEvent(v10), content: { redacts: 5 }, redacts: 'anything' };
      expect(validateEvent(event, v10)).to.equal(event);
    });
  });

  describe('canonical JSON strictness', () => {
    const lenient = ALL_VERSIONS.filter((r) => !r.strictCanonicalJson);
    const strict = ALL_VERSIONS.filter((r) => r.strictCanonicalJson);

    it('flags each version correctly (v6 introduced strict canonical JSON)', () => {
      expect(lenient.map((r) => r.id)).to.deep.equal(['1', '2', '3', '4', '5']);
    });

    for (const [label, value] of [
      ['a float', 1.5],
      ['2^53', 2 ** 53],
      ['-(2^53)', -(2 ** 53)],
      ['1e300', 1e300],
    ] as const) {
      it(`${label} in content: accepted in v1-5, BAD_JSON from v6`, () => {
        for (const rules of lenient) {
          const event = { ...messageEvent(rules), content: { body: 'x', n: value } };
          expect(validateEvent(event, rules)).to.equal(event);
        }
        for (const rules of strict) {
          const event = { ...messageEvent(rules), content: { body: 'x', nested: [{ n: value }] } };
          expectRejection(() => validateEvent(event, rules), 'BAD_JSON', 'content.nested.0.n');
        }
      });
    }

    it('rejects floats in unsigned and signatures too from v6', () => {
      const v6 = roomVersionRules('6');
      expectRejection(
        () => validateEvent({ ...messageEvent(v6), unsigned: { age: 0.5 } }, v6),
        'BAD_JSON',
        'unsigned.age',
      );
    });

    it('rejects lone surrogates in every version', () => {
      for (const rules of ALL_VERSIONS) {
        const event = { ...messageEvent(rules), content: { body: 'a\ud800b' } };
        expectRejection(() => validateEvent(event, rules), 'BAD_JSON', 'content.body');
      }
    });

    it('rejects values JSON cannot carry', () => {
      const v6 = roomVersionRules('6');
      for (const value of [Number.NaN, Number.POSITIVE_INFINITY, undefined, () => 1, 10n]) {
        const event = { ...messageEvent(v6), content: { body: value } } as unknown;
        expectRejection(() => validateEvent(event, v6), 'BAD_JSON', 'content.body');
      }
    });

    it(`rejects nesting deeper than ${MAX_JSON_NESTING} levels, even far deeper, without overflowing the stack`, () => {
      const v12 = roomVersionRules('12');
      const nest = (levels: number): JsonValue => JSON.parse(`${'['.repeat(levels)}${']'.repeat(levels)}`);
      // The event is level 1 and its content level 2, so content.x adds MAX - 2 levels at the limit.
      const atLimit = { ...messageEvent(v12), content: { x: nest(MAX_JSON_NESTING - 2) } };
      expect(validateEvent(atLimit, v12)).to.equal(atLimit);
      const overLimit = { ...messageEvent(v12), content: { x: nest(MAX_JSON_NESTING - 1) } };
      expectRejection(() => validateEvent(overLimit, v12), 'BAD_JSON', undefined, /deeper/);
      const hostile = JSON.parse(
        `{"type":"m.room.message","content":{"x":${'['.repeat(32_000)}${']'.repeat(32_000)}}}`,
      );
      expectRejection(() => validateEvent(hostile, v12), 'BAD_JSON', undefined, /deeper/);
    });
  });

  describe('size limits', () => {
    /** A message event whose canonical JSON is exactly `bytes` long, padded in content.body. */
    function eventOfSize(rules: RoomVersionRules, bytes: number): JsonObject {
      const event = messageEvent(rules);
      const base = canonicalSize(event, rules);
      event.content = { msgtype: 'm.text', body: `hello${'x'.repeat(bytes - base)}` };
      expect(canonicalSize(event, rules)).to.equal(bytes);
      return event;
    }

    for (const rules of [roomVersionRules('1'), roomVersionRules('12')]) {
      it(`v${rules.id}: accepts a ${MAX_PDU_BYTES}-byte event and rejects ${MAX_PDU_BYTES + 1} bytes`, () => {
        const atLimit = eventOfSize(rules, MAX_PDU_BYTES);
        expect(validateEvent(atLimit, rules)).to.equal(atLimit);
        expect(checkEventSize(atLimit, rules)).to.equal(MAX_PDU_BYTES);
        const overLimit = eventOfSize(rules, MAX_PDU_BYTES + 1);
        expectRejection(() => validateEvent(overLimit, rules), 'EVENT_TOO_LARGE', undefined, /65537/);
        expectRejection(() => checkEventSize(overLimit, rules), 'EVENT_TOO_LARGE');
      });
    }

    it('counts the size in UTF-8 bytes of canonical JSON (multi-byte text, escapes, signatures)', () => {
      const rules = roomVersionRules('11');
      const event = messageEvent(rules);
      const base = canonicalSize(event, rules);
      // '😀' is 2 UTF-16 units but 4 UTF-8 bytes; content.body 'hello' grows by 4 bytes per emoji.
      const emoji = (MAX_PDU_BYTES - base + 5) / 4;
      const padding = (MAX_PDU_BYTES - base) % 4;
      event.content = { msgtype: 'm.text', body: `${'😀'.repeat(Math.floor(emoji))}${'x'.repeat(padding)}` };
      expect(canonicalSize(event, rules)).to.be.at.most(MAX_PDU_BYTES);
      expect(JSON.stringify(event).length).to.be.below(MAX_PDU_BYTES); // fits by UTF-16 count either way
      event.content.body = `${event.content.body}${'😀'.repeat(2)}`;
      expect(canonicalSize(event, rules)).to.be.above(MAX_PDU_BYTES);
      expect(JSON.stringify(event).length).to.be.below(MAX_PDU_BYTES);
      expectRejection(() => validateEvent(event, rules), 'EVENT_TOO_LARGE');
    });

    const limited: [string, (bytes: number) => string][] = [
      ['type', (bytes) => 't'.repeat(bytes)],
      ['state_key', (bytes) => `${'é'.repeat(Math.floor(bytes / 2))}${bytes % 2 ? 'x' : ''}`],
      ['sender', (bytes) => `@${'a'.repeat(bytes - 13)}:example.com`],
      ['room_id', (bytes) => `!${'r'.repeat(bytes - 13)}:example.com`],
      ['event_id', (bytes) => `$${'e'.repeat(bytes - 13)}:example.com`],
    ];
    for (const [key, valueOfSize] of limited) {
      it(`'${key}': accepts 255 bytes, rejects 256 bytes with EVENT_TOO_LARGE`, () => {
        const rules = roomVersionRules('1');
        const at = valueOfSize(255);
        expect(Buffer.byteLength(at)).to.equal(255);
        const atLimit = { ...messageEvent(rules), [key]: at };
        expect(validateEvent(atLimit, rules)).to.equal(atLimit);
        const over = valueOfSize(256);
        expect(Buffer.byteLength(over)).to.equal(256);
        expectRejection(
          () => validateEvent({ ...messageEvent(rules), [key]: over }, rules),
          'EVENT_TOO_LARGE',
          key,
        );
        expectRejection(
          () => checkEventSize({ ...messageEvent(rules), [key]: over }, rules),
          'EVENT_TOO_LARGE',
          key,
        );
      });
    }

    it('checkEventSize returns the canonical size and applies the version strictness', () => {
      const v5 = roomVersionRules('5');
      const v6 = roomVersionRules('6');
      const event = messageEvent(v5);
      expect(checkEventSize(event, v5)).to.equal(canonicalSize(event, v5));
      const floaty = { ...messageEvent(v6), content: { n: 0.5 } };
      expect(checkEventSize(floaty, v5)).to.be.a('number');
      expectRejection(() => checkEventSize(floaty, v6), 'BAD_JSON', 'content.n');
    });
  });

  describe('fuzzing: only a Pdu or a ProtocolError, never a TypeError or RangeError', () => {
    const versions = ['1', '3', '4', '6', '10', '11', '12'].map(roomVersionRules);
    const DELETE = Symbol('delete');
    const paths: (string | number)[][] = [
      ...[
        'type',
        'room_id',
        'sender',
        'origin_server_ts',
        'content',
        'state_key',
        'depth',
        'prev_events',
        'auth_events',
        'hashes',
        'signatures',
        'unsigned',
        'redacts',
        'event_id',
        'origin',
        '__proto__',
        'constructor',
      ].map((key) => [key]),
      ['content', 'redacts'],
      ['content', 'body'],
      ['prev_events', 0],
      ['prev_events', 0, 0],
      ['prev_events', 0, 1],
      ['prev_events', 0, 1, 'sha256'],
      ['auth_events', 1],
      ['hashes', 'sha256'],
      ['signatures', 'example.com'],
      ['signatures', 'example.com', 'ed25519:key1'],
      ['unsigned', 'age'],
    ];
    const replacement: fc.Arbitrary<JsonValue | typeof DELETE> = fc.oneof(
      fc.constant<typeof DELETE>(DELETE),
      fc.jsonValue() as fc.Arbitrary<JsonValue>,
      fc.jsonValue({ stringUnit: 'binary' }) as fc.Arbitrary<JsonValue>,
      fc.constantFrom<JsonValue>(
        'm.room.create',
        'm.room.redaction',
        '',
        `$${HASH_URL_SAFE}`,
        `!${HASH_URL_SAFE_2}`,
        '$a:example.com',
        '@Alice😀:example.com',
        2 ** 53,
        -1,
        0.5,
        [],
        {},
      ),
    );
    const mutation = fc.tuple(fc.constantFrom(...paths), replacement);

    function mutate(event: JsonObject, path: (string | number)[], value: JsonValue | typeof DELETE): void {
      let parent: unknown = event;
      for (const step of path.slice(0, -1)) {
        if (typeof parent !== 'object' || parent === null) return;
        parent = (parent as Record<string | number, unknown>)[step];
      }
      if (typeof parent !== 'object' || parent === null) return;
      const last = path[path.length - 1]!;
      if (value === DELETE) delete (parent as Record<string | number, unknown>)[last];
      else
        Object.defineProperty(parent, last, { value, enumerable: true, writable: true, configurable: true });
    }

    function checkOutcome(json: unknown, rules: RoomVersionRules): void {
      let pdu: ReturnType<typeof validateEvent>;
      try {
        pdu = validateEvent(json, rules);
      } catch (e) {
        if (e instanceof ProtocolError) return;
        throw e;
      }
      expect(pdu).to.equal(json);
      expect(pdu.type).to.be.a('string');
      expect(pdu.sender).to.be.a('string');
      expect(Number.isSafeInteger(pdu.depth) && pdu.depth >= 0).to.equal(true);
      expect(Number.isSafeInteger(pdu.origin_server_ts)).to.equal(true);
      expect(pdu.content).to.be.an('object');
      expect(pdu.prev_events).to.be.an('array');
      expect(pdu.hashes.sha256).to.be.a('string');
      expect(checkEventSize(pdu, rules)).to.be.at.most(MAX_PDU_BYTES);
    }

    it('10,000 random JSON values', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...versions),
          fc.oneof(fc.jsonValue(), fc.jsonValue({ stringUnit: 'binary' })),
          (rules, json) => checkOutcome(json, rules),
        ),
        { numRuns: 10_000 },
      );
    });

    it('10,000 mutated valid events (fields deleted or replaced)', () => {
      let accepted = 0;
      fc.assert(
        fc.property(
          fc.constantFrom(...versions),
          fc.constantFrom(messageEvent, createEvent, redactionEvent),
          fc.array(mutation, { minLength: 1, maxLength: 4 }),
          (rules, build, mutations) => {
            const event = build(rules);
            for (const [path, value] of mutations) mutate(event, path, value);
            try {
              validateEvent(event, rules);
              accepted++;
            } catch {}
            checkOutcome(event, rules);
          },
        ),
        { numRuns: 10_000 },
      );
      // The mutations must leave some events valid, or the test would only exercise rejections.
      expect(accepted).to.be.above(100);
    });
  });
});
