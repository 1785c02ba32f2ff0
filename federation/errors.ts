/**
 * A failed request to another server, as the local client sees it (when a
 * handler lets it through): the remote server's own 4xx error with a known
 * errcode is passed on (as Synapse does, e.g. a refused invite); anything else
 * (unreachable, timed out, TLS refused, 5xx, unknown errcode) is 502.
 */
import { isErrcode, MatrixError } from '../server/errors.js';
import type { FederationRequestError } from './federation.js';

export function matrixErrorFromFederation(error: FederationRequestError): MatrixError {
  if (error.status >= 400 && error.status < 500 && isErrcode(error.errcode)) {
    const remoteMessage = (error.body as { error?: unknown } | undefined)?.error;
    return new MatrixError(
      error.status,
      error.errcode,
      typeof remoteMessage === 'string' ? remoteMessage : `${error.destination} refused the request`,
    );
  }
  return new MatrixError(
    502,
    'M_UNKNOWN',
    error.status === 0
      ? `Could not reach ${error.destination}`
      : `${error.destination} answered with an error (${error.status})`,
  );
}
