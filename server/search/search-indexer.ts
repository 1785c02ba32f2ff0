/**
 * Keeps the search index in step with the room event stream, off the send
 * path: persisted events only wake it, and it then reads every accepted
 * timeline event after the index's recorded position, in batches, and writes
 * each batch with its new position in one index transaction. So it catches up
 * after a restart (or after the index was created over an existing database)
 * and never indexes an event twice or skips one. It follows the event stream,
 * not a send path, so events sent here, received over federation and
 * backfilled (below 0, indexed downwards from a second position) are all
 * covered. A search first waits for the catch-up, so results always include
 * what was sent before the request.
 *
 * What is indexed (client-server "Search", as Synapse): the body of
 * m.room.message (plus the file name of media), the name of m.room.name and
 * the topic of m.room.topic. m.room.encrypted events are never indexed: their
 * cleartext is unknown to the server. A redaction removes its target; a
 * redacted event has no content left to index.
 */
import type { Logger } from 'pino';
import type { RoomEvent } from '../../protocol/events.js';
import type { TimelineContent } from '../../storage/event-store.js';
import type { SearchDocument, SearchIndex } from '../../storage/search-index.js';
import { tokenize } from '../../storage/search-text.js';
import type { Storage } from '../../storage/storage.js';

/** The event types /search covers. */
export const INDEXED_TYPES: readonly string[] = ['m.room.message', 'm.room.name', 'm.room.topic'];

/** Stream orderings read per catch-up step. */
const STREAM_RANGE_PER_BATCH = 2000;
/** A search waits for indexing only when this few events are pending (not for a rebuild of a big index). */
const MAX_BACKLOG_WAITED_FOR = 20_000;

export interface SearchIndexerOptions {
  readonly storage: Storage;
  readonly index: SearchIndex;
  readonly log: Pick<Logger, 'warn'>;
  /**
   * Wait this long after a persisted event before indexing, to index many in one batch: FTS5
   * writes a segment per transaction, and bigger ones cost less per event. Searches do not
   * wait for it (they index what is pending first).
   */
  readonly delayMs?: number;
}

export class SearchIndexer {
  private readonly storage: Storage;
  private readonly index: SearchIndex;
  private readonly log: Pick<Logger, 'warn'>;
  private readonly delayMs: number;
  /** The catch-up in progress; each waits for the one before. */
  private running: Promise<void> = Promise.resolve();
  private scheduled: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(options: SearchIndexerOptions) {
    this.storage = options.storage;
    this.index = options.index;
    this.log = options.log;
    this.delayMs = options.delayMs ?? 1000;
  }

  /** A listener for rooms.sender.onEventPersisted: schedules a catch-up soon. */
  readonly eventPersisted = (_persisted: { event: RoomEvent }): void => {
    if (this.scheduled !== null || this.closed) return;
    this.scheduled = setTimeout(() => {
      this.scheduled = null;
      this.catchUp().catch((error: unknown) => this.log.warn({ err: error }, 'Search indexing failed'));
    }, this.delayMs);
    this.scheduled.unref();
  };

  /** Indexes everything persisted before the call; resolves once it is searchable. */
  catchUp(): Promise<void> {
    const run = this.running.catch(() => {}).then(() => this.indexUpTo());
    this.running = run;
    return run;
  }

  /**
   * Before a search: indexes what is pending, so results include what was sent
   * before the request; a large backlog (a rebuild after an upgrade) goes on in
   * the background instead, and the search answers from what is indexed so far.
   */
  async freshen(): Promise<void> {
    const [latest, indexedUpTo, earliest, indexedDownTo] = await Promise.all([
      this.storage.events.latestStreamOrdering(),
      this.index.indexedUpTo(),
      this.storage.events.earliestStreamOrdering(),
      this.index.indexedDownTo(),
    ]);
    const backlog = latest - indexedUpTo + (indexedDownTo - earliest);
    if (backlog === 0) return;
    const run = this.catchUp();
    if (backlog <= MAX_BACKLOG_WAITED_FOR) await run;
    else run.catch((error: unknown) => this.log.warn({ err: error }, 'Search indexing failed'));
  }

