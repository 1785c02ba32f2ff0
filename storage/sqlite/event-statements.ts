import { and, eq, sql } from 'drizzle-orm';
import type { SqliteDatabase } from './connection.js';
import { eventAuthEdges, eventEdges, events, forwardExtremities, streamPositions } from './schema.js';

const p = sql.placeholder;

/**
 * The statements of the event write path, built and prepared once per
 * connection: building drizzle queries and compiling SQL on every persist
 * cost more than running them.
 */
export function prepareEventStatements(db: SqliteDatabase) {
  return {
    eventById: db
      .select()
      .from(events)
      .where(eq(events.eventId, p('eventId')))
      .prepare(),
    outlierFlag: db
      .select({ outlier: events.outlier })
      .from(events)
      .where(eq(events.eventId, p('eventId')))
      .prepare(),
    nextStreamPosition: db
      .update(streamPositions)
      .set({ position: sql`${streamPositions.position} + 1` })
      .where(eq(streamPositions.stream, p('stream')))
      .returning({ position: streamPositions.position })
      .prepare(),
    insertEvent: db
      .insert(events)
      .values({
        streamOrdering: p('streamOrdering'),
        eventId: p('eventId'),
        roomId: p('roomId'),
        type: p('type'),
        stateKey: p('stateKey'),
        sender: p('sender'),
        depth: p('depth'),
        originServerTs: p('originServerTs'),
        outlier: p('outlier'),
        rejectionReason: p('rejectionReason'),
        stateBeforeSnapshotId: p('stateBeforeSnapshotId'),
        stateAfterSnapshotId: p('stateAfterSnapshotId'),
        json: p('json'),
      })
      .prepare(),
    insertEdge: db
      .insert(eventEdges)
      .values({ eventId: p('eventId'), prevEventId: p('prevEventId') })
      .onConflictDoNothing()
      .prepare(),
    insertAuthEdge: db
      .insert(eventAuthEdges)
      .values({ eventId: p('eventId'), authEventId: p('authEventId') })
      .onConflictDoNothing()
      .prepare(),
    deleteExtremity: db
      .delete(forwardExtremities)
      .where(and(eq(forwardExtremities.roomId, p('roomId')), eq(forwardExtremities.eventId, p('eventId'))))
      .prepare(),
    insertExtremity: db
      .insert(forwardExtremities)
      .values({ roomId: p('roomId'), eventId: p('eventId') })
      .onConflictDoNothing()
      .prepare(),
    timelineChild: db
      .select({ eventId: eventEdges.eventId })
      .from(eventEdges)
      .innerJoin(events, eq(events.eventId, eventEdges.eventId))
      .where(
        and(
          eq(eventEdges.prevEventId, p('eventId')),
          eq(events.outlier, false),
          eq(events.roomId, p('roomId')),
        ),
      )
      .limit(1)
      .prepare(),
  };
}

export type EventStatements = ReturnType<typeof prepareEventStatements>;
