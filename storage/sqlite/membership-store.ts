import type Database from 'better-sqlite3';
import { splitStateTupleKey } from '../../protocol/events.js';
import { StorageError } from '../errors.js';
import type { Membership, MembershipRecord, MembershipStore } from '../membership-store.js';
import type { StateDelta } from '../state-store.js';
import type { SqliteConnection } from './connection.js';
import { parameterChunks } from './parameter-chunks.js';
import type { EnqueueWrite } from './write-queue.js';

const MEMBER_EVENT_TYPE = 'm.room.member';
const MEMBERSHIPS: ReadonlySet<string> = new Set<Membership>(['join', 'invite', 'leave', 'ban', 'knock']);

export function isMembership(value: unknown): value is Membership {
  return typeof value === 'string' && MEMBERSHIPS.has(value);
}

interface MembershipRow {
  room_id: string;
  user_id: string;
  membership: Membership;
  event_id: string;
  stream_ordering: number;
  forgotten: number;
}

const COLUMNS = 'room_id, user_id, membership, event_id, stream_ordering, forgotten';

export class SqliteMembershipStore implements MembershipStore {
  /** Statements prepared once: members of a room are read per message sent (federation's destinations). */
  private readonly prepared = new Map<string, Database.Statement>();

  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  private statement<P extends unknown[], R>(sql: string): Database.Statement<P, R> {
    let statement = this.prepared.get(sql);
    if (statement === undefined) {
      statement = this.connection.sqlite.prepare(sql);
      this.prepared.set(sql, statement);
    }
    return statement as unknown as Database.Statement<P, R>;
  }

  async membershipsOfUser(userId: string, memberships?: readonly Membership[]): Promise<MembershipRecord[]> {
    if (memberships === undefined) {
      return this.statement<[string], MembershipRow>(
        `SELECT ${COLUMNS} FROM memberships WHERE user_id = ? ORDER BY stream_ordering, room_id`,
      )
        .all(userId)
        .map(toRecord);
    }
    return this.statement<[string, string], MembershipRow>(
      `SELECT ${COLUMNS} FROM memberships
          WHERE user_id = ? AND membership IN (SELECT value FROM json_each(?))
          ORDER BY stream_ordering, room_id`,
    )
      .all(userId, JSON.stringify(memberships))
      .map(toRecord);
  }

  async membershipChangesOfUser(
    userId: string,
    afterOrdering: number,
    upToOrdering: number,
  ): Promise<MembershipRecord[]> {
    return this.connection.sqlite
      .prepare<[string, number, number], MembershipRow>(
        `SELECT ${COLUMNS} FROM memberships
          WHERE user_id = ? AND stream_ordering > ? AND stream_ordering <= ?
          ORDER BY stream_ordering, room_id`,
      )
      .all(userId, afterOrdering, upToOrdering)
      .map(toRecord);
  }

  async membersOfRoom(
    roomId: string,
    memberships: readonly Membership[] = ['join'],
  ): Promise<MembershipRecord[]> {
    return this.statement<[string, string], MembershipRow>(
      `SELECT ${COLUMNS} FROM memberships
          WHERE room_id = ? AND membership IN (SELECT value FROM json_each(?))
          ORDER BY user_id`,
    )
      .all(roomId, JSON.stringify(memberships))
      .map(toRecord);
  }

