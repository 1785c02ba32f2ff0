/**
 * Who may take which user ID (client-server "Account registration"; the
 * checks of POST /register and GET /register/available) and the creation of
 * the account itself, shared by /register, shared-secret registration and the
 * CLI.
 *
 * Username rules, following Synapse where the spec leaves room:
 * - the requested username is lowercased ("map username onto a user_id in a
 *   logical manner"); login is case-insensitive anyway;
 * - then it must be the strict localpart grammar [a-z0-9._=-/+], not start
 *   with `_` (kept for bridges and services), not be all digits (kept for
 *   guests), and make a user ID of at most 255 bytes: else M_INVALID_USERNAME;
 * - operator-reserved localparts (config registration.reserved_localparts)
 *   answer M_EXCLUSIVE, the spec's code for a namespace reserved on the server;
 * - a user ID taken in any letter case answers M_USER_IN_USE.
 */
import { randomInt } from 'node:crypto';
import { isValidLocalpartForRegistration, MAX_IDENTIFIER_BYTES } from '../../protocol/identifiers.js';
import { isStorageError } from '../../storage/errors.js';
import type { RegistrationToken, RegistrationTokenWriter } from '../../storage/registration-token-store.js';
import type { Storage } from '../../storage/storage.js';
import type { AppserviceRegistration } from '../appservice/registration.js';
import type { AppserviceRegistry } from '../appservice/registry.js';
import type { MyelinConfig } from '../config/index.js';
import { MatrixError } from '../errors.js';

/** Synapse refuses longer usernames before looking at them; so do we, so a 10 KB username costs nothing. */
const MAX_USERNAME_LENGTH = 512;
const GENERATED_LOCALPART_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const GENERATED_LOCALPART_LENGTH = 12;
const GUEST_LOCALPART_DIGITS = 12;
const CREATE_ATTEMPTS = 5;
const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-';
const DEFAULT_TOKEN_LENGTH = 16;

type RegistrationHost = {
  readonly config: Pick<MyelinConfig, 'server_name' | 'registration'>;
  readonly storage: Pick<Storage, 'accounts'>;
  /** The application services' namespaces: a new account stays out of their exclusive ones. */
  readonly appservices: {
    readonly registry: Pick<AppserviceRegistry, 'checkUserCreation' | 'exclusiveOwnerOfUser'>;
  };
};

/** The localpart a requested username maps to: lowercased (Synapse's rule, see the header). */
export function localpartForUsername(username: string): string {
  if (username.length > MAX_USERNAME_LENGTH) throw invalidUsername('Username is too long');
  return username.toLowerCase();
}

/** The grammar and operator rules a new localpart must meet; throws M_INVALID_USERNAME or M_EXCLUSIVE. */
export function checkLocalpartAllowed(
  localpart: string,
  config: Pick<MyelinConfig, 'server_name' | 'registration'>,
  options: { allowReserved?: boolean } = {},
): string {
  if (localpart === '') throw invalidUsername('Username must not be empty');
  if (!isValidLocalpartForRegistration(localpart)) {
    throw invalidUsername(
      "Username can only contain the characters a-z, 0-9, '.', '_', '=', '-', '/' and '+'",
    );
  }
  if (localpart.startsWith('_')) throw invalidUsername("Username must not begin with '_'");
  if (/^[0-9]+$/.test(localpart)) throw invalidUsername('Numeric usernames are reserved for guest accounts');
  const userId = `@${localpart}:${config.server_name}`;
  if (Buffer.byteLength(userId, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw invalidUsername(`The user ID would be longer than ${MAX_IDENTIFIER_BYTES} bytes`);
  }
  if (!options.allowReserved && isReservedLocalpart(localpart, config)) {
    throw MatrixError.of('M_EXCLUSIVE', 'This username is reserved on this server');
  }
  return userId;
}

export function isReservedLocalpart(localpart: string, config: Pick<MyelinConfig, 'registration'>): boolean {
  return config.registration.reserved_localparts.some((reserved) => reserved.toLowerCase() === localpart);
}

/** checkLocalpartAllowed, then: nobody has the user ID in any letter case (M_USER_IN_USE). Resolves to the user ID. */
export async function checkUsernameAvailable(
  hs: RegistrationHost,
  localpart: string,
  options: { allowReserved?: boolean } = {},
): Promise<string> {
  const userId = checkLocalpartAllowed(localpart, hs.config, options);
  const existing = await hs.storage.accounts.findAccountsCaseInsensitive(userId);
  if (existing.length > 0) throw MatrixError.of('M_USER_IN_USE', 'User ID already taken');
  return userId;
}

export interface NewAccountRequest {
  /** Omitted: a random localpart (or a numeric one for guests) is chosen. */
  readonly localpart?: string;
  readonly passwordHash: string | null;
  readonly isGuest?: boolean;
  readonly isAdmin?: boolean;
  readonly displayName?: string | null;
  /** The application service registering it: its own namespace is open to it, no other. */
  readonly appservice?: AppserviceRegistration;
}

/**
 * Creates the account (the caller has checked the localpart). A given
 * localpart taken meanwhile is M_USER_IN_USE; a generated one is drawn again.
 * Resolves to the user ID.
 */
export async function createAccount(hs: RegistrationHost, request: NewAccountRequest): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const localpart =
      request.localpart ?? (request.isGuest ? guestLocalpart() : generatedLocalpart(hs.config));
    const userId = `@${localpart}:${hs.config.server_name}`;
    if (request.localpart !== undefined) {
      // Every way of making an account with a chosen name (/register, shared-secret admin
      // registration, the register-user command, JWT login) comes through here: M_EXCLUSIVE.
      hs.appservices.registry.checkUserCreation(userId, request.appservice);
    } else if (
      (await hs.storage.accounts.findAccountsCaseInsensitive(userId)).length > 0 ||
      hs.appservices.registry.exclusiveOwnerOfUser(userId) !== undefined // drawn again
    ) {
      if (attempt < CREATE_ATTEMPTS) continue;
      throw MatrixError.internal();
    }
    try {
      await hs.storage.accounts.createAccount({
        userId,
        passwordHash: request.passwordHash,
        isGuest: request.isGuest ?? false,
        isAdmin: request.isAdmin ?? false,
        createdTs: Date.now(),
        displayName:
          request.displayName === undefined ? (request.isGuest ? null : localpart) : request.displayName,
      });
      return userId;
    } catch (error) {
      if (!isStorageError(error, 'CONFLICT')) throw error;
      if (request.localpart !== undefined) throw MatrixError.of('M_USER_IN_USE', 'User ID already taken');
      if (attempt >= CREATE_ATTEMPTS) throw error;
    }
  }
}

