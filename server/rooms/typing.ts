/**
 * Typing notifications (client-server "Typing Notifications"), kept in memory
 * only: per room, who types until when. Every change (start, stop, expiry)
 * takes the next position of the typing stream, so sync can ask which rooms
 * changed since a token and send their whole `m.typing` list again. Expiry is
 * one periodic sweep for the whole server, not a timer per user.
 */
import type { RoomEvent } from '../../protocol/events.js';

/** What the typing stream wakes: sync's notifier (absent until sync is composed). */
export interface TypingWakeup {
  notifyRooms(roomIds: Iterable<string>, stream: 'typing'): void;
}

export interface TypingServiceOptions {
  readonly now?: () => number;
  /** How often expired typing is swept away (default 500 ms). */
  readonly sweepIntervalMs?: number;
  /** Typing without a timeout lasts this long (default 30 s). */
  readonly defaultTimeoutMs?: number;
  /** A longer timeout is cut to this (default 120 s): a client that vanishes must not type for ever. */
  readonly maxTimeoutMs?: number;
  readonly notifier?: () => TypingWakeup | undefined;
}

/** The content of an `m.typing` ephemeral event. */
export interface TypingContent {
  user_ids: string[];
}

interface RoomTyping {
  /** userId -> the time (ms) their typing expires. */
  readonly expiries: Map<string, number>;
  /** Position of the room's latest change. */
  changedAt: number;
}

export class TypingService {
  private readonly rooms = new Map<string, RoomTyping>();
  /** (position, room) in position order; a room appears again at each change, stale entries are compacted away. */
  private changeLog: { position: number; roomId: string }[] = [];
  private currentPosition = 0;
  private readonly now: () => number;
  private readonly defaultTimeoutMs: number;
  private readonly maxTimeoutMs: number;
  private readonly sweepIntervalMs: number;
  private readonly notifier: () => TypingWakeup | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: TypingServiceOptions = {}) {
    this.now = options.now ?? Date.now;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 30_000;
    this.maxTimeoutMs = options.maxTimeoutMs ?? 120_000;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 500;
    this.notifier = options.notifier ?? (() => undefined);
  }

  /** Starts the expiry sweep. */
  start(): void {
    if (this.sweepTimer !== undefined) return;
    this.sweepTimer = setInterval(() => this.sweepExpired(), this.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  close(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /**
   * Marks the user typing for `timeoutMs` (or stops them). Renewing a typing
   * user's timeout is not a change others see, so it takes no position.
   */
  setTyping(roomId: string, userId: string, typing: boolean, timeoutMs?: number): void {
    const room = this.rooms.get(roomId);
    if (typing) {
      const timeout = Math.min(Math.max(0, timeoutMs ?? this.defaultTimeoutMs), this.maxTimeoutMs);
      const expiry = this.now() + timeout;
      if (room === undefined) {
        this.rooms.set(roomId, { expiries: new Map([[userId, expiry]]), changedAt: 0 });
        this.changed([roomId]);
        return;
      }
      const wasTyping = this.isTyping(room, userId);
      room.expiries.set(userId, expiry);
      if (!wasTyping) this.changed([roomId]);
      return;
    }
    if (room === undefined || !room.expiries.has(userId)) return;
    const wasTyping = this.isTyping(room, userId);
    room.expiries.delete(userId);
    if (wasTyping) this.changed([roomId]);
  }

  /** Who types in the room now. */
  typingUsers(roomId: string): string[] {
    const room = this.rooms.get(roomId);
    if (room === undefined) return [];
    const now = this.now();
    const users: string[] = [];
    for (const [userId, expiry] of room.expiries) if (expiry > now) users.push(userId);
    return users;
  }

  typingContent(roomId: string): TypingContent {
    return { user_ids: this.typingUsers(roomId) };
  }

  /** The typing stream's current position (0 until the first change). */
  position(): number {
    return this.currentPosition;
  }

  /** Rooms whose typing changed after `position`. */
  changedRoomsSince(position: number): Set<string> {
    const changed = new Set<string>();
    if (position >= this.currentPosition) return changed;
    const log = this.changeLog;
    let low = 0;
    let high = log.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (log[middle]!.position <= position) low = middle + 1;
      else high = middle;
    }
    for (let index = low; index < log.length; index++) changed.add(log[index]!.roomId);
    return changed;
  }

  /** Removes every expired typing entry; rooms that lost a typist take a new position. Exposed for tests. */
  sweepExpired(): void {
    const now = this.now();
    const changed: string[] = [];
    for (const [roomId, room] of this.rooms) {
      let lostOne = false;
      for (const [userId, expiry] of room.expiries) {
        if (expiry <= now) {
          room.expiries.delete(userId);
          lostOne = true;
        }
      }
      if (lostOne) changed.push(roomId);
    }
    if (changed.length > 0) this.changed(changed);
  }

  private isTyping(room: RoomTyping, userId: string): boolean {
    const expiry = room.expiries.get(userId);
    return expiry !== undefined && expiry > this.now();
  }

  private changed(roomIds: readonly string[]): void {
    for (const roomId of roomIds) {
      const room = this.rooms.get(roomId);
      if (room === undefined) continue;
      room.changedAt = ++this.currentPosition;
      this.changeLog.push({ position: room.changedAt, roomId });
    }
    if (this.changeLog.length > 2 * this.rooms.size + 64) this.compactChangeLog();
    this.notifier()?.notifyRooms(roomIds, 'typing');
  }

  /** Keeps only each room's latest change. Rooms with nobody typing keep their entry: a sync still has to hear that the last typist stopped. */
  private compactChangeLog(): void {
    this.changeLog = this.changeLog.filter(
      (entry) => this.rooms.get(entry.roomId)?.changedAt === entry.position,
    );
  }
}

/** A member who leaves (or is kicked or banned) stops typing at once. */
export function stopTypingOnLeave(
  typing: TypingService,
  sender: { onEventPersisted(listener: (persisted: { event: RoomEvent }) => void): () => void },
): () => void {
  return sender.onEventPersisted(({ event }) => {
    const { type, state_key: stateKey, content } = event.pdu;
    if (type === 'm.room.member' && typeof stateKey === 'string' && content.membership !== 'join') {
      typing.setTyping(event.roomId, stateKey, false);
    }
  });
}
