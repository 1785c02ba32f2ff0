import { expect } from 'chai';
import { ProtocolError } from './errors.js';
import {
  belongsToServer,
  isValidEventId,
  isValidLocalpartForRegistration,
  isValidRoomAlias,
  isValidRoomId,
  isValidServerName,
  isValidUserId,
  MAX_IDENTIFIER_BYTES,
  parseEventId,
  parseRoomAlias,
  parseRoomId,
  parseServerName,
  parseUserId,
  userIdFor,
} from './identifiers.js';
import { roomVersionRules } from './room-versions.js';

function expectBadIdentifier(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(ProtocolError);
    expect((e as ProtocolError).code).to.equal('BAD_IDENTIFIER');
    return e as ProtocolError;
  }
  expect.fail('expected a BAD_IDENTIFIER ProtocolError');
}

/** A string of exactly `bytes` UTF-8 bytes: `prefix` + 'a'... + `suffix`. */
function padTo(bytes: number, prefix: string, suffix: string): string {
  const fixed = Buffer.byteLength(prefix + suffix, 'utf8');
  return prefix + 'a'.repeat(bytes - fixed) + suffix;
}

const HASH_URL_SAFE = 'Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg';
const HASH_STANDARD = 'acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk';
const HASH_ALPHANUMERIC = 'acR1l0raoZnm60CBwAVgqbZqoOmYU81xysh1u7XcJkA';