/** "If omitted, the homeserver MUST generate a Matrix ID local part": a letter then random letters and digits. */
function generatedLocalpart(config: Pick<MyelinConfig, 'registration'>): string {
  for (;;) {
    let localpart = GENERATED_LOCALPART_ALPHABET[randomInt(26)]!;
    while (localpart.length < GENERATED_LOCALPART_LENGTH) {
      localpart += GENERATED_LOCALPART_ALPHABET[randomInt(GENERATED_LOCALPART_ALPHABET.length)];
    }
    if (!isReservedLocalpart(localpart, config)) return localpart;
  }
}

/** Guests get numeric localparts, which users may not register. */
function guestLocalpart(): string {
  let digits = String(1 + randomInt(9));
  while (digits.length < GUEST_LOCALPART_DIGITS) digits += String(randomInt(10));
  return digits;
}

/** Valid at `now`: not expired and not used up, pending uses counted (as in Synapse). */
export function isRegistrationTokenValid(token: RegistrationToken, now: number): boolean {
  const notExpired = token.expiryTs === null || now < token.expiryTs;
  const usesLeft = token.usesAllowed === null || token.pending + token.completed < token.usesAllowed;
  return notExpired && usesLeft;
}

/**
 * Creates a registration token, the given one or a random one of `length`
 * characters; shared by the admin API and the CLI. A given token that exists
 * already is 400 M_INVALID_PARAM (as in Synapse).
 */
export async function issueRegistrationToken(
  store: Pick<RegistrationTokenWriter, 'createRegistrationToken'>,
  request: {
    token?: string | undefined;
    usesAllowed: number | null;
    expiryTs: number | null;
    length?: number | undefined;
  },
): Promise<RegistrationToken> {
  for (let attempt = 1; ; attempt++) {
    const token = request.token ?? randomRegistrationToken(request.length ?? DEFAULT_TOKEN_LENGTH);
    try {
      await store.createRegistrationToken({
        token,
        usesAllowed: request.usesAllowed,
        expiryTs: request.expiryTs,
      });
      return {
        token,
        usesAllowed: request.usesAllowed,
        expiryTs: request.expiryTs,
        pending: 0,
        completed: 0,
      };
    } catch (error) {
      if (!isStorageError(error, 'CONFLICT')) throw error;
      if (request.token !== undefined)
        throw MatrixError.invalidParam(`Token already exists: ${request.token}`);
      if (attempt >= CREATE_ATTEMPTS) throw error;
    }
  }
}

function randomRegistrationToken(length: number): string {
  let token = '';
  while (token.length < length) token += TOKEN_ALPHABET[randomInt(TOKEN_ALPHABET.length)];
  return token;
}

function invalidUsername(message: string): MatrixError {
  return MatrixError.of('M_INVALID_USERNAME', message);
}
