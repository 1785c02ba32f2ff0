/**
 * What the load driver and the server process say to each other over the
 * fork IPC channel: the driver asks for users, rooms and memory readings
 * (made directly through the services, which is fast and keeps set-up out of
 * the measured HTTP traffic); the server answers each request by its ID.
 */

export interface BenchUser {
  readonly userId: string;
  readonly accessToken: string;
  readonly deviceId: string;
}

export interface ServerMemory {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  /** external + arrayBuffers: native memory held by buffers (sockets, SQLite). */
  readonly external: number;
}

/**
 * Garbage collections since the server started: young-generation (scavenges) and full
 * (mark-compact, with its incremental marking steps); pauses in ms of wall time.
 */
export interface ServerGc {
  readonly minor: number;
  readonly minorMs: number;
  readonly major: number;
  readonly majorMs: number;
}

export type ServerCommand =
  | { readonly op: 'users'; readonly prefix: string; readonly count: number }
  /** `creator` makes a public room; every member joins it (concurrently, through the batched sender). */
  | { readonly op: 'room'; readonly creator: string; readonly members: readonly string[] }
  /** `userId` creates `rooms` private rooms and sends `messages` messages into each. */
  | { readonly op: 'fill'; readonly userId: string; readonly rooms: number; readonly messages: number }
  /** Memory after a full garbage collection. */
  | { readonly op: 'memory' }
  /** CPU time the server process has used so far (all its threads), µs, and storage commits so far. */
  | { readonly op: 'cpu' }
  /** How many sync requests (long-polls, sliding syncs) are waiting for news right now. */
  | { readonly op: 'waiting' }
  /** Garbage collections so far (counts and pause time by kind), to compare GC cost across code versions. */
  | { readonly op: 'gc' }
  /** Resolves once push evaluation and delivery have caught up (set-up backlog out of the figures). */
  | { readonly op: 'push-idle' }
  | { readonly op: 'stop' };

export type ServerReply =
  | { readonly op: 'users'; readonly users: BenchUser[] }
  | { readonly op: 'room'; readonly roomId: string }
  | { readonly op: 'fill'; readonly roomIds: string[]; readonly events: number }
  | { readonly op: 'memory'; readonly memory: ServerMemory }
  /** user + system; `user` alone is the process's own code, `system` mostly socket I/O; storage commits so far. */
  | { readonly op: 'cpu'; readonly micros: number; readonly user: number; readonly commits: number }
  | { readonly op: 'waiting'; readonly count: number }
  | { readonly op: 'gc'; readonly gc: ServerGc }
  | { readonly op: 'push-idle' }
  | { readonly op: 'stop' };

export type ToServer = { readonly id: number; readonly command: ServerCommand };

export type FromServer =
  | { readonly kind: 'ready'; readonly port: number; readonly memory: ServerMemory }
  | { readonly kind: 'reply'; readonly id: number; readonly reply: ServerReply }
  | { readonly kind: 'failed'; readonly id: number; readonly error: string };
