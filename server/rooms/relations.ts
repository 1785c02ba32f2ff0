/**
 * Event relationships (client-server "Forming relationships between events" and
 * the modules Event annotations, Event replacements, Threading, Reference
 * relations): the checks a local client's relating event must pass before it is
 * sent, the bundled aggregations served in `unsigned["m.relations"]`, and the
 * paginated /relations and /threads listings.
 *
 * Relation rows come from storage.relations, written by persistEvent for every
 * accepted timeline event with a well-formed `m.relates_to` and removed when the
 * relating event is redacted, so redacted reactions and edits drop out here.
 */
import { isStateEvent, type JsonObject, type JsonValue } from '../../protocol/events.js';
import { redactEvent } from '../../protocol/redaction.js';
import { roomVersionRules } from '../../protocol/room-versions.js';
import type { StoredEvent } from '../../storage/event-store.js';
import type { RelationRecord } from '../../storage/relation-store.js';
import type { Storage } from '../../storage/storage.js';
import { MatrixError } from '../errors.js';
import { type ClientEventRequester, toClientEvent, toClientEvents } from './client-event-format.js';
import type { HistoryVisibility } from './history-visibility.js';
import { encodeTimelineToken, parseTimelineToken } from './pagination-token.js';

export const REL_ANNOTATION = 'm.annotation';
export const REL_REPLACE = 'm.replace';
export const REL_THREAD = 'm.thread';
export const REL_REFERENCE = 'm.reference';

/** Synapse refuses longer reaction keys; the spec sets no bound. */
const MAX_ANNOTATION_KEY_LENGTH = 500;
/** How many reference children one bundle lists (the spec sets no bound; this keeps events small). */
const MAX_BUNDLED_REFERENCES = 100;
/** "Homeservers SHOULD traverse at least 3 levels of relationships" (relations.yaml `recurse`). */
export const MAX_RECURSION_DEPTH = 3;
/** How many descendants a recursive /relations request examines at most. */
const MAX_RECURSIVE_DESCENDANTS = 10_000;
const MAX_RELATIONS_PER_PAGE = 100;
const NO_ONE: ReadonlySet<string> = new Set();
/** Rooms created here are always recorded; for one that is not, the redaction rules of v11+. */
const DEFAULT_ROOM_VERSION_FOR_REDACTION = '11';
const DEFAULT_RELATIONS_PER_PAGE = 50;
const MAX_THREADS_PER_PAGE = 100;
const DEFAULT_THREADS_PER_PAGE = 20;

/** The cleartext `m.relates_to` of an event's content, when it names a relationship type and a parent. */
export interface RelatesTo {
  readonly relType: string;
  readonly eventId: string;
  /** `key` of an m.annotation. */
  readonly key: JsonValue | undefined;
}

export function relatesToOf(content: JsonObject): RelatesTo | null {
  const relatesTo = content['m.relates_to'];
  if (relatesTo === null || typeof relatesTo !== 'object' || Array.isArray(relatesTo)) return null;
  const relType = relatesTo.rel_type;
  const eventId = relatesTo.event_id;
  if (typeof relType !== 'string' || typeof eventId !== 'string') return null;
  return { relType, eventId, key: relatesTo.key };
}

export interface RelationServiceOptions {
  readonly storage: Storage;
  /** History visibility (hs.historyVisibility), read lazily because it is composed beside this service. */
  readonly visibility: () => HistoryVisibility;
  readonly now?: () => number;
}

export interface RelationsPageRequest {
  readonly relType?: string;
  readonly eventType?: string;
  readonly from?: string;
  readonly to?: string;
  readonly limit?: number;
  readonly dir?: 'f' | 'b';
  readonly recurse?: boolean;
}

export interface RelationsPage {
  chunk: JsonObject[];
  next_batch?: string;
  prev_batch?: string;
  recursion_depth?: number;
}

export interface ThreadsPageRequest {
  readonly include?: 'all' | 'participated';
  readonly from?: string;
  readonly limit?: number;
}

