/**
 * The Server-Server side of a homeserver, as the rest of the server sees it:
 * `hs.federation`. Built once by createFederation (federation/compose.ts) from
 * config, storage and the signing key; every part is replaceable in tests.
 *
 * - client: signed requests to another server (discovery, TLS, X-Matrix).
 * - keys: remote servers' signing keys (fetched, checked, cached) and
 *   signature checks on JSON and events.
 * - queue: the persistent per-destination outbound queue of PDUs and EDUs.
 * - inbound: where PUT /send hands the PDUs it receives (room federation
 *   implements InboundPduHandler; see federation/inbound-transactions.ts).
 * - edus: handlers of incoming EDUs by type.
 * - access: the config allow/deny list and room server ACLs.
 */
import type { JsonObject, Pdu } from '../protocol/events.js';
import type { EventSignatureVerdict, ReceivedEventCheck } from '../protocol/hashing.js';
import type { RoomVersionRules } from '../protocol/room-versions.js';
import type { ServerKeysObject } from '../protocol/server-keys.js';
import type { AuthenticatedServer, SignedRequest } from '../server/http/auth.js';
import type { PresenceRecord } from '../storage/presence-store.js';
import type { InboundTransactions } from './inbound-transactions.js';

export type FederationMethod = 'GET' | 'PUT' | 'POST' | 'DELETE';

export interface FederationRequest {
  /** The server name to send to (resolved per server-server "Resolving server names"). */
  readonly destination: string;
  readonly method: FederationMethod;
  /** The path, already percent-encoded where needed, e.g. `/_matrix/federation/v1/version`. */
  readonly path: string;
  /** Query parameters; arrays repeat the key. */
  readonly query?: Readonly<Record<string, string | number | boolean | readonly string[] | undefined>>;
  /** A JSON body (PUT/POST). */
  readonly body?: unknown;
  /** Sign the request with X-Matrix (default true; key requests are unsigned). */
  readonly signed?: boolean;
  /** Whole-request timeout (default federation.request_timeout_ms). */
  readonly timeoutMs?: number;
  /** Largest response body accepted (default federation.max_response_bytes). */
  readonly maxResponseBytes?: number;
  readonly signal?: AbortSignal;
}

/** Thrown by FederationClient.request for a non-2xx answer or a transport failure. */
export class FederationRequestError extends Error {
  constructor(
    readonly destination: string,
    /** The HTTP status; 0 when no answer came (DNS, TLS, connection, timeout, size limit). */
    readonly status: number,
    /** The Matrix errcode of an error body, when it had one. */
    readonly errcode: string | undefined,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'FederationRequestError';
  }
}

/**
 * The peer does not serve the endpoint (an older server): 400, 404 or 405 with M_UNRECOGNIZED,
 * or without an error body at all. Callers then fall back to an older endpoint.
 */
export function isUnrecognizedEndpoint(error: unknown): boolean {
  return (
    error instanceof FederationRequestError &&
    (error.status === 400 || error.status === 404 || error.status === 405) &&
    (error.errcode ?? 'M_UNRECOGNIZED') === 'M_UNRECOGNIZED'
  );
}

export interface FederationClient {
  /**
   * Sends one request and resolves with the parsed JSON body of a 2xx answer.
   * Resolves the destination's name, checks its TLS certificate (system roots
   * plus federation.ca_file), signs with X-Matrix unless `signed: false`.
   * @throws FederationRequestError
   */
  request<T = unknown>(request: FederationRequest): Promise<T>;
  /**
   * Like `request`, for answers that are not JSON (media): the raw body of a
   * 2xx answer and its headers. Optional so test doubles may leave it out.
   * @throws FederationRequestError
   */
  requestBytes?(
    request: FederationRequest,
  ): Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer }>;
  /** Closes pooled connections. */
  close(): Promise<void>;
}

/** A verdict on the signatures of a signed JSON object or event. */
export type SignatureCheck =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** missing: no signature by that server; no_key: its key could not be found or was not valid then; bad: a signature does not match. */
      readonly reason: 'missing' | 'no_key' | 'bad';
      readonly message: string;
    };

export interface KeyRing {
  /**
   * The unpadded base64 ed25519 public key `keyId` of `serverName`, valid at
   * `atTs` (ms) — from this server's own keys, the cache, the server itself or
   * the trusted notaries, in that order. Undefined when no valid key is found.
   * `enforceValidity` false (room versions 1-4) accepts a key whatever its
   * valid_until_ts.
   */
  verifyKeyFor(
    serverName: string,
    keyId: string,
    atTs: number,
    options?: { enforceValidity?: boolean },
  ): Promise<string | undefined>;
  /**
   * Checks that `serverName` signed `object` (spec appendices "Checking for a
   * Signature") with at least one of its keys valid at `atTs`.
   */
  verifySignedBy(
    object: object,
    serverName: string,
    atTs: number,
    options?: { enforceValidity?: boolean },
  ): Promise<SignatureCheck>;
  /**
   * server-server "Validating hashes and signatures on received events", the
   * signature part (protocol/hashing.ts verifyEventSignatures), with the keys
   * of every server that must have signed fetched first. The PDU is as
   * received (with `signatures`; `event_id` only in v1/v2).
   */
  verifyEventSignatures(pdu: Pdu, rules: RoomVersionRules): Promise<EventSignatureVerdict>;
  /**
   * Signatures, then content hash, in the spec's order: reject when the
   * signatures fail, the redacted copy when only the hash fails, else accept.
   */
  checkReceivedEvent(pdu: Pdu, rules: RoomVersionRules): Promise<ReceivedEventCheck>;
}

