import { expect } from 'chai';
import { createPasswordHasher } from './password-hash.js';

describe('password hashing (scrypt, PHC string)', () => {
  const hasher = createPasswordHasher({ scrypt_log_n: 10, scrypt_r: 8, scrypt_p: 1 });

  it('hashes to a PHC string with the parameters and a per-hash salt', async () => {
    const one = await hasher.hash('hunter2');
    const two = await hasher.hash('hunter2');
    expect(one).to.match(/^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(one).to.not.equal(two);
  });

  it('verifies the right password and refuses a wrong one', async () => {
    const stored = await hasher.hash('correct horse battery staple');
    expect(await hasher.verify('correct horse battery staple', stored)).to.equal(true);
    expect(await hasher.verify('correct horse battery stapl', stored)).to.equal(false);
    expect(await hasher.verify('', stored)).to.equal(false);
  });

  it('reads the parameters from the stored string, so old hashes verify after the config changes', async () => {
    const old = await createPasswordHasher({ scrypt_log_n: 11, scrypt_r: 4, scrypt_p: 2 }).hash('pässwörd');
    expect(old).to.match(/^\$scrypt\$ln=11,r=4,p=2\$/);
    expect(await hasher.verify('pässwörd', old)).to.equal(true);
  });

  it('normalises Unicode (NFKC) so the same password typed differently verifies', async () => {
    const stored = await hasher.hash('caf\u00e9');
    expect(await hasher.verify('cafe\u0301', stored)).to.equal(true);
  });

  it('refuses malformed or hostile stored hashes without throwing', async () => {
    for (const stored of [
      '',
      'plaintext',
      '$2b$12$abcdefghijklmnopqrstuv',
      '$scrypt$ln=30,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNo',
      '$scrypt$ln=10,r=8,p=1$$aGFzaA',
    ]) {
      expect(await hasher.verify('x', stored), stored).to.equal(false);
    }
  });

  it('verifyDummy resolves false after doing the work', async () => {
    expect(await hasher.verifyDummy('anything')).to.equal(false);
  });

  it('runs off the event loop: timers keep firing while hashes run', async () => {
    const slow = createPasswordHasher({ scrypt_log_n: 14, scrypt_r: 8, scrypt_p: 1 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await Promise.all([slow.hash('a'), slow.hash('b'), slow.hash('c'), slow.hash('d')]);
    clearInterval(timer);
    expect(ticks).to.be.greaterThan(3);
  });
});
