/**
 * Push rule evaluation (push.md "Push Rules", "Conditions"): a user's rule set
 * is compiled once (globs to RegExps, paths split) and then run against many
 * events. The first enabled rule whose conditions all hold decides the actions;
 * no match means no notification. Lookups an event needs for every member (its
 * property values, the room's member count, the sender's power) are computed
 * once per event in a `PushEventView` and shared by all members' evaluations.
 */
import type { JsonObject, JsonValue } from '../events.js';
import { compileGlob, compileWordGlob, compileWordLiteral, type GlobMatcher } from './glob.js';
import { splitPropertyPath, valueAtPath } from './property-path.js';
import {
  type PushAction,
  type PushCondition,
  type PushRule,
  type PushRuleSet,
  RULE_KINDS,
  type RuleKind,
} from './types.js';

/** What the conditions read about one event, shared by every member evaluated for it. */
export interface PushEventFacts {
  /** The event as clients see its top level: type, content, sender, state_key, room_id... */
  readonly event: JsonObject;
  /** Joined members of the room (room_member_count). */
  readonly roomMemberCount: number;
  /** sender_notification_permission: whether the sender's power reaches `notifications[key]`. */
  readonly senderMayNotify: (key: string) => boolean;
}

/** The evaluating user's facts: their display name in the room (contains_display_name). */
export interface PushUserFacts {
  readonly displayName?: string | undefined;
}

/** One event's facts with memoised property lookups (one per distinct path, whoever asks). */
export class PushEventView {
  private readonly values = new Map<string, JsonValue | undefined>();
  private readonly permissions = new Map<string, boolean>();

  constructor(readonly facts: PushEventFacts) {}

  valueAt(path: string, parts: readonly string[]): JsonValue | undefined {
    if (this.values.has(path)) return this.values.get(path);
    const value = valueAtPath(this.facts.event, parts);
    this.values.set(path, value);
    return value;
  }

  senderMayNotify(key: string): boolean {
    let allowed = this.permissions.get(key);
    if (allowed === undefined) {
      allowed = this.facts.senderMayNotify(key);
      this.permissions.set(key, allowed);
    }
    return allowed;
  }
}

type ConditionTest = (view: PushEventView, user: PushUserFacts) => boolean;

export interface PushOutcome {
  readonly ruleId: string;
  readonly kind: RuleKind;
  /** The matched rule's actions, historical ones removed. */
  readonly actions: readonly PushAction[];
  readonly notify: boolean;
  readonly highlight: boolean;
}

interface CompiledRule {
  readonly outcome: PushOutcome;
  readonly conditions: readonly ConditionTest[];
  /** The event type the rule requires (a wildcard-free event_match on `type`), lower-cased. */
  readonly requiredType: string | undefined;
  /** It matches every event of `requiredType` (or every event): nothing else is checked. */
  readonly matchesWholeType: boolean;
}

/** A user's enabled rules in evaluation order, compiled. */
export class CompiledPushRules {
  private readonly rules: readonly CompiledRule[];
  private readonly byType = new Map<string, boolean>();

  constructor(ruleSet: PushRuleSet) {
    const rules: CompiledRule[] = [];
    for (const kind of RULE_KINDS) {
      for (const rule of ruleSet[kind]) {
        if (!rule.enabled) continue;
        rules.push({
          outcome: outcomeOf(kind, rule),
          conditions: compileConditions(kind, rule),
          ...typeShape(kind, rule),
        });
      }
    }
    this.rules = rules;
  }

  /**
   * Whether an event of this type could notify at all: false when, in order, a rule
   * that matches the whole type (or everything, as an enabled master rule does)
   * without notifying comes before any rule that could match and notify. Lets the
   * evaluator skip members who cannot be notified (reactions, muted accounts).
   */
  couldNotify(eventType: string): boolean {
    let known = this.byType.get(eventType);
    if (known === undefined) {
      known = false;
      const type = eventType.toLowerCase();
      for (const rule of this.rules) {
        if (rule.requiredType !== undefined && rule.requiredType !== type) continue;
        if (rule.outcome.notify) {
          known = true;
          break;
        }
        if (rule.matchesWholeType) break;
      }
      if (this.byType.size < 256) this.byType.set(eventType, known);
    }
    return known;
  }

  /** The first matching rule's outcome, or null when none matches (no notification). */
  evaluate(view: PushEventView, user: PushUserFacts = {}): PushOutcome | null {
    next: for (const rule of this.rules) {
      for (const test of rule.conditions) if (!test(view, user)) continue next;
      return rule.outcome;
    }
    return null;
  }
}

function typeShape(kind: RuleKind, rule: PushRule): Pick<CompiledRule, 'requiredType' | 'matchesWholeType'> {
  if (kind !== 'override' && kind !== 'underride')
    return { requiredType: undefined, matchesWholeType: false };
  const conditions = rule.conditions ?? [];
  const typeCondition = conditions.find((condition) => {
    const { kind, key, pattern } = condition as { readonly [name: string]: JsonValue | undefined };
    return kind === 'event_match' && key === 'type' && typeof pattern === 'string' && !/[*?]/.test(pattern);
  });
  const pattern = (typeCondition as { readonly pattern?: JsonValue } | undefined)?.pattern;
  const requiredType = typeof pattern === 'string' ? pattern.toLowerCase() : undefined;
  const others = conditions.filter((condition) => condition !== typeCondition);
  return { requiredType, matchesWholeType: others.length === 0 };
}

