/**
 * Profiles (client-server "Profiles", profile.yaml): displayname, avatar_url
 * and the v1.16 custom fields (`m.tz` and namespaced keys holding any JSON
 * value). Only the user may change their own profile; the whole profile
 * stays within 64 KiB. After a change the `onProfileChanged` listeners run:
 * issue #4 updates the user's membership events there.
 */
import type { JsonValue } from '../../protocol/events.js';
import { isValidUserId } from '../../protocol/identifiers.js';
import { isStorageError } from '../../storage/errors.js';
import type { Storage } from '../../storage/storage.js';
import { MatrixError } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';

export const DISPLAYNAME = 'displayname';
export const AVATAR_URL = 'avatar_url';
export const TIME_ZONE = 'm.tz';

/** profile.yaml: "the total profile MUST be under 64 KiB" (measured as the profile's JSON, like Synapse). */
export const MAX_PROFILE_BYTES = 65_536;
/** profile.yaml M_KEY_TOO_LARGE: "maximum allowed key length of 255 bytes". */
export const MAX_PROFILE_KEY_BYTES = 255;
/** Not in the spec; Synapse's limits, which clients already live with. */
export const MAX_DISPLAYNAME_LENGTH = 256;
export const MAX_AVATAR_URL_LENGTH = 1000;

/** appendices "Common Namespaced Identifier Grammar" (displayname and avatar_url fit it too). */
const NAMESPACED_IDENTIFIER = /^[a-z][a-z0-9._-]*$/;
/** client-server "Matrix Content (mxc://) URIs": mxc://<server-name>/<media-id>. */
const MXC_URI = /^mxc:\/\/[A-Za-z0-9.:[\]-]+\/[A-Za-z0-9_-]+$/;

export type Profile = Record<string, JsonValue>;

export interface ProfileChange {
  readonly userId: string;
  /** The field that changed. */
  readonly key: string;
  /** Its new value; null when it was removed. */
  readonly value: JsonValue | null;
  /** The user's display name and avatar after the change (what membership events carry). */
  readonly displayName: string | null;
  readonly avatarUrl: string | null;
}

/** Runs after a profile change is stored; a failure is logged, the change stands. */
export type ProfileChangedListener = (change: ProfileChange) => Promise<void>;

export interface ProfileService {
  /** The whole profile. 404 M_NOT_FOUND for an unknown, deactivated or remote user. */
  getProfile(userId: string): Promise<Profile>;
  /** One field. 404 M_NOT_FOUND when the user has none by that name. */
  getField(userId: string, key: string): Promise<JsonValue>;
  setField(requester: AuthenticatedUser, userId: string, key: string, value: JsonValue): Promise<void>;
  /** Removing a field the profile lacks succeeds. */
  deleteField(requester: AuthenticatedUser, userId: string, key: string): Promise<void>;
}

