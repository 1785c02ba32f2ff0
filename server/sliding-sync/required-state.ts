/**
 * A room's combined room config (MSC4186 "Combining room configs"): the largest
 * timeline_limit of the rules it matches, and the union of their required_state,
 * kept as the separate configs (MSC4186 "Combining `required_state`", approach a)
 * so that each config's `exclude` applies to its own `include` only.
 */
import { stateTupleKey } from '../../protocol/events.js';
import type { RequiredStateConfig, RoomConfig, StateMatcher } from './request.js';

const MEMBER = 'm.room.member';
const ME = '$ME';

/**
 * The combination of one config, for each config: parsed requests are shared by the
 * requests that send the same body (request.ts), and most rooms match one list only.
 */
const singles = new WeakMap<RoomConfig, CombinedRoomConfig>();

export class CombinedRoomConfig {
  /** The exact entries asked for, `$ME` left as is (null: some config has a wildcard). */
  private readonly exactTemplate: readonly (readonly [string, string])[] | null;
  /** Their state tuple keys, null for `$ME` entries (resolved per user). */
  private readonly exactTupleKeys: readonly (string | null)[] | null;
  /** No config excludes anything: every exact entry is wanted as it stands. */
  private readonly noExcludes: boolean;

  private constructor(
    readonly timelineLimit: number,
    private readonly configs: readonly RequiredStateConfig[],
    /** Stable text of the combination, to tell when a room's config changed between requests. */
    readonly key: string,
  ) {
    this.exactTemplate = exactTemplateOf(configs);
    this.exactTupleKeys =
      this.exactTemplate?.map(([type, stateKey]) =>
        stateKey === ME ? null : stateTupleKey(type, stateKey),
      ) ?? null;
    this.noExcludes = configs.every((config) => config.exclude.length === 0);
  }

  static of(configs: readonly RoomConfig[]): CombinedRoomConfig {
    const single = configs.length === 1 ? configs[0]! : undefined;
    if (single !== undefined) {
      const known = singles.get(single);
      if (known !== undefined) return known;
    }
    const timelineLimit = Math.max(0, ...configs.map((config) => config.timelineLimit));
    const required = configs.map((config) => config.requiredState);
    const combined = new CombinedRoomConfig(timelineLimit, required, JSON.stringify(required));
    if (single !== undefined) singles.set(single, combined);
    return combined;
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
    if (this.exactTemplate === null) return null;
    const keys = this.exactTemplate.map(([type, stateKey]): [string, string] => [
      type,
      stateKey === ME ? userId : stateKey,
    ]);
    return this.noExcludes ? keys : keys.filter(([type, stateKey]) => this.wants(type, stateKey, userId));
  }

  /** exactKeys as state tuple keys (the common case, without excludes, from what was worked out once). */
  exactStateKeys(userId: string): string[] | null {
    if (this.exactTupleKeys === null || this.exactTemplate === null) return null;
    if (!this.noExcludes)
      return this.exactKeys(userId)!.map(([type, stateKey]) => stateTupleKey(type, stateKey));
    const template = this.exactTemplate;
    return this.exactTupleKeys.map((key, i) => key ?? stateTupleKey(template[i]![0], userId));
  }
}

function exactTemplateOf(configs: readonly RequiredStateConfig[]): [string, string][] | null {
  const pairs: [string, string][] = [];
  for (const config of configs) {
    for (const matcher of config.include) {
      if (matcher.type === null || matcher.stateKey === null) return null;
      pairs.push([matcher.type, matcher.stateKey]);
    }
  }
  return pairs;
}

function matches(matcher: StateMatcher, type: string, stateKey: string, userId: string): boolean {
  if (matcher.type !== null && matcher.type !== type) return false;
  if (matcher.stateKey === null) return true;
  return (matcher.stateKey === ME ? userId : matcher.stateKey) === stateKey;
}

export function isMemberType(type: string): boolean {
  return type === MEMBER;
}
