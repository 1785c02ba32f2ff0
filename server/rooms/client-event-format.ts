/**
 * Stored room events as clients see them: the ClientEvent format of the
 * client-server API ("Room Events", "Syncing"): the PDU's federation fields
 * (auth_events, prev_events, hashes, signatures, depth) dropped, and `unsigned`
 * rebuilt for the requester (age, prev_content, redacted_because,
 * transaction_id for the sending device only, bundled m.relations).
 */
import { isStateEvent, type JsonObject, type JsonValue, stateTupleKey } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import type { HomeserverContext } from '../context.js';

export interface ClientEventOptions {
  /** Clock for `unsigned.age`; Date.now() by default. */
  readonly now?: number;
  /** Only for the device that sent the event. */
  readonly transactionId?: string;
  /** The redaction event, already in client format. */
  readonly redactedBecause?: JsonObject;
  /** The bundled aggregations (`unsigned["m.relations"]`). */
  readonly relations?: JsonObject;
  /** Content of the state event this one replaced (state events only). */
  readonly prevContent?: JsonObject;
  readonly prevSender?: string;
  readonly replacesState?: string;
  /** The requester's membership at the event (`unsigned.membership`, spec v1.11). */
  readonly membership?: string;
}

export interface ClientEventRequester {
  readonly userId: string;
  readonly deviceId?: string | null;
}

export function toClientEvent(event: StoredEvent, options: ClientEventOptions = {}): JsonObject {
  const { pdu } = event;
  const clientEvent: JsonObject = {
    content: pdu.content,
    event_id: event.eventId,
    origin_server_ts: pdu.origin_server_ts,
    room_id: event.roomId,
    sender: pdu.sender,
    type: pdu.type,
  };
  if (isStateEvent(pdu)) clientEvent.state_key = pdu.state_key as string;
  // Redactions carry `redacts` at the top level before v11 and in content from
  // v11; clients written for either find it at the top level (as Synapse serves it).
  const redacts = pdu.redacts ?? (pdu.type === 'm.room.redaction' ? pdu.content.redacts : undefined);
  if (typeof redacts === 'string') clientEvent.redacts = redacts;

  const unsigned: JsonObject = { age: Math.max(0, (options.now ?? Date.now()) - pdu.origin_server_ts) };
  const prevContent = options.prevContent ?? storedUnsignedObject(pdu.unsigned, 'prev_content');
  if (prevContent !== undefined) unsigned.prev_content = prevContent;
  const prevSender = options.prevSender ?? storedUnsignedString(pdu.unsigned, 'prev_sender');
  if (prevSender !== undefined) unsigned.prev_sender = prevSender;
  const replacesState = options.replacesState ?? storedUnsignedString(pdu.unsigned, 'replaces_state');
  if (replacesState !== undefined) unsigned.replaces_state = replacesState;
  if (options.membership !== undefined) unsigned.membership = options.membership;
  if (options.transactionId !== undefined) unsigned.transaction_id = options.transactionId;
  if (options.redactedBecause !== undefined) unsigned.redacted_because = options.redactedBecause;
  if (options.relations !== undefined && Object.keys(options.relations).length > 0) {
    unsigned['m.relations'] = options.relations;
  }
  clientEvent.unsigned = unsigned;
  return clientEvent;
}

/**
 * Formats a batch of events for one requester with a fixed number of storage
 * reads whatever the batch size: redactions, the requester's transactions,
 * replaced state (prev_content) and bundled aggregations are each fetched once
 * for the whole batch.
 */
export async function toClientEvents(
  hs: Pick<HomeserverContext, 'storage'> & { readonly relations?: BundledAggregations },
  events: readonly StoredEvent[],
  requester: ClientEventRequester,
  options: { readonly now?: number; readonly bundleAggregations?: boolean } = {},
): Promise<JsonObject[]> {
  if (events.length === 0) return [];
  const now = options.now ?? Date.now();
  const { storage } = hs;

  const [redactionIds, transactions, replaced, relations] = await Promise.all([
    Promise.all(
      events.map((event) => (mayBeRedacted(event) ? storage.events.redactionOf(event.eventId) : null)),
    ),
    requester.deviceId
      ? Promise.all(
          events.map((event) =>
            event.pdu.sender === requester.userId ? storage.events.transactionOfEvent(event.eventId) : null,
          ),
        )
      : Promise.resolve(events.map(() => null)),
    replacedStateEvents(storage, events),
    options.bundleAggregations !== false && hs.relations !== undefined
      ? hs.relations.bundledAggregations(events, requester.userId)
      : Promise.resolve(new Map<string, JsonObject>()),
  ]);

  const redactionEventIds = redactionIds.filter((id): id is string => id !== null);
  const redactions =
    redactionEventIds.length > 0 ? await storage.events.getEvents(redactionEventIds) : new Map();

  return events.map((event, i) => {
    const redactionId = redactionIds[i];
    const redaction = redactionId ? (redactions.get(redactionId) as StoredEvent | undefined) : undefined;
    const txn = transactions[i];
    const previous = replaced.get(event.eventId);
    return toClientEvent(event, {
      now,
      transactionId:
        txn && txn.userId === requester.userId && txn.deviceId === requester.deviceId
          ? clientTxnId(event, txn.txnId)
          : undefined,
      redactedBecause: redaction ? toClientEvent(redaction, { now }) : undefined,
      relations: relations.get(event.eventId),
      prevContent: previous?.pdu.content,
      prevSender: previous?.pdu.sender,
      replacesState: previous?.eventId,
    });
  });
}

