/**
 * Inbound X-Matrix authentication (server-server "Request Authentication"):
 * the pipeline's `authenticateServer` seam. Checks, in order: the header's
 * shape, the destination (when given) is this server, the origin may
 * federate with us, the origin's key is known and valid now, the signature
 * over method, URI, origin, destination and body. A server that reaches us
 * this way is up again: its outbound queue is woken.
 */
import { isProtocolError } from '../protocol/errors.js';
import { isValidServerName } from '../protocol/identifiers.js';
import { parseXMatrixHeader, verifyRequestSignature } from '../protocol/x-matrix.js';
import { MatrixError } from '../server/errors.js';
import type { AuthenticatedServer, SignedRequest } from '../server/http/auth.js';
import type { FederationAccess, KeyRing } from './federation.js';

export function createServerAuthenticator(options: {
  readonly serverName: string;
  readonly enabled: boolean;
  readonly keys: KeyRing;
  readonly access: FederationAccess;
  /** Called with the origin of every authenticated request. */
  readonly onAuthenticated?: (origin: string) => void;
}): (request: SignedRequest) => Promise<AuthenticatedServer> {
  return async (request) => {
    if (!options.enabled) throw new MatrixError(403, 'M_FORBIDDEN', 'Federation is disabled on this server.');
    const header = request.headers.authorization;
    if (header === undefined) throw MatrixError.unauthorized('Missing X-Matrix Authorization header.');
    let credentials: ReturnType<typeof parseXMatrixHeader>;
    try {
      credentials = parseXMatrixHeader(header);
    } catch (error) {
      if (!isProtocolError(error)) throw error;
      throw MatrixError.unauthorized(error.message);
    }
    if (credentials === undefined) throw MatrixError.unauthorized('Authorization is not X-Matrix.');
    if (!isValidServerName(credentials.origin)) throw MatrixError.unauthorized('Invalid origin.');
    if (credentials.destination !== undefined && credentials.destination !== options.serverName) {
      throw MatrixError.unauthorized(`This request is for ${credentials.destination}, not this server.`);
    }
    if (credentials.origin === options.serverName) {
      throw MatrixError.unauthorized('A request from this server to itself.');
    }
    if (!options.access.isServerAllowed(credentials.origin)) {
      throw new MatrixError(403, 'M_FORBIDDEN', 'Federation with this server is not allowed.');
    }
    let content: unknown;
    if (request.rawBody !== undefined && request.rawBody.length > 0) {
      try {
        content = JSON.parse(Buffer.from(request.rawBody).toString('utf8'));
      } catch {
        throw MatrixError.notJson();
      }
    }
    const publicKey = await options.keys.verifyKeyFor(credentials.origin, credentials.keyId, Date.now());
    if (publicKey === undefined) {
      throw MatrixError.unauthorized(`No valid key ${credentials.keyId} of ${credentials.origin} is known.`);
    }
    const verdict = verifyRequestSignature(
      {
        method: request.method,
        uri: request.uri,
        origin: credentials.origin,
        destination: options.serverName,
        ...(content !== undefined ? { content } : {}),
      },
      credentials,
      publicKey,
    );
    if (!verdict.ok) throw MatrixError.unauthorized('The request signature does not match.');
    options.onAuthenticated?.(credentials.origin);
    return { kind: 'server', serverName: credentials.origin };
  };
}
