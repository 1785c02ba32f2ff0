/**
 * What other servers may read of our rooms (server-server "Retrieving events", "Backfilling
 * and retrieving missing events", "Room State"), each refused to a server that may not see
 * the room at that point (server-server "Server access to events": a server sees an event
 * when one of its users may, by the room's history visibility).
 */
import { referencedEventIds, stateTupleKey } from '../protocol/events.js';
import { serverNameOfId as serverOf } from '../protocol/identifiers.js';
import { MatrixError } from '../server/errors.js';
import type { StoredEvent } from '../storage/event-store.js';
import type { Storage } from '../storage/storage.js';
import { orderByAuth } from './inbound-pdus.js';

export class PeerReads {
  constructor(private readonly storage: Storage) {}

  /**
   * Whether `server` may see the room at `event` (or now): world_readable rooms to anyone,
   * otherwise a member of that server joined (or, with `invited`/`shared` visibility, invited
   * or joined now).
   */
  async serverMaySee(server: string, roomId: string, event?: StoredEvent): Promise<boolean> {
    return (await this.visibilityFor(server, roomId))(event);
  }

  /**
   * A judge of what `server` may see in the room, for many events in a row: it reads only the
   * history visibility and the server's users' member entries of each event's state (by key,
   * cached per snapshot by the state store), never a whole state.
   */
  private async visibilityFor(
    server: string,
    roomId: string,
  ): Promise<(event?: StoredEvent) => Promise<boolean>> {
    const { storage } = this;
    // The server's users that ever had a membership: the member keys of the current state.
    const currentMembers = await storage.state.currentStateOfType(roomId, 'm.room.member');
    const memberKeys: string[] = [];
    const currentMemberIds: string[] = [];
    for (const [userId, eventId] of currentMembers) {
      if (serverOf(userId) !== server) continue;
      memberKeys.push(stateTupleKey('m.room.member', userId));
      currentMemberIds.push(eventId);
    }
    const values = new Map<string, string>();
    const valuesOf = async (ids: readonly string[], field: string): Promise<string[]> => {
      const missing = ids.filter((id) => !values.has(id));
      if (missing.length > 0) {
        for (const [id, event] of await storage.events.getEvents(missing))
          values.set(id, String(event.pdu.content[field] ?? ''));
      }
      return ids.flatMap((id) => {
        const value = values.get(id);
        return value === undefined ? [] : [value];
      });
    };
    const memberships = (ids: readonly string[]) => valuesOf(ids, 'membership');
    let joinedNow: Promise<boolean> | undefined;
    const isJoinedNow = () => {
      joinedNow ??= memberships(currentMemberIds).then((list) => list.includes('join'));
      return joinedNow;
    };
    const visibilityKey = stateTupleKey('m.room.history_visibility', '');

    return async (event) => {
      let visibilityId: string | undefined;
      let memberIds: string[];
      if (event !== undefined && !event.outlier && event.stateAfterSnapshotId !== null) {
        const entries = await storage.state.stateEntriesAtSnapshot(event.stateAfterSnapshotId, [
          visibilityKey,
          ...memberKeys,
        ]);
        visibilityId = entries.get(visibilityKey);
        memberIds = memberKeys.flatMap((key) => {
          const id = entries.get(key);
          return id === undefined ? [] : [id];
        });
      } else if (event !== undefined && !event.outlier) {
        return false; // no state known at it
      } else {
        const create = await storage.state.currentStateEventId(roomId, 'm.room.create', '');
        if (create === null) return false;
        visibilityId =
          (await storage.state.currentStateEventId(roomId, 'm.room.history_visibility', '')) ?? undefined;
        memberIds = currentMemberIds;
      }
      const [setting] =
        visibilityId === undefined ? [] : await valuesOf([visibilityId], 'history_visibility');
      const visibility = setting === undefined || setting === '' ? 'shared' : setting;
      if (visibility === 'world_readable') return true;
      const allowed = visibility === 'invited' || visibility === 'shared' ? ['join', 'invite'] : ['join'];
      if ((await memberships(memberIds)).some((m) => allowed.includes(m))) return true;
      // shared: members who joined later may read back.
      return visibility === 'shared' && event !== undefined && isJoinedNow();
    };
  }

  private async visibleEvent(
    server: string,
    roomId: string | undefined,
    eventId: string,
  ): Promise<StoredEvent> {
    const event = await this.storage.events.getEvent(eventId);
    if (event === null || (roomId !== undefined && event.roomId !== roomId)) {
      throw MatrixError.notFound(`Unknown event ${eventId}`);
    }
    if (!(await this.serverMaySee(server, event.roomId, event))) {
      throw MatrixError.forbidden(`${server} may not see ${eventId}`);
    }
    return event;
  }

