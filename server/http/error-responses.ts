/**
 * Renders whatever a route throws as the spec's standard error response. A
 * MatrixError speaks for itself; a ProtocolError is the client's fault (400);
 * anything else is ours: logged in full with the request ID, answered with a
 * bare 500 M_UNKNOWN that leaks nothing.
 */
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { matrixErrorFromFederation } from '../../federation/errors.js';
import { FederationRequestError } from '../../federation/federation.js';
import { isProtocolError } from '../../protocol/errors.js';
import { isMatrixError, MatrixError, matrixErrorFromProtocolError } from '../errors.js';
import { RequestAbortedError } from './request-body.js';
import type { RequestState } from './request-state.js';

export function errorResponses(): Middleware<RequestState> {
  return async (ctx, next) => {
    try {
      await next();
    } catch (thrown) {
      if (thrown instanceof RequestAbortedError) {
        ctx.state.log.debug('Client closed the request before sending its body');
        ctx.status = 400;
        return;
      }
      const error = matrixErrorFor(thrown, ctx.state.log);
      ctx.body = JSON.stringify(error.toJSON());
      ctx.type = 'application/json';
      ctx.status = error.status;
      ctx.set(error.headers);
      // The rest of an oversized body is not worth reading: end the connection after the answer.
      if (error.status === 413) ctx.set('Connection', 'close');
    }
  };
}

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
