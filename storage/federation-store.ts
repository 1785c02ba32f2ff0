/**
 * What federation keeps: remote servers' signing keys (and the signed key
 * responses a notary serves again), the persistent outbound queue per
 * destination with its retry state, and the inbound transactions already
 * answered (server-server "Transactions": a repeated transaction ID gets the
 * same answer and is not processed twice).
 */
import type { JsonObject } from '../protocol/events.js';
import type { PublishedKey } from '../protocol/server-keys.js';

export interface StoredKeyResponse {
  /** The key object as the server signed it (notary signatures included when fetched through one). */
  readonly response: JsonObject;
  readonly validUntilTs: number;
  readonly fetchedTs: number;
}

export type OutboxKind = 'pdu' | 'edu';

export interface OutboxItem {
  readonly destination: string;
  readonly kind: OutboxKind;
  /** The PDU or EDU as JSON text, sent as is. */
  readonly json: string;
  /** Drop the item instead of sending it if it is still unsent at this time (ms); absent: keep until sent. */
  readonly expiresTs?: number;
}

/** One transaction's worth of queued items, claimed under a transaction ID. */
export interface ClaimedTransaction {
  readonly txnId: string;
  readonly pdus: readonly string[];
  readonly edus: readonly string[];
}

export interface DestinationRetry {
  /** Do not try before this time (ms). */
  readonly retryAfterTs: number;
  /** The current backoff, doubled at each failure. */
  readonly backoffMs: number;
}

export interface FederationStore {
  /** Stores the keys of one validated key response, replacing what was known of those key IDs. */
  putServerKeys(
    serverName: string,
    keys: readonly PublishedKey[],
    response: JsonObject,
    fetchedTs: number,
  ): Promise<void>;
  getServerKey(serverName: string, keyId: string): Promise<PublishedKey | null>;
  /** The latest stored key response of a server (what a notary serves). */
  getServerKeyResponse(serverName: string): Promise<StoredKeyResponse | null>;

  /** Appends items to their destinations' queues, in order, atomically. */
  enqueueOutbound(items: readonly OutboxItem[]): Promise<void>;
  /**
   * The destination's next transaction: the one already claimed and not yet
   * completed (it is resent under the same ID after a failure or restart), or
   * else up to `maxPdus` PDUs and `maxEdus` EDUs in queue order, claimed under
   * a new ID never used for this destination before; unclaimed items expired
   * by `nowTs` are dropped first. Null when nothing waits.
   */
  claimTransaction(
    destination: string,
    maxPdus: number,
    maxEdus: number,
    nowTs?: number,
  ): Promise<ClaimedTransaction | null>;
  /** Removes a transaction's items (it was delivered, or refused for good). */
  completeTransaction(destination: string, txnId: string): Promise<void>;
  /** Destinations with queued items, and their retry state if backed off. */
  pendingDestinations(): Promise<{ destination: string; retry: DestinationRetry | null }[]>;
  getRetry(destination: string): Promise<DestinationRetry | null>;
  /** Records a backoff (null clears it: the destination answered). */
  setRetry(destination: string, retry: DestinationRetry | null): Promise<void>;

  /** The stored answer to an inbound transaction, if that origin already sent that ID. */
  getInboundTransaction(origin: string, txnId: string): Promise<JsonObject | null>;
  putInboundTransaction(
    origin: string,
    txnId: string,
    response: JsonObject,
    receivedTs: number,
  ): Promise<void>;
  /** Forgets inbound transactions received before `beforeTs` (a sender retries for hours, not weeks). */
  pruneInboundTransactions(beforeTs: number): Promise<void>;
}