  async joinedServers(roomId: string): Promise<readonly string[]> {
    const cache = membershipStatements(this.connection.sqlite).joinedServers;
    const cached = cache.get(roomId);
    if (cached !== undefined) return cached;
    // A user ID's server name is everything after its first colon (server names may hold more).
    const servers = this.statement<[string], { server: string }>(
      `SELECT DISTINCT substr(user_id, instr(user_id, ':') + 1) AS server FROM memberships
          WHERE room_id = ? AND membership = 'join'`,
    )
      .all(roomId)
      .map((row) => row.server);
    if (cache.size >= JOINED_SERVERS_CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(roomId, servers);
    return servers;
  }

  async joinedMemberCounts(roomIds: readonly string[]): Promise<Map<string, number>> {
    const ids = [...new Set(roomIds)];
    const counts = new Map(ids.map((roomId) => [roomId, 0]));
    const statement = this.statement<[string], { room_id: string; joined: number }>(
      `SELECT room_id, count(*) AS joined FROM memberships
        WHERE room_id IN (SELECT value FROM json_each(?)) AND membership = 'join'
        GROUP BY room_id`,
    );
    for (const chunk of parameterChunks(ids)) {
      for (const row of statement.all(JSON.stringify(chunk))) counts.set(row.room_id, row.joined);
    }
    return counts;
  }

  async getMembership(roomId: string, userId: string): Promise<MembershipRecord | null> {
    const row = this.connection.sqlite
      .prepare<[string, string], MembershipRow>(
        `SELECT ${COLUMNS} FROM memberships WHERE room_id = ? AND user_id = ?`,
      )
      .get(roomId, userId);
    return row ? toRecord(row) : null;
  }

  forgetRoom(userId: string, roomId: string): Promise<void> {
    return this.enqueue(() => {
      const result = this.connection.sqlite
        .prepare('UPDATE memberships SET forgotten = 1 WHERE room_id = ? AND user_id = ?')
        .run(roomId, userId);
      if (result.changes === 0)
        throw new StorageError('NOT_FOUND', `${userId} has no membership in ${roomId}`);
    });
  }
}

function toRecord(row: MembershipRow): MembershipRecord {
  return {
    roomId: row.room_id,
    userId: row.user_id,
    membership: row.membership,
    eventId: row.event_id,
    streamOrdering: row.stream_ordering,
    forgotten: row.forgotten === 1,
  };
}

/** The member event being persisted along with the delta, whose row is not readable yet or is being promoted. */
export interface PersistingMemberEvent {
  readonly eventId: string;
  readonly membership: string | null;
}

interface MembershipStatements {
  readonly memberEvent: Database.Statement<[string], { membership: unknown; stream_ordering: number }>;
  readonly upsert: Database.Statement<[string, string, string, string, number]>;
  readonly remove: Database.Statement<[string, string]>;
  /**
   * Each room's joined servers: read for every event and every presence or typing EDU sent
   * (a 1,000-member room going idle at once read its members 1,000 times), and changed only
   * by applyMembershipDelta, which drops the room's entry inside the write transaction (a
   * rollback only costs a re-read; reads cannot interleave with the synchronous transaction).
   */
  readonly joinedServers: Map<string, readonly string[]>;
}

const JOINED_SERVERS_CACHE_MAX = 10_000;

const statementsByDatabase = new WeakMap<Database.Database, MembershipStatements>();

function membershipStatements(sqlite: Database.Database): MembershipStatements {
  let statements = statementsByDatabase.get(sqlite);
  if (!statements) {
    statements = {
      memberEvent: sqlite.prepare(
        `SELECT json_extract(json, '$.content.membership') AS membership, stream_ordering
           FROM events WHERE event_id = ?`,
      ),
      // A new membership event clears `forgotten`; the same event set again (state re-resolved) keeps it.
      upsert: sqlite.prepare(
        `INSERT INTO memberships (room_id, user_id, membership, event_id, stream_ordering, forgotten)
         VALUES (?, ?, ?, ?, ?, 0)
         ON CONFLICT (room_id, user_id) DO UPDATE SET
           membership = excluded.membership,
           forgotten = CASE WHEN memberships.event_id = excluded.event_id THEN memberships.forgotten ELSE 0 END,
           stream_ordering = CASE WHEN memberships.event_id = excluded.event_id
                                  THEN memberships.stream_ordering ELSE excluded.stream_ordering END,
           event_id = excluded.event_id`,
      ),
      remove: sqlite.prepare('DELETE FROM memberships WHERE room_id = ? AND user_id = ?'),
      joinedServers: new Map(),
    };
    statementsByDatabase.set(sqlite, statements);
  }
  return statements;
}

/**
 * Keeps the memberships table in step with the m.room.member entries of a
 * current-state delta. `changeOrdering` is where the change takes effect on the
 * event stream (the persisted event's ordering), also when state resolution
 * names an older member event, so that sync sees the change. Synchronous: runs
 * inside the write transaction that applies the delta.
 */
export function applyMembershipDelta(
  connection: SqliteConnection,
  roomId: string,
  delta: StateDelta,
  changeOrdering: number | null,
  persisting: PersistingMemberEvent | null,
): void {
  let statements: MembershipStatements | undefined;
  // Called for member entries only: the first one also drops the room's cached joined servers.
  const prepared = () => {
    if (statements === undefined) {
      statements = membershipStatements(connection.sqlite);
      statements.joinedServers.delete(roomId);
    }
    return statements;
  };
  for (const key of delta.remove ?? []) {
    const [type, userId] = splitStateTupleKey(key);
    if (type === MEMBER_EVENT_TYPE) prepared().remove.run(roomId, userId);
  }
  for (const [key, eventId] of delta.set ?? []) {
    const [type, userId] = splitStateTupleKey(key);
    if (type !== MEMBER_EVENT_TYPE) continue;
    let membership: unknown;
    let ordering: number | null = changeOrdering;
    if (persisting && persisting.eventId === eventId) {
      membership = persisting.membership;
    } else {
      const stored = prepared().memberEvent.get(eventId);
      membership = stored?.membership;
      ordering ??= stored?.stream_ordering ?? null;
    }
    // An unknown event or one without a valid membership leaves no known membership.
    if (isMembership(membership) && ordering !== null) {
      prepared().upsert.run(roomId, userId, membership, eventId, ordering);
    } else {
      prepared().remove.run(roomId, userId);
    }
  }
}
