/**
 * A user's push rules: what they changed (their own rules per kind, and the
 * enabled flag or actions of server-default rules) over the server defaults.
 * Pure operations for the /pushrules API (pushrules.yaml), each returning the
 * new value or a typed verdict the route maps to a Matrix error.
 */
import { defaultPushRules, MASTER_RULE_ID } from './default-rules.js';
import {
  type PushAction,
  type PushCondition,
  type PushRule,
  type PushRuleSet,
  RULE_KINDS,
  type RuleKind,
} from './types.js';

/** What is stored for a user; absent parts mean "as the server defaults". */
export interface UserPushRules {
  /** The user's own rules per kind, most important first. */
  readonly custom: { readonly [K in RuleKind]?: readonly PushRule[] };
  /** Changes to server-default rules, by rule ID. */
  readonly defaults: {
    readonly [ruleId: string]: { readonly enabled?: boolean; readonly actions?: readonly PushAction[] };
  };
}

export const EMPTY_USER_PUSH_RULES: UserPushRules = { custom: {}, defaults: {} };

export type RuleSetVerdict<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: 'not_found' | 'invalid'; readonly message: string };

const fail = <T>(error: 'not_found' | 'invalid', message: string): RuleSetVerdict<T> => ({
  ok: false,
  error,
  message,
});

export function isRuleKind(kind: string): kind is RuleKind {
  return (RULE_KINDS as readonly string[]).includes(kind);
}

/** Historical actions (push.md "Historical Actions") are dropped wherever actions are read. */
export function withoutHistoricalActions(actions: readonly PushAction[]): PushAction[] {
  return actions.filter((action) => action !== 'dont_notify' && action !== 'coalesce');
}

/**
 * The effective rule set, as m.push_rules and GET /pushrules show it:
 * `.m.rule.master` first, then per kind the user's rules, then the server defaults.
 */
export function effectivePushRules(userId: string, user: UserPushRules): PushRuleSet {
  const defaults = defaultPushRules(userId);
  const apply = (rule: PushRule): PushRule => {
    const change = user.defaults[rule.rule_id];
    if (change === undefined) return rule;
    return {
      ...rule,
      enabled: change.enabled ?? rule.enabled,
      actions: change.actions ?? rule.actions,
    };
  };
  const result = {} as { [K in RuleKind]: PushRule[] };
  for (const kind of RULE_KINDS) {
    const own = user.custom[kind] ?? [];
    const serverRules = defaults[kind].map(apply);
    if (kind === 'override') {
      const [master, ...rest] = serverRules;
      result[kind] = [master!, ...own, ...rest];
    } else {
      result[kind] = [...own, ...serverRules];
    }
  }
  return result;
}

/** The rule of `kind` with `ruleId` in the effective set. */
export function findRule(rules: PushRuleSet, kind: RuleKind, ruleId: string): PushRule | undefined {
  return rules[kind].find((rule) => rule.rule_id === ruleId);
}

export interface NewRuleBody {
  readonly actions: readonly PushAction[];
  readonly conditions?: readonly PushCondition[];
  readonly pattern?: string;
}

/** PUT /pushrules/global/{kind}/{ruleId} (pushrules.yaml setPushRule). */
export function putUserRule(
  user: UserPushRules,
  kind: RuleKind,
  ruleId: string,
  body: NewRuleBody,
  position: { readonly before?: string; readonly after?: string } = {},
): RuleSetVerdict<UserPushRules> {
  if (ruleId.startsWith('.'))
    return fail('invalid', 'Rule IDs starting with "." are reserved for server-default rules');
  if (ruleId.length === 0 || /[/\\]/.test(ruleId))
    return fail('invalid', 'Rule IDs may not be empty nor contain "/" or "\\"');
  if (kind === 'content' && typeof body.pattern !== 'string')
    return fail('invalid', 'Content rules need a pattern');
  if (kind === 'room' && !ruleId.startsWith('!'))
    return fail('invalid', 'The rule ID of a room rule is a room ID');
  if (kind === 'sender' && !ruleId.startsWith('@'))
    return fail('invalid', 'The rule ID of a sender rule is a user ID');
  const rule: PushRule = {
    rule_id: ruleId,
    default: false,
    enabled: true,
    actions: withoutHistoricalActions(body.actions),
    ...(kind === 'override' || kind === 'underride' ? { conditions: body.conditions ?? [] } : {}),
    ...(kind === 'content' ? { pattern: body.pattern } : {}),
  };
  const current = [...(user.custom[kind] ?? [])];
  const existing = current.findIndex((candidate) => candidate.rule_id === ruleId);
  const anchorId = position.before ?? position.after;
  if (anchorId === undefined) {
    if (existing >= 0) current[existing] = { ...rule, enabled: current[existing]!.enabled };
    else current.unshift(rule);
  } else {
    if (anchorId.startsWith('.'))
      return fail('invalid', 'Rules cannot be placed relative to server-default rules');
    if (existing >= 0) current.splice(existing, 1);
    const anchor = current.findIndex((candidate) => candidate.rule_id === anchorId);
    if (anchor < 0) return fail('not_found', `No rule ${anchorId} to place this rule against`);
    // "before" wins when both are given (pushrules.yaml).
    current.splice(position.before !== undefined ? anchor : anchor + 1, 0, rule);
  }
  return { ok: true, value: { ...user, custom: { ...user.custom, [kind]: current } } };
}

/** DELETE /pushrules/global/{kind}/{ruleId}: user rules only. */
export function deleteUserRule(
  user: UserPushRules,
  kind: RuleKind,
  ruleId: string,
): RuleSetVerdict<UserPushRules> {
  const current = user.custom[kind] ?? [];
  if (!current.some((rule) => rule.rule_id === ruleId)) {
    if (ruleId.startsWith('.'))
      return fail('invalid', 'Server-default rules cannot be deleted; disable them instead');
    return fail('not_found', 'No such push rule');
  }
  const remaining = current.filter((rule) => rule.rule_id !== ruleId);
  return { ok: true, value: { ...user, custom: { ...user.custom, [kind]: remaining } } };
}

/** PUT .../enabled and .../actions: on a user rule or a server-default one. */
export function changeRule(
  userId: string,
  user: UserPushRules,
  kind: RuleKind,
  ruleId: string,
  change: { readonly enabled?: boolean; readonly actions?: readonly PushAction[] },
): RuleSetVerdict<UserPushRules> {
  const actions = change.actions === undefined ? undefined : withoutHistoricalActions(change.actions);
  const own = user.custom[kind] ?? [];
  const index = own.findIndex((rule) => rule.rule_id === ruleId);
  if (index >= 0) {
    const updated = [...own];
    const rule = updated[index]!;
    updated[index] = { ...rule, enabled: change.enabled ?? rule.enabled, actions: actions ?? rule.actions };
    return { ok: true, value: { ...user, custom: { ...user.custom, [kind]: updated } } };
  }
  const isDefault = defaultPushRules(userId)[kind].some((rule) => rule.rule_id === ruleId);
  if (!isDefault) return fail('not_found', 'No such push rule');
  const previous = user.defaults[ruleId] ?? {};
  return {
    ok: true,
    value: {
      ...user,
      defaults: {
        ...user.defaults,
        [ruleId]: {
          ...previous,
          ...(change.enabled !== undefined ? { enabled: change.enabled } : {}),
          ...(actions !== undefined ? { actions } : {}),
        },
      },
    },
  };
}

export { MASTER_RULE_ID };
