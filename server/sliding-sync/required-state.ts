/**
 * A room's combined room config (MSC4186 "Combining room configs"): the largest
 * timeline_limit of the rules it matches, and the union of their required_state,
 * kept as the separate configs (MSC4186 "Combining `required_state`", approach a)
 * so that each config's `exclude` applies to its own `include` only.
 */
import type { RequiredStateConfig, RoomConfig, StateMatcher } from './request.js';

const MEMBER = 'm.room.member';
const ME = '$ME';

export class CombinedRoomConfig {
  private constructor(
    readonly timelineLimit: number,
    private readonly configs: readonly RequiredStateConfig[],
    /** Stable text of the combination, to tell when a room's config changed between requests. */
    readonly key: string,
  ) {}

  static of(configs: readonly RoomConfig[]): CombinedRoomConfig {
    const timelineLimit = Math.max(0, ...configs.map((config) => config.timelineLimit));
    const required = configs.map((config) => config.requiredState);
    return new CombinedRoomConfig(timelineLimit, required, JSON.stringify(required));
  }

  /** With lazy members, the senders' (and member events' targets') memberships are wanted too. */
  get lazyMembers(): boolean {
    return this.configs.some((config) => config.lazyMembers);
  }

  /** Whether the state entry is asked for (lazy members aside). */
  wants(type: string, stateKey: string, userId: string): boolean {
    return this.configs.some(
      (config) =>
        config.include.some((matcher) => matches(matcher, type, stateKey, userId)) &&
        !config.exclude.some((matcher) => matches(matcher, type, stateKey, userId)),
    );
  }

  /**
   * The exact (type, state_key) pairs asked for when no config uses a wildcard; null
   * when some does (then the room's whole current state has to be looked through).
   */
  exactKeys(userId: string): [string, string][] | null {
    const keys: [string, string][] = [];
    for (const config of this.configs) {
      for (const matcher of config.include) {
        if (matcher.type === null || matcher.stateKey === null) return null;
        keys.push([matcher.type, matcher.stateKey === ME ? userId : matcher.stateKey]);
      }
    }
    return keys.filter(([type, stateKey]) => this.wants(type, stateKey, userId));
  }
}

function matches(matcher: StateMatcher, type: string, stateKey: string, userId: string): boolean {
  if (matcher.type !== null && matcher.type !== type) return false;
  if (matcher.stateKey === null) return true;
  return (matcher.stateKey === ME ? userId : matcher.stateKey) === stateKey;
}

export function isMemberType(type: string): boolean {
  return type === MEMBER;
}
