/**
 * The operator's password policy (config `registration.password_*`), applied
 * wherever a user chooses a password: /register and /account/password. A
 * refusal is M_WEAK_PASSWORD naming the rule that failed
 * (client-server "Password management").
 */
import type { MyelinConfig } from '../config/index.js';
import { MatrixError } from '../errors.js';

/** Longer passwords buy nothing and make every hash slower (Synapse caps at 512 too). */
export const MAX_PASSWORD_LENGTH = 512;

export type PasswordPolicy = Pick<
  MyelinConfig['registration'],
  | 'password_min_length'
  | 'password_require_digit'
  | 'password_require_lowercase'
  | 'password_require_uppercase'
  | 'password_require_symbol'
>;

/** The first rule the password breaks, as a sentence for the client; undefined when it passes. */
export function passwordPolicyViolation(password: string, policy: PasswordPolicy): string | undefined {
  const length = [...password].length;
  if (length < policy.password_min_length) {
    return `Password must be at least ${policy.password_min_length} characters long`;
  }
  if (policy.password_require_digit && !/\p{Nd}/u.test(password)) return 'Password must contain a digit';
  if (policy.password_require_lowercase && !/\p{Ll}/u.test(password)) {
    return 'Password must contain a lowercase letter';
  }
  if (policy.password_require_uppercase && !/\p{Lu}/u.test(password)) {
    return 'Password must contain an uppercase letter';
  }
  if (policy.password_require_symbol && !/[^\p{L}\p{N}]/u.test(password)) {
    return 'Password must contain a symbol';
  }
  return undefined;
}

/** Throws 400 M_INVALID_PARAM for an unusable password, M_WEAK_PASSWORD for one the policy refuses. */
export function checkNewPassword(password: string, policy: PasswordPolicy): void {
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw MatrixError.invalidParam(`Password must be at most ${MAX_PASSWORD_LENGTH} characters long`);
  }
  if (password.includes('\0')) throw MatrixError.invalidParam('Password must not contain NUL');
  const violation = passwordPolicyViolation(password, policy);
  if (violation) throw MatrixError.of('M_WEAK_PASSWORD', violation);
}
