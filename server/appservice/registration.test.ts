import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { MatrixError } from '../errors.js';
import { loadAppserviceRegistrations, parseRegistration } from './registration.js';
import { AppserviceRegistry } from './registry.js';

const SERVER = 'example.org';

function registration(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'irc',
    url: 'http://127.0.0.1:9000/',
    as_token: 'as',
    hs_token: 'hs',
    sender_localpart: '_irc_bot',
    namespaces: {
      users: [{ exclusive: true, regex: '@_irc_.*' }],
      aliases: [{ exclusive: false, regex: '#_irc_.*' }],
      rooms: [],
    },
    ...overrides,
  };
}

function problem(value: unknown): string {
  try {
    parseRegistration(value, 'irc.yaml', SERVER);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('accepted');
}

describe('application service registrations', () => {
  it('reads the spec example with its defaults', () => {
    const parsed = parseRegistration(registration(), 'irc.yaml', SERVER);
    expect(parsed).to.include({
      id: 'irc',
      url: 'http://127.0.0.1:9000',
      sender: '@_irc_bot:example.org',
      rateLimited: true,
      receiveEphemeral: false,
    });
    expect(parsed.namespaces.users[0]!.exclusive).to.equal(true);
    expect(parseRegistration(registration({ url: null }), 'irc.yaml', SERVER).url).to.equal(null);
  });

  it('names the file and the field of what is wrong', () => {
    expect(problem(registration({ as_token: '' }))).to.equal(
      "irc.yaml: 'as_token' must be a non-empty string",
    );
    const withoutUrl = registration();
    delete withoutUrl.url;
    expect(problem(withoutUrl)).to.contain("'url' is required");
    expect(problem(registration({ url: 'ftp://x' }))).to.contain("'url' must use http or https");
    expect(problem(registration({ id: 'a|b' }))).to.contain("'id' must not contain '|'");
    expect(problem(registration({ sender_localpart: 'with space' }))).to.contain('sender_localpart');
    expect(problem(registration({ namespaces: { users: [{ regex: '@a' }] } }))).to.contain(
      "'namespaces.users[0].exclusive' must be true or false",
    );
    expect(problem(registration({ namespaces: { rooms: [{ exclusive: true, regex: '!((' }] } }))).to.contain(
      "'namespaces.rooms[0].regex' is not a valid regular expression",
    );
    expect(problem(registration({ rate_limited: 'no' }))).to.contain("'rate_limited' must be true or false");
    expect(problem(['a list'])).to.contain('a registration must be a YAML mapping');
  });

  it('refuses two services sharing an id, a token or a sender', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'myelin-as-registration-'));
    try {
      const write = async (name: string, text: string) => {
        await writeFile(path.join(folder, name), text);
        return path.join(folder, name);
      };
      const base = 'url: null\nnamespaces: {}\n';
      const one = await write(
        'one.yaml',
        `${base}id: one\nas_token: a1\nhs_token: h1\nsender_localpart: one`,
      );
      const sameId = await write(
        'two.yaml',
        `${base}id: one\nas_token: a2\nhs_token: h2\nsender_localpart: two`,
      );
      const sameToken = await write(
        'three.yaml',
        `${base}id: three\nas_token: a1\nhs_token: h3\nsender_localpart: three`,
      );
      const bad = await write('bad.yaml', 'id: [unclosed');
      const failure = async (files: string[]) =>
        loadAppserviceRegistrations(files, SERVER).then(
          () => 'loaded',
          (error: Error) => error.message,
        );
      expect(await failure([one, sameId])).to.match(/two\.yaml: 'id' is the same as in .*one\.yaml/);
      expect(await failure([one, sameToken])).to.match(/three\.yaml: 'as_token' is the same as in/);
      expect(await failure([bad])).to.match(/bad\.yaml: invalid YAML/);
      expect(await failure([path.join(folder, 'missing.yaml')])).to.contain('Cannot read');
      expect(await loadAppserviceRegistrations([one], SERVER)).to.have.length(1);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('application service registry', () => {
  const irc = parseRegistration(registration(), 'irc.yaml', SERVER);
  const logger = parseRegistration(
    registration({
      id: 'logger',
      as_token: 'as2',
      hs_token: 'hs2',
      sender_localpart: 'logbot',
      namespaces: {
        users: [{ exclusive: false, regex: '@log_.*' }],
        rooms: [{ exclusive: false, regex: '!logged' }],
      },
    }),
    'logger.yaml',
    SERVER,
  );
  const registry = new AppserviceRegistry([irc, logger], SERVER);
  const errcodeOf = (work: () => void) => {
    try {
      work();
    } catch (error) {
      return (error as MatrixError).errcode;
    }
    return 'none';
  };

  it('matches namespaces from the start of the string, for local users only', () => {
    expect(registry.isInterestedInUser(irc, '@_irc_alice:example.org')).to.equal(true);
    expect(registry.isInterestedInUser(irc, '@x_irc_alice:example.org')).to.equal(false);
    expect(registry.isInterestedInUser(irc, '@_irc_alice:other.org')).to.equal(false);
    expect(registry.isInterestedInUser(irc, '@_irc_bot:example.org')).to.equal(true);
    expect(registry.isInterestedInRoomId(logger, '!logged:example.org')).to.equal(true);
    expect(registry.withToken('as2')).to.equal(logger);
    expect(registry.serviceOf({ appservice: { id: 'irc' } })).to.equal(irc);
    expect(registry.serviceOf({})).to.equal(undefined);
  });

  it('keeps users and services to their namespaces with M_EXCLUSIVE', () => {
    expect(errcodeOf(() => registry.checkUserCreation('@_irc_bob:example.org', undefined))).to.equal(
      'M_EXCLUSIVE',
    );
    expect(errcodeOf(() => registry.checkUserCreation('@_irc_bot:example.org', undefined))).to.equal(
      'M_EXCLUSIVE',
    );
    // A non-exclusive namespace leaves the name to anyone.
    expect(errcodeOf(() => registry.checkUserCreation('@log_bob:example.org', undefined))).to.equal('none');
    expect(errcodeOf(() => registry.checkUserCreation('@_irc_bob:example.org', irc))).to.equal('none');
    expect(errcodeOf(() => registry.checkUserCreation('@bob:example.org', irc))).to.equal('M_EXCLUSIVE');
    expect(errcodeOf(() => registry.checkAliasChange('#_irc_chan:example.org', undefined))).to.equal('none');
    expect(errcodeOf(() => registry.checkAliasChange('#other:example.org', irc))).to.equal('M_EXCLUSIVE');
    expect(MatrixError.of('M_EXCLUSIVE', 'x').status).to.equal(400);
  });
});
