/**
 * client-server "Push Rules: API" (pushrules.yaml):
 *   GET    /_matrix/client/v3/pushrules/
 *   GET    /_matrix/client/v3/pushrules/global/
 *   GET    /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
 *   PUT    /_matrix/client/v3/pushrules/global/{kind}/{ruleId}   (before, after)
 *   DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
 *   GET/PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled
 *   GET/PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions
 * Server-default rules (IDs starting with ".") can be disabled and given other
 * actions but not deleted nor created. Every change reaches the user's clients
 * as m.push_rules account data in sync.
 */
import { Type } from '@sinclair/typebox';
import {
  changeRule,
  deleteUserRule,
  findRule,
  type PushAction,
  type PushCondition,
  type PushRule,
  putUserRule,
  RULE_KINDS,
  type RuleKind,
} from '../../protocol/push-rules/index.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const PREFIX = '/_matrix/client/v3/pushrules';

const ActionSchema = Type.Union([Type.String(), Type.Object({}, { additionalProperties: true })]);
const Actions = Type.Array(ActionSchema, {
  description: 'The actions to perform when this rule matches: "notify", {"set_tweak": ...}.',
});
const ConditionSchema = Type.Object(
  { kind: Type.String({ description: 'event_match, event_property_is, room_member_count, ...' }) },
  { additionalProperties: true, description: 'A push condition (definitions/push_condition.yaml).' },
);
const PushRuleSchema = Type.Object(
  {
    rule_id: Type.String(),
    default: Type.Boolean(),
    enabled: Type.Boolean(),
    actions: Actions,
    conditions: Type.Optional(Type.Array(ConditionSchema)),
    pattern: Type.Optional(Type.String()),
  },
  { additionalProperties: false, description: 'A push rule.' },
);
const RuleSet = Type.Object(
  {
    override: Type.Array(PushRuleSchema),
    content: Type.Array(PushRuleSchema),
    room: Type.Array(PushRuleSchema),
    sender: Type.Array(PushRuleSchema),
    underride: Type.Array(PushRuleSchema),
  },
  { description: "The global ruleset: each kind's rules in priority order." },
);

const KindParam = Type.Union(
  RULE_KINDS.map((kind) => Type.Literal(kind)),
  { description: 'The kind of rule.' },
);
const RuleParams = Type.Object({
  kind: KindParam,
  ruleId: Type.String({ minLength: 1, description: 'The identifier for the rule.' }),
});
const Empty = Type.Object({}, { additionalProperties: false, description: 'Done.' });
const errors = { 400: MatrixErrorBody, 404: MatrixErrorBody, 429: MatrixErrorBody } as const;

