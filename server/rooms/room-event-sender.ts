/**
 * The send path for local users (ARCHITECTURE "The send path"): each room's sends are
 * serialised and built in order on the room's cached head; whatever queued up while the
 * previous batch committed is built as one chain and persisted in one transaction,
 * together with its state delta, forward extremities and transaction IDs. Listeners
 * (notifier, federation, push) hear of each event after the commit, never inside it.
 */

import { selectAuthEventKeys } from '../../protocol/auth-events-selection.js';
import type { JsonObject, RoomEvent, StateMap } from '../../protocol/events.js';
import { isStateEvent, stateTupleKey } from '../../protocol/events.js';
import { serverNameOfId as serverNameOf } from '../../protocol/identifiers.js';
import type { RoomVersionRules } from '../../protocol/room-versions.js';
import type { SigningKey } from '../../protocol/signing.js';
import type { PersistedEvent, StreamOrdering } from '../../storage/event-store.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { StateSnapshotInput } from '../../storage/state-store.js';
import type { Storage, WriteTransaction } from '../../storage/storage.js';
import { TransactionAlreadySent } from '../../storage/transaction-id-store.js';
import { MatrixError } from '../errors.js';
import {
  type BuiltEvent,
  buildCreateEvent,
  buildRoomEvent,
  type EventSigner,
  type EventTemplate,
  generateRoomId,
} from './event-builder.js';
import { KeyedBatchQueue } from './keyed-batch-queue.js';
import { RoomDraft } from './room-draft.js';
import { eventReference, loadRoomHead, RoomHead } from './room-head.js';

export interface ClientTransaction {
  readonly deviceId: string;
  /** The `{txnId}` of the request path; scoped here by room and event type, as the path is. */
  readonly txnId: string;
}

export interface SendEventRequest extends EventTemplate {
  readonly roomId: string;
  /** Makes the send idempotent: the same transaction from the same device gives the same event. */
  readonly txn?: ClientTransaction;
  /**
   * Checks run only when the event is really to be sent (not for a repeated transaction),
   * e.g. relation rules; throwing refuses the send. What it returns is called once the send
   * has settled (committed or failed): a claim taken by the check is held until then.
   */
  readonly guard?: () => Promise<(() => void) | undefined>;
  /** origin_server_ts chosen by an application service (application-service "Timestamp massaging"); now by default. */
  readonly originServerTs?: number;
}

export interface SentEvent {
  readonly eventId: string;
  readonly streamOrdering: StreamOrdering;
}

export interface PersistedRoomEvent {
  readonly event: RoomEvent;
  /** The stored JSON text of the event. */
  readonly json: string;
  readonly streamOrdering: StreamOrdering;
  /** The client transaction that sent it, so that sync can echo `transaction_id` to that device. */
  readonly txn?: ClientTransaction;
}

export type EventPersistedListener = (persisted: PersistedRoomEvent) => void;

export interface NewRoomPlan {
  readonly rules: RoomVersionRules;
  readonly creator: string;
  /** The create event's content, complete (creator, room_version... as the version wants them). */
  readonly createContent: JsonObject;
  /** Sent straight after the create event, in order; all or none are stored. */
  readonly initialEvents: readonly EventTemplate[];
  /** Other writes that belong with the room (its `rooms` row), queued in the same transaction. */
  readonly writeAlongside?: (tx: WriteTransaction, roomId: string, createTs: number) => void;
}

export interface NewRoom {
  readonly roomId: string;
  /** The create event first, then one per initial event. */
  readonly events: readonly SentEvent[];
}

export interface RoomEventSenderOptions {
  readonly storage: Storage;
  readonly serverName: string;
  readonly signingKey: SigningKey;
  /** Clock for origin_server_ts; Date.now by default. */
  readonly now?: () => number;
  /** Most events built into one transaction for one room (default 256). */
  readonly maxBatchSize?: number;
  /** Rooms whose head is kept in memory (default 10,000). */
  readonly roomHeadCacheSize?: number;
  /** A listener threw; the event is stored all the same. */
  readonly onListenerError?: (error: unknown, persisted: PersistedRoomEvent) => void;
}

/** What work run in a room's turn (runExclusive) may do with the send path's cached head. */
export interface ExclusiveRoom {
  /** The cached head (loaded if need be); null when the room is unknown here. */
  head(): Promise<RoomHead | null>;
  /** The work changed the room in a way it did not apply to the head: drop it now. */
  invalidate(): void;
  /** The work kept the head exactly in step with what it wrote: keep it afterwards. */
  keepHead(): void;
}

