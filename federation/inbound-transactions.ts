/**
 * Inbound PUT /_matrix/federation/v1/send/{txnId} (server-server
 * "Transactions"): one transaction per origin at a time, in arrival order; a
 * transaction ID already answered gets its stored answer and is not processed
 * again (also while the first copy is still being processed). PDUs go to the
 * InboundPduHandler, EDUs to their registered handlers.
 */
import type { Logger } from 'pino';
import type { JsonObject, Pdu } from '../protocol/events.js';
import { computeEventId } from '../protocol/hashing.js';
import { isKnownRoomVersion, roomVersionRules } from '../protocol/room-versions.js';
import type { FederationStore } from '../storage/federation-store.js';
import type { EduRegistry, FederationAccess, InboundPduHandler, PduProcessingResult } from './federation.js';

export interface TransactionBody {
  readonly origin: string;
  readonly origin_server_ts: number;
  readonly pdus: readonly unknown[];
  readonly edus?: readonly unknown[];
}

export interface TransactionResponse {
  pdus: Record<string, PduProcessingResult>;
}

/** Inbound transaction answers are kept this long for deduplication. */
const INBOUND_TRANSACTION_RETENTION_MS = 7 * 24 * 3600_000;

export interface InboundTransactions {
  receive(origin: string, txnId: string, body: TransactionBody): Promise<TransactionResponse>;
}

export function createInboundTransactions(options: {
  readonly store: FederationStore;
  readonly pdus: () => InboundPduHandler;
  readonly edus: EduRegistry;
  readonly log: Logger;
  /** Room ACLs: PDUs of rooms whose m.room.server_acl denies the origin are refused here. */
  readonly acl?: {
    readonly access: FederationAccess;
    readonly roomVersionOf: (roomId: string) => Promise<string | undefined>;
  };
  readonly now?: () => number;
}): InboundTransactions {
  const now = options.now ?? Date.now;
  const inFlight = new Map<string, Promise<TransactionResponse>>();
  /** The tail of each origin's chain of transactions. */
  const originTails = new Map<string, Promise<unknown>>();
  let lastPrune = 0;

  const process = async (
    origin: string,
    txnId: string,
    body: TransactionBody,
  ): Promise<TransactionResponse> => {
    const stored = await options.store.getInboundTransaction(origin, txnId);
    if (stored !== null) return stored as unknown as TransactionResponse;
    const { admitted, refused } = await admittedByAcl(origin, body.pdus);
    const pdus = admitted.length > 0 ? await options.pdus().handlePdus(origin, admitted) : {};
    Object.assign(pdus, refused);
    for (const edu of body.edus ?? []) await options.edus.dispatch(origin, edu);
    const response: TransactionResponse = { pdus };
    await options.store.putInboundTransaction(origin, txnId, response as unknown as JsonObject, now());
    if (now() - lastPrune > 3600_000) {
      lastPrune = now();
      options.store
        .pruneInboundTransactions(now() - INBOUND_TRANSACTION_RETENTION_MS)
        .catch((error: unknown) => {
          options.log.warn({ err: error }, 'Pruning inbound transactions failed');
        });
    }
    return response;
  };

  /**
   * client-server "Server Access Control Lists": each PDU of a transaction is
   * checked against its room's ACL; a denied one is answered with an error
   * (keyed by its event ID, computed with the room's version) and dropped.
   */
  const admittedByAcl = async (origin: string, pdus: readonly unknown[]) => {
    const refused: Record<string, PduProcessingResult> = {};
    if (!options.acl) return { admitted: pdus, refused };
    const admitted: unknown[] = [];
    const allowedIn = new Map<string, boolean>();
    for (const pdu of pdus) {
      const roomId = (pdu as { room_id?: unknown } | null)?.room_id;
      if (typeof roomId !== 'string') {
        admitted.push(pdu);
        continue;
      }
      let allowed = allowedIn.get(roomId);
      if (allowed === undefined) {
        allowed = await options.acl.access.isAllowedInRoom(origin, roomId);
        allowedIn.set(roomId, allowed);
      }
      if (allowed) {
        admitted.push(pdu);
        continue;
      }
      const eventId = await eventIdOf(pdu as Pdu, roomId, options.acl.roomVersionOf);
      if (eventId !== undefined) refused[eventId] = { error: 'The room server ACL denies the origin' };
    }
    return { admitted, refused };
  };

  return {
    receive(origin, txnId, body) {
      const key = `${origin}\u0000${txnId}`;
      const running = inFlight.get(key);
      if (running) return running;
      const previous = originTails.get(origin) ?? Promise.resolve();
      const result = previous.catch(() => {}).then(() => process(origin, txnId, body));
      const tail = result.finally(() => {
        inFlight.delete(key);
        if (originTails.get(origin) === tail) originTails.delete(origin);
      });
      tail.catch(() => {});
      inFlight.set(key, result);
      originTails.set(origin, tail);
      return result;
    },
  };
}

async function eventIdOf(
  pdu: Pdu,
  roomId: string,
  roomVersionOf: (roomId: string) => Promise<string | undefined>,
): Promise<string | undefined> {
  if (typeof pdu.event_id === 'string') return pdu.event_id;
  const version = await roomVersionOf(roomId);
  if (version === undefined || !isKnownRoomVersion(version)) return undefined;
  try {
    return computeEventId(pdu, roomVersionRules(version));
  } catch {
    return undefined;
  }
}

/**
 * Until room federation supplies the real handler: every PDU is answered
 * with an error (keyed by its event ID when it carries one, v1/v2 events).
 */
export const unimplementedPduHandler: InboundPduHandler = {
  async handlePdus(_origin, pdus) {
    const results: Record<string, PduProcessingResult> = {};
    for (const pdu of pdus) {
      const eventId = (pdu as { event_id?: unknown } | null)?.event_id;
      if (typeof eventId === 'string') results[eventId] = { error: 'This server does not accept PDUs yet' };
    }
    return results;
  },
};
