/**
 * Presence (client-server "Presence"): the last state each user set, persisted
 * so a restart keeps status messages, on a stream so sync can send changes.
 */
export type PresenceState = 'online' | 'unavailable' | 'offline';

export interface PresenceRecord {
  readonly userId: string;
  readonly state: PresenceState;
  readonly statusMsg: string | null;
  /** When the user was last active (a request, or setting `online`). */
  readonly lastActiveTs: number;
  /** When the state last changed. */
  readonly updatedTs: number;
  readonly currentlyActive: boolean;
  /** Position on the presence stream of this record's latest change. */
  readonly streamPosition: number;
}

export type PresenceUpdate = Omit<PresenceRecord, 'streamPosition'>;

export interface PresenceStore {
  getPresence(userId: string): Promise<PresenceRecord | null>;
  getPresences(userIds: readonly string[]): Promise<Map<string, PresenceRecord>>;
  /** Stores the user's presence and moves it to a new stream position, which it resolves to. */
  setPresence(update: PresenceUpdate): Promise<number>;
  /** Records changed after `position` for these users, oldest first, at most `limit`. */
  presenceChangedSince(
    position: number,
    userIds: readonly string[],
    limit: number,
  ): Promise<PresenceRecord[]>;
  latestPresencePosition(): Promise<number>;
  /** Users whose state is not offline (for the idle/offline timers after a restart). */
  listNotOffline(): Promise<PresenceRecord[]>;
}