/** Work that must not interleave with the room's sends (events persisted by federation). */
interface ExclusiveTask {
  readonly exclusive: () => Promise<void>;
}

interface PendingSend {
  readonly request: SendEventRequest;
  readonly scopedTxnId: string | undefined;
  /** Its batch failed to commit: it is retried in a batch of its own, so one bad write fails alone. */
  isolated?: boolean;
  readonly resolve: (sent: SentEvent) => void;
  readonly reject: (error: unknown) => void;
}

interface AcceptedSend {
  readonly pending: PendingSend;
  readonly built: BuiltEvent;
}

/** spec: client-server "Transaction identifiers": a transaction is scoped to the device and the endpoint path. */
function scopeTxnId(request: SendEventRequest, txnId: string): string {
  return `${request.roomId}/${encodeURIComponent(request.type)}/${txnId}`;
}

export class RoomEventSender {
  private readonly storage: Storage;
  private readonly signer: EventSigner;
  private readonly now: () => number;
  private readonly maxBatchSize: number;
  private readonly heads: LazyLruCache<string, RoomHead>;
  private readonly queue: KeyedBatchQueue<PendingSend | ExclusiveTask>;
  private readonly listeners = new Set<EventPersistedListener>();
  private readonly txnsInFlight = new Map<string, Promise<SentEvent>>();
  private lastCreateTs = 0;
  private readonly onListenerError: (error: unknown, persisted: PersistedRoomEvent) => void;

  constructor(options: RoomEventSenderOptions) {
    this.storage = options.storage;
    this.signer = { serverName: options.serverName, key: options.signingKey };
    this.now = options.now ?? Date.now;
    this.maxBatchSize = Math.max(1, options.maxBatchSize ?? 256);
    this.heads = new LazyLruCache({ max: options.roomHeadCacheSize ?? 10_000 });
    this.onListenerError = options.onListenerError ?? (() => {});
    this.queue = new KeyedBatchQueue(
      (roomId, pending) => this.runBatch(roomId, pending),
      (error, _roomId, dropped) => {
        for (const pending of dropped) if ('reject' in pending) pending.reject(error);
      },
    );
  }

  get serverName(): string {
    return this.signer.serverName;
  }

