import { expect } from 'chai';
import type { MatrixError } from '../errors.js';
import { checkNewPassword, type PasswordPolicy, passwordPolicyViolation } from './password-policy.js';

const STRICT: PasswordPolicy = {
  password_min_length: 8,
  password_require_digit: true,
  password_require_lowercase: true,
  password_require_uppercase: true,
  password_require_symbol: true,
};

describe('password policy', () => {
  it('names the first rule a password breaks', () => {
    expect(passwordPolicyViolation('Ab1!', STRICT)).to.match(/at least 8/);
    expect(passwordPolicyViolation('Abcdefg!', STRICT)).to.match(/digit/);
    expect(passwordPolicyViolation('ABCDEF1!', STRICT)).to.match(/lowercase/);
    expect(passwordPolicyViolation('abcdef1!', STRICT)).to.match(/uppercase/);
    expect(passwordPolicyViolation('Abcdef12', STRICT)).to.match(/symbol/);
    expect(passwordPolicyViolation('Abcdef1!', STRICT)).to.equal(undefined);
  });

  it('counts characters, not UTF-16 units, and knows letters beyond ASCII', () => {
    const lengthOnly = { ...STRICT, password_require_digit: false, password_require_symbol: false };
    expect(passwordPolicyViolation('Éé😀😀😀😀😀', lengthOnly)).to.match(/at least 8/);
    expect(passwordPolicyViolation('Éécoleçàü', lengthOnly)).to.equal(undefined);
  });

  it('throws M_WEAK_PASSWORD for a policy failure and M_INVALID_PARAM for an unusable password', () => {
    const thrown = (password: string) => {
      try {
        checkNewPassword(password, STRICT);
      } catch (error) {
        return (error as MatrixError).errcode;
      }
      return undefined;
    };
    expect(thrown('weak')).to.equal('M_WEAK_PASSWORD');
    expect(thrown(`Aa1!${'x'.repeat(600)}`)).to.equal('M_INVALID_PARAM');
    expect(thrown('Abcdef1!\u0000')).to.equal('M_INVALID_PARAM');
    expect(thrown('Abcdef1!')).to.equal(undefined);
  });
});
