/**
 * client-server "Lazy-loading room members": which membership events each
 * device has already been sent per room, so incremental syncs skip the
 * redundant ones (unless the filter asks for include_redundant_members). Lost
 * on restart or eviction, which only makes the server send some again: redundant
 * membership events are allowed.
 */
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import { PairKeys } from '../../storage/pair-keys.js';

export class LazyMembersSent {
  private readonly sent = new LazyLruCache<string, Set<string>>({ max: 100_000 });
  /** Keys made once per device and room: every woken member looks its room up per message. */
  private readonly deviceKeys = new PairKeys('\u0000');
  private readonly roomKeys = new PairKeys('\u0000');

  /** The key of the device's room (the same string every time: a caller may keep it, sync-stream-memo.ts). */
  keyOf(userId: string, deviceId: string | null, roomId: string): string {
    return this.roomKeys.of(this.deviceKeys.of(userId, deviceId ?? ''), roomId);
  }

  /** An initial sync (or a room sent in full) starts the room afresh for the device. */
  reset(userId: string, deviceId: string | null, roomId: string): void {
    this.sent.delete(this.keyOf(userId, deviceId, roomId));
  }

  has(userId: string, deviceId: string | null, roomId: string, memberEventId: string): boolean {
    return this.sent.get(this.keyOf(userId, deviceId, roomId))?.has(memberEventId) ?? false;
  }

  /** The membership event IDs already sent to the device in the room (one lookup for several checks). */
  sentIn(userId: string, deviceId: string | null, roomId: string): ReadonlySet<string> | undefined {
    return this.sent.get(this.keyOf(userId, deviceId, roomId));
  }

  /** sentIn by a key from keyOf. */
  sentAt(key: string): ReadonlySet<string> | undefined {
    return this.sent.get(key);
  }

  record(userId: string, deviceId: string | null, roomId: string, memberEventIds: Iterable<string>): void {
    const key = this.keyOf(userId, deviceId, roomId);
    let set = this.sent.get(key);
    if (set === undefined) {
      set = new Set();
      this.sent.set(key, set);
    }
    for (const eventId of memberEventIds) set.add(eventId);
  }
}
