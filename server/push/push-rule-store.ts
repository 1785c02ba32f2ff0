/**
 * Each user's push rules: their changes are stored (storage.push), the rule set
 * in force is compiled once per change and cached, and after each change the
 * full rule set is written as the user's `m.push_rules` account data (push.md
 * "Push Rules: Events"), which sync hands to their clients. Clients cannot write
 * that account data directly (routes/account-data.ts refuses it).
 */

import type { JsonObject } from '../../protocol/events.js';
import {
  CompiledPushRules,
  EMPTY_USER_PUSH_RULES,
  effectivePushRules,
  type PushRuleSet,
  type RuleSetVerdict,
  type UserPushRules,
} from '../../protocol/push-rules/index.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { Storage } from '../../storage/storage.js';
import { MatrixError } from '../errors.js';

export const PUSH_RULES_ACCOUNT_DATA = 'm.push_rules';

interface CachedRules {
  readonly user: UserPushRules;
  readonly ruleSet: PushRuleSet;
  readonly compiled: CompiledPushRules;
}

export interface PushRuleStoreOptions {
  readonly storage: Storage;
  /** Wakes the user's syncs after their m.push_rules changed. */
  readonly onChanged: (userId: string) => void;
  readonly cacheSize?: number;
}

export class PushRuleStore {
  private readonly cache: LazyLruCache<string, CachedRules>;
  /** Per user, the change in progress: read-modify-write runs one at a time per user. */
  private readonly changing = new Map<string, Promise<unknown>>();

  constructor(private readonly options: PushRuleStoreOptions) {
    this.cache = new LazyLruCache({ max: options.cacheSize ?? 10_000 });
  }

  /** The rule set in force (what GET /pushrules shows). */
  async ruleSet(userId: string): Promise<PushRuleSet> {
    return (await this.load(userId)).ruleSet;
  }

  /** The compiled rules, for evaluation. */
  async compiled(userId: string): Promise<CompiledPushRules> {
    return (await this.load(userId)).compiled;
  }

  /** Compiled rules of many users, in the same order, reading only those not cached. */
  async compiledMany(userIds: readonly string[]): Promise<CompiledPushRules[]> {
    const result: CompiledPushRules[] = new Array(userIds.length);
    // Nearly every member is cached: no promise per member (an event in a big room has thousands).
    const missing: number[] = [];
    for (let i = 0; i < userIds.length; i++) {
      const cached = this.cache.get(userIds[i]!);
      if (cached === undefined) missing.push(i);
      else result[i] = cached.compiled;
    }
    if (missing.length > 0) {
      const loaded = await Promise.all(missing.map((i) => this.load(userIds[i]!)));
      for (const [at, i] of missing.entries()) result[i] = loaded[at]!.compiled;
    }
    return result;
  }

  /**
   * Whether these compiled rules are the server defaults, unchanged: such users' outcomes
   * differ only where an event names them (push-evaluator.ts shares one evaluation).
   */
  usesServerDefaults(compiled: CompiledPushRules): boolean {
    return serverDefaultRules.has(compiled);
  }

  /** The rule set of a user who changed nothing (initial sync before any change). */
  defaultRuleSet(userId: string): PushRuleSet {
    return effectivePushRules(userId, EMPTY_USER_PUSH_RULES);
  }

  /**
   * Applies an edit; its verdict's errors become 404 M_NOT_FOUND or 400 M_INVALID_PARAM.
   * Stores the change, then writes m.push_rules and wakes the user's syncs.
   */
  change(userId: string, edit: (user: UserPushRules) => RuleSetVerdict<UserPushRules>): Promise<void> {
    const previous = this.changing.get(userId) ?? Promise.resolve();
    const next = previous
      .catch(() => {})
      .then(async () => {
        const current = await this.load(userId);
        const verdict = edit(current.user);
        if (!verdict.ok) {
          throw verdict.error === 'not_found'
            ? MatrixError.notFound(verdict.message)
            : MatrixError.invalidParam(verdict.message);
        }
        const cached = compile(userId, verdict.value);
        const { storage } = this.options;
        await storage.push.putPushRules(userId, verdict.value as unknown as JsonObject);
        this.cache.set(userId, cached);
        await storage.accountData.putAccountData(userId, null, PUSH_RULES_ACCOUNT_DATA, {
          global: cached.ruleSet as unknown as JsonObject,
        });
        this.options.onChanged(userId);
      });
    this.changing.set(userId, next);
    next
      .finally(() => {
        if (this.changing.get(userId) === next) this.changing.delete(userId);
      })
      .catch(() => {});
    return next;
  }

  private async load(userId: string): Promise<CachedRules> {
    const cached = this.cache.get(userId);
    if (cached !== undefined) return cached;
    const stored = await this.options.storage.push.getPushRules(userId);
    const user = stored === null ? EMPTY_USER_PUSH_RULES : (stored as unknown as UserPushRules);
    const loaded = compile(userId, user);
    this.cache.set(userId, loaded);
    return loaded;
  }
}

/** Compiled rule sets of users who changed nothing (no own rules, no default rule changed). */
const serverDefaultRules = new WeakSet<CompiledPushRules>();

function compile(userId: string, user: UserPushRules): CachedRules {
  const ruleSet = effectivePushRules(userId, user);
  const compiled = new CompiledPushRules(ruleSet);
  const ownRules = Object.values(user.custom).some((rules) => rules !== undefined && rules.length > 0);
  // A `*` or `?` in the ID would make invite_for_me's state_key pattern a wildcard.
  if (!ownRules && Object.keys(user.defaults).length === 0 && !/[*?]/.test(userId))
    serverDefaultRules.add(compiled);
  return { user, ruleSet, compiled };
}