describe('identifiers', () => {
  describe('server names (appendices "Server Name")', () => {
    const valid: [string, { host: string; port?: number; kind: string }][] = [
      ['matrix.org', { host: 'matrix.org', kind: 'dns' }],
      ['matrix.org:8888', { host: 'matrix.org', port: 8888, kind: 'dns' }],
      ['localhost', { host: 'localhost', kind: 'dns' }],
      ['MATRIX.ORG', { host: 'MATRIX.ORG', kind: 'dns' }],
      ['my-host.example-1.com:1', { host: 'my-host.example-1.com', port: 1, kind: 'dns' }],
      ['example.com:65535', { host: 'example.com', port: 65535, kind: 'dns' }],
      ['1.2.3.4', { host: '1.2.3.4', kind: 'ipv4' }],
      ['1.2.3.4:1234', { host: '1.2.3.4', port: 1234, kind: 'ipv4' }],
      ['255.255.255.255', { host: '255.255.255.255', kind: 'ipv4' }],
      ['[1234:5678::abcd]', { host: '1234:5678::abcd', kind: 'ipv6' }],
      ['[1234:5678::abcd]:5678', { host: '1234:5678::abcd', port: 5678, kind: 'ipv6' }],
      ['[1234:5678::abcd]:8448', { host: '1234:5678::abcd', port: 8448, kind: 'ipv6' }],
      ['[::1]', { host: '::1', kind: 'ipv6' }],
      ['[::]:80', { host: '::', port: 80, kind: 'ipv6' }],
      // Not dotted-quad form (1*3DIGIT), so the grammar reads it as a DNS name.
      ['1.2.3.4444', { host: '1.2.3.4444', kind: 'dns' }],
      ['[1:2:3:4:5:6:7:8]', { host: '1:2:3:4:5:6:7:8', kind: 'ipv6' }],
      [
        '[FEDC:BA98:7654:3210:FEDC:BA98:7654:3210]',
        { host: 'FEDC:BA98:7654:3210:FEDC:BA98:7654:3210', kind: 'ipv6' },
      ],
      ['[::ffff:1.2.3.4]:8448', { host: '::ffff:1.2.3.4', port: 8448, kind: 'ipv6' }],
      ['[1:2:3:4:5:6:1.2.3.4]', { host: '1:2:3:4:5:6:1.2.3.4', kind: 'ipv6' }],
      ['[1::]', { host: '1::', kind: 'ipv6' }],
    ];
    for (const [text, expected] of valid) {
      it(`accepts ${text}`, () => {
        expect(parseServerName(text)).to.deep.equal(expected);
        expect(isValidServerName(text)).to.equal(true);
      });
    }

    const invalid: [string, string][] = [
      ['', 'empty'],
      [':8448', 'no host'],
      ['example.com:', 'empty port'],
      ['example.com:0', 'port 0'],
      ['example.com:65536', 'port above 65535'],
      ['example.com:123456', 'six-digit port'],
      ['example.com:-1', 'negative port'],
      ['example.com:84a', 'non-numeric port'],
      ['example.com:80:80', 'two ports'],
      ['exa_mple.com', 'underscore'],
      ['exämple.com', 'non-ASCII'],
      ['example..com', 'empty label'],
      ['.example.com', 'leading dot'],
      ['example.com.', 'trailing dot'],
      ['ex ample.com', 'space'],
      ['1.2.3.256', 'IPv4 octet above 255'],
      ['256.0.0.1', 'first IPv4 octet above 255'],
      ['[1234:5678::abcd', 'unclosed bracket'],
      ['[1234:5678::abcd]8448', 'junk after bracket'],
      ['[]', 'empty IPv6'],
      ['[1:2:3:4:5:6:7:8:9]', 'nine groups'],
      ['[1:2:3:4:5:6:7]', 'seven groups without ::'],
      ['[1::2::3]', 'two elisions'],
      ['[12345::1]', 'five-digit group'],
      ['[::g]', 'non-hex digit'],
      ['[:::]', 'triple colon'],
      ['[1:2:3:4:5:6:7::8]', ':: standing for no group'],
      ['[::1.2.3.256]', 'bad embedded IPv4'],
      ['[1.2.3.4]', 'IPv4 in brackets'],
      ['1234:5678::abcd', 'IPv6 without brackets'],
      ['a'.repeat(256), 'longer than 255'],
    ];
    for (const [text, why] of invalid) {
      it(`rejects ${JSON.stringify(text.slice(0, 40))} (${why})`, () => {
        expectBadIdentifier(() => parseServerName(text));
        expect(isValidServerName(text)).to.equal(false);
      });
    }

    it('accepts a 255-character DNS name and rejects 256', () => {
      const name255 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`;
      expect(name255).to.have.length(255);
      expect(parseServerName(name255).kind).to.equal('dns');
      expect(isValidServerName(`${name255}a`)).to.equal(false);
    });

    it('rejects values that are not strings', () => {
      for (const value of [undefined, null, 42, ['a'], { host: 'a' }]) {
        expectBadIdentifier(() => parseServerName(value));
        expect(isValidServerName(value)).to.equal(false);
      }
    });
  });

  describe('user IDs (appendices "User Identifiers")', () => {
    it('parses a user ID into localpart and server name', () => {
      expect(parseUserId('@alice:example.com')).to.deep.equal({
        userId: '@alice:example.com',
        localpart: 'alice',
        serverName: 'example.com',
      });
      expect(parseUserId('@bob:[1234:5678::abcd]:8448')).to.deep.include({
        localpart: 'bob',
        serverName: '[1234:5678::abcd]:8448',
      });
      expect(parseUserId('@carol:1.2.3.4:80').serverName).to.equal('1.2.3.4:80');
    });

    it('accepts every character of the strict localpart grammar', () => {
      expect(isValidUserId('@abcdefghijklmnopqrstuvwxyz0123456789._=-/+:example.com')).to.equal(true);
      for (const c of 'abcxyz0189._=-/+') expect(isValidUserId(`@${c}:example.com`), c).to.equal(true);
    });

    const nonCompliantLocalparts: [string, string][] = [
      ['Alice', 'upper case'],
      ['alice!', 'exclamation mark'],
      ['al ice', 'space'],
      ['al*ice', 'asterisk'],
      ['al#ice', 'hash'],
      ['al~ice', 'tilde'],
      ['😀', 'emoji'],
      ['alice😀', 'emoji after letters'],
      ['élodie', 'accented letter'],
      ['al\u0007ice', 'control character'],
      ['', 'empty localpart'],
    ];
    for (const [localpart, why] of nonCompliantLocalparts) {
      it(`rejects a ${why} localpart in strict mode and accepts it as historical`, () => {
        const userId = `@${localpart}:example.com`;
        expectBadIdentifier(() => parseUserId(userId));
        expect(isValidUserId(userId)).to.equal(false);
        expect(isValidUserId(userId, { historical: false })).to.equal(false);
        expect(parseUserId(userId, { historical: true })).to.deep.include({
          localpart,
          serverName: 'example.com',
        });
        expect(isValidUserId(userId, { historical: true })).to.equal(true);
      });
    }

    it('accepts historical localparts covering all of printable ASCII but ":"', () => {
      let printable = '';
      for (let c = 0x21; c <= 0x7e; c++) if (c !== 0x3a) printable += String.fromCharCode(c);
      expect(isValidUserId(`@${printable}:example.com`, { historical: true })).to.equal(true);
      expect(isValidUserId(`@${printable}:example.com`)).to.equal(false);
    });

    it('never accepts NUL or a lone surrogate, even as historical', () => {
      for (const localpart of ['a\u0000b', 'a\ud83db', '\ude00']) {
        expectBadIdentifier(() => parseUserId(`@${localpart}:example.com`, { historical: true }));
      }
    });

    it('splits at the first ":" so a historical localpart never contains one', () => {
      expect(parseUserId('@a:b:1', { historical: true })).to.deep.include({
        localpart: 'a',
        serverName: 'b:1',
      });
      expectBadIdentifier(() => parseUserId('@a:b:c', { historical: true })); // 'c' is not a port
    });

    const malformed: [unknown, string][] = [
      ['alice:example.com', 'no sigil'],
      ['#alice:example.com', 'wrong sigil'],
      ['@alice', 'no server name'],
      ['@alice:', 'empty server name'],
      ['@alice:exa mple.com', 'invalid server name'],
      ['@alice:example.com:0', 'invalid port'],
      [' @alice:example.com', 'leading space'],
      [42, 'not a string'],
      [null, 'null'],
    ];
    for (const [text, why] of malformed) {
      it(`rejects ${JSON.stringify(text)} (${why}) in both modes`, () => {
        expectBadIdentifier(() => parseUserId(text));
        expectBadIdentifier(() => parseUserId(text, { historical: true }));
        expect(isValidUserId(text, { historical: true })).to.equal(false);
      });
    }

    it('accepts exactly 255 bytes and rejects 256', () => {
      const at = padTo(MAX_IDENTIFIER_BYTES, '@', ':example.com');
      expect(Buffer.byteLength(at)).to.equal(255);
      expect(isValidUserId(at)).to.equal(true);
      expect(isValidUserId(padTo(256, '@', ':example.com'))).to.equal(false);
    });

    it('counts the limit in UTF-8 bytes, not characters', () => {
      // 'é' is 2 bytes: 126 of them make a 252-byte localpart, 255 bytes in all with '@' and ':a'.
      const at = `@${'é'.repeat(126)}:a`;
      expect(at.length).to.equal(129);
      expect(isValidUserId(at, { historical: true })).to.equal(true);
      const over = `@${'é'.repeat(126)}:ab`;
      expect(Buffer.byteLength(over)).to.equal(256);
      expect(isValidUserId(over, { historical: true })).to.equal(false);
    });

    it('checks registration localparts against the strict grammar', () => {
      for (const ok of ['alice', 'a', 'bob.smith_99', 'x=y-z/w+v']) {
        expect(isValidLocalpartForRegistration(ok), ok).to.equal(true);
      }
      for (const bad of ['', 'Alice', 'al ice', 'al:ice', 'ali😀', 'al@ice', 'ali\u0000']) {
        expect(isValidLocalpartForRegistration(bad), bad).to.equal(false);
      }
    });

    it('builds user IDs for new accounts and refuses invalid ones', () => {
      expect(userIdFor('alice', 'example.com')).to.equal('@alice:example.com');
      expect(userIdFor('alice', '[::1]:8448')).to.equal('@alice:[::1]:8448');
      expectBadIdentifier(() => userIdFor('Alice', 'example.com'));
      expectBadIdentifier(() => userIdFor('alice', 'bad_host'));
      expectBadIdentifier(() => userIdFor('a'.repeat(250), 'example.com'));
    });

    it('keeps messages short for huge inputs', () => {
      const error = expectBadIdentifier(() => parseUserId(`@${'x'.repeat(100_000)}`));
      expect(error.message.length).to.be.below(300);
    });
  });

  describe('room IDs (appendices "Room IDs")', () => {
    const v1 = roomVersionRules('1');
    const v11 = roomVersionRules('11');
    const v12 = roomVersionRules('12');

    it('parses server-form room IDs (v1-11)', () => {
      expect(parseRoomId('!abc123:matrix.org')).to.deep.equal({
        roomId: '!abc123:matrix.org',
        opaque: 'abc123',
        serverName: 'matrix.org',
      });
      expect(parseRoomId('!abc:[::1]:8448', v11).serverName).to.equal('[::1]:8448');
      // The opaque part may hold any code point but ':' and NUL.
      expect(isValidRoomId('!Ab c😀\u0007:example.com', v1)).to.equal(true);
      expect(isValidRoomId('!:example.com', v1)).to.equal(true);
    });

    it('parses hash room IDs (v12)', () => {
      const roomId = '!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ';
      expect(parseRoomId(roomId, v12)).to.deep.equal({ roomId, opaque: roomId.slice(1) });
      expect(isValidRoomId(roomId)).to.equal(true);
    });

    it('holds each room version to its own form', () => {
      expect(isValidRoomId(`!${HASH_URL_SAFE}`, v11)).to.equal(false);
      expect(isValidRoomId('!abc:example.com', v12)).to.equal(false);
      expect(isValidRoomId(`!${HASH_URL_SAFE}:example.com`, v12)).to.equal(false);
      expect(isValidRoomId(`!${HASH_URL_SAFE}:example.com`, v11)).to.equal(true);
    });

    it('rejects malformed hash room IDs', () => {
      for (const bad of [
        `!${HASH_STANDARD}`, // standard alphabet ('/')
        `!${HASH_URL_SAFE.slice(1)}`, // 42 characters
        `!${HASH_URL_SAFE}A`, // 44 characters
        `!${HASH_URL_SAFE.slice(1)}=`, // padding
        '!',
        '!abc',
      ]) {
        expect(isValidRoomId(bad), bad).to.equal(false);
        expect(isValidRoomId(bad, v12), bad).to.equal(false);
      }
    });

    it('rejects other malformed room IDs', () => {
      for (const bad of [
        'abc:example.com',
        '$abc:example.com',
        '!abc:',
        '!abc:bad_host',
        '!a\u0000b:example.com',
        7,
      ]) {
        expectBadIdentifier(() => parseRoomId(bad));
        expect(isValidRoomId(bad, v1)).to.equal(false);
      }
    });

    it('accepts exactly 255 bytes and rejects 256', () => {
      expect(isValidRoomId(padTo(255, '!', ':example.com'))).to.equal(true);
      expect(isValidRoomId(padTo(256, '!', ':example.com'))).to.equal(false);
    });
  });

  describe('event IDs (appendices "Event IDs", rooms v1/v3/v4 "Event IDs")', () => {
    const v1 = roomVersionRules('1');
    const v2 = roomVersionRules('2');
    const v3 = roomVersionRules('3');
    const v4 = roomVersionRules('4');
    const v12 = roomVersionRules('12');

    it('parses server-generated event IDs (v1-2)', () => {
      expect(parseEventId('$a4ecee13e2accdadf56c1025:example.com', v1)).to.deep.equal({
        eventId: '$a4ecee13e2accdadf56c1025:example.com',
        opaque: 'a4ecee13e2accdadf56c1025',
        serverName: 'example.com',
      });
      expect(isValidEventId('$af232176:example.org:8448', v2)).to.equal(true);
      expect(isValidEventId(`$${HASH_URL_SAFE}`, v1)).to.equal(false);
      expect(isValidEventId('$abc:bad_host', v1)).to.equal(false);
      expect(isValidEventId('$abc', v1)).to.equal(false);
    });

    it('parses standard base64 reference hashes (v3)', () => {
      expect(parseEventId(`$${HASH_STANDARD}`, v3)).to.deep.equal({
        eventId: `$${HASH_STANDARD}`,
        opaque: HASH_STANDARD,
      });
      expect(isValidEventId(`$${HASH_ALPHANUMERIC}`, v3)).to.equal(true);
      expect(isValidEventId(`$${HASH_URL_SAFE}`, v3)).to.equal(false);
      expect(isValidEventId('$abc:example.com', v3)).to.equal(false);
    });

    it('parses URL-safe base64 reference hashes (v4+)', () => {
      for (const rules of [v4, v12]) {
        expect(isValidEventId(`$${HASH_URL_SAFE}`, rules)).to.equal(true);
        expect(isValidEventId(`$${HASH_ALPHANUMERIC}`, rules)).to.equal(true);
        expect(isValidEventId(`$${HASH_STANDARD}`, rules)).to.equal(false);
        expect(isValidEventId('$abc:example.com', rules)).to.equal(false);
      }
    });

    it('accepts any of the three forms without room version rules', () => {
      for (const id of [`$${HASH_URL_SAFE}`, `$${HASH_STANDARD}`, '$abc:example.com']) {
        expect(isValidEventId(id), id).to.equal(true);
      }
    });

    it('rejects hashes of the wrong length, with padding or mixed alphabets', () => {
      for (const bad of [
        `$${HASH_URL_SAFE.slice(1)}`,
        `$${HASH_URL_SAFE}A`,
        `$${HASH_URL_SAFE.slice(1)}=`,
        `$${HASH_STANDARD.slice(0, 42)}-`, // '/' and '-' together
        '$',
        'Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg',
        `!${HASH_URL_SAFE}`,
      ]) {
        expect(isValidEventId(bad), bad).to.equal(false);
        expectBadIdentifier(() => parseEventId(bad));
      }
    });

    it('accepts exactly 255 bytes and rejects 256', () => {
      expect(isValidEventId(padTo(255, '$', ':example.com'), v1)).to.equal(true);
      expect(isValidEventId(padTo(256, '$', ':example.com'), v1)).to.equal(false);
    });
  });

  describe('room aliases (appendices "Room Aliases")', () => {
    it('parses an alias', () => {
      expect(parseRoomAlias('#room:example.com')).to.deep.equal({
        roomAlias: '#room:example.com',
        localpart: 'room',
        serverName: 'example.com',
      });
      expect(parseRoomAlias('#Café 😀 room:[::1]:8448')).to.deep.include({ localpart: 'Café 😀 room' });
    });

    it('rejects malformed aliases', () => {
      for (const bad of [
        'room:example.com',
        '#room',
        '#room:',
        '#ro\u0000om:example.com',
        '#room:bad host',
        '@room:a',
      ]) {
        expectBadIdentifier(() => parseRoomAlias(bad));
        expect(isValidRoomAlias(bad)).to.equal(false);
      }
    });

    it('accepts exactly 255 bytes and rejects 256', () => {
      expect(isValidRoomAlias(padTo(255, '#', ':example.com'))).to.equal(true);
      expect(isValidRoomAlias(padTo(256, '#', ':example.com'))).to.equal(false);
      // '€' is 3 bytes: '#' + 84 × '€' + ':a' is 1 + 252 + 2 = 255 bytes.
      expect(isValidRoomAlias(`#${'€'.repeat(84)}:a`)).to.equal(true);
      expect(isValidRoomAlias(`#${'€'.repeat(84)}:ab`)).to.equal(false);
    });
  });
});

describe('belongsToServer', () => {
  it('compares everything after the first colon with the server name, ports included', () => {
    expect(belongsToServer('@alice:example.org', 'example.org')).to.equal(true);
    expect(belongsToServer('#room:localhost:8008', 'localhost:8008')).to.equal(true);
    expect(belongsToServer('@alice:sub.example.org', 'example.org')).to.equal(false);
    expect(belongsToServer('@alice:example.org:8448', 'example.org')).to.equal(false);
    expect(belongsToServer('no-colon', 'example.org')).to.equal(false);
  });
});
