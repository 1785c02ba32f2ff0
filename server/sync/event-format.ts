/**
 * Events as a sync response carries them: ClientEventWithoutRoomID (or the raw
 * PDU for event_format federation), `unsigned.transaction_id` for the device that
 * sent them only, `event_fields` applied. A timeline slice shared by many members
 * is formatted once (with nobody's transaction IDs) and copied per user with
 * their own `age` and `transaction_id`, unless its aggregations depend on who
 * asks (thread participation), then it is formatted per user.
 */
import type { JsonObject } from '../../protocol/events.js';
import type { StoredEvent } from '../../storage/event-store.js';
import { toClientEvent, toClientEvents } from '../rooms/client-event-format.js';
import { selectEventFields } from '../rooms/event-filter.js';
import type { SyncDeps, SyncRequest } from './sync-context.js';
import type { TimelineSlice } from './sync-reads.js';

const NOBODY = { userId: '', deviceId: null };

export class SharedEventFormatting {
  private readonly formatted = new WeakMap<TimelineSlice, Promise<Map<string, JsonObject> | null>>();

  /** The slice's events formatted for nobody in particular; null when they must be formatted per user. */
  forSlice(deps: SyncDeps, slice: TimelineSlice, now: number): Promise<Map<string, JsonObject> | null> {
    let formatting = this.formatted.get(slice);
    if (formatting === undefined) {
      formatting = toClientEvents(deps.hs, slice.events, NOBODY, { now }).then((events) => {
        const byId = new Map<string, JsonObject>();
        for (const event of events) {
          if (dependsOnRequester(event)) return null;
          byId.set(event.event_id as string, event);
        }
        return byId;
      });
      this.formatted.set(slice, formatting);
    }
    return formatting;
  }
}

function dependsOnRequester(event: JsonObject): boolean {
  const relations = (event.unsigned as JsonObject | undefined)?.['m.relations'] as JsonObject | undefined;
  return relations?.['m.thread'] !== undefined;
}

/** Timeline events for the requester; `shared` is the slice they came from, when formatting may be shared. */
export async function formatTimelineEvents(
  deps: SyncDeps,
  request: SyncRequest,
  events: readonly StoredEvent[],
  shared?: { readonly slice: TimelineSlice; readonly formatting: SharedEventFormatting },
): Promise<JsonObject[]> {
  if (events.length === 0) return [];
  if (request.filter.eventFormat === 'federation')
    return events.map((event) => withFields(request, rawPdu(event)));
  const { userId, deviceId } = request.requester;
  const transactions = deviceId === null ? new Map() : await deps.reads.transactionsOf(events, userId);

  let formatted: JsonObject[] | undefined;
  if (shared !== undefined) {
    const byId = await shared.formatting.forSlice(deps, shared.slice, request.now);
    if (byId !== null && events.every((event) => byId.has(event.eventId))) {
      formatted = events.map((event) => {
        const base = byId.get(event.eventId)!;
        const unsigned: JsonObject = { ...(base.unsigned as JsonObject) };
        unsigned.age = Math.max(0, request.now - event.pdu.origin_server_ts);
        return { ...base, unsigned };
      });
    }
  }
  formatted ??= await toClientEvents(deps.hs, events, { userId, deviceId: null }, { now: request.now });

  return formatted.map((event, i) => {
    const txn = transactions.get(events[i]!.eventId);
    if (txn !== undefined && txn.deviceId === deviceId) {
      event.unsigned = { ...(event.unsigned as JsonObject), transaction_id: txn.txnId };
    }
    delete event.room_id;
    return withFields(request, event);
  });
}

/** State events (the `state` section, stripped of room_id); no aggregations, no transaction IDs. */
export function formatStateEvents(request: SyncRequest, events: readonly StoredEvent[]): JsonObject[] {
  return events.map((event) => {
    if (request.filter.eventFormat === 'federation') return withFields(request, rawPdu(event));
    const formatted = toClientEvent(event, { now: request.now });
    delete formatted.room_id;
    return withFields(request, formatted);
  });
}

function rawPdu(event: StoredEvent): JsonObject {
  return JSON.parse(event.json) as JsonObject;
}

function withFields(request: SyncRequest, event: JsonObject): JsonObject {
  const fields = request.filter.eventFields;
  return fields === undefined ? event : selectEventFields(event, fields);
}
