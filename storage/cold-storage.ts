/**
 * Cold storage of old room history for operator retention (spec/retention.md):
 * moving events out of the hot tables into compressed segments on disk. Reads
 * need nothing from here: the backend folds cold events into EventStore reads.
 */
export interface ColdMoveResult {
  /** Events moved (0: none were old enough, or the move lost a race and will be retried). */
  readonly moved: number;
  readonly segmentId: number | null;
}

export interface ColdStorage {
  /** False when the database has no folder for segments (in-memory databases). */
  readonly available: boolean;
  /** Every room with timeline events in the hot tables. */
  roomsWithHotEvents(): Promise<string[]>;
  /**
   * Moves up to `maxEvents` of the room's accepted non-state timeline events older
   * than `cutoffTs` into one new segment, atomically; the room's latest event and
   * forward extremities stay hot.
   */
  moveToCold(roomId: string, cutoffTs: number, maxEvents: number): Promise<ColdMoveResult>;
  /** Deletes segment files no committed move recorded (left by a crash); returns how many. */
  removeOrphanSegments(): Promise<number>;
}
