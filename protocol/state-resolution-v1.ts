/**
 * State resolution for room version 1 (spec: rooms/v1 "State resolution"). Kept for
 * the v1 rooms that still exist; the spec warns it can reset state, which v2 fixed.
 * R starts as the unconflicted state; the auth-relevant conflicts are resolved by
 * walking each candidate list until the auth rules refuse an event, the rest by
 * picking the deepest event that passes.
 */
import { hash } from 'node:crypto';
import { checkAuthRules } from './auth-rules.js';
import { ProtocolError } from './errors.js';
import { type RoomEvent, type StateMap, type StateTupleKey, stateTupleKey } from './events.js';
import type { SplitState, StateResolutionInput } from './state-resolution.js';

const MEMBER_KEY_PREFIX = stateTupleKey('m.room.member', '');

export function resolveStateV1(input: StateResolutionInput, split: SplitState): StateMap {
  const { rules } = input;
  const authCheck = input.authCheck ?? checkAuthRules;
  const resolved: StateMap = new Map(split.unconflicted);
  const eventOf = (eventId: string): RoomEvent => {
    const event = input.getEvent(eventId);
    if (event === undefined) throw new ProtocolError('MISSING_EVENT', `State resolution needs ${eventId}`);
    return event;
  };
  const allowedIn = (event: RoomEvent): boolean =>
    authCheck(
      event,
      (type, stateKey) => {
        const eventId = resolved.get(stateTupleKey(type, stateKey));
        return eventId === undefined ? undefined : input.getEvent(eventId);
      },
      rules,
    ).allowed;

  // Ascending depth, then descending sha1(event_id).
  const authOrder = (ids: Iterable<string>): RoomEvent[] =>
    [...ids]
      .map(eventOf)
      .sort((a, b) => a.pdu.depth - b.pdu.depth || compare(sha1(b.eventId), sha1(a.eventId)));

  const authKeys = [stateTupleKey('m.room.power_levels', ''), stateTupleKey('m.room.join_rules', '')];
  const memberKeys = [...split.conflicted.keys()].filter((key) => key.startsWith(MEMBER_KEY_PREFIX)).sort();
  for (const key of [...authKeys, ...memberKeys]) {
    const candidates = split.conflicted.get(key);
    if (candidates === undefined) continue;
    const [first, ...rest] = authOrder(candidates);
    if (first === undefined) continue;
    resolved.set(key, first.eventId);
    for (const event of rest) {
      if (!allowedIn(event)) break;
      resolved.set(key, event.eventId);
    }
  }

  const handled = new Set<StateTupleKey>([...authKeys, ...memberKeys]);
  for (const [key, candidates] of split.conflicted) {
    if (handled.has(key)) continue;
    // Highest depth, then lowest sha1(event_id), among those that pass in R.
    const ordered = [...candidates]
      .map(eventOf)
      .sort((a, b) => b.pdu.depth - a.pdu.depth || compare(sha1(a.eventId), sha1(b.eventId)));
    const winner = ordered.find(allowedIn);
    if (winner !== undefined) resolved.set(key, winner.eventId);
  }
  return resolved;
}

function sha1(eventId: string): string {
  return hash('sha1', eventId, 'hex');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
