/**
 * Device IDs a client may not choose. Requests of an application service without a device are
 * deduplicated under its session ID, `appservice:<id>`, in the same table as devices' transaction
 * IDs: a device of that name would share the service's transaction IDs.
 */
import { MatrixError } from '../errors.js';

export const APPSERVICE_SESSION_PREFIX = 'appservice:';

/** @throws MatrixError 400 M_INVALID_PARAM for a reserved device ID. */
export function assertDeviceIdChoosable(deviceId: string): void {
  if (deviceId.startsWith(APPSERVICE_SESSION_PREFIX)) {
    throw MatrixError.invalidParam(`Device IDs starting with "${APPSERVICE_SESSION_PREFIX}" are reserved`);
  }
}