function outcomeOf(kind: RuleKind, rule: PushRule): PushOutcome {
  const actions = rule.actions.filter((action) => action !== 'dont_notify' && action !== 'coalesce');
  return {
    ruleId: rule.rule_id,
    kind,
    actions,
    notify: actions.includes('notify'),
    highlight: highlightOf(actions),
  };
}

/** push.md "Actions": a highlight tweak without a value means true; none at all means false. */
export function highlightOf(actions: readonly PushAction[]): boolean {
  for (const action of actions) {
    if (typeof action === 'object' && action !== null && action.set_tweak === 'highlight') {
      return action.value === undefined ? true : action.value === true;
    }
  }
  return false;
}

/** The `tweaks` object the push gateway gets for these actions. */
export function tweaksOf(actions: readonly PushAction[]): JsonObject {
  const tweaks: JsonObject = {};
  for (const action of actions) {
    if (typeof action !== 'object' || action === null || typeof action.set_tweak !== 'string') continue;
    tweaks[action.set_tweak] =
      action.value === undefined ? (action.set_tweak === 'highlight' ? true : null) : action.value;
  }
  return tweaks;
}

const NEVER: ConditionTest = () => false;

function compileConditions(kind: RuleKind, rule: PushRule): ConditionTest[] {
  switch (kind) {
    case 'content':
      return typeof rule.pattern === 'string' ? [compileEventMatch('content.body', rule.pattern)] : [NEVER];
    case 'room':
      return [compileEventMatch('room_id', rule.rule_id, true)];
    case 'sender':
      return [compileEventMatch('sender', rule.rule_id, true)];
    default:
      return (rule.conditions ?? []).map(compileCondition);
  }
}

/** One condition; unrecognised or malformed ones never match (push.md "Conditions"). */
export function compileCondition(condition: PushCondition): ConditionTest {
  const c = condition as { readonly [key: string]: JsonValue | undefined };
  switch (condition.kind) {
    case 'event_match':
      return typeof c.key === 'string' && typeof c.pattern === 'string'
        ? compileEventMatch(c.key, c.pattern)
        : NEVER;
    case 'event_property_is':
      return typeof c.key === 'string' && isScalar(c.value) ? compilePropertyIs(c.key, c.value) : NEVER;
    case 'event_property_contains':
      return typeof c.key === 'string' && isScalar(c.value) ? compilePropertyContains(c.key, c.value) : NEVER;
    case 'contains_display_name':
      return compileContainsDisplayName();
    case 'room_member_count':
      return typeof c.is === 'string' ? compileMemberCount(c.is) : NEVER;
    case 'sender_notification_permission': {
      const key = c.key;
      return typeof key === 'string' ? (view) => view.senderMayNotify(key) : NEVER;
    }
    default:
      return NEVER;
  }
}

function compileEventMatch(key: string, pattern: string, exact = false): ConditionTest {
  const parts = splitPropertyPath(key);
  // A room or sender rule's ID is compared as is, never as a glob.
  const matches: GlobMatcher = exact
    ? (value) => value === pattern
    : key === 'content.body'
      ? compileWordGlob(pattern)
      : compileGlob(pattern);
  return (view) => {
    const value = view.valueAt(key, parts);
    return typeof value === 'string' && matches(value);
  };
}

type Scalar = string | number | boolean | null;

/** Non-compound canonical JSON values: strings, integers in the safe range, booleans, null. */
function isScalar(value: JsonValue | undefined): value is Scalar {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  return typeof value === 'number' && Number.isSafeInteger(value);
}

function compilePropertyIs(key: string, expected: Scalar): ConditionTest {
  const parts = splitPropertyPath(key);
  return (view) => {
    const value = view.valueAt(key, parts);
    return value !== undefined && isScalar(value) && value === expected;
  };
}

function compilePropertyContains(key: string, expected: Scalar): ConditionTest {
  const parts = splitPropertyPath(key);
  return (view) => {
    const value = view.valueAt(key, parts);
    return Array.isArray(value) && value.some((item) => isScalar(item) && item === expected);
  };
}

const MEMBER_COUNT = /^(==|<=|>=|<|>)?([0-9]+)$/;

function compileMemberCount(is: string): ConditionTest {
  const match = MEMBER_COUNT.exec(is);
  if (match === null) return NEVER;
  const bound = Number(match[2]);
  switch (match[1] ?? '==') {
    case '<':
      return (view) => view.facts.roomMemberCount < bound;
    case '>':
      return (view) => view.facts.roomMemberCount > bound;
    case '<=':
      return (view) => view.facts.roomMemberCount <= bound;
    case '>=':
      return (view) => view.facts.roomMemberCount >= bound;
    default:
      return (view) => view.facts.roomMemberCount === bound;
  }
}

/** contains_display_name (deprecated in v1.17, still evaluated): the name as a word in content.body. */
function compileContainsDisplayName(): ConditionTest {
  // One-entry cache: a compiled rule set belongs to one user, whose name changes rarely.
  let cached: { name: string; matches: GlobMatcher } | undefined;
  return (view, user) => {
    const name = user.displayName;
    if (name === undefined || name.length === 0) return false;
    const body = view.valueAt('content.body', ['content', 'body']);
    if (typeof body !== 'string') return false;
    if (cached?.name !== name) cached = { name, matches: compileWordLiteral(name) };
    return cached.matches(body);
  };
}
