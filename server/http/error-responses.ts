/**
 * What the client is told of whatever a route throws, as the spec's standard
 * error response. A MatrixError speaks for itself; a ProtocolError is the
 * client's fault (400); anything else is ours: logged in full with the request
 * ID, answered with a bare 500 M_UNKNOWN that leaks nothing.
 */
import type { Logger } from 'pino';
import { matrixErrorFromFederation } from '../../federation/errors.js';
import { FederationRequestError } from '../../federation/federation.js';
import { isProtocolError } from '../../protocol/errors.js';
import { isMatrixError, MatrixError, matrixErrorFromProtocolError } from '../errors.js';

/** What the client is told of a thrown value; anything not a Matrix or protocol error is logged and hidden. */
export function matrixErrorFor(thrown: unknown, log: Logger): MatrixError {
  if (isMatrixError(thrown)) return thrown;
  if (isProtocolError(thrown)) return matrixErrorFromProtocolError(thrown);
  if (thrown instanceof FederationRequestError) {
    log.info({ err: thrown }, 'A federation request failed');
    return matrixErrorFromFederation(thrown);
  }
  log.error({ err: thrown }, 'Unhandled error while serving a request');
  return MatrixError.internal();
}