/** The part of hs.relations (REL) that formatting needs. */
export interface BundledAggregations {
  bundledAggregations(
    events: readonly StoredEvent[],
    requesterUserId: string,
  ): Promise<Map<string, JsonObject>>;
}

/**
 * For each state event, the state event it replaced (same type and state key in
 * the state before it), for `unsigned.prev_content`. Only those keys are read from
 * each distinct state-before snapshot (a timeline of joins in a big room must not
 * read the whole membership once per join); non-state events cost nothing.
 */
async function replacedStateEvents(
  storage: HomeserverContext['storage'],
  events: readonly StoredEvent[],
): Promise<Map<string, StoredEvent>> {
  const stateEvents = events.filter(
    (event) =>
      isStateEvent(event.pdu) &&
      event.stateBeforeSnapshotId !== null &&
      storedUnsignedObject(event.pdu.unsigned, 'prev_content') === undefined,
  ) as (StoredEvent & { stateBeforeSnapshotId: number })[];
  const keysBySnapshot = new Map<number, string[]>();
  for (const event of stateEvents) {
    const keys = keysBySnapshot.get(event.stateBeforeSnapshotId);
    const key = stateTupleKey(event.pdu.type, event.pdu.state_key as string);
    if (keys === undefined) keysBySnapshot.set(event.stateBeforeSnapshotId, [key]);
    else keys.push(key);
  }
  if (keysBySnapshot.size === 0) return new Map();
  const snapshots = new Map(
    await Promise.all(
      [...keysBySnapshot].map(
        async ([id, keys]) => [id, await storage.state.stateEntriesAtSnapshot(id, keys)] as const,
      ),
    ),
  );
  const replacedIds = new Map<string, string>();
  for (const event of stateEvents) {
    const key = stateTupleKey(event.pdu.type, event.pdu.state_key as string);
    const previousId = snapshots.get(event.stateBeforeSnapshotId)?.get(key);
    if (previousId !== undefined && previousId !== event.eventId) replacedIds.set(event.eventId, previousId);
  }
  if (replacedIds.size === 0) return new Map();
  const previous = await storage.events.getEvents([...new Set(replacedIds.values())]);
  const result = new Map<string, StoredEvent>();
  for (const [eventId, previousId] of replacedIds) {
    const event = previous.get(previousId);
    if (event !== undefined) result.set(eventId, event);
  }
  return result;
}

/**
 * The send path stores transactions scoped by the request path
 * (`<roomId>/<type>/<txnId>`, room-event-sender.ts); the client gets back the
 * `{txnId}` it sent.
 */
function clientTxnId(event: StoredEvent, stored: string): string {
  const scope = `${event.roomId}/${encodeURIComponent(event.pdu.type)}/`;
  return stored.startsWith(scope) ? stored.slice(scope.length) : stored;
}

/**
 * Redaction strips a message's content to nothing (v11+ keeps only a redaction's
 * `redacts`); only state events keep content keys. Events with content left are
 * therefore not redacted and need no lookup.
 */
function mayBeRedacted(event: StoredEvent): boolean {
  const { pdu } = event;
  if (isStateEvent(pdu)) return true;
  const keys = Object.keys(pdu.content);
  return keys.length === 0 || (pdu.type === 'm.room.redaction' && keys.every((key) => key === 'redacts'));
}

function storedUnsignedObject(unsigned: JsonObject | undefined, key: string): JsonObject | undefined {
  const value: JsonValue | undefined = unsigned?.[key];
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
}

function storedUnsignedString(unsigned: JsonObject | undefined, key: string): string | undefined {
  const value = unsigned?.[key];
  return typeof value === 'string' ? value : undefined;
}
