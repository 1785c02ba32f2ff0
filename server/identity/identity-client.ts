/**
 * Requests to identity servers a client names (identity service API v2), for third-party
 * invites: the hashed lookup (`/hash_details` then `/lookup`) and `/store-invite`. The client
 * chooses the server, so requests go through the same guarded fetch as URL previews (SSRF):
 * HTTPS to public unicast addresses only, every address of the name vetted at connect time,
 * a refused address answered 403 M_FORBIDDEN.
 * `identity.allow_private_addresses` lets tests and same-host deployments use loopback or
 * private addresses over plain HTTP.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { JsonObject } from '../../protocol/events.js';
import type { MyelinConfig } from '../config/index.js';
import { MatrixError } from '../errors.js';
import { AddressGuard } from '../outbound/address-guard.js';
import { GuardedFetch, type GuardedResponse, readLimited } from '../outbound/guarded-fetch.js';

const MAX_ANSWER_BYTES = 64 * 1024;
/** A host name or IP literal, with an optional port: nothing that could change the URL's shape. */
const ID_SERVER = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/u;

export interface StoredInvite {
  readonly token: string;
  readonly displayName: string;
  /** `{ public_key, key_validity_url }` entries, the first also given as the legacy single fields. */
  readonly publicKeys: { public_key: string; key_validity_url: string }[];
}

function unpaddedBase64Url(bytes: Buffer): string {
  return bytes.toString('base64url');
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function identityError(message: string): MatrixError {
  return new MatrixError(502, 'M_UNKNOWN', message);
}

export class IdentityServerClient {
  private readonly http: GuardedFetch;

  constructor(
    private readonly config: MyelinConfig['identity'],
    private readonly log: Logger,
  ) {
    this.http = new GuardedFetch(
      AddressGuard.publicOnly(config.allow_private_addresses),
      config.request_timeout_ms,
      'This server does not contact identity servers at that address',
    );
  }

  /** @throws MatrixError 400 M_INVALID_PARAM when `idServer` is not a host[:port]. */
  static checkServerName(idServer: string): void {
    if (!ID_SERVER.test(idServer))
      throw MatrixError.invalidParam('id_server must be a host name with an optional port');
  }

  /**
   * The Matrix ID bound to the 3PID, or null (identity service "Association lookup", v2 with
   * the sha256 algorithm when offered, else `none`).
   */
  async lookup(
    idServer: string,
    accessToken: string,
    medium: string,
    address: string,
  ): Promise<string | null> {
    const details = await this.request(idServer, accessToken, 'GET', '/_matrix/identity/v2/hash_details');
    const algorithms = Array.isArray(details.algorithms) ? details.algorithms : [];
    const pepper = typeof details.lookup_pepper === 'string' ? details.lookup_pepper : '';
    let algorithm: string;
    let lookupAddress: string;
    if (algorithms.includes('sha256')) {
      algorithm = 'sha256';
      lookupAddress = unpaddedBase64Url(
        createHash('sha256').update(`${address} ${medium} ${pepper}`).digest(),
      );
    } else if (algorithms.includes('none')) {
      algorithm = 'none';
      lookupAddress = `${address} ${medium}`;
    } else {
      throw identityError('The identity server offers no lookup algorithm this server knows');
    }
    const answer = await this.request(idServer, accessToken, 'POST', '/_matrix/identity/v2/lookup', {
      addresses: [lookupAddress],
      algorithm,
      pepper,
    });
    const mxid = isObject(answer.mappings) ? answer.mappings[lookupAddress] : undefined;
    return typeof mxid === 'string' ? mxid : null;
  }

  /** POST /store-invite: the token and public keys of an invite the identity server keeps for the 3PID. */
  async storeInvite(idServer: string, accessToken: string, body: JsonObject): Promise<StoredInvite> {
    const answer = await this.request(
      idServer,
      accessToken,
      'POST',
      '/_matrix/identity/v2/store-invite',
      body,
    );
    const keys = Array.isArray(answer.public_keys) ? answer.public_keys : [];
    const publicKeys = keys
      .filter(isObject)
      .filter((key) => typeof key.public_key === 'string' && typeof key.key_validity_url === 'string')
      .map((key) => ({
        public_key: key.public_key as string,
        key_validity_url: key.key_validity_url as string,
      }));
    if (typeof answer.token !== 'string' || answer.token === '' || publicKeys.length === 0) {
      throw identityError('The identity server answered store-invite without a token or public keys');
    }
    return {
      token: answer.token,
      displayName: typeof answer.display_name === 'string' ? answer.display_name : '',
      publicKeys,
    };
  }

  private async request(
    idServer: string,
    accessToken: string,
    method: 'GET' | 'POST',
    path: string,
    body?: JsonObject,
  ): Promise<JsonObject> {
    IdentityServerClient.checkServerName(idServer);
    const scheme = this.config.allow_private_addresses ? 'http' : 'https';
    const url = new URL(`${scheme}://${idServer}${path}`);
    let response: GuardedResponse;
    try {
      response = await this.http.request(url, {
        method,
        headers: {
          authorization: `Bearer ${accessToken}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.config.request_timeout_ms),
      });
    } catch (error) {
      if (error instanceof MatrixError) throw error;
      this.log.info({ err: error, idServer, path }, 'Identity server request failed');
      throw identityError(`Could not reach the identity server ${idServer}`);
    }
    const answer = await readLimited(response.body, MAX_ANSWER_BYTES, () =>
      identityError('The identity server answer is too large'),
    );
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    if (response.statusCode !== 200 || !isObject(parsed)) {
      this.log.info({ idServer, path, status: response.statusCode }, 'Identity server refused a request');
      throw identityError(`The identity server answered ${response.statusCode} to ${path}`);
    }
    return parsed;
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
