/**
 * application-service "Pinging": POST {url}/_matrix/app/v1/ping with the
 * transaction ID the service gave, for POST /_matrix/client/v1/appservice/{appserviceId}/ping.
 */
import { MatrixError } from '../errors.js';
import type { AppserviceClient } from './appservice-client.js';
import type { AppserviceRegistration } from './registration.js';

/**
 * Resolves to how long the call took (ms); M_URL_NOT_SET (no URL), M_BAD_STATUS (with the
 * service's status and body), M_CONNECTION_FAILED, M_CONNECTION_TIMEOUT.
 */
export async function pingAppservice(
  client: AppserviceClient,
  service: AppserviceRegistration,
  transactionId: string | undefined,
): Promise<number> {
  if (service.url === null) {
    throw MatrixError.of('M_URL_NOT_SET', "Application service doesn't have a URL configured");
  }
  const body = JSON.stringify(transactionId === undefined ? {} : { transaction_id: transactionId });
  const began = performance.now();
  const outcome = await client.request(service, 'POST', '/_matrix/app/v1/ping', body);
  const durationMs = Math.round(performance.now() - began);
  switch (outcome.kind) {
    case 'ok':
      return durationMs;
    case 'bad-status':
      throw MatrixError.of('M_BAD_STATUS', `Ping returned status ${outcome.status}`, {
        status: outcome.status,
        body: outcome.body,
      });
    case 'timeout':
      throw MatrixError.of('M_CONNECTION_TIMEOUT', 'Connection to application service timed out');
    case 'connection-failed':
      throw MatrixError.of(
        'M_CONNECTION_FAILED',
        `Connection to application service failed: ${outcome.message}`,
      );
  }
}