export interface ThreadsPage {
  chunk: JsonObject[];
  next_batch?: string;
}

export interface RelationService {
  /**
   * The server-side checks on a relating event a local user is about to send;
   * throws a MatrixError when it must be refused. Costs nothing for events
   * without a cleartext `m.relates_to`. `stateKey` is given for state events.
   * An annotation stays claimed until the returned release is called (when its send
   * has settled), so that concurrent duplicates are refused too: use it as the
   * send's `guard` (room-event-sender.ts).
   */
  checkNewRelation(
    roomId: string,
    sender: string,
    eventType: string,
    content: JsonObject,
    stateKey?: string | null,
  ): Promise<(() => void) | undefined>;
  /** `unsigned["m.relations"]` for each of `events` that has any, keyed by event ID (batched reads). */
  bundledAggregations(
    events: readonly StoredEvent[],
    requesterUserId: string,
  ): Promise<Map<string, JsonObject>>;
  /** GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]. */
  relations(
    requester: ClientEventRequester,
    roomId: string,
    eventId: string,
    request: RelationsPageRequest,
  ): Promise<RelationsPage>;
  /** GET /rooms/{roomId}/threads. */
  threads(requester: ClientEventRequester, roomId: string, request: ThreadsPageRequest): Promise<ThreadsPage>;
}

export function createRelationService(options: RelationServiceOptions): RelationService {
  return new Relations(options);
}

class Relations implements RelationService {
  private readonly storage: Storage;
  private readonly visibility: () => HistoryVisibility;
  private readonly now: () => number;
  /** Annotations checked and being sent (claimAnnotation). */
  private readonly annotationsInFlight = new Set<string>();

  constructor(options: RelationServiceOptions) {
    this.storage = options.storage;
    this.visibility = options.visibility;
    this.now = options.now ?? Date.now;
  }

  async checkNewRelation(
    roomId: string,
    sender: string,
    eventType: string,
    content: JsonObject,
    stateKey?: string | null,
  ): Promise<(() => void) | undefined> {
    const relation = relatesToOf(content);
    if (relation === null) return undefined;

    // "both events are in the same room" (Forming relationships between events).
    // Like Synapse, a parent we do not hold is accepted only when others already relate to it.
    const parent = await this.storage.events.getEvent(relation.eventId);
    if (parent === null || parent.outlier || parent.rejectionReason !== null) {
      const known = await this.storage.relations.relationsOf(relation.eventId, { limit: 1, direction: 'b' });
      if (known.length === 0 || known[0]?.roomId !== roomId) {
        throw MatrixError.of('M_UNKNOWN', `Cannot send a relation to an unknown event ${relation.eventId}.`);
      }
      if (relation.relType === REL_REPLACE) {
        throw MatrixError.invalidParam('The event to replace is unknown to this server.');
      }
      if (relation.relType === REL_ANNOTATION) return this.claimAnnotation(relation, sender, eventType);
      return undefined;
    }
    if (parent.roomId !== roomId) {
      throw MatrixError.of('M_UNKNOWN', 'A relation must be in the same room as the event it relates to.');
    }

    switch (relation.relType) {
      case REL_ANNOTATION:
        return this.claimAnnotation(relation, sender, eventType);
      case REL_REPLACE:
        checkReplacement(parent, sender, eventType, content, stateKey);
        return undefined;
      case REL_THREAD:
        // Threading "Validation of m.thread relationships": no thread off an event that
        // is itself a relation; no errcode exists, the spec says M_UNKNOWN with 400.
        if (relatesToOf(parent.pdu.content) !== null) {
          throw MatrixError.of('M_UNKNOWN', 'Cannot start a thread from an event with a relation.');
        }
        return undefined;
      default:
        return undefined;
    }
  }

