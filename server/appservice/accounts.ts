/**
 * Accounts made and logged into by application services (application-service
 * "Server admin style permissions"): `m.login.application_service` on
 * /register and /login, with the service's as_token. No user-interactive
 * auth and no password; the user must be in the service's namespace (else
 * M_EXCLUSIVE). Registration works whatever registration.mode says, as the
 * operator vouched for the service by configuring it.
 */

import type { IncomingHttpHeaders } from 'node:http';
import { isValidLocalpartForRegistration, MAX_IDENTIFIER_BYTES } from '../../protocol/identifiers.js';
import type { Account } from '../../storage/account-store.js';
import { createAccount, localpartForUsername } from '../accounts/registration.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { accessTokenOf } from '../http/auth.js';
import type { AppserviceRegistration } from './registration.js';

export const LOGIN_APPSERVICE = 'm.login.application_service';

/**
 * The service whose as_token a request carries, read by the routes without authentication that
 * take `m.login.application_service` (POST /login, /register): 401 M_MISSING_TOKEN without one,
 * 401 M_UNKNOWN_TOKEN for a token that is not a service's.
 */
export function appserviceOfToken(
  hs: Pick<HomeserverContext, 'appservices'>,
  headers: IncomingHttpHeaders,
  query: Record<string, unknown>,
): AppserviceRegistration {
  const token = accessTokenOf(headers, query);
  if (token === undefined) throw MatrixError.missingToken('m.login.application_service needs an as_token');
  const service = hs.appservices.registry.withToken(token);
  if (service === undefined)
    throw MatrixError.unknownToken('The access token is not an application service token');
  return service;
}

/** POST /register with m.login.application_service: creates `@username:server`; resolves to the user ID. */
export async function registerAppserviceUser(
  hs: HomeserverContext,
  service: AppserviceRegistration,
  username: unknown,
): Promise<string> {
  if (typeof username !== 'string' || username === '') {
    throw MatrixError.missingParam("m.login.application_service needs 'username'");
  }
  const localpart = localpartForUsername(username);
  const userId = `@${localpart}:${hs.config.server_name}`;
  // Bridges' users often begin with '_' or are digits: the service's namespace is the rule here.
  if (!isValidLocalpartForRegistration(localpart)) {
    throw MatrixError.of(
      'M_INVALID_USERNAME',
      "Username can only contain the characters a-z, 0-9, '.', '_', '=', '-', '/' and '+'",
    );
  }
  if (Buffer.byteLength(userId, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw MatrixError.of(
      'M_INVALID_USERNAME',
      `The user ID would be longer than ${MAX_IDENTIFIER_BYTES} bytes`,
    );
  }
  // Outside its namespace is M_EXCLUSIVE before anything is said about who exists there.
  hs.appservices.registry.checkUserCreation(userId, service);
  if ((await hs.storage.accounts.findAccountsCaseInsensitive(userId)).length > 0) {
    throw MatrixError.of('M_USER_IN_USE', 'User ID already taken');
  }
  return createAccount(hs, { localpart, passwordHash: null, appservice: service });
}

/** POST /login with m.login.application_service: the named user, which must be the service's. */
export async function appserviceLoginAccount(
  hs: HomeserverContext,
  service: AppserviceRegistration,
  body: { identifier?: { type: string; [key: string]: unknown }; user?: string },
): Promise<Account> {
  let user: unknown = body.user;
  if (body.identifier !== undefined) {
    if (body.identifier.type !== 'm.id.user') {
      throw MatrixError.of('M_UNKNOWN', 'm.login.application_service takes an m.id.user identifier');
    }
    user = body.identifier.user;
  }
  if (typeof user !== 'string' || user === '') {
    throw MatrixError.missingParam("m.login.application_service needs 'identifier'");
  }
  const userId = user.startsWith('@') ? user : `@${user.toLowerCase()}:${hs.config.server_name}`;
  if (!hs.appservices.registry.isInterestedInUser(service, userId)) {
    throw MatrixError.of('M_EXCLUSIVE', "This user is outside the application service's namespace");
  }
  const account = await hs.storage.accounts.getAccount(userId);
  if (account === null) throw MatrixError.forbidden('Invalid username or password.');
  if (account.deactivated) throw MatrixError.of('M_USER_DEACTIVATED', 'This account has been deactivated.');
  if (account.locked) throw MatrixError.userLocked();
  return account;
}