  private async assertInRoom(server: string, roomId: string): Promise<void> {
    const create = await this.storage.state.currentStateEventId(roomId, 'm.room.create', '');
    if (create === null) throw MatrixError.notFound(`Unknown room ${roomId}`);
    if (!(await this.serverMaySee(server, roomId)))
      throw MatrixError.forbidden(`${server} is not in room ${roomId}`);
  }

  /** GET /event/{eventId}. */
  async event(server: string, eventId: string): Promise<StoredEvent> {
    return this.visibleEvent(server, undefined, eventId);
  }

  /** GET /state_ids and /state: the state before the event, and the auth chain of that state. */
  async stateAt(
    server: string,
    roomId: string,
    eventId: string,
  ): Promise<{ state: string[]; authChain: string[] }> {
    await this.visibleEvent(server, roomId, eventId);
    const state = await this.storage.state.stateBeforeEvent(eventId);
    if (state === null) throw MatrixError.notFound(`No state known at ${eventId}`);
    const stateIds = [...state.values()];
    const authChain = await this.storage.events.authChainEventIds(stateIds);
    return { state: stateIds, authChain: [...authChain] };
  }

  /** GET /event_auth/{roomId}/{eventId}: the event's full auth chain. */
  async eventAuth(server: string, roomId: string, eventId: string): Promise<StoredEvent[]> {
    await this.visibleEvent(server, roomId, eventId);
    const ids = await this.storage.events.authChainEventIds([eventId]);
    return orderByAuth([...(await this.storage.events.getEvents([...ids])).values()]);
  }

  async events(ids: readonly string[]): Promise<StoredEvent[]> {
    const found = await this.storage.events.getEvents(ids);
    return ids.map((id) => found.get(id)).filter((e): e is StoredEvent => e !== undefined);
  }

  /**
   * POST /get_missing_events: the events found walking back from `latest_events` through
   * prev_events, stopping at `earliest_events` (which the requester has) and below
   * `min_depth`; at most `limit` (capped at 100), oldest first, only those it may see.
   */
  async missingEvents(
    server: string,
    roomId: string,
    body: { earliest_events: string[]; latest_events: string[]; limit?: number; min_depth?: number },
  ): Promise<StoredEvent[]> {
    await this.assertInRoom(server, roomId);
    const limit = Math.min(Math.max(body.limit ?? 10, 0), 100);
    const minDepth = body.min_depth ?? 0;
    const earliest = new Set(body.earliest_events);
    const seen = new Set<string>([...body.latest_events, ...earliest]);
    const latest = await this.storage.events.getEvents(body.latest_events);
    let frontier: string[] = [];
    for (const event of latest.values()) {
      if (event.roomId === roomId) frontier.push(...referencedEventIds(event.pdu.prev_events));
    }
    const maySee = await this.visibilityFor(server, roomId);
    const found: StoredEvent[] = [];
    while (frontier.length > 0 && found.length < limit) {
      const next: string[] = [];
      const batch = await this.storage.events.getEvents(frontier.filter((id) => !seen.has(id)));
      for (const id of frontier) {
        if (seen.has(id)) continue;
        seen.add(id);
        const event = batch.get(id);
        if (event === undefined || event.roomId !== roomId || event.pdu.depth < minDepth) continue;
        if (found.length >= limit) break;
        if (!(await maySee(event))) continue;
        found.push(event);
        next.push(...referencedEventIds(event.pdu.prev_events));
      }
      frontier = next;
    }
    return found.sort((a, b) => a.pdu.depth - b.pdu.depth);
  }

  /** GET /backfill: from the given events (included) back through prev_events, at most `limit`. */
  async backfill(
    server: string,
    roomId: string,
    from: readonly string[],
    limit: number,
  ): Promise<StoredEvent[]> {
    await this.assertInRoom(server, roomId);
    const cap = Math.min(Math.max(limit, 0), 100);
    const seen = new Set<string>();
    let frontier = [...from];
    const maySee = await this.visibilityFor(server, roomId);
    const found: StoredEvent[] = [];
    while (frontier.length > 0 && found.length < cap) {
      const batch = await this.storage.events.getEvents(frontier.filter((id) => !seen.has(id)));
      const next: string[] = [];
      for (const id of frontier) {
        if (seen.has(id) || found.length >= cap) continue;
        seen.add(id);
        const event = batch.get(id);
        if (event === undefined || event.roomId !== roomId) continue;
        if (!(await maySee(event))) continue;
        found.push(event);
        next.push(...referencedEventIds(event.pdu.prev_events));
      }
      frontier = next;
    }
    return found.sort((a, b) => b.pdu.depth - a.pdu.depth);
  }

  /** GET /timestamp_to_event. */
  async timestampToEvent(server: string, roomId: string, ts: number, dir: 'f' | 'b'): Promise<StoredEvent> {
    await this.assertInRoom(server, roomId);
    const event = await this.storage.events.closestEventByTimestamp(roomId, ts, dir);
    if (event === null)
      throw MatrixError.notFound(`No event found ${dir === 'f' ? 'after' : 'before'} ${ts}`);
    return event;
  }
}
