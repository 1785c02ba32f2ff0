import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { decodeJwt, SignJWT } from 'jose';
import { pino } from 'pino';
import { defaultConfig } from '../config/index.js';
import { createAccessTokenCodec, loadOrCreateSessionSecret, tokenHash } from './access-tokens.js';

describe('access tokens (server-signed JWTs)', () => {
  const secret = new Uint8Array(32).fill(1);
  const codec = createAccessTokenCodec(secret, 'example.org');
  const claims = { userId: '@a:example.org', deviceId: 'DEV', sessionId: 'S1', expiresAtMs: undefined };

  it('issues a token that verifies to its claims', async () => {
    const { token, tokenId } = await codec.issue(claims);
    const verdict = await codec.verify(token);
    expect(verdict.kind).to.equal('valid');
    if (verdict.kind !== 'valid') return;
    expect(verdict.claims).to.include({
      userId: '@a:example.org',
      deviceId: 'DEV',
      sessionId: 'S1',
      tokenId,
    });
    expect(verdict.claims.expiresAtMs).to.equal(undefined);
  });

  it('an expired token is "expired" with its claims (for soft logout), not "invalid"', async () => {
    const { token } = await codec.issue({ ...claims, expiresAtMs: Date.now() - 5000 });
    const verdict = await codec.verify(token);
    expect(verdict.kind).to.equal('expired');
    if (verdict.kind === 'expired') expect(verdict.claims.sessionId).to.equal('S1');
  });

  it('refuses tokens of another key, another issuer, tampered or unsigned', async () => {
    const { token } = await codec.issue(claims);
    const otherKey = await createAccessTokenCodec(new Uint8Array(32).fill(2), 'example.org').issue(claims);
    const otherIssuer = await createAccessTokenCodec(secret, 'elsewhere.org').issue(claims);
    const payload = decodeJwt(token);
    const tampered = await new SignJWT({ ...payload, sub: '@admin:example.org' })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new Uint8Array(32));
    const [header, body] = token.split('.');
    for (const bad of [
      otherKey.token,
      otherIssuer.token,
      tampered,
      `${header}.${body}.`,
      'junk',
      'a'.repeat(5000),
    ]) {
      expect((await codec.verify(bad)).kind, bad.slice(0, 40)).to.equal('invalid');
    }
  });

  it('every token is unique, even for the same session in the same second', async () => {
    const one = await codec.issue(claims);
    const two = await codec.issue(claims);
    expect(one.token).to.not.equal(two.token);
  });

  it('tokenHash is a stable SHA-256', () => {
    expect(tokenHash('abc')).to.equal('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
  });

  it('the session key file is made once, mode 0600, and read back the same', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'myelin-key-'));
    try {
      const config = defaultConfig({ server_name: 'example.org', data_dir: dir });
      const log = pino({ level: 'silent' });
      const first = await loadOrCreateSessionSecret(config, log);
      const second = await loadOrCreateSessionSecret(config, log);
      expect(first.length).to.equal(32);
      expect(Buffer.from(second).equals(Buffer.from(first))).to.equal(true);
      const file = path.join(dir, 'session.key');
      expect((await stat(file)).mode & 0o777).to.equal(0o600);
      expect((await readFile(file, 'utf8')).trim()).to.equal(Buffer.from(first).toString('base64'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