  /**
   * Event annotations "Avoiding duplicate annotations". The annotation is claimed in
   * memory before storage is asked, with no await in between, so of two identical
   * reactions sent at once exactly one passes; the claim lasts until its send settles
   * (the returned release), after which storage knows it.
   */
  private async claimAnnotation(relation: RelatesTo, sender: string, eventType: string): Promise<() => void> {
    const key = relation.key;
    if (typeof key !== 'string') {
      throw MatrixError.invalidParam('An m.annotation relation needs a string `key`.');
    }
    if (key.length > MAX_ANNOTATION_KEY_LENGTH) {
      throw MatrixError.invalidParam(
        `An annotation key may be at most ${MAX_ANNOTATION_KEY_LENGTH} characters.`,
      );
    }
    const duplicate = () =>
      MatrixError.of('M_DUPLICATE_ANNOTATION', 'You already sent this annotation to this event.');
    const claim = JSON.stringify([relation.eventId, sender, eventType, key]);
    if (this.annotationsInFlight.has(claim)) throw duplicate();
    this.annotationsInFlight.add(claim);
    const release = () => {
      this.annotationsInFlight.delete(claim);
    };
    try {
      if (await this.storage.relations.hasAnnotation(relation.eventId, sender, eventType, key))
        throw duplicate();
    } catch (error) {
      release();
      throw error;
    }
    return release;
  }

  async bundledAggregations(
    events: readonly StoredEvent[],
    requesterUserId: string,
  ): Promise<Map<string, JsonObject>> {
    // "State events do not currently receive bundled aggregations."
    const parents = events.filter((event) => !isStateEvent(event.pdu) && !event.outlier);
    const result = new Map<string, JsonObject>();
    if (parents.length === 0) return result;
    const ids = parents.map((event) => event.eventId);
    const { relations } = this.storage;
    const [threadSummaries, replacements, references] = await Promise.all([
      relations.threadSummaries(ids),
      relations.replacementsOf(ids),
      this.referencesOf(ids),
    ]);
    if (threadSummaries.size === 0 && replacements.size === 0 && references.size === 0) return result;
    const now = this.now();
    // Ignored users matter to thread and reference aggregations only (an edit's sender is the original's).
    const ignored =
      threadSummaries.size > 0 || references.size > 0 ? await this.ignoredUsers(requesterUserId) : NO_ONE;

    const threads = await this.threadAggregations(parents, threadSummaries, ignored, requesterUserId);
    // "child events of the latest_event should themselves be aggregated": their edits.
    const latestEvents = [...threads.values()].map((thread) => thread.latest);
    if (latestEvents.length > 0) {
      const latestReplacements = await relations.replacementsOf(latestEvents.map((event) => event.eventId));
      for (const [eventId, records] of latestReplacements) replacements.set(eventId, records);
    }
    const edits = await this.latestEdits([...parents, ...latestEvents], replacements);

    const aggregationOf = (event: StoredEvent): JsonObject => {
      const aggregation: JsonObject = {};
      const edit = edits.get(event.eventId);
      if (edit !== undefined) aggregation[REL_REPLACE] = toClientEvent(edit, { now });
      return aggregation;
    };

    for (const parent of parents) {
      const aggregation = aggregationOf(parent);
      const thread = threads.get(parent.eventId);
      if (thread !== undefined) {
        const latestRelations = aggregationOf(thread.latest);
        aggregation[REL_THREAD] = {
          latest_event: toClientEvent(thread.latest, { now, relations: latestRelations }),
          count: thread.count,
          current_user_participated: thread.participated,
        };
      }
      const referencing = (references.get(parent.eventId) ?? []).filter(
        (record) => !ignored.has(record.sender),
      );
      if (referencing.length > 0) {
        aggregation[REL_REFERENCE] = { chunk: referencing.map((record) => ({ event_id: record.eventId })) };
      }
      if (Object.keys(aggregation).length > 0) result.set(parent.eventId, aggregation);
    }
    return result;
  }

