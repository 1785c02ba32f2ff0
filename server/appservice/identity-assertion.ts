/**
 * Requests made with an application service's as_token (application-service
 * "Identity assertion"): the service acts as its sender, or as the user the
 * `user_id` query parameter names when that user is in its namespace and
 * registered (else 403 M_FORBIDDEN, as Synapse); `device_id` selects one of
 * that user's devices (else 400 M_UNKNOWN_DEVICE). Without `device_id` the
 * request has no device.
 */
import type { DeviceStore } from '../../storage/device-store.js';
import { APPSERVICE_SESSION_PREFIX } from '../accounts/device-ids.js';
import type { SessionService } from '../accounts/session-service.js';
import { MatrixError } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
import type { AppserviceRegistration } from './registration.js';
import type { AppserviceRegistry } from './registry.js';

export interface IdentityAssertionDependencies {
  readonly registry: AppserviceRegistry;
  readonly sessions: Pick<SessionService, 'accountFlags'>;
  readonly devices: Pick<DeviceStore, 'getDevice'>;
}

/** The `user_id` and `device_id` query parameters a service acts as. */
interface IdentityAssertion {
  readonly userId?: string;
  readonly deviceId?: string;
}

/** The identity assertion parameters of a query, if any; a repeated or empty one is M_INVALID_PARAM. */
function identityAssertionOf(query: Readonly<Record<string, unknown>>): IdentityAssertion | undefined {
  const userId = query.user_id;
  const deviceId = query.device_id;
  if (userId === undefined && deviceId === undefined) return undefined;
  if (userId !== undefined && (typeof userId !== 'string' || userId === '')) {
    throw MatrixError.invalidParam('user_id must be one user ID');
  }
  if (deviceId !== undefined && (typeof deviceId !== 'string' || deviceId === '')) {
    throw MatrixError.invalidParam('device_id must be one device ID');
  }
  return {
    ...(userId !== undefined ? { userId } : {}),
    ...(deviceId !== undefined ? { deviceId } : {}),
  };
}

/** The session ID an application service's requests carry: no login session is behind them. */
function appserviceSessionId(service: AppserviceRegistration): string {
  return `${APPSERVICE_SESSION_PREFIX}${service.id}`;
}

export async function authenticateAppservice(
  service: AppserviceRegistration,
  deps: IdentityAssertionDependencies,
  query: Readonly<Record<string, unknown>> | undefined,
): Promise<AuthenticatedUser> {
  const assertion = query === undefined ? undefined : identityAssertionOf(query);
  const userId = assertion?.userId ?? service.sender;
  if (userId !== service.sender && !deps.registry.isInterestedInUser(service, userId)) {
    throw MatrixError.forbidden(`Application service cannot masquerade as this user (${userId}).`);
  }
  const account = await deps.sessions.accountFlags(userId);
  if (!account.exists || account.deactivated) {
    throw MatrixError.forbidden(`Application service has not registered this user (${userId}).`);
  }
  let deviceId: string | null = null;
  if (assertion?.deviceId !== undefined) {
    if ((await deps.devices.getDevice(userId, assertion.deviceId)) === null) {
      throw MatrixError.of(
        'M_UNKNOWN_DEVICE',
        `Application service trying to use a device that doesn't exist ('${assertion.deviceId}' for ${userId})`,
      );
    }
    deviceId = assertion.deviceId;
  }
  return {
    kind: 'user',
    userId,
    deviceId,
    isGuest: false,
    sessionId: appserviceSessionId(service),
    isAdmin: account.isAdmin,
    isLocked: account.locked,
    isSuspended: account.suspended,
    appservice: { id: service.id, rateLimited: service.rateLimited && userId !== service.sender },
  };
}
