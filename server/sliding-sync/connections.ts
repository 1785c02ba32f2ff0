/**
 * Per-connection state (MSC4186 "Connections"): for each `pos` handed out, what
 * each room was last sent up to on the connection, so that no event is sent
 * twice and `initial` is right. A connection is one (user, device, conn_id).
 *
 * The server cannot know a response arrived until the client comes back with its
 * `pos`, so the state at the last few `pos` is kept: a retry with an earlier one
 * is answered again from the state it names. A request with `pos` N drops what
 * came before N. Connections are held in memory, bounded in number and idle time;
 * a `pos` the server no longer holds (evicted, expired, or issued before a
 * restart) is refused with M_UNKNOWN_POS, and the client starts a new connection,
 * which sends every room afresh, so nothing is lost.
 */
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { MatrixError } from '../errors.js';
import type { StreamPositions } from '../sync/sync-token.js';

/** What a room was last sent as on a connection. */
export interface RoomSent {
  /** Events up to this stream position were sent (or judged not to concern the client). */
  readonly position: number;
  /** The timeline_limit it was sent with (the largest so far): a larger one expands the timeline. */
  readonly timelineLimit: number;
  /** Required state sent: state key tuple -> event ID. */
  readonly state: ReadonlyMap<string, string>;
  readonly membershipEventId: string;
  readonly membership: string;
  /** name, avatar, counts, is_dm as last sent, to send them again only when they change. */
  readonly summary: string;
  /** The combined room config it was last matched with (a change may widen what is due). */
  readonly configKey: string;
}

/** The positions of the streams an extension reads incrementally. */
export interface ExtensionPositions {
  readonly accountData: number;
  readonly receipts: number;
  readonly typing: number;
  readonly deviceLists: number;
}

export interface ConnectionGeneration {
  readonly seq: number;
  readonly events: number;
  readonly extensions: ExtensionPositions;
  readonly rooms: ReadonlyMap<string, RoomSent>;
  /** Rooms the lists and subscriptions matched at this pos (extensions send a room afresh when it re-enters). */
  readonly matched: ReadonlySet<string>;
  /** Set when asking the same again at the same positions is known to bring nothing new. */
  readonly quiet?: QuietGeneration;
}

/**
 * What a generation was computed from, when computing again from it with the same
 * request at the same stream positions would send nothing: the connection's next
 * request may then go straight to waiting (the usual long-poll after an answer).
 */
export interface QuietGeneration {
  /** The parsed request settings (one object per distinct body, request.ts). */
  readonly settings: object;
  /** The stream positions read before the computation. */
  readonly positions: StreamPositions;
  /** The user's membership version then (SlidingSyncReads.membershipVersion). */
  readonly membershipVersion: number;
  /** The rooms whose changes concern the connection. */
  readonly watch: readonly string[];
}

interface Connection {
  readonly nonce: string;
  readonly generations: Map<number, ConnectionGeneration>;
  nextSeq: number;
  /** The last `pos` the client came back with: kept whatever retries pile up after it. */
  confirmed: number;
}

export interface ConnectionStoreOptions {
  readonly maxConnections?: number;
  readonly idleMs?: number;
}

/** Generations kept per connection beyond the one the client last confirmed. */
const GENERATIONS_KEPT = 3;

export class SlidingSyncConnections {
  private readonly connections: LRUCache<string, Connection>;

  constructor(options: ConnectionStoreOptions = {}) {
    this.connections = new LRUCache({
      max: options.maxConnections ?? 20_000,
      ttl: options.idleMs ?? 24 * 60 * 60_000,
      updateAgeOnGet: true,
    });
  }

  /**
   * The state `pos` names on this user's device's connection, or null for a new
   * connection (no `pos`), which replaces any earlier one of the same conn_id.
   * @throws MatrixError 400 M_UNKNOWN_POS
   */
  resume(
    key: ConnectionKey,
    pos: string | null,
  ): { connection: ConnectionHandle; base: ConnectionGeneration | null } {
    const id = connectionId(key);
    if (pos === null) {
      const connection: Connection = {
        nonce: randomBytes(6).toString('base64url'),
        generations: new Map(),
        nextSeq: 1,
        confirmed: 0,
      };
      this.connections.set(id, connection);
      return { connection: new ConnectionHandle(connection), base: null };
    }
    const connection = this.connections.get(id);
    const [nonce, seqText] = pos.split('.');
    const seq = Number(seqText);
    const base =
      connection !== undefined && connection.nonce === nonce ? connection.generations.get(seq) : undefined;
    if (connection === undefined || base === undefined)
      throw new MatrixError(400, 'M_UNKNOWN_POS', 'Unknown position; start a new connection');
    // The client has this pos: what came before it is no longer needed.
    for (const older of connection.generations.keys()) if (older < seq) connection.generations.delete(older);
    connection.confirmed = seq;
    return { connection: new ConnectionHandle(connection), base };
  }

  /** How many connections are held (metrics, tests). */
  get size(): number {
    return this.connections.size;
  }
}

export interface ConnectionKey {
  readonly userId: string;
  readonly deviceId: string | null;
  readonly connId: string;
}

export class ConnectionHandle {
  constructor(private readonly connection: Connection) {}

  /** Records the state after a response; returns the response's `pos`. */
  commit(generation: Omit<ConnectionGeneration, 'seq'>): string {
    const seq = this.connection.nextSeq++;
    const { generations } = this.connection;
    generations.set(seq, { ...generation, seq });
    while (generations.size > GENERATIONS_KEPT + 1) {
      const oldest = Math.min(
        ...[...generations.keys()].filter((kept) => kept !== this.connection.confirmed),
      );
      generations.delete(oldest);
    }
    return `${this.connection.nonce}.${seq}`;
  }
}

function connectionId(key: ConnectionKey): string {
  return `${key.userId}\u0000${key.deviceId ?? ''}\u0000${key.connId}`;
}