  /** Count, latest reply (visible, not from an ignored user) and the requester's participation per thread root. */
  private async threadAggregations(
    parents: readonly StoredEvent[],
    summaries: Map<string, { count: number; latestEventId: string }>,
    ignored: ReadonlySet<string>,
    requesterUserId: string,
  ): Promise<Map<string, { latest: StoredEvent; count: number; participated: boolean }>> {
    const roots = parents.filter((parent) => summaries.has(parent.eventId));
    const result = new Map<string, { latest: StoredEvent; count: number; participated: boolean }>();
    if (roots.length === 0) return result;
    const rootIds = roots.map((root) => root.eventId);

    const counts = new Map<string, number>();
    const latestIds = new Map<string, string>();
    if (ignored.size === 0) {
      for (const [rootId, summary] of summaries) {
        counts.set(rootId, summary.count);
        latestIds.set(rootId, summary.latestEventId);
      }
    } else {
      // Threading: count and latest_event leave out ignored users; rare, so recount those threads.
      await Promise.all(
        rootIds.map(async (rootId) => {
          const replies = await this.storage.relations.relationsOf(rootId, {
            relType: REL_THREAD,
            limit: Number.MAX_SAFE_INTEGER,
            direction: 'b',
          });
          const kept = replies.filter((reply) => !ignored.has(reply.sender));
          if (kept.length === 0) return;
          counts.set(rootId, kept.length);
          latestIds.set(rootId, kept[0]!.eventId);
        }),
      );
    }

    const [participants, latestById] = await Promise.all([
      this.storage.relations.threadParticipants(rootIds),
      this.storage.events.getEvents([...new Set(latestIds.values())]),
    ]);
    // Sync formats a timeline once for every member with no requester (''), then again
    // per member each event that carries an m.thread bundle; only a real user's view is filtered.
    const visibleLatest =
      requesterUserId === '' ? latestById : await this.visibleTo(requesterUserId, [...latestById.values()]);
    for (const root of roots) {
      const latestId = latestIds.get(root.eventId);
      const latest = latestId === undefined ? undefined : visibleLatest.get(latestId);
      if (latest === undefined) continue;
      result.set(root.eventId, {
        latest,
        count: counts.get(root.eventId) ?? 0,
        participated:
          root.pdu.sender === requesterUserId ||
          (participants.get(root.eventId)?.has(requesterUserId) ?? false),
      });
    }
    return result;
  }

  /**
   * Event replacements "Server-side aggregation of m.replace relationships": the most
   * recent valid replacement (origin_server_ts, then the largest event ID), none for a
   * redacted original. The same for every requester (as Synapse): an edit revises an
   * event the requester already sees, so sync can share one formatting among members.
   */
  private async latestEdits(
    originals: readonly StoredEvent[],
    replacements: ReadonlyMap<string, readonly RelationRecord[]>,
  ): Promise<Map<string, StoredEvent>> {
    // Validity of replacement events: same sender, same type, no state events, the
    // original not itself an edit (m.new_content is checked once the edit is read).
    const candidates = new Map<string, RelationRecord[]>();
    for (const original of originals) {
      const records = replacements.get(original.eventId);
      if (records === undefined || records.length === 0) continue;
      if (isStateEvent(original.pdu) || relatesToOf(original.pdu.content)?.relType === REL_REPLACE) continue;
      const valid = records
        .filter((record) => record.sender === original.pdu.sender && record.eventType === original.pdu.type)
        .sort(newestFirst);
      if (valid.length > 0) candidates.set(original.eventId, valid);
    }
    if (candidates.size === 0) return new Map();

    const redacted = await this.redactedAmong(
      originals.filter((original) => candidates.has(original.eventId)),
    );
    for (const eventId of redacted) candidates.delete(eventId);

    const result = new Map<string, StoredEvent>();
    const originalById = new Map(originals.map((original) => [original.eventId, original]));
    // Most edits are valid: one read of every newest candidate; a candidate found
    // invalid (it came over federation) costs another round for that original only.
    let pending = [...candidates.keys()];
    while (pending.length > 0) {
      const wanted = pending.map((eventId) => candidates.get(eventId)!.shift()!);
      const read = await this.storage.events.getEvents(wanted.map((record) => record.eventId));
      const next: string[] = [];
      pending.forEach((originalId, i) => {
        const edit = read.get(wanted[i]!.eventId);
        const original = originalById.get(originalId)!;
        if (edit !== undefined && isValidReplacement(original, edit)) result.set(originalId, edit);
        else if ((candidates.get(originalId)?.length ?? 0) > 0) next.push(originalId);
      });
      pending = next;
    }
    return result;
  }