export function createProfileService(deps: {
  storage: Pick<Storage, 'accounts'>;
  serverName: string;
  listeners: readonly ProfileChangedListener[];
  log: { warn(details: object, message: string): void };
}): ProfileService {
  const { storage } = deps;
  // A size check and the write it allows must not interleave with another write to the same profile.
  const writeChains = new Map<string, Promise<unknown>>();
  const serialised = <T>(userId: string, write: () => Promise<T>): Promise<T> => {
    const previous = writeChains.get(userId) ?? Promise.resolve();
    const next = previous.then(write, write);
    const settled = next.catch(() => undefined);
    writeChains.set(userId, settled);
    void settled.then(() => {
      if (writeChains.get(userId) === settled) writeChains.delete(userId);
    });
    return next;
  };

  const loadProfile = async (userId: string): Promise<Profile> => {
    checkUserIdParam(userId);
    const account = isLocal(userId, deps.serverName) ? await storage.accounts.getAccount(userId) : null;
    if (!account || account.deactivated) throw MatrixError.notFound('Profile not found');
    const fields = await storage.accounts.getProfileFields(userId);
    return {
      ...fields,
      ...(account.displayName !== null ? { [DISPLAYNAME]: account.displayName } : {}),
      ...(account.avatarUrl !== null ? { [AVATAR_URL]: account.avatarUrl } : {}),
    };
  };

  const change = async (
    requester: AuthenticatedUser,
    userId: string,
    key: string,
    /** Absent: remove the field. */
    requested: { value: JsonValue } | null,
  ): Promise<void> => {
    checkUserIdParam(userId);
    checkProfileKey(key);
    if (requester.userId !== userId) throw MatrixError.forbidden("Cannot change another user's profile");
    if (requester.isGuest && key !== DISPLAYNAME) {
      throw MatrixError.of('M_GUEST_ACCESS_FORBIDDEN', 'Guests may only change their display name');
    }
    const stored = requested === null ? null : checkProfileValue(key, requested.value);
    const after = await serialised(userId, async () => {
      const profile = await loadProfile(userId);
      const updated: Profile = { ...profile };
      if (stored === null) delete updated[key];
      else updated[key] = stored;
      if (profileBytes(updated) > MAX_PROFILE_BYTES) {
        throw MatrixError.of('M_PROFILE_TOO_LARGE', `The profile would exceed ${MAX_PROFILE_BYTES} bytes`);
      }
      try {
        if (key === DISPLAYNAME) {
          await storage.accounts.updateProfile(userId, { displayName: stored as string | null });
        } else if (key === AVATAR_URL) {
          await storage.accounts.updateProfile(userId, { avatarUrl: stored as string | null });
        } else {
          await storage.accounts.setProfileField(userId, key, stored);
        }
      } catch (error) {
        if (isStorageError(error) && error.code === 'NOT_FOUND')
          throw MatrixError.notFound('Profile not found');
        throw error;
      }
      return updated;
    });
    await notify({
      userId,
      key,
      value: stored,
      displayName: stringOrNull(after[DISPLAYNAME]),
      avatarUrl: stringOrNull(after[AVATAR_URL]),
    });
  };

  const notify = async (profileChange: ProfileChange): Promise<void> => {
    for (const listener of deps.listeners) {
      try {
        await listener(profileChange);
      } catch (error) {
        deps.log.warn({ err: error, userId: profileChange.userId }, 'Profile change listener failed');
      }
    }
  };

  return {
    getProfile: loadProfile,

    async getField(userId, key) {
      checkProfileKey(key);
      const profile = await loadProfile(userId);
      const value = profile[key];
      if (value === undefined) throw MatrixError.notFound(`The profile has no field '${key}'`);
      return value;
    },

    setField: (requester, userId, key, value) => change(requester, userId, key, { value }),
    deleteField: (requester, userId, key) => change(requester, userId, key, null),
  };
}

/** profile.yaml: a key longer than 255 bytes is M_KEY_TOO_LARGE; one outside the grammar M_INVALID_PARAM. */
export function checkProfileKey(key: string): void {
  if (Buffer.byteLength(key, 'utf8') > MAX_PROFILE_KEY_BYTES) {
    throw MatrixError.of('M_KEY_TOO_LARGE', `Profile keys are at most ${MAX_PROFILE_KEY_BYTES} bytes`);
  }
  if (!NAMESPACED_IDENTIFIER.test(key)) {
    throw MatrixError.invalidParam('Profile keys follow the Common Namespaced Identifier Grammar');
  }
}

/**
 * The value to store for a field; null clears displayname/avatar_url (sent as
 * an empty string, as clients do). profile.yaml lets servers reject null
 * values; we do, since storing null would be indistinguishable from removal.
 */
export function checkProfileValue(key: string, value: JsonValue): JsonValue | null {
  if (value === null) throw MatrixError.invalidParam(`'${key}' cannot be null; remove the field with DELETE`);
  switch (key) {
    case DISPLAYNAME:
      if (typeof value !== 'string') throw MatrixError.invalidParam("'displayname' must be a string");
      if ([...value].length > MAX_DISPLAYNAME_LENGTH) {
        throw MatrixError.invalidParam(`'displayname' is at most ${MAX_DISPLAYNAME_LENGTH} characters`);
      }
      return value === '' ? null : value;
    case AVATAR_URL:
      if (typeof value !== 'string') throw MatrixError.invalidParam("'avatar_url' must be a string");
      if (value === '') return null;
      if (value.length > MAX_AVATAR_URL_LENGTH) {
        throw MatrixError.invalidParam(`'avatar_url' is at most ${MAX_AVATAR_URL_LENGTH} characters`);
      }
      if (!MXC_URI.test(value)) throw MatrixError.invalidParam("'avatar_url' must be an mxc:// URI");
      return value;
    case TIME_ZONE:
      if (typeof value !== 'string') throw MatrixError.invalidParam("'m.tz' must be a string");
      return value;
    default:
      return value;
  }
}

function profileBytes(profile: Profile): number {
  return Buffer.byteLength(JSON.stringify(profile), 'utf8');
}

function checkUserIdParam(userId: string): void {
  if (!isValidUserId(userId, { historical: true })) throw MatrixError.invalidParam('Invalid user ID');
}

function isLocal(userId: string, serverName: string): boolean {
  return userId.slice(userId.indexOf(':') + 1) === serverName;
}

function stringOrNull(value: JsonValue | undefined): string | null {
  return typeof value === 'string' ? value : null;
}
