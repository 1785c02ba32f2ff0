/**
 * Where receipts last changed, as seen by this process (the only writer of its
 * receipts): per room for the receipts its members see, per event sender for
 * delivery receipts (shown only to the sender). A sync whose rooms and user have
 * nothing newer than its `since` can then skip reading receipts at all: with a
 * thousand members woken per message, that read was a fixed cost per member.
 *
 * A write is announced before it starts (`begin`) and recorded with its position
 * once committed (`end`): while one is in flight the answer is "maybe", so a sync
 * can never step over a receipt committed but not yet recorded.
 */
export class ReceiptChanges {
  private readonly roomChangedAt = new Map<string, number>();
  private readonly senderChangedAt = new Map<string, number>();
  private readonly roomWrites = new Map<string, number>();
  private readonly senderWrites = new Map<string, number>();
  /** Receipts up to this position were written before tracking began: unknown here. */
  private trackedFrom: number | undefined;

  /** Starts tracking at the stream's current position (idempotent). */
  startAt(position: number): void {
    this.trackedFrom ??= position;
  }

  get tracking(): boolean {
    return this.trackedFrom !== undefined;
  }

  /** A receipt write starts: in `roomId`, shown to everyone there, or (delivered) only to `sender`. */
  begin(write: { roomId: string; deliveredTo?: string }): void {
    if (write.deliveredTo === undefined) increment(this.roomWrites, write.roomId);
    else increment(this.senderWrites, write.deliveredTo);
  }

  /** The write committed at `position` (undefined: it failed or stored nothing). */
  end(write: { roomId: string; deliveredTo?: string }, position: number | undefined): void {
    const [writes, changedAt, key] =
      write.deliveredTo === undefined
        ? [this.roomWrites, this.roomChangedAt, write.roomId]
        : [this.senderWrites, this.senderChangedAt, write.deliveredTo];
    decrement(writes, key);
    if (position !== undefined) changedAt.set(key, Math.max(changedAt.get(key) ?? 0, position));
  }

  /** Whether nothing `viewer` could see in `roomIds` changed after `since`; false when unsure. */
  unchangedSince(viewer: string, roomIds: readonly string[], since: number): boolean {
    if (this.trackedFrom === undefined || since < this.trackedFrom) return false;
    if (this.senderWrites.has(viewer) || (this.senderChangedAt.get(viewer) ?? 0) > since) return false;
    for (const roomId of roomIds) {
      if (this.roomWrites.has(roomId) || (this.roomChangedAt.get(roomId) ?? 0) > since) return false;
    }
    return true;
  }
}

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function decrement(counts: Map<string, number>, key: string): void {
  const count = (counts.get(key) ?? 0) - 1;
  if (count > 0) counts.set(key, count);
  else counts.delete(key);
}
