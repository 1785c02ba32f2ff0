import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { ConfigError, configForNewServer, parseConfig, renderConfigYaml } from './index.js';
import { renderSampleConfig } from './sample.js';

const minimal = [
  'server_name: example.org',
  'public_baseurl: https://matrix.example.org/',
  'data_dir: /srv/myelin',
  'signing_key_path: /srv/myelin/signing.key',
].join('\n');

function configError(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(text, 'homeserver.yaml', env);
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('fills every default from the schema for a minimal file', () => {
    const config = parseConfig(minimal, 'homeserver.yaml');
    expect(config.listeners).to.have.length(1);
    expect(config.listeners[0]).to.include({ port: 8008, x_forwarded: false });
    expect(config.database.backend).to.equal('sqlite');
    expect(config.database.sqlite.path).to.equal('/srv/myelin/homeserver.db');
    expect(config.media.store_path).to.equal('/srv/myelin/media');
    expect(config.registration.mode).to.equal('closed');
    expect(config.limits.max_event_bytes).to.equal(65536);
    expect(config.rate_limits.client).to.deep.equal({ per_second: 10, burst: 50 });
    expect(config.push.max_pending_pushes).to.equal(100_000);
    expect(config.push).to.include({ delivery_quiet_ms: 15, delivery_max_hold_ms: 250 });
  });

  it('names the file line and key of an unknown option', () => {
    const message = configError(`${minimal}\nregistration:\n  mode: open\n  colour: blue\n`);
    expect(message).to.contain("homeserver.yaml:7: registration.colour: unknown option 'colour'");
  });

  it('names the file line and key of a value of the wrong type', () => {
    const message = configError(`${minimal}\nlisteners:\n  - port: eighty\n`);
    expect(message).to.contain('homeserver.yaml:6: listeners.0.port: must be integer');
  });

  it('lists the allowed values of an enum', () => {
    expect(configError(`${minimal}\nlogging:\n  level: loud\n`)).to.contain(
      'logging.level: must be one of ["trace","debug","info","warn","error","fatal","silent"]',
    );
  });

  it('reports missing required options', () => {
    expect(configError('server_name: x\n')).to.contain("missing required option 'public_baseurl'");
  });

  it('points at the line and column of a YAML syntax error', () => {
    expect(configError(`${minimal}\nlisteners: [1\n`)).to.match(
      /^homeserver\.yaml:[56]:\d+: invalid YAML: Flow sequence/,
    );
  });

  it('rejects duplicate keys and a non-mapping document', () => {
    expect(configError('server_name: a\nserver_name: b\n')).to.contain('homeserver.yaml:2:1: invalid YAML');
    expect(configError('- just\n- a list\n')).to.contain('must be a YAML mapping');
  });

  it('applies MYELIN_* environment overrides, nested with __, typed as YAML', () => {
    const config = parseConfig(minimal, 'homeserver.yaml', {
      MYELIN_LISTENERS__0__PORT: '8448',
      MYELIN_REGISTRATION__MODE: 'open',
      MYELIN_FEDERATION__DOMAIN_DENYLIST: '[evil.example, bad.example]',
      MYELIN_DOCS__ENABLED: 'false',
      PATH: '/usr/bin',
    });
    expect(config.listeners[0]!.port).to.equal(8448);
    expect(config.registration.mode).to.equal('open');
    expect(config.federation.domain_denylist).to.deep.equal(['evil.example', 'bad.example']);
    expect(config.docs.enabled).to.equal(false);
  });

  it('names the environment variable when an override is wrong', () => {
    expect(configError(minimal, { MYELIN_LIMITS__MAX_EVENT_BYTES: '1000000' })).to.contain(
      'environment variable MYELIN_LIMITS__MAX_EVENT_BYTES (limits.max_event_bytes): must be <= 65536',
    );
    expect(configError(minimal, { MYELIN_NOT_AN_OPTION: '1' })).to.contain(
      "environment variable MYELIN_NOT_AN_OPTION (not_an_option): unknown option 'not_an_option'",
    );
  });

  it('generates a config that loads back to the same values', () => {
    const generated = configForNewServer({
      serverName: 'chat.example.org',
      dataDir: '/srv/chat',
      port: 9000,
    });
    const loaded = parseConfig(renderConfigYaml(generated), 'generated.yaml');
    expect(loaded).to.deep.equal(generated);
    expect(loaded.public_baseurl).to.equal('https://chat.example.org/');
    expect(loaded.listeners[0]!.port).to.equal(9000);
  });

  it('keeps config.sample.yaml in step with the schema (npm run config:sample)', () => {
    const committed = readFileSync(new URL('../../config.sample.yaml', import.meta.url), 'utf8');
    expect(committed).to.equal(renderSampleConfig());
    // The sample documents every option: each line with a value has a Default or Required note above it.
    const valueLines = committed.split('\n').filter((l) => /^\s*(- )?[a-z_]+: \S/.test(l));
    expect(valueLines.length).to.be.greaterThan(30);
  });
});
