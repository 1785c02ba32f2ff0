/**
 * What `myelin register-user` and `myelin create-registration-token` do: work
 * on the configured database directly (no running server needed), the way an
 * operator bootstraps the first admin. The server may be running meanwhile:
 * SQLite in WAL mode lets both write.
 */
import type { RegistrationToken } from '../../storage/registration-token-store.js';
import type { Storage } from '../../storage/storage.js';
import { loadAppserviceRegistrations } from '../appservice/registration.js';
import { AppserviceRegistry } from '../appservice/registry.js';
import type { MyelinConfig } from '../config/index.js';
import { openStorage } from '../homeserver.js';
import { createPasswordHasher } from './password-hash.js';
import {
  checkUsernameAvailable,
  createAccount,
  issueRegistrationToken,
  localpartForUsername,
} from './registration.js';

/**
 * Creates the account `user` (a localpart or a full user ID on this server;
 * lowercased like /register; reserved localparts allowed, the password
 * policy not applied: the operator decides; an application service's exclusive
 * namespace stays its own). Resolves to the user ID; rejects with a MatrixError
 * (M_INVALID_USERNAME, M_USER_IN_USE, M_EXCLUSIVE) or an Error.
 */
export async function registerUserCommand(options: {
  config: MyelinConfig;
  user: string;
  password: string;
  admin: boolean;
}): Promise<string> {
  const { config } = options;
  const localpart = localpartOf(options.user, config.server_name);
  const passwordHash = await createPasswordHasher(config.password_hashing).hash(options.password);
  return withStorage(config, async (storage) => {
    const registrations = await loadAppserviceRegistrations(
      config.app_service_config_files,
      config.server_name,
    );
    const hs = {
      config,
      storage,
      appservices: { registry: new AppserviceRegistry(registrations, config.server_name) },
    };
    await checkUsernameAvailable(hs, localpart, { allowReserved: true });
    return createAccount(hs, { localpart, passwordHash, isAdmin: options.admin });
  });
}

/** Creates a registration token (random unless given); resolves to it. */
export async function createRegistrationTokenCommand(options: {
  config: MyelinConfig;
  token?: string;
  usesAllowed?: number | null;
  expiryTs?: number | null;
  length?: number;
}): Promise<RegistrationToken> {
  return withStorage(options.config, (storage) =>
    issueRegistrationToken(storage.registrationTokens, {
      token: options.token,
      usesAllowed: options.usesAllowed ?? null,
      expiryTs: options.expiryTs ?? null,
      length: options.length,
    }),
  );
}

function localpartOf(user: string, serverName: string): string {
  if (!user.startsWith('@')) return localpartForUsername(user);
  const suffix = `:${serverName}`;
  if (!user.endsWith(suffix)) throw new Error(`${user} is not a user ID on this server (${serverName})`);
  return localpartForUsername(user.slice(1, -suffix.length));
}

async function withStorage<T>(config: MyelinConfig, work: (storage: Storage) => Promise<T>): Promise<T> {
  const storage = await openStorage(config);
  try {
    return await work(storage);
  } finally {
    await storage.close();
  }
}
