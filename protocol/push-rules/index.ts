/** Push rules (client-server "Push Notifications"): defaults, rule-set editing, evaluation. */
export * from './default-rules.js';
export * from './evaluator.js';
export * from './glob.js';
export * from './property-path.js';
export * from './rule-set.js';
export * from './types.js';