  /** Hears of every event this sender persists, after its commit, in stream order. Returns an unsubscribe. */
  onEventPersisted(listener: EventPersistedListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Builds, signs, authorises and persists one event from a local user.
   * @throws MatrixError M_FORBIDDEN (auth rules, or a sender of another server),
   *   M_NOT_FOUND (no such room here), M_TOO_LARGE, M_BAD_JSON (content not canonical JSON).
   */
  sendEvent(request: SendEventRequest): Promise<SentEvent> {
    if (serverNameOf(request.sender) !== this.signer.serverName) {
      return Promise.reject(MatrixError.forbidden(`${request.sender} is not a user of this server`));
    }
    if (request.txn === undefined) return this.guarded(request, undefined);
    const scopedTxnId = scopeTxnId(request, request.txn.txnId);
    const key = `${request.sender}\u0000${request.txn.deviceId}\u0000${scopedTxnId}`;
    const inFlight = this.txnsInFlight.get(key);
    if (inFlight !== undefined) return inFlight;
    const sending = this.sendOnce(request, request.txn.deviceId, scopedTxnId);
    this.txnsInFlight.set(key, sending);
    const forget = () => {
      this.txnsInFlight.delete(key);
    };
    sending.then(forget, forget);
    return sending;
  }

  /**
   * Creates a room: its create event and the initial events, built and authorised one after
   * the other exactly as sends are, then stored in one transaction (a refused event stores nothing).
   */
  async createRoom(plan: NewRoomPlan): Promise<NewRoom> {
    const { rules } = plan;
    // From v12 the room ID is the create event's hash: two identical create events in the
    // same millisecond would found the same room, so each gets a timestamp of its own.
    this.lastCreateTs = Math.max(this.now(), this.lastCreateTs + 1);
    const create = buildCreateEvent(
      rules,
      plan.creator,
      plan.createContent,
      this.signer,
      this.lastCreateTs,
      rules.roomIdIsCreateEventHash ? undefined : generateRoomId(this.signer.serverName),
    );
    const roomId = create.event.roomId;
    const createReference = eventReference(create.event, rules);
    const head = new RoomHead(
      roomId,
      rules,
      create.event,
      [{ eventId: create.event.eventId, depth: 1, reference: createReference }],
      null,
    );
    const draft = new RoomDraft(head);
    const built: BuiltEvent[] = [create];
    for (const template of plan.initialEvents) {
      const next = buildRoomEvent(draft, template, this.signer, this.now());
      draft.accept(next.event);
      built.push(next);
    }

    // Each event's state before it is written in full: tiny in a new room, and the
    // snapshot IDs of the earlier events are not known until the transaction runs.
    const state: StateMap = new Map();
    const writes: Promise<PersistedEvent>[] = [];
    await this.storage.transaction((tx) => {
      for (const { event, json } of built) {
        const stateBefore: StateSnapshotInput = { parentSnapshotId: null, delta: { set: new Map(state) } };
        writes.push(this.queuePersist(tx, event, json, stateBefore));
        if (isStateEvent(event.pdu))
          state.set(stateTupleKey(event.pdu.type, event.pdu.state_key!), event.eventId);
      }
      plan.writeAlongside?.(tx, roomId, create.event.pdu.origin_server_ts);
    });
    const persisted = await Promise.all(writes);
    draft.commitTo(persisted.at(-1)!.stateAfterSnapshotId);
    this.heads.set(roomId, head);
    const sent = built.map(({ event, json }, i) => {
      this.announce({ event, json, streamOrdering: persisted[i]!.streamOrdering });
      return { eventId: event.eventId, streamOrdering: persisted[i]!.streamOrdering };
    });
    return { roomId, events: sent };
  }

  /**
   * Runs `work` in the room's queue, between two batches of sends, so that whatever it
   * writes to the room (events received over federation) never interleaves with a local
   * send. The room's cached head is dropped afterwards (the next send reads it afresh)
   * unless the work kept it up to date and says so with `keepHead()`.
   */
  runExclusive<T>(roomId: string, work: (room: ExclusiveRoom) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push(roomId, {
        exclusive: async () => {
          let keep = false;
          const room: ExclusiveRoom = {
            head: () => this.roomHead(roomId),
            invalidate: () => {
              this.heads.delete(roomId);
            },
            keepHead: () => {
              keep = true;
            },
          };
          try {
            resolve(await work(room));
          } catch (error) {
            reject(error);
          } finally {
            if (!keep) this.heads.delete(roomId);
          }
        },
      });
    });
  }

  /**
   * Tells the listeners (notifier, sync, directory, federation...) of an event persisted
   * outside this sender (received over federation), as if the sender had stored it.
   */
  announcePersisted(persisted: PersistedRoomEvent): void {
    this.announce(persisted);
  }

  /** Forgets what is cached about a room (after something else wrote its events, e.g. federation). */
  invalidateRoom(roomId: string): void {
    this.heads.delete(roomId);
  }

  /** Resolves once every send queued so far has settled (for shutdown, before storage closes). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /**
   * A send under a client transaction, with no read before it: the write transaction records
   * the transaction ID before the event, and a transaction already recorded rolls the batch
   * back and answers the first event (runSends). A send refused before its write (a guard
   * refusing a retried reaction as a duplicate, a sender who has left since) may be a retry
   * too: then, and only then, the transaction is looked up, and a recorded one answered.
   */
  private async sendOnce(
    request: SendEventRequest,
    deviceId: string,
    scopedTxnId: string,
  ): Promise<SentEvent> {
    try {
      return await this.guarded(request, scopedTxnId);
    } catch (error) {
      const eventId = await this.storage.transactionIds
        .eventIdForTransaction(request.sender, deviceId, scopedTxnId)
        .catch(() => null);
      const recorded = eventId === null ? null : await this.sentEventOf(eventId).catch(() => null);
      if (recorded === null) throw error;
      return recorded;
    }
  }

  /** What a send of the stored event answered; null when the event is no longer stored. */
  private async sentEventOf(eventId: string): Promise<SentEvent | null> {
    const stored = await this.storage.events.getEvent(eventId);
    return stored === null ? null : { eventId, streamOrdering: stored.streamOrdering };
  }

  /** A send of the batch whose transaction was already recorded: it is answered with the first event. */
  private answerRecorded(item: PendingSend, conflict: TransactionAlreadySent): void {
    this.sentEventOf(conflict.recordedEventId).then((sent) => {
      if (sent === null) item.reject(conflict);
      else item.resolve(sent);
    }, item.reject);
  }

  /** A send without a guard is queued at once, so sends and exclusive work keep their arrival order. */
  private guarded(request: SendEventRequest, scopedTxnId: string | undefined): Promise<SentEvent> {
    const { guard } = request;
    if (guard === undefined) return this.enqueue(request, scopedTxnId);
    return (async () => {
      const release = await guard();
      try {
        return await this.enqueue(request, scopedTxnId);
      } finally {
        release?.();
      }
    })();
  }

  private enqueue(request: SendEventRequest, scopedTxnId: string | undefined): Promise<SentEvent> {
    return new Promise<SentEvent>((resolve, reject) => {
      this.queue.push(request.roomId, { request, scopedTxnId, resolve, reject });
    });
  }

  private async roomHead(roomId: string): Promise<RoomHead | null> {
    const cached = this.heads.get(roomId);
    if (cached !== undefined) return cached;
    const loaded = await loadRoomHead(this.storage, roomId);
    if (loaded !== null) this.heads.set(roomId, loaded);
    return loaded;
  }

  /**
   * One batch of one room. It ends after its first state event (the state snapshot the next
   * events stand on is only known once that one is stored), and is a single event when the
   * room's state snapshot must be written afresh.
   */
  private takeBatch(pending: PendingSend[], head: RoomHead): PendingSend[] {
    const limit = head.stateSnapshotId === null || pending[0]!.isolated ? 1 : this.maxBatchSize;
    let count = 0;
    while (count < pending.length && count < limit) {
      const request = pending[count]!.request;
      count++;
      if (request.stateKey !== undefined) break;
    }
    return pending.splice(0, count);
  }

  private async runBatch(roomId: string, queued: (PendingSend | ExclusiveTask)[]): Promise<void> {
    const first = queued[0]!;
    if ('exclusive' in first) {
      queued.shift();
      await first.exclusive();
      return;
    }
    // The sends up to the next exclusive task form this round's batch; the rest waits its turn.
    // A copy: whatever is queued while the batch runs (an exclusive task too) must not join it.
    const boundary = queued.findIndex((item) => 'exclusive' in item);
    const pending = queued.slice(0, boundary < 0 ? queued.length : boundary) as PendingSend[];
    const before = pending.length;
    try {
      await this.runSends(roomId, pending);
    } finally {
      // What the batch did not take (or put back for a retry) goes back to the front.
      queued.splice(0, before, ...pending);
    }
  }

  private async runSends(roomId: string, pending: PendingSend[]): Promise<void> {
    // The cached head, without a promise hop: the usual case for a busy room.
    let head: RoomHead | null | undefined = this.heads.get(roomId);
    try {
      head ??= await this.roomHead(roomId);
    } catch (error) {
      for (const item of pending.splice(0)) item.reject(error);
      return;
    }
    if (head === null) {
      for (const item of pending.splice(0)) item.reject(MatrixError.notFound(`Unknown room ${roomId}`));
      return;
    }
    const batch = this.takeBatch(pending, head);

    let freshState: StateMap | undefined;
    try {
      const loading = head.load(this.storage, this.authStateKeys(batch, head.rules));
      if (loading !== undefined) await loading;
      if (head.stateSnapshotId === null) freshState = await this.storage.state.currentState(roomId);
    } catch (error) {
      this.heads.delete(roomId);
      for (const item of batch) item.reject(error);
      return;
    }

    const draft = new RoomDraft(head);
    const accepted: AcceptedSend[] = [];
    for (const item of batch) {
      try {
        const built = buildRoomEvent(
          draft,
          item.request,
          this.signer,
          item.request.originServerTs ?? this.now(),
        );
        draft.accept(built.event);
        accepted.push({ pending: item, built });
      } catch (error) {
        item.reject(error);
      }
    }
    if (accepted.length === 0) return;

    // All but the last are non-state events, so they share the state before the batch.
    const stateBefore: StateSnapshotInput =
      head.stateSnapshotId !== null
        ? { snapshotId: head.stateSnapshotId }
        : { parentSnapshotId: null, delta: { set: freshState! } };
    const writes: Promise<PersistedEvent>[] = [];
    let persisted: PersistedEvent[];
    try {
      await this.storage.transaction((tx) => {
        for (const { pending: item, built } of accepted) {
          const txn = item.request.txn;
          const transaction =
            txn !== undefined && item.scopedTxnId !== undefined
              ? { deviceId: txn.deviceId, txnId: item.scopedTxnId }
              : undefined;
          // The transaction ID first: one already sent fails here, before its event is written.
          if (transaction !== undefined) {
            void tx.transactionIds.recordTransaction(
              item.request.sender,
              transaction.deviceId,
              transaction.txnId,
              built.event.eventId,
              built.event.pdu.origin_server_ts,
            );
          }
          writes.push(this.queuePersist(tx, built.event, built.json, stateBefore, transaction));
        }
      });
      persisted = await Promise.all(writes);
    } catch (error) {
      // Nothing of the batch was kept: the draft is dropped.
      const repeated = error instanceof TransactionAlreadySent ? this.repeatedSend(accepted, error) : -1;
      if (repeated >= 0) {
        // A retry, answered with its first event; the others are built again, without it, as
        // one batch. The head stays when it stands on that event (the common case: the retry
        // comes right after it; reading the head afresh costs a retry three times a send).
        // Otherwise it is read again: the first event may have been sent by another process.
        const conflict = error as TransactionAlreadySent;
        const head = this.heads.get(roomId);
        if (!head?.extremities.some((extremity) => extremity.eventId === conflict.recordedEventId))
          this.heads.delete(roomId);
        const [{ pending: item }] = accepted.splice(repeated, 1) as [AcceptedSend];
        this.answerRecorded(item, conflict);
        pending.unshift(...accepted.map(({ pending: other }) => other));
        return;
      }
      // Any other failure may come from storage the head no longer matches: read it afresh.
      this.heads.delete(roomId);
      if (accepted.length === 1) {
        accepted[0]!.pending.reject(error);
        return;
      }
      // Nothing of the batch was kept. Rebuild each event alone, so that only the send whose
      // write fails (a device deleted meanwhile, a duplicate from another process) is refused.
      const retries = accepted.map(({ pending: item }) => Object.assign(item, { isolated: true }));
      pending.unshift(...retries);
      return;
    }

    draft.commitTo(persisted.at(-1)!.stateAfterSnapshotId);
    accepted.forEach(({ pending: item, built }, i) => {
      const streamOrdering = persisted[i]!.streamOrdering;
      const { txn } = item.request;
      this.announce({
        event: built.event,
        json: built.json,
        streamOrdering,
        ...(txn === undefined ? {} : { txn }),
      });
      item.resolve({ eventId: built.event.eventId, streamOrdering });
    });
  }

  /** Which of the batch's sends is the transaction a CONFLICT names (-1: none). */
  private repeatedSend(accepted: readonly AcceptedSend[], conflict: TransactionAlreadySent): number {
    return accepted.findIndex(
      ({ pending: { request, scopedTxnId } }) =>
        scopedTxnId === conflict.txnId &&
        request.sender === conflict.userId &&
        request.txn?.deviceId === conflict.deviceId,
    );
  }

  /** The current-state entries the batch's auth events and auth checks read. */
  private *authStateKeys(batch: readonly PendingSend[], rules: RoomVersionRules): Iterable<[string, string]> {
    for (const { request } of batch) {
      yield* selectAuthEventKeys(
        { type: request.type, sender: request.sender, state_key: request.stateKey, content: request.content },
        rules,
      );
    }
  }

  private queuePersist(
    tx: WriteTransaction,
    event: RoomEvent,
    json: string,
    stateBefore: StateSnapshotInput,
    transaction?: { readonly deviceId: string; readonly txnId: string },
  ): Promise<PersistedEvent> {
    const { pdu } = event;
    return tx.events.persistEvent({
      event,
      json,
      builtHere: true,
      stateBefore,
      ...(transaction === undefined ? {} : { transaction }),
      currentStateDelta: isStateEvent(pdu)
        ? { set: new Map([[stateTupleKey(pdu.type, pdu.state_key!), event.eventId]]) }
        : undefined,
    });
  }

  private announce(persisted: PersistedRoomEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(persisted);
      } catch (error) {
        this.onListenerError(error, persisted);
      }
    }
  }
}