  async relations(
    requester: ClientEventRequester,
    roomId: string,
    eventId: string,
    request: RelationsPageRequest,
  ): Promise<RelationsPage> {
    const requesterUserId = requester.userId;
    const parent = await this.storage.events.getEvent(eventId);
    if (
      parent === null ||
      parent.roomId !== roomId ||
      parent.outlier ||
      parent.rejectionReason !== null ||
      !(await this.canSee(requesterUserId, parent))
    ) {
      throw MatrixError.notFound('Event not found.');
    }
    const dir = request.dir ?? 'b';
    const limit = clampLimit(request.limit, DEFAULT_RELATIONS_PER_PAGE, MAX_RELATIONS_PER_PAGE);
    const from = request.from === undefined ? undefined : parseTimelineToken(request.from, 'from');
    const to = request.to === undefined ? undefined : parseTimelineToken(request.to, 'to');

    // Tokens are timeline positions (pagination-token.ts), between the events at T
    // and T+1: backwards from T includes T, forwards from T starts after it; /sync
    // and /messages tokens are positions of the same stream and work here too.
    const bounds =
      dir === 'b'
        ? { from: from === undefined ? undefined : from + 1, to }
        : { from, to: to === undefined ? undefined : to + 1 };

    const depth = request.recurse === true ? MAX_RECURSION_DEPTH : 1;
    const { records, more } = await this.relatedRecords(eventId, depth, {
      relType: request.relType,
      eventType: request.eventType,
      from: bounds.from,
      to: bounds.to,
      limit,
      direction: dir,
    });

    const ignored = await this.ignoredUsers(requesterUserId);
    const read = await this.storage.events.getEvents(records.map((record) => record.eventId));
    const ordered = records
      .filter((record) => !ignored.has(record.sender))
      .map((record) => read.get(record.eventId))
      .filter((event): event is StoredEvent => event !== undefined);
    const visible = await this.visibleTo(requesterUserId, ordered);
    const events = ordered.filter((event) => visible.has(event.eventId));
    const chunk = await this.format(events, requester);

    const page: RelationsPage = { chunk };
    const last = records.at(-1);
    if (more && last !== undefined) {
      page.next_batch = encodeTimelineToken(dir === 'b' ? last.streamOrdering - 1 : last.streamOrdering);
    }
    if (request.from !== undefined) page.prev_batch = request.from;
    if (request.recurse !== undefined) page.recursion_depth = depth;
    return page;
  }

  /**
   * Relations of `eventId` down to `depth` levels, merged in stream order and cut
   * at `limit`; `more` tells whether anything was left beyond the page.
   */
  private async relatedRecords(
    eventId: string,
    depth: number,
    query: {
      relType: string | undefined;
      eventType: string | undefined;
      from: number | undefined;
      to: number | undefined;
      limit: number;
      direction: 'f' | 'b';
    },
  ): Promise<{ records: RelationRecord[]; more: boolean }> {
    const { relations } = this.storage;
    const filtered = { ...query, limit: query.limit + 1 };
    if (depth <= 1) {
      const records = await relations.relationsOf(eventId, filtered);
      return { records: records.slice(0, query.limit), more: records.length > query.limit };
    }
    // Recursion walks every relation (whatever its type) to find the descendants;
    // the relType and eventType filters apply to what is returned. At most
    // MAX_RECURSIVE_DESCENDANTS are examined, so one huge thread cannot stall the server.
    const found: RelationRecord[] = [];
    let frontier = [eventId];
    const seen = new Set<string>([eventId]);
    for (let level = 1; level <= depth && frontier.length > 0; level++) {
      const parents = frontier;
      frontier = [];
      for (const parentId of parents) {
        const room = MAX_RECURSIVE_DESCENDANTS - found.length;
        if (room <= 0) break;
        for (const child of await relations.relationsOf(parentId, { limit: room, direction: 'f' })) {
          if (seen.has(child.eventId)) continue;
          seen.add(child.eventId);
          frontier.push(child.eventId);
          found.push(child);
        }
      }
    }
    const sign = query.direction === 'b' ? -1 : 1;
    const selected = found
      .filter(
        (record) =>
          (query.relType === undefined || record.relType === query.relType) &&
          (query.eventType === undefined || record.eventType === query.eventType) &&
          withinBounds(record.streamOrdering, query.from, query.to, query.direction),
      )
      .sort((a, b) => sign * (a.streamOrdering - b.streamOrdering));
    return { records: selected.slice(0, query.limit), more: selected.length > query.limit };
  }

