/**
 * Events by ID through a cache of immutable events (state and membership events
 * that many syncs read again): the cache answers what it holds, storage the rest,
 * in chunks that keep each SQL statement's parameter list bounded.
 */
import type { EventReader, StoredEvent } from '../../storage/event-store.js';

const GET_EVENTS_CHUNK = 500;

export interface EventCache {
  get(eventId: string): StoredEvent | undefined;
  set(eventId: string, event: StoredEvent): unknown;
}

/** The events found (unknown IDs are absent); what storage supplied is added to the cache. */
export async function eventsThroughCache(
  cache: EventCache,
  events: Pick<EventReader, 'getEvents'>,
  eventIds: Iterable<string>,
): Promise<Map<string, StoredEvent>> {
  const found = new Map<string, StoredEvent>();
  const missing: string[] = [];
  for (const eventId of eventIds) {
    const cached = cache.get(eventId);
    if (cached !== undefined) found.set(eventId, cached);
    else missing.push(eventId);
  }
  for (let start = 0; start < missing.length; start += GET_EVENTS_CHUNK) {
    const loaded = await events.getEvents(missing.slice(start, start + GET_EVENTS_CHUNK));
    for (const [eventId, event] of loaded) {
      found.set(eventId, event);
      cache.set(eventId, event);
    }
  }
  return found;
}
