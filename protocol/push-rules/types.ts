/**
 * Push rule shapes (client-server "Push Rules"; event-schemas m.push_rules).
 * Conditions and actions are kept as the JSON clients send: unknown condition
 * kinds never match, unknown actions pass through (tweaks are transparent).
 */
import type { JsonObject, JsonValue } from '../events.js';

/** In the order they are checked. */
export const RULE_KINDS = ['override', 'content', 'room', 'sender', 'underride'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

export type PushCondition =
  | { readonly kind: 'event_match'; readonly key: string; readonly pattern: string }
  | { readonly kind: 'event_property_is'; readonly key: string; readonly value: JsonValue }
  | { readonly kind: 'event_property_contains'; readonly key: string; readonly value: JsonValue }
  | { readonly kind: 'contains_display_name' }
  | { readonly kind: 'room_member_count'; readonly is: string }
  | { readonly kind: 'sender_notification_permission'; readonly key: string }
  | { readonly kind: string; readonly [parameter: string]: JsonValue };

/** 'notify', or an object such as `{ set_tweak: 'sound', value: 'default' }`. */
export type PushAction = string | JsonObject;

export interface PushRule {
  readonly rule_id: string;
  readonly default: boolean;
  readonly enabled: boolean;
  readonly actions: readonly PushAction[];
  /** override and underride rules */
  readonly conditions?: readonly PushCondition[];
  /** content rules */
  readonly pattern?: string;
}

/** The `global` scope of m.push_rules: each kind's rules in priority order. */
export type PushRuleSet = { readonly [K in RuleKind]: readonly PushRule[] };