  async threads(
    requester: ClientEventRequester,
    roomId: string,
    request: ThreadsPageRequest,
  ): Promise<ThreadsPage> {
    const requesterUserId = requester.userId;
    if ((await this.visibility().roomReadAccess(requesterUserId, roomId)) === null) {
      throw MatrixError.forbidden('You are not allowed to view this room.');
    }
    const limit = clampLimit(request.limit, DEFAULT_THREADS_PER_PAGE, MAX_THREADS_PER_PAGE);
    const beforeOrdering = request.from === undefined ? undefined : parseTimelineToken(request.from) + 1;
    const summaries = await this.storage.relations.threadsOfRoom(roomId, {
      beforeOrdering,
      limit: limit + 1,
      participant: request.include === 'participated' ? requesterUserId : undefined,
    });
    const page = summaries.slice(0, limit);
    const rootsById = await this.storage.events.getEvents(page.map((summary) => summary.rootEventId));
    const roots = page
      .map((summary) => rootsById.get(summary.rootEventId))
      .filter((root): root is StoredEvent => root !== undefined);
    const [visible, ignored] = await Promise.all([
      this.visibleTo(requesterUserId, roots),
      this.ignoredUsers(requesterUserId),
    ]);
    const shown = roots.filter((root) => visible.has(root.eventId));
    const chunk = await this.format(await this.redactIgnoredRoots(shown, ignored), requester);
    const result: ThreadsPage = { chunk };
    const last = page.at(-1);
    if (summaries.length > limit && last !== undefined)
      result.next_batch = encodeTimelineToken(last.latestStreamOrdering - 1);
    return result;
  }

  /**
   * threads_list.yaml: "If the thread root event was sent by an ignored user, the
   * event is returned redacted to the caller."
   */
  private async redactIgnoredRoots(
    roots: readonly StoredEvent[],
    ignored: ReadonlySet<string>,
  ): Promise<StoredEvent[]> {
    if (!roots.some((root) => ignored.has(root.pdu.sender))) return [...roots];
    const room = await this.storage.rooms.getRoom(roots[0]!.roomId);
    const rules = roomVersionRules(room?.roomVersion ?? DEFAULT_ROOM_VERSION_FOR_REDACTION);
    return roots.map((root) =>
      ignored.has(root.pdu.sender) ? { ...root, pdu: redactEvent(root.pdu, rules) } : root,
    );
  }

  /** Client events as every read route serves them (RR2's formatter), with their bundled aggregations. */
  private format(events: readonly StoredEvent[], requester: ClientEventRequester): Promise<JsonObject[]> {
    return toClientEvents({ storage: this.storage, relations: this }, events, requester, { now: this.now() });
  }

  /** m.reference children of each event, oldest first (one read for the whole page). */
  private referencesOf(eventIds: readonly string[]): Promise<Map<string, RelationRecord[]>> {
    return this.storage.relations.relationsOfEach(eventIds, REL_REFERENCE, MAX_BUNDLED_REFERENCES);
  }