const common = {
  tags: ['Push notifications'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
} as const;

async function ruleOrNotFound(
  hs: HomeserverContext,
  userId: string,
  kind: RuleKind,
  ruleId: string,
): Promise<PushRule> {
  const rule = findRule(await hs.push.rules.ruleSet(userId), kind, ruleId);
  if (rule === undefined) throw MatrixError.notFound('The push rule does not exist');
  return rule;
}

/** The rule as the API shows it (no undefined fields). */
function ruleJson(rule: PushRule) {
  return {
    rule_id: rule.rule_id,
    default: rule.default,
    enabled: rule.enabled,
    actions: [...rule.actions],
    ...(rule.conditions !== undefined
      ? { conditions: rule.conditions.map((condition) => ({ ...condition })) }
      : {}),
    ...(rule.pattern !== undefined ? { pattern: rule.pattern } : {}),
  };
}

function ruleSetJson(ruleSet: Awaited<ReturnType<HomeserverContext['push']['rules']['ruleSet']>>) {
  return {
    override: ruleSet.override.map(ruleJson),
    content: ruleSet.content.map(ruleJson),
    room: ruleSet.room.map(ruleJson),
    sender: ruleSet.sender.map(ruleJson),
    underride: ruleSet.underride.map(ruleJson),
  };
}

export const getPushRules = defineRoute({
  ...common,
  method: 'GET',
  path: `${PREFIX}/`,
  operationId: 'getPushRules',
  summary: 'Retrieve all push rulesets.',
  description: 'All push rulesets of the user; `global` is the only one.',
  responses: {
    200: Type.Object({ global: RuleSet }, { description: 'All the push rulesets.' }),
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    return reply(200, { global: ruleSetJson(await hs.push.rules.ruleSet(req.requester.userId)) });
  },
});

export const getPushRulesGlobal = defineRoute({
  ...common,
  method: 'GET',
  path: `${PREFIX}/global/`,
  operationId: 'getPushRulesGlobal',
  summary: 'Retrieve all push rules.',
  description: 'The global ruleset of the user.',
  responses: { 200: RuleSet, 429: MatrixErrorBody },
  async handler(req, hs) {
    return reply(200, ruleSetJson(await hs.push.rules.ruleSet(req.requester.userId)));
  },
});

export const getPushRule = defineRoute({
  ...common,
  method: 'GET',
  path: `${PREFIX}/global/{kind}/{ruleId}`,
  operationId: 'getPushRule',
  summary: 'Retrieve a push rule.',
  description: 'One rule of the global ruleset.',
  request: { params: RuleParams },
  responses: { 200: PushRuleSchema, ...errors },
  async handler(req, hs) {
    const { kind, ruleId } = req.params;
    return reply(200, ruleJson(await ruleOrNotFound(hs, req.requester.userId, kind, ruleId)));
  },
});

export const setPushRule = defineRoute({
  ...common,
  method: 'PUT',
  path: `${PREFIX}/global/{kind}/{ruleId}`,
  operationId: 'setPushRule',
  summary: 'Add or change a push rule.',
  description:
    'Creates the user rule (enabled, as the most important of its kind unless `before`/`after` place it) or ' +
    'updates it in place. IDs starting with "." are reserved for server-default rules; `before`/`after` must name user rules.',
  request: {
    params: RuleParams,
    query: Type.Object({
      before: Type.Optional(Type.String({ description: 'Place the rule just before this user rule.' })),
      after: Type.Optional(Type.String({ description: 'Place the rule just after this user rule.' })),
    }),
    body: Type.Object(
      {
        actions: Actions,
        conditions: Type.Optional(Type.Array(ConditionSchema)),
        pattern: Type.Optional(Type.String({ description: 'content rules: the glob to match.' })),
      },
      { additionalProperties: true },
    ),
  },
  responses: { 200: Empty, ...errors },
  async handler(req, hs) {
    const { kind, ruleId } = req.params;
    const body = req.body;
    await hs.push.rules.change(req.requester.userId, (user) =>
      putUserRule(
        user,
        kind,
        ruleId,
        {
          actions: body.actions as PushAction[],
          ...(body.conditions !== undefined ? { conditions: body.conditions as PushCondition[] } : {}),
          ...(body.pattern !== undefined ? { pattern: body.pattern } : {}),
        },
        {
          ...(req.query.before !== undefined ? { before: req.query.before } : {}),
          ...(req.query.after !== undefined ? { after: req.query.after } : {}),
        },
      ),
    );
    return reply(200, {});
  },
});

export const deletePushRule = defineRoute({
  ...common,
  method: 'DELETE',
  path: `${PREFIX}/global/{kind}/{ruleId}`,
  operationId: 'deletePushRule',
  summary: 'Delete a push rule.',
  description: 'Deletes a user rule. Server-default rules cannot be deleted (400); disable them instead.',
  request: { params: RuleParams },
  responses: { 200: Empty, ...errors },
  async handler(req, hs) {
    const { kind, ruleId } = req.params;
    await hs.push.rules.change(req.requester.userId, (user) => deleteUserRule(user, kind, ruleId));
    return reply(200, {});
  },
});

export const isPushRuleEnabled = defineRoute({
  ...common,
  method: 'GET',
  path: `${PREFIX}/global/{kind}/{ruleId}/enabled`,
  operationId: 'isPushRuleEnabled',
  summary: 'Get whether a push rule is enabled.',
  description: 'Whether the rule is enabled.',
  request: { params: RuleParams },
  responses: {
    200: Type.Object({ enabled: Type.Boolean() }, { description: 'Whether it is enabled.' }),
    ...errors,
  },
  async handler(req, hs) {
    const { kind, ruleId } = req.params;
    return reply(200, { enabled: (await ruleOrNotFound(hs, req.requester.userId, kind, ruleId)).enabled });
  },
});

export const setPushRuleEnabled = defineRoute({
  ...common,
  method: 'PUT',
  path: `${PREFIX}/global/{kind}/{ruleId}/enabled`,
  operationId: 'setPushRuleEnabled',
  summary: 'Enable or disable a push rule.',
  description: 'Enables or disables a user rule or a server-default rule.',
  request: {
    params: RuleParams,
    body: Type.Object({ enabled: Type.Boolean() }, { additionalProperties: true }),
  },
  responses: { 200: Empty, ...errors },
  async handler(req, hs) {
    const { kind, ruleId } = req.params;
    const { userId } = req.requester;
    await hs.push.rules.change(userId, (user) =>
      changeRule(userId, user, kind, ruleId, { enabled: req.body.enabled }),
    );
    return reply(200, {});
  },
});

export const getPushRuleActions = defineRoute({
  ...common,
  method: 'GET',
  path: `${PREFIX}/global/{kind}/{ruleId}/actions`,
  operationId: 'getPushRuleActions',
  summary: 'The actions for a push rule.',
  description: 'The actions of the rule.',
  request: { params: RuleParams },
  responses: { 200: Type.Object({ actions: Actions }, { description: 'The actions.' }), ...errors },
  async handler(req, hs) {
    const { kind, ruleId } = req.params;
    return reply(200, {
      actions: [...(await ruleOrNotFound(hs, req.requester.userId, kind, ruleId)).actions],
    });
  },
});

export const setPushRuleActions = defineRoute({
  ...common,
  method: 'PUT',
  path: `${PREFIX}/global/{kind}/{ruleId}/actions`,
  operationId: 'setPushRuleActions',
  summary: 'Set the actions for a push rule.',
  description: 'Replaces the actions of a user rule or a server-default rule.',
  request: { params: RuleParams, body: Type.Object({ actions: Actions }, { additionalProperties: true }) },
  responses: { 200: Empty, ...errors },
  async handler(req, hs) {
    const { kind, ruleId } = req.params;
    const { userId } = req.requester;
    const actions = req.body.actions as PushAction[];
    await hs.push.rules.change(userId, (user) => changeRule(userId, user, kind, ruleId, { actions }));
    return reply(200, {});
  },
});

export const pushRuleRoutes = [
  getPushRules,
  getPushRulesGlobal,
  getPushRule,
  setPushRule,
  deletePushRule,
  isPushRuleEnabled,
  setPushRuleEnabled,
  getPushRuleActions,
  setPushRuleActions,
];
