/**
 * User-interactive authentication sessions (client-server "User-Interactive
 * Authentication API"). Kept in the database, not in memory, so any worker
 * can continue a flow another one started.
 */
import type { JsonObject, JsonValue } from '../protocol/events.js';

export interface UiaSession {
  readonly sessionId: string;
  readonly createdTs: number;
  /** The request that started the flow (method and path), so the session cannot be reused for another operation. */
  readonly method: string;
  readonly uri: string;
  /** The request body that started the flow, minus `auth` (the spec: later requests may omit it). */
  readonly clientDict: JsonObject;
  /** Completed stages and what each yielded (e.g. the user ID a password stage authenticated). */
  readonly completed: Readonly<Record<string, JsonValue>>;
  /** Arbitrary per-session values the operation keeps between requests (e.g. a reserved registration token). */
  readonly params: Readonly<Record<string, JsonValue>>;
}

export interface UiaSessionStore {
  /** Throws CONFLICT for an existing session ID. */
  createUiaSession(session: Omit<UiaSession, 'completed' | 'params'>): Promise<void>;
  getUiaSession(sessionId: string): Promise<UiaSession | null>;
  /** Records a completed stage (NOT_FOUND for an unknown session). */
  markUiaStageCompleted(sessionId: string, stage: string, result: JsonValue): Promise<void>;
  /** Sets one param, leaving the others (NOT_FOUND for an unknown session). */
  setUiaSessionParam(sessionId: string, key: string, value: JsonValue): Promise<void>;
  /** Removes the session; an unknown session is not an error. */
  deleteUiaSession(sessionId: string): Promise<void>;
  /** Removes sessions created before `ts`; resolves to how many. */
  deleteUiaSessionsCreatedBefore(ts: number): Promise<number>;
  /**
   * Removes sessions created before `ts` and resolves to them, so the caller can
   * undo what each one held (e.g. release a reserved registration token use) exactly once.
   */
  takeUiaSessionsCreatedBefore(ts: number): Promise<UiaSession[]>;
}