  private async ignoredUsers(userId: string): Promise<ReadonlySet<string>> {
    const entry = await this.storage.accountData.getAccountData(userId, null, 'm.ignored_user_list');
    const ignored = entry?.content.ignored_users;
    if (ignored === null || typeof ignored !== 'object' || Array.isArray(ignored)) return new Set();
    return new Set(Object.keys(ignored));
  }

  /** Which of the redacted-looking originals really are redacted (redaction empties a message's content). */
  private async redactedAmong(originals: readonly StoredEvent[]): Promise<Set<string>> {
    const suspects = originals.filter((original) => Object.keys(original.pdu.content).length === 0);
    const redactions = await Promise.all(
      suspects.map((original) => this.storage.events.redactionOf(original.eventId)),
    );
    return new Set(suspects.filter((_, i) => redactions[i] !== null).map((original) => original.eventId));
  }

  /** The events among `events` the user may see, keyed by event ID (grouped per room). */
  private async visibleTo(userId: string, events: readonly StoredEvent[]): Promise<Map<string, StoredEvent>> {
    const byRoom = new Map<string, StoredEvent[]>();
    for (const event of events) {
      const list = byRoom.get(event.roomId);
      if (list === undefined) byRoom.set(event.roomId, [event]);
      else list.push(event);
    }
    const visibility = this.visibility();
    const result = new Map<string, StoredEvent>();
    await Promise.all(
      [...byRoom].map(async ([roomId, roomEvents]) => {
        const visible = await visibility.filterVisibleEvents(userId, roomId, roomEvents);
        for (const event of visible) result.set(event.eventId, event);
      }),
    );
    return result;
  }

  private canSee(userId: string, event: StoredEvent): Promise<boolean> {
    return this.visibility().canSeeEvent(userId, event);
  }
}

/** Event replacements "Validity of replacement events" as seen at send time; refused with M_INVALID_PARAM. */
function checkReplacement(
  original: StoredEvent,
  sender: string,
  eventType: string,
  content: JsonObject,
  stateKey: string | null | undefined,
): void {
  if (original.pdu.sender !== sender) {
    throw MatrixError.invalidParam('Only the sender of an event may replace it.');
  }
  if (original.pdu.type !== eventType) {
    throw MatrixError.invalidParam('A replacement must have the same type as the event it replaces.');
  }
  if (isStateEvent(original.pdu) || (stateKey !== undefined && stateKey !== null)) {
    throw MatrixError.invalidParam('State events cannot be replaced or be replacements.');
  }
  if (relatesToOf(original.pdu.content)?.relType === REL_REPLACE) {
    throw MatrixError.invalidParam('An edit cannot be replaced; replace the original event instead.');
  }
  // Encrypted edits carry m.new_content inside the ciphertext.
  if (eventType !== 'm.room.encrypted' && !isObject(content['m.new_content'])) {
    throw MatrixError.invalidParam('A replacement needs an `m.new_content` object.');
  }
}

function isValidReplacement(original: StoredEvent, edit: StoredEvent): boolean {
  if (edit.roomId !== original.roomId || isStateEvent(edit.pdu)) return false;
  if (edit.pdu.sender !== original.pdu.sender || edit.pdu.type !== original.pdu.type) return false;
  return edit.pdu.type === 'm.room.encrypted' || isObject(edit.pdu.content['m.new_content']);
}

function newestFirst(a: RelationRecord, b: RelationRecord): number {
  if (a.originServerTs !== b.originServerTs) return b.originServerTs - a.originServerTs;
  return a.eventId < b.eventId ? 1 : a.eventId > b.eventId ? -1 : 0;
}

function withinBounds(
  ordering: number,
  from: number | undefined,
  to: number | undefined,
  dir: 'f' | 'b',
): boolean {
  if (dir === 'b') return (from === undefined || ordering < from) && (to === undefined || ordering > to);
  return (from === undefined || ordering > from) && (to === undefined || ordering < to);
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function clampLimit(limit: number | undefined, fallback: number, max: number): number {
  if (limit === undefined) return fallback;
  return Math.max(1, Math.min(max, Math.floor(limit)));
}