/** An EDU as carried in a transaction. */
export interface Edu {
  readonly edu_type: string;
  readonly content: JsonObject;
}

export interface OutboundQueue {
  /**
   * Queues one PDU (federation format, as it goes in a transaction) for each
   * destination (this server itself is skipped). Persisted before the promise
   * resolves: survives a restart, sent exactly once per destination.
   */
  sendPdu(destinations: Iterable<string>, pdu: object): Promise<void>;
  /**
   * Queues one EDU for a destination, like sendPdu. With `ttlMs`, an EDU still
   * unsent after that long (the destination was down) is dropped, not sent
   * late: for what only matters now (typing).
   */
  sendEdu(destination: string, edu: Edu, options?: { ttlMs?: number }): Promise<void>;
  /** The destination contacted us: if it was backed off, try it now. */
  wake(destination: string): void;
  /** Loads pending destinations from storage and starts sending. */
  start(): Promise<void>;
  /** Stops sending; waits for transactions in flight (they are resumed at the next start). */
  stop(): Promise<void>;
}

/** What a receiving server answers for one PDU of a transaction (server-server PUT /send: `pdus`). */
export interface PduProcessingResult {
  /** Present when the PDU was not accepted; absent means it was processed. */
  readonly error?: string;
}

/**
 * Receives the PDUs of an authenticated transaction. Implemented by room
 * federation (the spec's checks on received PDUs); the default seam answers
 * every PDU with an error.
 */
export interface InboundPduHandler {
  /**
   * `pdus` as received (unvalidated JSON). Resolves with a result per event ID;
   * a PDU whose event ID cannot be worked out may be left out.
   */
  handlePdus(origin: string, pdus: readonly unknown[]): Promise<Record<string, PduProcessingResult>>;
}

/** Handles one incoming EDU of one type; `origin` is the authenticated sending server. Throwing is logged, never returned to the sender. */
export type EduHandler = (origin: string, content: unknown) => Promise<void>;

export interface EduRegistry {
  /** Registers the handler for an EDU type (one per type; a second replaces the first). */
  register(eduType: string, handler: EduHandler): void;
  /** Runs the handler of the EDU's type; unknown types are ignored (spec: EDUs are best effort). */
  dispatch(origin: string, edu: unknown): Promise<void>;
}

/** Tells the other servers of a room what a local user did (EDUs through the outbound queue). */
export interface EduAnnouncer {
  /** A local user started or stopped typing (m.typing). */
  typing(roomId: string, userId: string, typing: boolean): void;
  /** A local user's presence changed (m.presence, to every server sharing a room with them). */
  presence(record: PresenceRecord): void;
  /** A local user's public read receipt moved (m.receipt, m.read); threadId null for an unthreaded one. */
  readReceipt(roomId: string, userId: string, eventId: string, threadId: string | null): void;
}

export interface FederationAccess {
  /** The config's allow/deny lists: may we talk to (and hear from) this server at all? */
  isServerAllowed(serverName: string): boolean;
  /** The room's m.room.server_acl (current state) allows `serverName`; true when the room has none. */
  isAllowedInRoom(serverName: string, roomId: string): Promise<boolean>;
}

export interface Federation {
  /** federation.enabled; when false nothing is sent and inbound federation is refused. */
  readonly enabled: boolean;
  readonly client: FederationClient;
  readonly keys: KeyRing;
  readonly queue: OutboundQueue;
  readonly inbound: InboundPduHandler;
  readonly edus: EduRegistry;
  /** Outbound typing and receipt EDUs of local users. */
  readonly announce: EduAnnouncer;
  readonly access: FederationAccess;
  /** Inbound PUT /send: dedupe, per-origin order, PDUs to `inbound`, EDUs to `edus`. */
  readonly transactions: InboundTransactions;
  /** The pipeline's X-Matrix check (server/http/auth.ts `authenticateServer`). */
  authenticateServer(request: SignedRequest): Promise<AuthenticatedServer>;
  /** This server's key object, self-signed, for GET /_matrix/key/v2/server. */
  ownServerKeys(): ServerKeysObject;
  /**
   * Notary: a server's key object as that server signed it, from the cache
   * when valid until at least `minimumValidUntilTs`, else fetched; this
   * server's own keys for itself. Undefined when none can be had.
   */
  notarise(serverName: string, minimumValidUntilTs: number): Promise<JsonObject | undefined>;
  /** Resumes the outbound queue. */
  start(): Promise<void>;
  /** Stops the outbound queue and closes pooled connections. */
  stop(): Promise<void>;
}
