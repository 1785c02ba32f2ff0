/**
 * Each user's current membership per room, derived from current state and
 * kept up to date by EventStore.persistEvent in the same transaction whenever
 * an m.room.member entry of the current state changes. It answers what current
 * state cannot answer fast: a user's rooms, and their membership changes since
 * a sync token.
 */
export type Membership = 'join' | 'invite' | 'leave' | 'ban' | 'knock';

export interface MembershipRecord {
  readonly roomId: string;
  readonly userId: string;
  readonly membership: Membership;
  /** The m.room.member event that set it. */
  readonly eventId: string;
  /**
   * Where the change took effect on the event stream: the stream ordering of the
   * event whose persist put this membership into current state. That is the
   * member event itself, except when state resolution brings back an older
   * member event: then it is the ordering of the event that merged the fork, so
   * sync sees the change.
   */
  readonly streamOrdering: number;
  /** The user forgot the room (client-server /forget); cleared by a later membership change. */
  readonly forgotten: boolean;
}

export interface MembershipStore {
  /** The user's current memberships, optionally only those listed, oldest change first. */
  membershipsOfUser(userId: string, memberships?: readonly Membership[]): Promise<MembershipRecord[]>;
  /** The user's memberships whose latest change is in (afterOrdering, upToOrdering]. */
  membershipChangesOfUser(
    userId: string,
    afterOrdering: number,
    upToOrdering: number,
  ): Promise<MembershipRecord[]>;
  /** A room's members with the given memberships (default: join). */
  membersOfRoom(roomId: string, memberships?: readonly Membership[]): Promise<MembershipRecord[]>;
  /**
   * The server names of the room's joined members, each once, in no set order: the
   * destinations of every event sent in the room, so counted in SQL rather than by
   * loading every member.
   */
  joinedServers(roomId: string): Promise<readonly string[]>;
  /** Joined member counts for the rooms, keyed by room ID (0 for rooms with none). */
  joinedMemberCounts(roomIds: readonly string[]): Promise<Map<string, number>>;
  getMembership(roomId: string, userId: string): Promise<MembershipRecord | null>;
  /** Marks the room forgotten for the user (NOT_FOUND when there is no membership). */
  forgetRoom(userId: string, roomId: string): Promise<void>;
}
