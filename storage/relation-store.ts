/**
 * Event relationships (client-server "Forming relationships between events":
 * annotations/reactions, edits, threads, references). Rows are written by
 * EventStore.persistEvent for every accepted timeline event whose content has a
 * valid `m.relates_to` with `rel_type` and `event_id`, and removed when the
 * relating event is redacted.
 */
export interface RelationRecord {
  /** The relating event (the reaction, the edit, the thread reply). */
  readonly eventId: string;
  readonly roomId: string;
  /** The event it relates to. */
  readonly relatesTo: string;
  readonly relType: string;
  readonly eventType: string;
  readonly sender: string;
  /** `m.relates_to.key` for m.annotation; null otherwise. */
  readonly aggregationKey: string | null;
  readonly streamOrdering: number;
  readonly originServerTs: number;
}

export interface RelationQuery {
  readonly relType?: string;
  readonly eventType?: string;
  /** Exclusive stream-ordering bound to continue from (pagination token). */
  readonly from?: number;
  /** Exclusive stream-ordering bound to stop at. */
  readonly to?: number;
  readonly limit: number;
  /** b: newest first (default in the spec), f: oldest first. */
  readonly direction: 'f' | 'b';
}

export interface AnnotationCount {
  readonly eventType: string;
  readonly key: string;
  readonly count: number;
}

export interface ThreadSummary {
  readonly rootEventId: string;
  readonly count: number;
  readonly latestEventId: string;
  readonly latestStreamOrdering: number;
}

export interface RelationStore {
  relationsOf(relatesTo: string, query: RelationQuery): Promise<RelationRecord[]>;
  /**
   * Relations of one rel_type to each of many events in one read, oldest first,
   * at most `limitPerEvent` each; events without any are absent (bundling m.reference per page).
   */
  relationsOfEach(
    eventIds: readonly string[],
    relType: string,
    limitPerEvent: number,
  ): Promise<Map<string, RelationRecord[]>>;
  /** Annotation counts per (event type, key) for each event, keyed by the annotated event ID. */
  annotationCounts(eventIds: readonly string[]): Promise<Map<string, AnnotationCount[]>>;
  /** Whether `sender` already annotated `relatesTo` with (eventType, key) (duplicate reactions are refused). */
  hasAnnotation(relatesTo: string, sender: string, eventType: string, key: string): Promise<boolean>;
  /** m.replace relations of each event (for picking the latest valid edit), oldest first. */
  replacementsOf(eventIds: readonly string[]): Promise<Map<string, RelationRecord[]>>;
  /** Thread summaries (m.thread) for each root, keyed by root event ID; absent when it has no replies. */
  threadSummaries(rootEventIds: readonly string[]): Promise<Map<string, ThreadSummary>>;
  /** Users who sent an m.thread reply to each root (for `current_user_participated`). */
  threadParticipants(rootEventIds: readonly string[]): Promise<Map<string, Set<string>>>;
  /**
   * Thread roots of a room, ordered by their latest reply, newest first, before the
   * exclusive `beforeOrdering` (pagination); only threads `participant` took part in (root or reply) if given.
   */
  threadsOfRoom(
    roomId: string,
    options: { beforeOrdering?: number; limit: number; participant?: string },
  ): Promise<ThreadSummary[]>;
}