  /** GDPR erasure: the user's messages leave the index (after anything pending is indexed). */
  async eraseSender(userId: string): Promise<void> {
    await this.catchUp();
    await this.index.removeSender(userId);
  }

  /** Stops scheduling; waits for the catch-up in progress. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.scheduled !== null) clearTimeout(this.scheduled);
    await this.running.catch(() => {});
  }

  private async indexUpTo(): Promise<void> {
    const { events } = this.storage;
    const target = await events.latestStreamOrdering();
    let from = await this.index.indexedUpTo();
    while (from < target && !this.closed) {
      const upTo = Math.min(from + STREAM_RANGE_PER_BATCH, target);
      const batch = await this.batchOf(await events.timelineContentsBetween(from, upTo, READ_TYPES));
      await this.index.apply({ ...batch, indexedUpTo: upTo });
      from = upTo;
    }
    // History backfilled over federation sits below 0, counting down: indexed downwards.
    const earliest = await events.earliestStreamOrdering();
    let downTo = await this.index.indexedDownTo();
    while (downTo > earliest && !this.closed) {
      const lowest = Math.max(downTo - STREAM_RANGE_PER_BATCH, earliest);
      const contents = await events.timelineContentsBetween(lowest - 1, downTo - 1, READ_TYPES);
      await this.index.apply({ ...(await this.batchOf(contents)), indexedDownTo: lowest });
      downTo = lowest;
    }
  }

  /** The documents of the events, and the stream orderings of the events they redact. */
  private async batchOf(
    events: readonly TimelineContent[],
  ): Promise<{ add: SearchDocument[]; remove: number[] }> {
    const { add, redacted } = documentsOf(events);
    if (redacted.length === 0) return { add, remove: [] };
    // Redacted events are looked up where they are stored (hot or cold); unknown ones have nothing indexed.
    const stored = await this.storage.events.getEvents(redacted);
    return { add, remove: [...stored.values()].map((event) => event.streamOrdering) };
  }
}

/** What the indexer reads: the indexed types, and redactions (which remove their target). */
const READ_TYPES: readonly string[] = [...INDEXED_TYPES, 'm.room.redaction'];

function documentsOf(events: readonly TimelineContent[]): { add: SearchDocument[]; redacted: string[] } {
  const add: SearchDocument[] = [];
  const redacted: string[] = [];
  for (const event of events) {
    if (event.type === 'm.room.redaction') {
      const redacts = event.redacts ?? contentOf(event).redacts;
      if (typeof redacts === 'string') redacted.push(redacts);
      continue;
    }
    const document = searchDocumentOf(event);
    if (document !== null) add.push(document);
  }
  return { add, redacted };
}

function contentOf(event: TimelineContent): Record<string, unknown> {
  const content: unknown = JSON.parse(event.contentJson);
  return typeof content === 'object' && content !== null ? (content as Record<string, unknown>) : {};
}

/** The document of an indexable event; null for other types and for events with no text (redacted ones). */
export function searchDocumentOf(event: TimelineContent): SearchDocument | null {
  if (!INDEXED_TYPES.includes(event.type)) return null;
  const content = contentOf(event);
  const text = (value: unknown) => (typeof value === 'string' ? tokenize(value) : []);
  let body: string[] = [];
  let name: string[] = [];
  let topic: string[] = [];
  switch (event.type) {
    case 'm.room.message': {
      body = text(content.body);
      // Media: the file name is searchable too (body may be a caption instead of it).
      if (typeof content.filename === 'string' && content.filename !== content.body) {
        body = [...body, ...text(content.filename)];
      }
      break;
    }
    case 'm.room.name':
      if (event.stateKey === null) return null;
      name = text(content.name);
      break;
    case 'm.room.topic':
      if (event.stateKey === null) return null;
      topic = text(content.topic);
      break;
  }
  if (body.length === 0 && name.length === 0 && topic.length === 0) return null;
  return {
    streamOrdering: event.streamOrdering,
    eventId: event.eventId,
    roomId: event.roomId,
    sender: event.sender,
    type: event.type,
    msgtype: typeof content.msgtype === 'string' ? content.msgtype : null,
    containsUrl: typeof content.url === 'string',
    originServerTs: event.originServerTs,
    tokens: { 'content.body': body, 'content.name': name, 'content.topic': topic },
  };
}
