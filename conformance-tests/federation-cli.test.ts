/**
 * The operator side of federation: generate-config's federation flags and
 * `myelin rotate-signing-key`, whose old key stays published and trusted.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { signJson } from '../protocol/signing.js';
import { parseConfig } from '../server/config/index.js';
import { TestFederation } from './harness/test-federation.js';

const BIN = path.resolve('bin/myelin.mjs');

function runCli(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('federation operator commands', function () {
  this.timeout(60_000);
  let workDir: string;
  beforeEach(() => {
    workDir = mkdtempSync(path.join(tmpdir(), 'myelin-fed-cli-'));
  });
  afterEach(() => rmSync(workDir, { recursive: true, force: true }));

  it('generate-config --federation-port --tls-cert --tls-key --ca-file --resolve writes a TLS federation listener', () => {
    const result = runCli([
      'generate-config',
      '--server-name',
      'a.test',
      '--data-dir',
      workDir,
      '--federation-port',
      '8448',
      '--tls-cert',
      '/etc/myelin/cert.pem',
      '--tls-key',
      '/etc/myelin/key.pem',
      '--ca-file',
      '/etc/myelin/ca.pem',
      '--resolve',
      'b.test=127.0.0.1:9001',
      '--resolve',
      'c.test=127.0.0.1:9002',
    ]);
    expect(result.status, result.stderr).to.equal(0);
    const config = parseConfig(result.stdout, 'generated.yaml');
    expect(config.listeners).to.have.length(2);
    expect(config.listeners[0]!.resources).to.not.include('federation');
    expect(config.listeners[1]).to.deep.include({ port: 8448, resources: ['federation'] });
    expect(config.listeners[1]!.tls).to.deep.equal({
      cert_file: '/etc/myelin/cert.pem',
      key_file: '/etc/myelin/key.pem',
    });
    expect(config.federation.ca_file).to.equal('/etc/myelin/ca.pem');
    expect(config.federation.resolver_overrides).to.deep.equal({
      'b.test': '127.0.0.1:9001',
      'c.test': '127.0.0.1:9002',
    });

    const bad = runCli([
      'generate-config',
      '--server-name',
      'a.test',
      '--data-dir',
      workDir,
      '--resolve',
      'nohost',
    ]);
    expect(bad.status).to.equal(64);
    expect(bad.stderr).to.contain('--resolve takes NAME=HOST:PORT');
  });

  it('rotate-signing-key: the new key signs, the old one is published as an old verify key and still trusted', async () => {
    const federation = await TestFederation.start(0);
    const dataDir = mkdtempSync(path.join(tmpdir(), 'myelin-rotate-'));
    try {
      let a = await federation.startServer({ dataDir });
      const b = await federation.startServer();
      const oldKey = a.context.signingKey;
      const send = (txnId: string) =>
        a.context.federation.client.request({
          destination: b.serverName,
          method: 'PUT',
          path: `/_matrix/federation/v1/send/${txnId}`,
          body: { origin: a.serverName, origin_server_ts: Date.now(), pdus: [] },
        });
      await send('before');
      const port = a.federationPort;
      const configFile = path.join(workDir, 'config.json');
      // JSON is YAML: the running config, as a file the CLI can load.
      writeFileSync(configFile, JSON.stringify(a.server.config));
      await a.server.stop();

      const rotated = runCli(['rotate-signing-key', '--config', configFile]);
      expect(rotated.status, rotated.stderr).to.equal(0);
      const newKeyId = rotated.stdout.trim();
      expect(newKeyId).to.match(/^ed25519:a_[A-Za-z0-9]{4}$/);
      expect(newKeyId).to.not.equal(oldKey.keyId);

      a = await federation.startServer({ dataDir, federationPort: port });
      expect(a.context.signingKey.keyId).to.equal(newKeyId);
      const published = a.context.federation.ownServerKeys();
      expect(Object.keys(published.verify_keys)).to.deep.equal([newKeyId]);
      expect(published.old_verify_keys[oldKey.keyId]?.key).to.equal(oldKey.publicKey);
      expect(published.old_verify_keys[oldKey.keyId]?.expired_ts).to.be.at.most(Date.now());
      // B, which knew only the old key, fetches the new one to check A's next request.
      await send('after');
      expect((await b.context.storage.federation.getServerKey(a.serverName, newKeyId))?.publicKey).to.equal(
        a.context.signingKey.publicKey,
      );
      // What the old key signed before it expired still verifies; signatures dated after do not.
      const expiredTs = published.old_verify_keys[oldKey.keyId]!.expired_ts;
      const signedBefore = signJson({ hello: 'world' }, a.serverName, oldKey);
      const keys = b.context.federation.keys;
      expect((await keys.verifySignedBy(signedBefore, a.serverName, expiredTs - 1)).ok).to.equal(true);
      expect((await keys.verifySignedBy(signedBefore, a.serverName, expiredTs + 3600_000)).ok).to.equal(
        false,
      );
      await a.server.stop();
    } finally {
      await federation.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
